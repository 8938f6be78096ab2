"""Write tiny datasets in the REAL on-disk layouts (docs/original-system.md §6) for tests.

These writers build the files by hand, independently of streid's own converters, so tests
check streid against the formats rather than against itself. Images are tiny JPEGs (8x16 by
default) whose colour depends on the identity, so a model can in principle tell identities apart.

    make_openreid(root, ...)       open-reid layout (+ FD-GAN poses, + official_split.json)
    make_dancereid(root, ...)      DanceReID as gen_DanceReID.py writes it (flat / split-folder / -h5)
    make_market_raw(root, ...)     raw Market-1501 folders (bounding_box_train/test, query)
    make_duke_raw(root, ...)       raw DukeMTMC-reID folders
    make_custom_folder(root, ...)  one sub-folder per identity
    make_custom_csv(root, ...)     images + a CSV "path,pid[,camid][,frame][,video]"
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

IMAGE_SIZE = (8, 16)  # width, height (the 1:2 aspect of re-ID crops)


def jpeg_bytes(pid: int = 0, variant: int = 0, size: tuple[int, int] = IMAGE_SIZE) -> bytes:
    """A tiny JPEG: a colour fixed by `pid` plus a little per-`variant` noise."""
    rng = np.random.default_rng(pid * 7919 + variant)
    base = np.array([(pid * 53) % 256, (pid * 97 + 80) % 256, (pid * 31 + 160) % 256], dtype=np.int16)
    pixels = np.clip(base + rng.integers(-12, 13, size=(size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_jpeg(path: Path, pid: int = 0, variant: int = 0, size: tuple[int, int] = IMAGE_SIZE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(pid, variant, size))
    return path


def truncate_jpeg(path: Path) -> Path:
    """Cut an existing JPEG in half, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


# ---------------------------------------------------------------- open-reid (docs/original-system.md §6.1 / §6.2)

def openpose18_text(pid: int, index: int, missing: Iterable[int] = (3, 17)) -> str:
    """FD-GAN pose file text: 18 lines "row col" (integers in the pixels of make_openreid's 8x16
    images), "-1 -1" for the joints in `missing`."""
    lines = []
    for j in range(18):
        lines.append("-1 -1" if j in missing else f"{(10 + 5 * j + index) % 16} {(4 + 3 * j + pid) % 8}")
    return "\n".join(lines) + "\n"


def make_openreid(
    root: Path,
    trainval_pids: Sequence[int] = (0, 1, 2, 3, 4, 5),
    test_pids: Sequence[int] = (6, 7, 8),
    num_cameras: int = 2,
    per_camera: int = 2,
    poses: bool = False,
    official: bool = False,
    name: str = "Market1501",
    num_slots: int | None = None,
) -> Path:
    """An open-reid dataset at `root`: every pid has `per_camera` images in each of `num_cameras`
    cameras; query = gallery = `test_pids` in splits.json.

    poses=True writes FD-GAN's poses/<stem>.txt for every image. official=True writes
    official_split.json with, per test pid, the camera-0 images as queries and the other cameras'
    images as the gallery (so official query = len(test_pids) * per_camera images, official
    gallery = len(test_pids) * (num_cameras - 1) * per_camera). `num_slots` pads identities with
    empty pids (Market has 1,502 slots). Returns `root`.
    """
    pids = list(trainval_pids) + list(test_pids)
    slots = max(num_slots or 0, max(pids) + 1)
    identities: list[list[list[str]]] = [[[] for _ in range(num_cameras)] for _ in range(slots)]
    query_names, gallery_names = [], []
    for pid in pids:
        for cam in range(num_cameras):
            for i in range(per_camera):
                fname = f"{pid:08d}_{cam:02d}_{i:04d}.jpg"
                identities[pid][cam].append(fname)
                write_jpeg(root / "images" / fname, pid, cam * 100 + i)
                if poses:
                    (root / "poses").mkdir(parents=True, exist_ok=True)
                    (root / "poses" / f"{fname[:-4]}.txt").write_text(openpose18_text(pid, i))
                if pid in test_pids:
                    (query_names if cam == 0 else gallery_names).append(fname)
    _write_json(root / "meta.json", {"name": name, "shot": "multiple", "num_cameras": num_cameras, "identities": identities})
    _write_json(root / "splits.json", [{"trainval": sorted(trainval_pids), "query": sorted(test_pids), "gallery": sorted(test_pids)}])
    if official:
        _write_json(root / "official_split.json", {"query": query_names, "gallery": gallery_names})
    return root


