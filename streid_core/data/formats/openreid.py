"""The open-reid layout (docs/original-system.md §6.1), FD-GAN's pose files on top of it
(§6.2), and the few files streid adds to it.

    <root>/images/{pid:08d}_{cam:02d}_{idx:04d}.jpg   cameras 0-based, idx counts per (pid, cam)
    <root>/meta.json     {"name", "shot": "multiple", "num_cameras", "identities": [pid][cam] -> [names]}
    <root>/splits.json   [{"trainval": [pids], "query": [pids], "gallery": [pids]}, ...]
    <root>/poses/<stem>.txt   optional, FD-GAN: 18 OpenPose lines "row col", "-1 -1" when missing

Files streid adds (all optional; other open-reid loaders ignore them):

    <root>/official_split.json  {"query": [image names], "gallery": [image names]}: the official
                                image-level lists, written by `streid prepare market1501|dukemtmc`
    <root>/image_info.json      {image name: {"frame": int, "video": str}} (`streid prepare folder`)
    meta.json "camera_ids": "per-image"   the source had no camera ids; every image is then its
                                own camera, so evaluation excludes only the query image itself
    meta.json "identity_names": [label per pid]   the user's identity labels (`streid prepare folder`)
    meta.json "keypoints": "coco17" | "openpose18"   overrides the pose convention (default: FD-GAN's)
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ...atomic import write_json
from ...errors import StreidError
from ..records import Record
from .common import as_int, files_in, read_json, read_splits, require_dir
from .index import DatasetIndex

META_FILE = "meta.json"
OFFICIAL_SPLIT_FILE = "official_split.json"
IMAGE_INFO_FILE = "image_info.json"
PER_IMAGE_CAMERAS = "per-image"
DEFAULT_NUM_VAL = 100  # open-reid's value for Market-1501, DukeMTMC-reID and CUHK03

_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)\.[A-Za-z]+$")
_FIX_LAYOUT = "regenerate the dataset with `streid prepare`"


def openreid_name(pid: int, cam: int, index: int, ext: str = ".jpg") -> str:
    return f"{pid:08d}_{cam:02d}_{index:04d}{ext}"


class OpenReidBuilder:
    """Collects renamed images into the identities[pid][cam] table while a converter runs."""

    def __init__(self, num_cameras: int, num_slots: int = 0) -> None:
        self.num_cameras = num_cameras
        self.identities: list[list[list[str]]] = [[[] for _ in range(num_cameras)] for _ in range(num_slots)]

    def add(self, pid: int, cam: int, ext: str = ".jpg") -> str:
        """Register one image of `pid` seen by camera `cam` (0-based) and return its new name."""
        if not 0 <= cam < self.num_cameras:
            raise ValueError(f"camera {cam} outside 0..{self.num_cameras - 1}")
        while len(self.identities) <= pid:
            self.identities.append([[] for _ in range(self.num_cameras)])
        slot = self.identities[pid][cam]
        name = openreid_name(pid, cam, len(slot), ext)
        slot.append(name)
        return name


def write_openreid_files(
    folder: Path,
    name: str,
    builder: OpenReidBuilder,
    splits: list[dict[str, list[int]]],
    official: dict[str, list[str]] | None = None,
    extra_meta: dict[str, Any] | None = None,
    image_info: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Write meta.json, splits.json and the optional streid files into `folder` (images are
    copied by the converter itself)."""
    meta = {"name": name, "shot": "multiple", "num_cameras": builder.num_cameras, "identities": builder.identities}
    meta.update(extra_meta or {})
    write_json(folder / META_FILE, meta)
    write_json(folder / "splits.json", splits)
    if official is not None:
        write_json(folder / OFFICIAL_SPLIT_FILE, official)
    if image_info:
        write_json(folder / IMAGE_INFO_FILE, image_info)


def is_openreid_meta(meta: Any) -> bool:
    """open-reid nests names per camera ([pid][cam] -> names); DanceReID lists them flat."""
    identities = meta.get("identities") if isinstance(meta, dict) else None
    if not isinstance(identities, list):
        return False
    for cams in identities:
        if isinstance(cams, list) and cams:
            return isinstance(cams[0], list)
    return True  # no images at all: structurally open-reid; the reader reports the empty dataset


