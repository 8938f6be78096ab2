"""Check, before a run's first epoch, everything the run will read, so that bad data stops the run
in seconds instead of ending it mid-epoch (or after the last epoch, for a bad test image).

What is checked (`check_run_data`):
  images  every image of train, val, query and gallery: it can be read, is not empty, has a
          readable header with a sane size, and is not truncated. Truncation is found from the
          end of the file: a JPEG ends with the end-of-image marker FFD9, a PNG with its IEND
          chunk. A file without that marker (or of another format) is decoded in full to decide,
          so trailing bytes after the marker never cause a false alarm. "<file.h5>::key" entries
          must hold encoded image bytes (not a decoded array) and are checked the same way.
  poses   every pose the run reads (ST-ReIDNet's training images) parses to the convention's
          number of joints (17 for DanceReID's COCO-17, 18 for FD-GAN's OpenPose-18) with finite
          numbers, and a pose that gives joints has at least one inside its image: coordinates
          are pixels of the image they belong to, so poses written for another size (images
          resized after the pose files were made) would train G on blank pose maps.
  split   no identity is in both trainval and the test set (the test numbers would be measured on
          trained identities); query and gallery list no image twice (a duplicated query
          identity changes R1); every query identity has a gallery image of itself from another
          camera (same-pid same-camera images are junk under every protocol, docs/original-system.md §7), for the
          test set and for the held-out validation identities; protocols that need query =
          gallery (DanceReID) get it.

Every problem is collected; the StreidError names the first one (the split's first, then images
in the order train, val, query, gallery, then poses) and counts the others.

Cost (benchmarks/dataset_validation.py, Market-1501's size: 32,668 JPEGs of 128x64): about 1 s
with the files in the page cache (33-42 us an image, a tenth of a full decode), 3-7 s cold, on a
shared 2-core machine. Files are read by a thread pool (file reads release the GIL, so cold files
on a slow or network disk are read in parallel; the header parsing itself holds the GIL).
"""
from __future__ import annotations

import io
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import StreidError
from .images import DECODE_ERRORS, H5_SEPARATOR, decode_error_text, image_size, read_h5_array, read_image_bytes
from .keypoints import KeypointConvention, convention, load_keypoints
from .pose import canvas_pixels
from .records import LoadedDataset, Record

SKIP_HINT = "or pass --skip-validation"
MIN_SIDE = 4  # pixels; smaller is no person crop (and breaks the random crop)
_CHUNK = 256  # files per thread-pool task
TAIL_BYTES = 64  # where the end marker is looked for; trailing padding beyond it means a full decode
_END_MARKERS = {"JPEG": b"\xff\xd9", "MPO": b"\xff\xd9", "PNG": b"IEND"}
_KIND_PLURAL = {"split": "split problems", "image": "bad images", "pose": "bad pose files"}
_KIND_SINGULAR = {"split": "split problem", "image": "bad image", "pose": "bad pose file"}


@dataclass(frozen=True)
class DataCheck:
    images: int  # distinct images checked
    poses: int  # pose files (or HDF5 pose entries) parsed


def default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


# ------------------------------------------------------------------------------ images


def _h5_image_bytes(path: str) -> tuple[bytes | None, str | None]:
    """The encoded bytes of an HDF5 image entry, or a problem with its shape."""
    entry = np.asarray(read_h5_array(path))
    if entry.dtype == object:  # the release: a 1-element variable-length uint8 dataset
        if entry.size != 1:
            return None, f"{path}: holds {entry.size} variable-length entries, expected one encoded image; rebuild the HDF5 file"
        entry = np.asarray(entry.reshape(-1)[0])
    if entry.ndim != 1 or entry.dtype not in (np.uint8, np.int8):
        return None, (f"{path}: holds a {'x'.join(map(str, entry.shape))} {entry.dtype} array, expected encoded "
                      "JPEG/PNG bytes (a 1-D uint8 entry); rebuild the HDF5 file")
    return entry.astype(np.uint8, copy=False).tobytes(), None