# ---------------------------------------------------------------- DanceReID (docs/original-system.md §6.3)

DANCE_VIDEOS = (("ZhuDSdmby8k", 2), ("Js76pyw4UDk", 3), ("7jRvxkYuYvk", 2))


def coco17_pose(pid: int, frame: int) -> np.ndarray:
    """A (17, 2) x, y pose in the pixels of make_dancereid's 16x32 images, different per pid and
    frame."""
    j = np.arange(17, dtype=np.float64)
    return np.stack([20 + 5 * j + (pid % 7) + 0.25, 30 + 12 * j + (frame % 11) + 0.5], axis=1) / 8


def make_dancereid(
    root: Path,
    videos: Sequence[tuple[str, int]] = DANCE_VIDEOS,
    frames: Sequence[int] = (0, 5, 10),
    test_videos: Sequence[str] = ("7jRvxkYuYvk",),
    split_folder: bool = False,
    h5: bool = False,
    h5_keep_folders: bool = False,
    splits_name: str = "splits.json",
    video_json: bool = True,
    poses: bool = True,
) -> Path:
    """DanceReID at `root` as gen_DanceReID.py writes it.

    `videos` lists (youtube key, number of identities) in annotation order; global pids count up
    through them. Every identity appears in every frame of `frames`, so the dataset has
    sum(ids) * len(frames) images. trainval = pids of the videos not in `test_videos`; query =
    gallery = pids of `test_videos`. split_folder=True puts video i under `images/{i:03d}_<key>/`
    with the prefix in meta names. h5=True writes DanceReID.h5 exactly as the release does
    (`dataset/images/NNNN_FFFFFF` one-element variable-length uint8 JPEG bytes, `dataset/poses/
    NNNN_FFFFFF` (17, 2) floats, keys without ".jpg" or folder prefix) and, unless h5_keep_folders,
    no images/ or poses/ folders. `splits_name="split.json"` mimics the release's file name.
    Returns `root`.
    """
    identities: list[list[str]] = []
    video_pids: dict[str, list[int]] = {}
    entries: list[tuple[str, str, int, int]] = []  # (meta name, bare stem, pid, frame)
    for v, (key, num_ids) in enumerate(videos):
        prefix = f"{v:03d}_{key}/" if split_folder else ""
        video_pids[key] = []
        for _ in range(num_ids):
            pid = len(identities)
            video_pids[key].append(pid)
            names = []
            for frame in frames:
                stem = f"{pid:04d}_{frame:06d}"
                names.append(f"{prefix}{stem}.jpg")
                entries.append((names[-1], stem, pid, frame))
            identities.append(names)

    write_folders = not h5 or h5_keep_folders
    for meta_name, _, pid, frame in entries if write_folders else ():
        write_jpeg(root / "images" / meta_name, pid, frame, size=(16, 32))
        if poses:
            pose_file = root / "poses" / f"{meta_name[:-4]}.txt"
            pose_file.parent.mkdir(parents=True, exist_ok=True)
            np.savetxt(pose_file, coco17_pose(pid, frame), fmt="%s")  # as util.py writes them
    if h5:
        import h5py

        root.mkdir(parents=True, exist_ok=True)
        vlen = h5py.special_dtype(vlen=np.uint8)
        with h5py.File(root / "DanceReID.h5", "w") as handle:
            for _, stem, pid, frame in entries:
                data = handle.create_dataset("dataset/images/" + stem, shape=(1,), chunks=True, dtype=vlen)
                data[0] = np.frombuffer(jpeg_bytes(pid, frame, size=(16, 32)), dtype=np.uint8)
                if poses:
                    handle.create_dataset("dataset/poses/" + stem, data=coco17_pose(pid, frame))

    test_pids = sorted(p for key in test_videos for p in video_pids[key])
    trainval = sorted(p for key, ps in video_pids.items() if key not in test_videos for p in ps)
    _write_json(root / "meta.json", {
        "identities": identities, "shot": "single", "name": "IdolTrack-Reid",
        "n_detects": [len(video_pids[k]) * len(frames) for k, _ in videos], "total_detects": len(entries),
    })
    _write_json(root / splits_name, [{"trainval": trainval, "query": test_pids, "gallery": test_pids}])
    if video_json:
        _write_json(root / "video.json", video_pids)
    return root


