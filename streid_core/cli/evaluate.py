"""`streid evaluate`: CMC/mAP/mINP of a checkpoint on a dataset's query/gallery split.

Features are cached next to the checkpoint (keyed by checkpoint and images), so re-running
with another protocol, AP convention, re-ranking or figures does not embed the images again.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import StreidError
from ._args import add_amp_arg, add_checkpoint_arg, add_dataset_args, add_device_arg, command_parser, dataset_root

AP_CHOICES = ("non_interpolated", "trapezoid", "sklearn")
METRIC_CHOICES = ("sqeuclidean", "euclidean", "cosine")
SELECT_CHOICES = ("random", "failures")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = command_parser(
        subparsers, "evaluate", help="CMC/mAP/mINP of a checkpoint on a dataset's query/gallery split",
        description="Embed the query and gallery images of a dataset with a checkpoint's encoder, print "
                    "R1/R5/R10, mAP and mINP, and write metrics.json (rates as fractions in [0, 1]).",
    )
    add_dataset_args(parser, positional=True)
    add_checkpoint_arg(parser, "a streid checkpoint (checkpoint.pth.tar / model_best.pth.tar)", required=True)
    parser.add_argument("--split", type=int, default=0, help="split index of splits.json (default 0)")
    parser.add_argument("--query-mode", choices=("official", "identity"),
                        help="official query/gallery lists or every image of the query/gallery identities "
                             "(default: official when the dataset has them)")
    parser.add_argument("--protocol",
                        help="market1501, cuhk03, dancereid, allshots, or open-reid flags joined by '+' "
                             "(default: the dataset's own protocol)")
    parser.add_argument("--ap", choices=AP_CHOICES, help="AP convention for mAP (default: the protocol's, sklearn)")
    parser.add_argument("--metric", choices=METRIC_CHOICES, default="sqeuclidean",
                        help="feature distance (default sqeuclidean, as the original)")
    parser.add_argument("--max-rank", type=int, default=50, help="length of the CMC curve stored (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the single-gallery-shot sampling (default 0)")
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (Zhong et al. 2017)")
    parser.add_argument("--k1", type=int, default=20, help="re-ranking k1 (default 20)")
    parser.add_argument("--k2", type=int, default=6, help="re-ranking k2 (default 6)")
    parser.add_argument("--lambda-value", type=float, default=0.3, help="re-ranking weight of the original distance (default 0.3)")
    parser.add_argument("--flip", action="store_true", help="average each image's descriptor with its mirror's")
    add_amp_arg(parser, help="run the encoder in autocast: bf16 (CPU or CUDA; bare --amp) or fp16 (CUDA)")
    parser.add_argument("-b", "--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("-j", "--workers", type=int, default=0,
                        help="image-loading worker processes (default 0: load in the main process)")
    add_device_arg(parser)
    parser.add_argument("--out", help="output folder (default: <checkpoint folder>/evaluate/<dataset folder>)")
    parser.add_argument("--cache-dir", help="feature cache folder (default: <checkpoint folder>/feature_cache)")
    parser.add_argument("--no-cache", action="store_true", help="always embed the images, read and write no cache")
    parser.add_argument("--full-hash", action="store_true",
                        help="key the cache on the SHA-1 of the whole checkpoint, not its size, mtime and first MiB")
    parser.add_argument("--ranked-list", type=int, default=0, metavar="N",
                        help="write ranked-list figures of N queries into OUT/ranked/ (default 0)")
    parser.add_argument("--ranked-select", choices=SELECT_CHOICES, default="random",
                        help="which queries to draw: random valid queries or rank-1 failures, worst first (default random)")
    parser.add_argument("--top-k", type=int, default=10, help="gallery images per ranked list (default 10)")
    parser.add_argument("--show-junk", action="store_true",
                        help="show same-identity same-camera gallery images (grey) in ranked lists instead of skipping them")
    parser.set_defaults(run=run_evaluate)


def _check_args(args: argparse.Namespace) -> None:
    for name, value, low in (("--batch-size", args.batch_size, 1), ("--max-rank", args.max_rank, 1),
                             ("--workers", args.workers, 0), ("--ranked-list", args.ranked_list, 0),
                             ("--top-k", args.top_k, 1), ("--k1", args.k1, 1), ("--k2", args.k2, 1)):
        if value < low:
            raise StreidError(f"{name} {value}: must be >= {low}")
    if args.seed < 0:
        raise StreidError(f"--seed {args.seed}: must be >= 0")
    if args.split < 0:
        raise StreidError(f"--split {args.split}: must be >= 0 (an index into splits.json)")
    if not 0.0 <= args.lambda_value <= 1.0:
        raise StreidError(f"--lambda-value {args.lambda_value}: must be in [0, 1]")


def run_evaluate(args: argparse.Namespace) -> int:
    from ..atomic import check_output_dir, write_json
    from ..data import load_dataset
    from ..data.protocols import resolve_protocol
    from ..data.validation import check_scorable
    from ..device import resolve_device
    from ..evaluation.pipeline import ReRanking, evaluate_reid
    from ..numerics import amp_dtype, check_amp

    _check_args(args)
    checkpoint = Path(args.checkpoint)
    if checkpoint.is_dir():
        raise StreidError(f"{checkpoint}: is a folder, not a checkpoint; pass the checkpoint.pth.tar or "
                          "model_best.pth.tar of a run")
    if not checkpoint.is_file():  # fail before the dataset is read
        raise StreidError(f"{checkpoint}: checkpoint not found; pass the checkpoint.pth.tar or model_best.pth.tar of a run")
    root = dataset_root(args)
    out_dir = Path(args.out) if args.out else checkpoint.parent / "evaluate" / root.name
    check_output_dir(out_dir, "--out")  # before any image is embedded
    cache_dir = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else checkpoint.parent / "feature_cache"
    if cache_dir is not None:
        check_output_dir(cache_dir, "--cache-dir")
    dataset = load_dataset(root, split=args.split, query_mode=args.query_mode)
    check_scorable(dataset)  # before the images are embedded
    protocol = resolve_protocol(args.protocol or dataset.protocol)
    device = resolve_device(args.device)
    check_amp(args.amp, device)
    dtype = amp_dtype(args.amp)
    rerank = ReRanking(args.k1, args.k2, args.lambda_value) if args.rerank else None

    print(f"{dataset.name} ({root}): {len(dataset.query)} query / {len(dataset.gallery)} gallery images, "
          f"protocol {protocol.name}")
    evaluation = evaluate_reid(
        checkpoint, dataset.query, dataset.gallery, protocol, [args.ap], metric=args.metric, rerank=rerank,
        max_rank=args.max_rank, seed=args.seed, flip=args.flip, dtype=dtype, batch_size=args.batch_size,
        num_workers=args.workers, device=device, cache_dir=cache_dir, full_hash=args.full_hash)
    cache, result = evaluation.cache, evaluation.result
    if cache and cache.hit:
        print(f"features read from the cache {cache.path}")

    summary = result.as_dict()
    print("  ".join(f"{k} {100 * v:.1f}%" for k, v in summary.items() if k != "num_valid")
          + f"  ({result.num_valid} valid queries)")
    metrics = {
        **summary,
        "cmc": [float(v) for v in result.cmc],
        "dataset": dataset.name, "dataset_root": str(root), "split": args.split,
        "num_query": len(dataset.query), "num_gallery": len(dataset.gallery),
        "checkpoint": str(checkpoint), "protocol": protocol.name, "ap": result.ap_convention, "ties": result.ties,
        "metric": "re-ranked" if args.rerank else args.metric, "seed": args.seed,
        "rerank": {"k1": args.k1, "k2": args.k2, "lambda_value": args.lambda_value} if args.rerank else None,
        "flip": args.flip, "amp": str(dtype).removeprefix("torch.") if dtype else None,
        "feature_cache": {"path": str(cache.path), "hit": cache.hit} if cache else None,
    }
    write_json(out_dir / "metrics.json", metrics)
    print(f"metrics written to {out_dir / 'metrics.json'}")
    if args.ranked_list:
        written = _write_ranked_lists(args, evaluation, out_dir / "ranked")
        print(f"{written} ranked-list figure(s) written to {out_dir / 'ranked'}")
    return 0


def _write_ranked_lists(args: argparse.Namespace, evaluation, folder: Path) -> int:
    import numpy as np

    from ..atomic import atomic_directory
    from ..viz.figures import save_figure
    from ..viz.ranked import failure_cases, first_match_ranks, ranked_list_figure

    query, gallery, distances = evaluation.query, evaluation.gallery, evaluation.distances
    q_pids, g_pids, q_cams, g_cams = evaluation.labels()
    if args.ranked_select == "failures":
        chosen = failure_cases(distances, q_pids, g_pids, q_cams, g_cams, limit=args.ranked_list)
    else:
        valid = np.flatnonzero(first_match_ranks(distances, q_pids, g_pids, q_cams, g_cams) > 0)
        rng = np.random.default_rng(args.seed)
        chosen = np.sort(rng.choice(valid, size=min(args.ranked_list, len(valid)), replace=False))
    rows = distances if isinstance(distances, np.ndarray) else None
    with atomic_directory(folder, overwrite=True) as tmp:
        for q in chosen:
            row = rows[q] if rows is not None else distances(int(q), int(q) + 1)[0]
            record = query[q]
            fig = ranked_list_figure(record, gallery, row, top_k=args.top_k, show_junk=args.show_junk,
                                     title=f"query {q}: {Path(record.path).name}")
            save_figure(fig, tmp / f"query_{q:05d}.png")
    return len(chosen)