def image_problem(path: str) -> str | None:
    """What is wrong with the image at `path` (a file or "<file.h5>::key"), or None if nothing.

    Reads the file once; decodes it only when the end marker is not where it should be or the
    format has none."""
    try:
        if H5_SEPARATOR in path:
            data, problem = _h5_image_bytes(path)
            if problem:
                return problem
        else:
            data = read_image_bytes(path)
    except StreidError as exc:
        return str(exc)
    if not data:
        return f"{path}: empty image file (0 bytes); replace or delete it"
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, (width, height) = image.format, image.size
    except DECODE_ERRORS as exc:
        return f"{path}: not a readable image ({decode_error_text(exc)}); replace or delete it"
    if width < MIN_SIDE or height < MIN_SIDE or width * height > (Image.MAX_IMAGE_PIXELS or float("inf")):
        return f"{path}: {width}x{height} pixels is no person crop (need sides >= {MIN_SIDE} px); replace or delete it"
    marker = _END_MARKERS.get(fmt)
    if marker is not None and marker in data[-TAIL_BYTES:]:
        return None
    try:  # no end marker where it belongs, or a format without one: a full decode decides
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except DECODE_ERRORS as exc:
        return f"{path}: truncated or corrupt {fmt} ({decode_error_text(exc)}); replace or delete it"
    return None


# ------------------------------------------------------------------------------ poses


def pose_problem(pose_path: str, conv: KeypointConvention, image_path: str | None = None,
                 size: tuple[int, int] | None = None) -> str | None:
    """What is wrong with a pose file or HDF5 pose entry, or None if nothing. With `image_path`,
    also whether the joints it gives miss that image entirely; its (width, height) is `size`
    when the caller has decoded it, else read from the header."""
    try:
        keypoints = load_keypoints(pose_path, conv)
        # text files with NaN/inf are refused by the parser; HDF5 arrays (where NaN would pass as
        # a missing joint) are checked here
        if H5_SEPARATOR in pose_path and not np.isfinite(np.asarray(read_h5_array(pose_path), dtype=np.float64)).all():
            return f"{pose_path}: holds a non-finite number (missing joints are negative); rebuild the HDF5 file"
    except StreidError as exc:
        return str(exc)
    if image_path and size is None:
        size = image_size(image_path)
    given = np.isfinite(keypoints).all(axis=1)
    if size is not None and given.any() and not canvas_pixels(keypoints, size[1], size[0])[2].any():
        return (f"{pose_path}: none of its {int(given.sum())} joints lies inside its {size[0]}x{size[1]} image "
                f"{image_path}; pose coordinates are pixels of that image, so rescale the pose files to the "
                "images (or the images back to the size the poses were made for)")
    return None


# ------------------------------------------------------------------------------ split


def _pid_list(pids: Iterable[int], limit: int = 8) -> str:
    pids = sorted(pids)
    shown = ", ".join(map(str, pids[:limit]))
    return shown + (f", ... {len(pids) - limit} more" if len(pids) > limit else "")


def _has_match(query_cams: set[int], gallery_cams: set[int]) -> bool:
    """A query image of camera c has a positive in gallery images of another camera."""
    return len(gallery_cams) > 1 or bool(gallery_cams and query_cams - gallery_cams)


def _unmatched(query: Sequence[Record], gallery: Sequence[Record]) -> list[int]:
    q_cams: dict[int, set[int]] = defaultdict(set)
    g_cams: dict[int, set[int]] = defaultdict(set)
    for r in query:
        q_cams[r.pid].add(r.camid)
    for r in gallery:
        g_cams[r.pid].add(r.camid)
    return [pid for pid in sorted(q_cams) if not _has_match(q_cams[pid], g_cams.get(pid, set()))]