# ---------------------------------------------------------------- raw Market-1501 / DukeMTMC-reID

def market_name(pid: int, cam: int, frame: int, seq: int = 1, box: int = 1) -> str:
    """Raw Market-1501 name PPPP_cCsS_FFFFFF_BB.jpg (pid -1 is written "-1", as in the release)."""
    head = "-1" if pid == -1 else f"{pid:04d}"
    return f"{head}_c{cam}s{seq}_{frame:06d}_{box:02d}.jpg"


def duke_name(pid: int, cam: int, frame: int) -> str:
    """Raw DukeMTMC-reID name PPPP_cC_fFFFFFFF.jpg."""
    return f"{pid:04d}_c{cam}_f{frame:07d}.jpg"


def _make_raw(root: Path, subsets: dict[str, Sequence[tuple[int, int]]], namer) -> Path:
    frame = 0
    for subset, items in subsets.items():
        (root / subset).mkdir(parents=True, exist_ok=True)
        for pid, cam in items:
            frame += 1
            write_jpeg(root / subset / namer(pid, cam, frame), max(pid, 0), frame)
    return root


def make_market_raw(
    root: Path,
    train: Sequence[tuple[int, int]],
    test: Sequence[tuple[int, int]],
    query: Sequence[tuple[int, int]],
) -> Path:
    """Raw Market-1501 at `root` (bounding_box_train/, bounding_box_test/, query/): one image per
    (pid, camera 1-6) pair listed; frames count up so names are unique. Use pid -1 for junk and 0
    for distractors. Returns `root`."""
    return _make_raw(root, {"bounding_box_train": train, "bounding_box_test": test, "query": query}, market_name)


def make_duke_raw(
    root: Path,
    train: Sequence[tuple[int, int]],
    test: Sequence[tuple[int, int]],
    query: Sequence[tuple[int, int]],
) -> Path:
    """Raw DukeMTMC-reID at `root`, one image per (pid, camera 1-8) pair listed. Returns `root`."""
    return _make_raw(root, {"bounding_box_train": train, "bounding_box_test": test, "query": query}, duke_name)


# ---------------------------------------------------------------- custom data

def make_custom_folder(root: Path, identities: dict[str, int]) -> Path:
    """One sub-folder per identity label, holding that many JPEGs. Returns `root`."""
    for i, (label, count) in enumerate(sorted(identities.items())):
        for k in range(count):
            write_jpeg(root / label / f"img_{k:03d}.jpg", i, k)
    return root


def make_custom_csv(
    root: Path,
    rows: Sequence[dict[str, object]],
    columns: Sequence[str] = ("path", "pid"),
    csv_name: str = "labels.csv",
) -> Path:
    """Write an image for each row's "path" (relative to `root`) and a CSV with `columns` at
    `root/csv_name`; rows are dicts keyed by column name. Returns the CSV path."""
    for k, row in enumerate(rows):
        target = root / str(row["path"])
        if not target.exists():
            write_jpeg(target, sum(map(ord, str(row["pid"]))), k)
    csv_path = root / csv_name
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return csv_path
