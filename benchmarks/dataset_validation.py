"""Pre-run dataset validation on a Market-1501-sized dataset: how long `streid baseline` and
`streid train` spend checking the data before the first epoch.

The set is generated in Market-1501's prepared (open-reid) layout, the shape `streid prepare
market1501` writes: 32,668 JPEGs of 128x64 pixels (12,936 train images of 751 identities,
3,368 official queries and 16,364 gallery images of 750 identities plus distractors, pid 0),
meta.json, splits.json and official_split.json, no pose files (FD-GAN's Market poses are an
extra download). Every image is a distinct JPEG of about Market's size (smooth colours plus noise,
about 4.6 KB; the 32,668 Market-1501 images take about 150 MB).

Timed (best of `--repeats`, after one untimed pass):
  load       `load_dataset` (reads the JSON files, builds the records)
  check      `check_run_data` on what a baseline run reads (train, val, query, gallery), with
             1 thread and with the default pool (min(8, CPUs) threads); "cold" runs each once
             more after asking the kernel to drop the files from the page cache (posix_fadvise
             DONTNEED, no root needed; without effect on tmpfs)
  decode     the alternative the check avoids: a full decode (`load_image`) of every image, one
             thread, for the ratio

Run: .venv/bin/python benchmarks/dataset_validation.py [--dir /tmp/streid-market-bench] [--repeats 3]
Writes reports/bench/dataset_validation.json. The generated set is kept in --dir (reused when
its image count matches) and deleted with --clean.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from streid_core.atomic import write_json
from streid_core.data import load_dataset
from streid_core.data.images import load_image
from streid_core.data.validation import check_run_data, default_threads

SIZE = (64, 128)  # Market-1501 crops: width, height
TRAIN_IDS, TEST_IDS, CAMERAS = 751, 750, 6
TRAIN_IMAGES, QUERY_IMAGES, GALLERY_IMAGES = 12936, 3368, 16364  # 32,668 images in all
DISTRACTORS = 2798  # pid 0 images in the gallery


def _jpeg(rng: np.random.Generator) -> bytes:
    base = rng.integers(0, 256, size=3)
    ramp = np.linspace(-40, 40, SIZE[1])[:, None, None]
    pixels = base + ramp + rng.normal(0, 20, size=(SIZE[1], SIZE[0], 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _spread(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def make_market_sized(root: Path, seed: int = 0) -> int:
    """Write the Market-1501-sized open-reid dataset at `root`; returns the number of images."""
    rng = np.random.default_rng(seed)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    identities: list[list[list[str]]] = [[[] for _ in range(CAMERAS)] for _ in range(TRAIN_IDS + TEST_IDS + 1)]

    def add(pid: int, cam: int) -> str:
        name = f"{pid:08d}_{cam:02d}_{len(identities[pid][cam]):04d}.jpg"
        identities[pid][cam].append(name)
        (images / name).write_bytes(_jpeg(rng))
        return name

    train_pids = list(range(1, TRAIN_IDS + 1))
    test_pids = list(range(TRAIN_IDS + 1, TRAIN_IDS + TEST_IDS + 1))
    for pid, count in zip(train_pids, _spread(TRAIN_IMAGES, TRAIN_IDS)):
        for k in range(count):
            add(pid, k % CAMERAS)
    query, gallery = [], []
    for i, (pid, count) in enumerate(zip(test_pids, _spread(QUERY_IMAGES, TEST_IDS))):
        for k in range(count):  # queries from one camera, the gallery from the others
            query.append(add(pid, i % CAMERAS))
    for i, (pid, count) in enumerate(zip(test_pids, _spread(GALLERY_IMAGES - DISTRACTORS, TEST_IDS))):
        for k in range(count):
            gallery.append(add(pid, (i + 1 + k % (CAMERAS - 1)) % CAMERAS))
    for k in range(DISTRACTORS):
        gallery.append(add(0, k % CAMERAS))
    (root / "meta.json").write_text(json.dumps(
        {"name": "Market1501", "shot": "multiple", "num_cameras": CAMERAS, "identities": identities}))
    (root / "splits.json").write_text(json.dumps(
        [{"trainval": train_pids, "query": test_pids, "gallery": [0, *test_pids]}]))
    (root / "official_split.json").write_text(json.dumps({"query": query, "gallery": gallery}))
    return TRAIN_IMAGES + QUERY_IMAGES + GALLERY_IMAGES


def drop_page_cache(folder: Path) -> bool:
    """Ask the kernel to forget the files' cached pages; False where that is not possible."""
    if not hasattr(os, "posix_fadvise"):
        return False
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/streid-market-bench", help="where the dataset is generated")
    parser.add_argument("--repeats", type=int, default=3, help="timing passes; the best is kept")
    parser.add_argument("--out", default="reports/bench/dataset_validation.json", help="JSON result file")
    parser.add_argument("--clean", action="store_true", help="delete the generated dataset afterwards")
    args = parser.parse_args()

    root = Path(args.dir) / "market1501"
    expected = TRAIN_IMAGES + QUERY_IMAGES + GALLERY_IMAGES
    if not (root / "images").is_dir() or sum(1 for _ in (root / "images").iterdir()) != expected:
        shutil.rmtree(root, ignore_errors=True)
        start = time.perf_counter()
        make_market_sized(root)
        print(f"generated {expected:,} images in {root} ({time.perf_counter() - start:.1f} s)")

    dataset = load_dataset(root)
    train, val = dataset.train, dataset.val
    read = len({r.path for group in (train, val, dataset.query, dataset.gallery) for r in group})
    threads = default_threads()

    def check(n: int):
        return lambda: check_run_data(dataset, train, val, threads=n)

    check(threads)()  # untimed pass: warms the page cache and the imports
    load_s = best_of(lambda: load_dataset(root), args.repeats)
    one_s = best_of(check(1), args.repeats)
    pool_s = best_of(check(threads), args.repeats)
    decode_s = best_of(lambda: [load_image(r.path) for r in (*train, *val, *dataset.query, *dataset.gallery)], 1)
    cold_one_s = cold_s = None
    if drop_page_cache(root / "images"):
        cold_one_s = best_of(check(1), 1)
        drop_page_cache(root / "images")
        cold_s = best_of(check(threads), 1)

    result = {
        "dataset": {"layout": "open-reid (streid prepare market1501)", "images": expected, "images_read": read,
                    "train_ids": TRAIN_IDS, "test_ids": TEST_IDS, "image_size": f"{SIZE[0]}x{SIZE[1]}",
                    "mean_file_bytes": round(sum(p.stat().st_size for p in (root / "images").iterdir()) / expected)},
        "load_dataset_s": round(load_s, 3),
        "check_1_thread_s": round(one_s, 3),
        f"check_{threads}_threads_s": round(pool_s, 3),
        "check_cold_cache_1_thread_s": None if cold_one_s is None else round(cold_one_s, 3),
        f"check_cold_cache_{threads}_threads_s": None if cold_s is None else round(cold_s, 3),
        "full_decode_1_thread_s": round(decode_s, 3),
        "check_vs_full_decode": round(one_s / decode_s, 3),
        "us_per_image_1_thread": round(1e6 * one_s / read, 1),
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "command": "python benchmarks/dataset_validation.py",
    }
    for key, value in result.items():
        print(f"{key:26} {value}")
    write_json(args.out, result)
    print(f"wrote {args.out}")
    if args.clean:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