def check_train_identities(dataset: LoadedDataset, train: Sequence[Record], combine_flag: str | None) -> None:
    """Refuse a training set of fewer than two identities, naming the split (the triplet and pair
    samplers need a negative; they would refuse it too, but without naming the file).
    `combine_flag`: the flag that also trains on the validation identities, None when it is on."""
    splits = dataset.split_sources.get("trainval", dataset.root / "splits.json")
    if not train:
        raise StreidError(f"{splits}: split {dataset.split} has no training images; list identities under trainval")
    pids = {r.pid for r in train}
    if len(pids) < 2:
        hint = f" (or pass {combine_flag} to train on the validation identities too)" \
            if combine_flag and {r.pid for r in dataset.val} - pids else ""
        raise StreidError(f"{splits}: split {dataset.split} trains on 1 identity (pid {min(pids)}), but triplets and "
                          f"pairs need at least two; list more identities under trainval{hint}")


def check_scorable(dataset: LoadedDataset) -> None:
    """Refuse, before any image is embedded, a test set where no query can be scored: no query
    identity has a gallery image of itself from another camera (e.g. one image per test
    identity, or a single camera)."""
    query_pids = {r.pid for r in dataset.query}
    if query_pids and len(_unmatched(dataset.query, dataset.gallery)) == len(query_pids):
        test_file = dataset.split_sources.get("query", dataset.root / "splits.json")
        raise StreidError(f"{test_file}: split {dataset.split} has no query identity with a gallery image of itself "
                          "from another camera (same-pid same-camera images are junk), so no query can be scored; "
                          "give the test identities images from two cameras (or at least two images each when "
                          "every image is its own camera)")


def split_problems(dataset: LoadedDataset, val: Sequence[Record] = (), protocol: str | None = None,
                   allow_overlap: bool = False) -> list[str]:
    """Problems of the split's semantics (see the module's docstring). `val` is the held-out
    validation set the run evaluates on (query = gallery = val), empty when it has none.
    allow_overlap: test identities in trainval are accepted (the released DanceReID split has
    ids 35-39 in both; --release-compat reproduces the published numbers on it)."""
    from .protocols import resolve_protocol

    sources = dataset.split_sources
    splits = str(sources.get("trainval", dataset.root / "splits.json"))
    test_file = str(sources.get("query", splits))
    where = f"split {dataset.split}"
    problems = []
    test_pids = {r.pid for r in dataset.query} | {r.pid for r in dataset.gallery}
    both = {r.pid for r in dataset.trainval} & test_pids
    if both and not allow_overlap:
        problems.append(f"{splits}: {where} puts {len(both)} test identit{'y' if len(both) == 1 else 'ies'} in trainval "
                        f"too (pid {_pid_list(both)}), so the test numbers would be measured on trained identities; "
                        "remove them from trainval (or pass --release-compat to reproduce the released DanceReID split, "
                        "which does this)")
    for role, records in (("query", dataset.query), ("gallery", dataset.gallery)):
        counts = Counter(r.path for r in records)
        twice = [path for path, n in counts.items() if n > 1]
        if twice:
            pids = {r.pid for r in records if r.path in set(twice)}
            problems.append(f"{test_file}: {where} lists {len(twice)} {role} image(s) more than once (pid "
                            f"{_pid_list(pids)}, e.g. {twice[0]}), which changes R1 and mAP; list each {role} "
                            "identity or image once")
    proto = resolve_protocol(protocol or dataset.protocol)
    if proto.same_sets and [r.path for r in dataset.query] != [r.path for r in dataset.gallery]:
        problems.append(f"{test_file}: {where} has a query set different from its gallery set, but protocol "
                        f"{proto.name!r} evaluates query = gallery; list the same identities as query and gallery")
    lonely = _unmatched(dataset.query, dataset.gallery)
    if lonely:
        problems.append(f"{test_file}: {where} query pid {_pid_list(lonely)} ha{'s' if len(lonely) == 1 else 've'} no "
                        "gallery image from another camera (same-pid same-camera images are junk), so "
                        f"{'it counts' if len(lonely) == 1 else 'they count'} nowhere; give each query identity "
                        "a gallery image from another camera, or drop it from the query set")
    lonely_val = _unmatched(val, val)
    if lonely_val:
        problems.append(f"{splits}: {where} validation pid {_pid_list(lonely_val)} (the last trainval identities) "
                        f"ha{'s' if len(lonely_val) == 1 else 've'} images from one camera only, so validation "
                        "cannot score them; give them images from two cameras or reorder trainval")
    return problems


