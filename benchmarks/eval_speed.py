"""Evaluation speed on a Market-1501-sized problem: streid vs fast-reid (Cython) vs torchreid.

    .venv/bin/python benchmarks/eval_speed.py [--repeats 5] [--torchreid-repeats 1] [--skip-torchreid]

One run times, on the same tie-free 3,368 x 15,913 float32 distance matrix (751 ids with pid-0
distractors, 6 cameras):
  * streid's `evaluate_rank` (pure NumPy, nothing compiled);
  * fast-reid 1.4.0's Cython `evaluate_cy`, compiled here from the wheel's rank_cy.pyx;
  * torchreid 0.2.5's pure-Python evaluator (the PyPI package ships no Cython).
Peers are fetched into a cache folder (benchmarks/_peers.py), never into the project's
environment; one that cannot be had is reported as unavailable and the run goes on. It checks
that R1/mAP/mINP agree, prints medians and ratios, measures our peak extra memory, and writes
reports/bench/eval_speed.json atomically.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import CACHE, fastreid_cython, torchreid_python  # noqa: E402

from streid_core.atomic import write_json  # noqa: E402
from streid_core.evaluation import evaluate_rank  # noqa: E402

# The problem: 750 test identities plus pid-0 distractors (751 ids), 6 cameras, float32 squared
# Euclidean distances of synthetic features (identity centre + camera shift + noise, tuned to
# land near real Market numbers: R1 ~92, mAP ~68, mINP ~23), made strictly tie-free per row.
NUM_QUERY, NUM_GALLERY, NUM_IDS, NUM_CAMS, NUM_DISTRACTORS = 3368, 15913, 750, 6, 2793


def _untie_rows(dist: np.ndarray) -> np.ndarray:
    """Nudge equal float32 values within each row apart (to the next float up) until none tie."""
    order = np.argsort(dist, axis=1)
    values = np.take_along_axis(dist, order, axis=1)
    while True:
        rows, cols = np.nonzero(values[:, 1:] <= values[:, :-1])
        if len(rows) == 0:
            break
        values[rows, cols + 1] = np.nextafter(values[rows, cols], np.float32(np.inf))
    np.put_along_axis(dist, order, values, axis=1)
    return dist


def market_like(seed: int = 0, dim: int = 64):
    """(distmat float32, q_pids, g_pids, q_camids, g_camids) with no tie in any row."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, NUM_IDS + 1)
    q_pids = np.concatenate([ids, rng.choice(ids, NUM_QUERY - NUM_IDS)])
    g_pids = np.concatenate([ids, rng.choice(ids, NUM_GALLERY - NUM_IDS - NUM_DISTRACTORS),
                             np.zeros(NUM_DISTRACTORS, dtype=np.int64)])
    q_cams = rng.integers(0, NUM_CAMS, NUM_QUERY)
    g_cams = rng.integers(0, NUM_CAMS, NUM_GALLERY)
    centres = rng.normal(size=(NUM_IDS + 1, dim))
    cam_shift = rng.normal(scale=0.45, size=(NUM_CAMS, dim))

    def features(pids, cams):
        noise = rng.normal(scale=0.9, size=(len(pids), dim))
        distractor = pids == 0
        noise[distractor] = rng.normal(scale=1.2, size=(int(distractor.sum()), dim))
        return centres[pids] + cam_shift[cams] + noise

    q, g = features(q_pids, q_cams), features(g_pids, g_cams)
    dist = ((q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T).astype(np.float32)
    return _untie_rows(dist), q_pids, g_pids, q_cams, g_cams


MAX_RANK = 50
AGREEMENT_TOLERANCE = 1e-6
GOAL_SPEEDUP = 3.0


def timed(fn, repeats: int) -> tuple[list[float], tuple]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return times, out


def ours(problem):
    res = evaluate_rank(*problem, max_rank=MAX_RANK)
    return res.cmc, res.mAP, res.mINP


def peak_extra_memory(problem) -> int:
    tracemalloc.start()
    try:
        ours(problem)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours and fast-reid (median reported)")
    parser.add_argument("--torchreid-repeats", type=int, default=1, help="timed runs of torchreid (~1 min each)")
    parser.add_argument("--skip-torchreid", action="store_true", help="do not run the slow pure-Python peer")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic problem")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "eval_speed.json")
    args = parser.parse_args(argv)

    print(f"building the problem: {NUM_QUERY} x {NUM_GALLERY} float32, {NUM_IDS + 1} ids "
          f"({NUM_DISTRACTORS} pid-0 distractors), {NUM_CAMS} cameras, no ties ...", flush=True)
    problem = market_like(args.seed)
    load_before = os.getloadavg()

    rows = {}
    times, (cmc, m_ap, m_inp) = timed(lambda: ours(problem), args.repeats)
    rows["streid evaluate_rank (NumPy)"] = dict(times=times, R1=float(cmc[0]), mAP=m_ap, mINP=m_inp, available=True)

    peers = [("fast-reid 1.4.0 Cython evaluate_cy", fastreid_cython, args.repeats)]
    if not args.skip_torchreid:
        peers.append(("torchreid 0.2.5 pure Python", torchreid_python, args.torchreid_repeats))
    for name, loader, repeats in peers:
        print(f"preparing {name} (cache {CACHE}) ...", flush=True)
        evaluate, why = loader()
        if evaluate is None:
            print(f"  unavailable: {why}")
            rows[name] = dict(available=False, reason=why)
            continue
        times, (cmc, m_ap, m_inp) = timed(lambda: evaluate(*problem, MAX_RANK), repeats)
        rows[name] = dict(times=times, R1=float(cmc[0]), mAP=m_ap, mINP=m_inp, available=True)

    ref = rows["streid evaluate_rank (NumPy)"]
    ours_median = statistics.median(ref["times"])
    print(f"\n{'implementation':40s} {'median s':>9s} {'runs':>4s} {'x ours':>7s} {'R1 %':>8s} "
          f"{'mAP %':>8s} {'mINP %':>8s}  agrees")
    for name, row in rows.items():
        if not row["available"]:
            print(f"{name:40s} {'unavailable':>9s}  {row['reason']}")
            continue
        row["median_s"] = statistics.median(row["times"])
        row["ratio_to_ours"] = row["median_s"] / ours_median
        diffs = [abs(row[k] - ref[k]) for k in ("R1", "mAP", "mINP") if row[k] is not None]
        row["max_abs_diff_to_ours"] = max(diffs)
        row["agrees"] = bool(max(diffs) <= AGREEMENT_TOLERANCE)
        inp = "-" if row["mINP"] is None else f"{100 * row['mINP']:.4f}"
        print(f"{name:40s} {row['median_s']:9.3f} {len(row['times']):4d} {row['ratio_to_ours']:7.1f} "
              f"{100 * row['R1']:8.4f} {100 * row['mAP']:8.4f} {inp:>8s}  {row['agrees']}")

    peak = peak_extra_memory(problem)
    print(f"\nours: peak extra memory {peak / 2**20:.1f} MiB (tracemalloc; the input matrix is "
          f"{problem[0].nbytes / 2**20:.0f} MiB and is not copied)")
    fast = rows["fast-reid 1.4.0 Cython evaluate_cy"]
    goal = None
    if fast["available"]:
        goal = bool(fast["ratio_to_ours"] >= GOAL_SPEEDUP and fast["agrees"])
        print(f"goal (>= {GOAL_SPEEDUP:.0f}x faster than fast-reid Cython, identical R1/mAP/mINP): "
              f"{'met' if goal else 'NOT met'} ({fast['ratio_to_ours']:.1f}x)")

    write_json(args.out, {
        "benchmark": "evaluation speed, Market-1501-sized ranking problem",
        "command": "python benchmarks/eval_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "problem": {"num_query": NUM_QUERY, "num_gallery": NUM_GALLERY, "num_ids": NUM_IDS + 1,
                    "num_distractors": NUM_DISTRACTORS, "num_cams": NUM_CAMS, "dtype": "float32",
                    "ties": "none", "max_rank": MAX_RANK, "seed": args.seed},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "platform": platform.platform(), "load_average_at_start": load_before},
        "results": rows,
        "ours_peak_extra_memory_bytes": peak,
        "agreement_tolerance": AGREEMENT_TOLERANCE,
        "goal_3x_faster_than_fastreid_cython_and_identical": goal,
    })
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
