"""Turn your own images into a streid dataset (`streid prepare folder`).

Two inputs are accepted:
  - a folder with one sub-folder per identity (the sub-folder name is the identity label); the
    images directly inside each sub-folder are used;
  - a CSV file with the header `path,pid[,camid][,frame][,video]`; paths are relative to the CSV's
    folder (absolute paths work too), `pid` is any label, `camid` and `frame` are integers >= 0,
    `video` any text. `frame` and `video` may be left blank on some rows; `camid` may not.

The output is the open-reid layout (see `openreid.py`), so every loader of that layout reads it:
  - identity labels that are all non-negative integers keep their numbers as pids; other labels
    are numbered 0.. in sorted order and kept in meta.json "identity_names";
  - whole identities are split by a seeded shuffle: round(test_fraction * #ids) identities (at
    least one, and at least one left for training) form the test set, used as both query and
    gallery, as DanceReID does;
  - camera ids: when given, they are used as they are. When there are none (folder input, or a CSV
    without `camid`) every image becomes its own camera (meta.json "camera_ids": "per-image"), so
    evaluation excludes only the query image itself and every other image of the identity counts as
    a correct match. If your images come from few cameras, give camids: otherwise same-camera
    matches, which are easy, count in the scores;
  - frame and video, when given, go to `image_info.json` ({image name: {"frame", "video"}}) and
    fill Record.frame / Record.video; the dataset's videos map (video -> pids) comes from it.

Every image is decoded before it is copied (byte for byte; the file extension is kept), and the
output appears only when everything succeeded.
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...atomic import atomic_directory
from ...errors import StreidError
from .common import IMAGE_EXTENSIONS, copy_verified, image_files, refuse_dst_over_input, refuse_existing, warn
from .openreid import PER_IMAGE_CAMERAS, OpenReidBuilder, write_openreid_files

CSV_COLUMNS = ("path", "pid", "camid", "frame", "video")
MAX_CAMID = 99  # the layout names cameras with two digits; meta.json holds a slot per camera and pid


@dataclass(frozen=True)
class _Item:
    path: Path
    label: str
    camid: int | None
    frame: int | None
    video: str | None
    where: str  # for error messages: the file, or "<csv>: line N"


@dataclass(frozen=True)
class CustomSummary:
    dst: Path
    trainval_ids: int
    test_ids: int
    trainval_images: int
    test_images: int
    cameras: str  # "per-image" or the number of cameras


def convert_folder(
    src: Path, dst: Path, test_fraction: float = 0.5, seed: int = 0, name: str | None = None, overwrite: bool = False
) -> CustomSummary:
    """One sub-folder per identity under `src` -> open-reid layout at `dst`."""
    src, dst = Path(src), Path(dst)
    _check_fraction(test_fraction)
    refuse_dst_over_input(dst, src, f"--src {src}")
    refuse_existing(dst, overwrite)
    if not src.is_dir():
        raise StreidError(f"{src}: not a folder; --src needs one sub-folder of images per identity")
    items: list[_Item] = []
    empty: list[str] = []
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        names = image_files(folder)
        if not names:
            empty.append(folder.name)
        items += [_Item(folder / n, folder.name, None, None, None, str(folder / n)) for n in names]
    if empty:
        warn(f"{src}: skipped {len(empty)} identity folder(s) without images ({', '.join(empty[:3])}{', ...' if len(empty) > 3 else ''})")
    loose = image_files(src)
    if loose:
        warn(f"{src}: ignored {len(loose)} image(s) lying directly in it; put each identity's images in its own sub-folder")
    if not items:
        raise StreidError(f"{src}: no identity sub-folders with images ({', '.join(IMAGE_EXTENSIONS)}); one folder per identity is needed")
    return _write(items, src, dst, test_fraction, seed, name or dst.name, overwrite)


def convert_csv(
    csv_file: Path, dst: Path, test_fraction: float = 0.5, seed: int = 0, name: str | None = None, overwrite: bool = False
) -> CustomSummary:
    """A CSV `path,pid[,camid][,frame][,video]` -> open-reid layout at `dst`."""
    csv_file, dst = Path(csv_file), Path(dst)
    _check_fraction(test_fraction)
    refuse_dst_over_input(dst, csv_file, f"--csv {csv_file}")
    refuse_existing(dst, overwrite)
    items = _read_csv(csv_file)
    for item in items:
        refuse_dst_over_input(dst, item.path, f"{item.path} ({item.where})")
    return _write(items, csv_file, dst, test_fraction, seed, name or dst.name, overwrite)


def _check_fraction(test_fraction: float) -> None:
    if not 0 < test_fraction < 1:
        raise StreidError(f"--test-fraction {test_fraction}: must be between 0 and 1 (exclusive), e.g. 0.5")


def _read_csv(csv_file: Path) -> list[_Item]:
    try:
        with open(csv_file, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise StreidError(f"{csv_file}: missing; pass --csv with a file 'path,pid[,camid][,frame][,video]'") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StreidError(f"{csv_file}: cannot read as CSV ({exc}); save it as UTF-8 CSV") from None
    if not rows:
        raise StreidError(f"{csv_file}: empty; the first line must be the header 'path,pid[,camid][,frame][,video]'")
    header = [h.strip().lower() for h in rows[0]]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if header[:2] != ["path", "pid"] or unknown or len(set(header)) != len(header):
        raise StreidError(
            f"{csv_file}: header is {','.join(rows[0])!r}; it must be 'path,pid' followed by any of camid, frame, video"
        )
    base = csv_file.parent
    items: list[_Item] = []
    seen: dict[Path, int] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{csv_file}: line {line_no}"
        if len(row) != len(header):
            raise StreidError(f"{where} has {len(row)} fields, the header {len(header)}; fix this line")
        cells = {h: c.strip() for h, c in zip(header, row)}
        if not cells["path"] or not cells["pid"]:
            raise StreidError(f"{where}: path and pid must not be empty; fix this line")
        path = (base / cells["path"]).resolve()
        if path in seen:
            raise StreidError(f"{where}: {cells['path']!r} is already listed on line {seen[path]}; remove the duplicate")
        seen[path] = line_no
        if not path.is_file():
            raise StreidError(f"{where}: image {path} does not exist; paths are relative to the CSV's folder")
        camid = _int_cell(cells, "camid", where, required=True) if "camid" in cells else None
        if camid is not None and camid > MAX_CAMID:
            raise StreidError(f"{where}: camid {camid} is above {MAX_CAMID}; number the cameras 0 to {MAX_CAMID}")
        frame = _int_cell(cells, "frame", where, required=False) if "frame" in cells else None
        video = cells.get("video") or None
        items.append(_Item(path, cells["pid"], camid, frame, video, where))
    if not items:
        raise StreidError(f"{csv_file}: lists no images; add one line 'path,pid,...' per image")
    return items


def _int_cell(cells: dict[str, str], column: str, where: str, required: bool) -> int | None:
    text = cells[column]
    if not text and not required:
        return None
    if not text.isdigit():
        raise StreidError(f"{where}: {column} is {text!r}; it must be an integer >= 0")
    return int(text)


def _pid_numbers(labels: list[str]) -> tuple[dict[str, int], list[str] | None]:
    """Integer labels keep their numbers; any other labels are numbered in sorted order (and the
    names are returned to be kept in meta.json)."""
    unique = sorted(set(labels))
    numbers = {int(label) for label in unique if label.isdigit()}
    # Huge numbers would make meta.json's identities list (one slot per pid) huge, so they are renumbered.
    if len(numbers) == len(unique) and max(numbers) < 100_000:
        return {label: int(label) for label in unique}, None
    return {label: i for i, label in enumerate(unique)}, unique


def _write(
    items: list[_Item], source: Path, dst: Path, test_fraction: float, seed: int, name: str, overwrite: bool
) -> CustomSummary:
    from tqdm import tqdm

    pid_of, identity_names = _pid_numbers([item.label for item in items])
    pids = sorted(set(pid_of.values()))
    if len(pids) < 2:
        raise StreidError(f"{source}: only one identity found; a dataset needs at least two (one to train, one to test)")
    order = list(pids)
    random.Random(seed).shuffle(order)
    num_test = min(max(round(test_fraction * len(pids)), 1), len(pids) - 1)
    test = sorted(order[:num_test])
    trainval = sorted(order[num_test:])

    with_cameras = items[0].camid is not None
    num_cameras = max(item.camid for item in items) + 1 if with_cameras else 1
    builder = OpenReidBuilder(num_cameras)
    image_info: dict[str, dict[str, Any]] = {}
    extra_meta: dict[str, Any] = {} if with_cameras else {"camera_ids": PER_IMAGE_CAMERAS}
    if identity_names is not None:
        extra_meta["identity_names"] = identity_names
    counts = {"trainval": 0, "test": 0}
    test_set = set(test)
    ordered = sorted(items, key=lambda item: pid_of[item.label])  # stable: keeps each identity's order
    with atomic_directory(dst, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        for item in tqdm(ordered, desc=f"images -> {dst.name}", unit="img", disable=None):
            pid = pid_of[item.label]
            ext = item.path.suffix.lower().replace(".jpeg", ".jpg")
            new_name = builder.add(pid, item.camid or 0, ext)
            copy_verified(item.path, tmp / "images" / new_name)
            if item.frame is not None or item.video is not None:
                image_info[new_name] = {"frame": -1 if item.frame is None else item.frame, "video": item.video or ""}
            counts["test" if pid in test_set else "trainval"] += 1
        splits = [{"trainval": trainval, "query": test, "gallery": test}]
        write_openreid_files(tmp, name, builder, splits, extra_meta=extra_meta, image_info=image_info)
    return CustomSummary(
        dst, len(trainval), len(test), counts["trainval"], counts["test"],
        str(num_cameras) if with_cameras else PER_IMAGE_CAMERAS,
    )