# ------------------------------------------------------------------------------ the whole check


def _scan(items: Sequence, check: Callable, threads: int, progress: bool, desc: str) -> list[str]:
    """check(item) for every item on `threads` threads, in chunks (a future per file would cost
    as much as the check); the problems found, in item order."""
    from tqdm import tqdm

    chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]

    def run(chunk: Sequence) -> list[str]:
        return [p for p in map(check, chunk) if p]

    found: list[str] = []
    with tqdm(total=len(items), desc=desc, unit="file", disable=None if progress else True, leave=False) as bar:
        if threads == 1:
            results = map(run, chunks)
        else:
            pool = ThreadPoolExecutor(max_workers=threads)
            results = pool.map(run, chunks)
        try:
            for chunk, problems in zip(chunks, results):
                found += problems
                bar.update(len(chunk))
        finally:
            if threads != 1:
                pool.shutdown(cancel_futures=True)
    return found


def run_data_problems(
    dataset: LoadedDataset,
    train: Sequence[Record],
    val: Sequence[Record] = (),
    with_poses: bool = False,
    threads: int | None = None,
    progress: bool = False,
    allow_split_overlap: bool = False,
) -> tuple[dict[str, list[str]], DataCheck]:
    """Every problem of the run's data, by kind ("split", "image", "pose"), in report order."""
    threads = threads or default_threads()
    problems: dict[str, list[str]] = {"split": split_problems(dataset, val, allow_overlap=allow_split_overlap)}
    paths = list(dict.fromkeys(r.path for group in (train, val, dataset.query, dataset.gallery) for r in group))
    problems["image"] = _scan(paths, image_problem, threads, progress, f"checking {dataset.name} images")
    poses: list[str] = []
    if with_poses and dataset.keypoints != "none":
        conv = convention(dataset.keypoints)
        image_of = {r.pose_path: r.path for r in train if r.pose_path}
        poses = list(image_of)
        problems["pose"] = _scan(poses, lambda p: pose_problem(p, conv, image_of[p]), threads, progress,
                                 f"checking {dataset.name} poses")
    return problems, DataCheck(images=len(paths), poses=len(poses))


def summarize_problems(problems: dict[str, list[str]]) -> str | None:
    """One line: the first problem and how many more of each kind, or None when there are none."""
    found = [(kind, text) for kind, texts in problems.items() for text in texts]
    if not found:
        return None
    first_kind, first = found[0]
    left = Counter(kind for kind, _ in found[1:])
    counts = [f"{n} more {_KIND_PLURAL[k] if n > 1 else _KIND_SINGULAR[k]}" for k, n in left.items()]
    more = f" (and {', '.join(counts)})" if counts else ""
    return f"{first}{more}; {SKIP_HINT} to run anyway"


def check_run_data(
    dataset: LoadedDataset,
    train: Sequence[Record],
    val: Sequence[Record] = (),
    with_poses: bool = False,
    threads: int | None = None,
    progress: bool = False,
    allow_split_overlap: bool = False,
) -> DataCheck:
    """Check the data a run will read before it starts (see the module's docstring): `train`
    the images it trains on, `val` the held-out validation images it evaluates on, the dataset's
    query and gallery for the test set; `with_poses` when the run reads the training images'
    poses. Raises one StreidError naming the first problem and counting the others."""
    problems, result = run_data_problems(dataset, train, val, with_poses, threads, progress, allow_split_overlap)
    line = summarize_problems(problems)
    if line:
        raise StreidError(line)
    return result