def read_openreid(root: Path, meta: Any = None) -> DatasetIndex:
    """Read the dataset at `root`; `meta` is its already parsed meta.json, if the caller has it."""
    root = root.resolve()
    images_dir = require_dir(root / "images", _FIX_LAYOUT)
    meta_path = root / META_FILE
    if meta is None:
        meta = read_json(meta_path, _FIX_LAYOUT)
    identities = meta.get("identities") if isinstance(meta, dict) else None
    if not isinstance(identities, list):
        raise StreidError(f"{meta_path}: needs an \"identities\" list ([pid][camera] -> image names); {_FIX_LAYOUT}")
    splits, splits_path = read_splits(root)

    on_disk = files_in(images_dir)
    poses_dir = root / "poses"
    poses = files_in(poses_dir) if poses_dir.is_dir() else set()
    images_prefix, poses_prefix = f"{images_dir}/", f"{poses_dir}/"  # strings: pathlib is slow at 30k images
    per_image_cameras = meta.get("camera_ids") == PER_IMAGE_CAMERAS
    info = _read_image_info(root)

    by_pid: dict[int, list[Record]] = {}
    by_name: dict[str, Record] = {}
    missing: list[str] = []
    for pid, cams in enumerate(identities):
        if not isinstance(cams, list) or not all(isinstance(c, list) for c in cams):
            raise StreidError(f"{meta_path}: identities[{pid}] must be a list of per-camera name lists; {_FIX_LAYOUT}")
        for cam, names in enumerate(cams):
            for name in names:
                _check_name(meta_path, name, pid, cam)
                if name in by_name:
                    raise StreidError(f"{meta_path}: image {name!r} is listed twice; remove the duplicate")
                if name not in on_disk:
                    missing.append(name)
                stem = name.rsplit(".", 1)[0]
                extra = info.get(name, {})
                record = Record(
                    path=images_prefix + name,
                    pid=pid,
                    camid=len(by_name) if per_image_cameras else cam,
                    frame=extra.get("frame", -1),
                    video=extra.get("video", ""),
                    pose_path=f"{poses_prefix}{stem}.txt" if f"{stem}.txt" in poses else None,
                )
                by_name[name] = record
                by_pid.setdefault(pid, []).append(record)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise StreidError(f"{images_dir / missing[0]}: listed in meta.json but missing{more}; restore the images or {_FIX_LAYOUT}")
    unknown_info = sorted(set(info) - set(by_name))
    if unknown_info:
        raise StreidError(f"{root / IMAGE_INFO_FILE}: names {unknown_info[0]!r}, which meta.json does not list; fix or delete it")

    has_poses = any(r.pose_path for r in by_name.values())
    keypoints = meta.get("keypoints") or ("openpose18" if has_poses else "none")
    if keypoints not in ("coco17", "openpose18", "none"):
        raise StreidError(f"{meta_path}: \"keypoints\" is {keypoints!r}; use \"coco17\" or \"openpose18\"")
    meta_name = str(meta.get("name", ""))
    is_cuhk03 = "cuhk03" in (root.name.lower(), meta_name.lower())
    videos: dict[str, set[int]] = {}
    for r in by_name.values():
        if r.video:
            videos.setdefault(r.video, set()).add(r.pid)
    num_cameras = meta.get("num_cameras", "?")
    return DatasetIndex(
        layout="open-reid" + (" + FD-GAN poses" if has_poses else ""),
        name=root.name,
        root=root,
        keypoints=keypoints,
        protocol="cuhk03" if is_cuhk03 else "market1501",
        default_num_val=DEFAULT_NUM_VAL,
        identities=by_pid,
        splits=splits,
        splits_file=splits_path,
        camera_note=(
            "none given: every image is its own camera (evaluation excludes only the query image)"
            if per_image_cameras
            else f"{num_cameras} cameras (0-based)"
        ),
        videos={v: sorted(p) for v, p in sorted(videos.items())},
        official=_read_official(root, by_name),
    )


def _check_name(meta_path: Path, name: Any, pid: int, cam: int) -> None:
    match = _NAME.match(name) if isinstance(name, str) else None
    if match is None:
        raise StreidError(
            f"{meta_path}: image name {name!r} (pid {pid}, camera {cam}) is not "
            f"'{{pid:08d}}_{{cam:02d}}_{{idx:04d}}.jpg'; {_FIX_LAYOUT}"
        )
    name_pid, name_cam = int(match.group(1)), int(match.group(2))
    if (name_pid, name_cam) != (pid, cam):
        raise StreidError(
            f"{meta_path}: {name!r} is listed under pid {pid} camera {cam} but its name says pid "
            f"{name_pid} camera {name_cam}; fix meta.json or {_FIX_LAYOUT}"
        )


def _read_image_info(root: Path) -> dict[str, dict[str, Any]]:
    path = root / IMAGE_INFO_FILE
    if not path.is_file():
        return {}
    info = read_json(path, "it must map image names to {\"frame\": int, \"video\": str}")
    if not isinstance(info, dict):
        raise StreidError(f"{path}: expected an object mapping image names to {{\"frame\", \"video\"}}; fix it")
    for name, entry in info.items():
        frame = entry.get("frame", -1) if isinstance(entry, dict) else None
        video = entry.get("video", "") if isinstance(entry, dict) else None
        if as_int(frame) is None or not isinstance(video, str):
            raise StreidError(f"{path}: entry {name!r} needs an integer \"frame\" and a string \"video\"; fix it")
    return info


def _read_official(root: Path, by_name: dict[str, Record]) -> dict[str, list[Record]] | None:
    path = root / OFFICIAL_SPLIT_FILE
    if not path.is_file():
        return None
    fix = "it must hold {\"query\": [image names], \"gallery\": [image names]}"
    official = read_json(path, fix)
    if not isinstance(official, dict):
        raise StreidError(f"{path}: {fix}")
    out: dict[str, list[Record]] = {}
    for key in ("query", "gallery"):
        names = official.get(key)
        if not isinstance(names, list):
            raise StreidError(f"{path}: needs {key!r} as a list of image names; {fix}")
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise StreidError(f"{path}: {key} image {unknown[0]!r} is not in meta.json; regenerate the dataset")
        if len(set(names)) != len(names):
            raise StreidError(f"{path}: {key} lists an image twice; regenerate the dataset")
        out[key] = [by_name[n] for n in names]
    return out
