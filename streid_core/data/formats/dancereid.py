"""The DanceReID layout written by the dataset's `gen_DanceReID.py` (docs/original-system.md
§6.3), in its three variants: flat, `--split-folder` and `-h5`.

    <root>/images/NNNN_FFFFFF.jpg    NNNN = global pid, FFFFFF = frame index in its video
    <root>/poses/NNNN_FFFFFF.txt     17 COCO keypoints, one "x y" line each
    <root>/meta.json                 {"identities": [pid] -> [image names] (flat, no camera level),
                                      "shot": "single", "name", "n_detects", "total_detects"}
    <root>/splits.json               [{"trainval", "query", "gallery"}]; the release's name
                                     `split.json` is accepted with a warning
    <root>/video.json                {youtube key: [global pids]}; optional (warned when missing)

`--split-folder` puts each video into `images/AAA_<key>/` and `poses/AAA_<key>/` (AAA = the video's
index in the annotation) and meta names carry that prefix ("000_ZhuDSdmby8k/0000_000005.jpg").
`-h5` adds `DanceReID.h5` with `dataset/images/<name>` (JPEG bytes), `dataset/poses/<name>` ((17, 2)
x, y) and `dataset/skeleton/<name>`; when that file is present, records point into it
("<file.h5>::<key>"). The release keys entries by the bare name without ".jpg" or folder prefix;
keys with either are found too.

As in the original loader, the frame index fills the camera slot (Record.camid = frame), so
evaluation excludes only the query image itself from mAP and same-frame images from CMC.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ...errors import StreidError
from ..images import h5_path
from ..records import Record
from .common import as_int, files_in, read_json, read_splits, require_dir, warn
from .index import DatasetIndex

H5_FILE = "DanceReID.h5"
VIDEO_FILE = "video.json"
DEFAULT_NUM_VAL = 10  # ST-ReIDNet's DanceReID loader

_NAME = re.compile(r"^(?:(?P<folder>[^/]+)/)?(?P<pid>\d+)_(?P<frame>\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
_FOLDER = re.compile(r"^\d+_(?P<key>.+)$")
_FIX = "regenerate the dataset with gen_DanceReID.py (or `streid synth`)"


def is_dancereid_meta(meta: Any) -> bool:
    """DanceReID lists each identity's names flat (open-reid nests them per camera)."""
    identities = meta.get("identities") if isinstance(meta, dict) else None
    if not isinstance(identities, list):
        return False
    for names in identities:
        if isinstance(names, list) and names:
            return isinstance(names[0], str)
    return meta.get("shot") == "single"


def read_dancereid(root: Path, meta: Any = None) -> DatasetIndex:
    """Read the dataset at `root`; `meta` is its already parsed meta.json, if the caller has it."""
    root = root.resolve()
    meta_path = root / "meta.json"
    if meta is None:
        meta = read_json(meta_path, _FIX)
    identities = meta.get("identities") if isinstance(meta, dict) else None
    if not isinstance(identities, list) or not all(isinstance(n, list) for n in identities):
        raise StreidError(f"{meta_path}: needs an \"identities\" list ([pid] -> image names); {_FIX}")
    splits, splits_path = read_splits(root)
    videos = _read_videos(root, len(identities))
    video_of_pid = {pid: key for key, pids in videos.items() for pid in pids}

    h5_file = root / H5_FILE
    source = _H5Source(h5_file) if h5_file.is_file() else _FolderSource(root)
    try:
        by_pid, seen = _read_records(meta_path, identities, source, video_of_pid)
    finally:
        source.close()
    has_poses = any(r.pose_path for rs in by_pid.values() for r in rs)
    keypoints = meta.get("keypoints") or ("coco17" if has_poses else "none")
    split_folder = any("/" in n for n in seen)
    variant = f" (-h5: {H5_FILE})" if h5_file.is_file() else (" (split-folder)" if split_folder else "")
    return DatasetIndex(
        layout="DanceReID" + variant,
        name=root.name,
        root=root,
        keypoints=keypoints,
        protocol="dancereid",
        default_num_val=DEFAULT_NUM_VAL,
        identities=by_pid,
        splits=splits,
        splits_file=splits_path,
        camera_note="the frame index (DanceReID): mAP excludes only the query image, CMC same-frame images",
        videos=videos,
    )


def _read_records(
    meta_path: Path, identities: list[Any], source: _FolderSource | _H5Source, video_of_pid: dict[int, str]
) -> tuple[dict[int, list[Record]], set[str]]:
    """Records per pid, checking every name and that its image exists; also the set of names."""
    by_pid: dict[int, list[Record]] = {}
    seen: set[str] = set()
    missing: list[str] = []
    for pid, names in enumerate(identities):
        for name in names:
            match = _NAME.match(name) if isinstance(name, str) else None
            if match is None:
                raise StreidError(
                    f"{meta_path}: image name {name!r} (pid {pid}) is not "
                    f"'[AAA_<video>/]NNNN_FFFFFF.jpg' (pid, frame index); {_FIX}"
                )
            if int(match["pid"]) != pid:
                raise StreidError(
                    f"{meta_path}: {name!r} is listed under pid {pid} but its name says pid "
                    f"{int(match['pid'])}; fix meta.json or {_FIX}"
                )
            if name in seen:
                raise StreidError(f"{meta_path}: image {name!r} is listed twice; remove the duplicate")
            seen.add(name)
            image = source.image(name)
            if image is None:
                missing.append(name)
                continue
            folder = _FOLDER.match(match["folder"] or "")
            frame = int(match["frame"])
            by_pid.setdefault(pid, []).append(
                Record(
                    path=image,
                    pid=pid,
                    camid=frame,
                    frame=frame,
                    video=video_of_pid.get(pid, folder["key"] if folder else ""),
                    pose_path=source.pose(name),
                )
            )
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise StreidError(f"{source.describe(missing[0])}: listed in meta.json but missing{more}; restore it or {_FIX}")
    return by_pid, seen


def _read_videos(root: Path, num_pids: int) -> dict[str, list[int]]:
    path = root / VIDEO_FILE
    if not path.is_file():
        warn(f"{path}: missing; videos left empty, so sparse-temporal sampling is off (write {{video: [pids]}} to enable it)")
        return {}
    videos = read_json(path, "it must map video keys to lists of pids")
    if not isinstance(videos, dict):
        raise StreidError(f"{path}: expected an object mapping video keys to lists of pids; fix it")
    owner: dict[int, str] = {}
    for key, pids in videos.items():
        if not isinstance(pids, list) or any(as_int(p) is None or not 0 <= p < num_pids for p in pids):
            raise StreidError(f"{path}: video {key!r} needs a list of pids in 0..{num_pids - 1}; fix it")
        for pid in pids:
            if pid in owner:
                raise StreidError(f"{path}: pid {pid} is listed under both {owner[pid]!r} and {key!r}; fix it")
            owner[pid] = key
    return {key: sorted(pids) for key, pids in videos.items()}


class _FolderSource:
    """Images and poses as files under images/ and poses/ (flat or one sub-folder per video).
    Works on strings, not Paths: pathlib costs seconds over DanceReID's 54k images."""

    def __init__(self, root: Path) -> None:
        self.images_dir = str(require_dir(root / "images", _FIX))
        self.poses_dir = str(root / "poses")
        self._listings: dict[str, set[str]] = {}

    def close(self) -> None:
        """Nothing to release (the HDF5 source has a file to close)."""

    def _find(self, base: str, relative: str) -> str | None:
        folder, _, leaf = relative.rpartition("/")
        directory = f"{base}/{folder}" if folder else base
        if directory not in self._listings:  # one directory scan per folder, not one stat per file
            self._listings[directory] = files_in(Path(directory)) if os.path.isdir(directory) else set()
        return f"{directory}/{leaf}" if leaf in self._listings[directory] else None

    def image(self, name: str) -> str | None:
        return self._find(self.images_dir, name)

    def pose(self, name: str) -> str | None:
        return self._find(self.poses_dir, name.rsplit(".", 1)[0] + ".txt")

    def describe(self, name: str) -> str:
        return f"{self.images_dir}/{name}"


class _H5Source:
    """Images and poses inside DanceReID.h5 (open only while the dataset is being read)."""

    def __init__(self, h5_file: Path) -> None:
        import h5py  # only this variant needs it

        self.file = str(h5_file)
        try:
            self._handle = h5py.File(h5_file, "r")
        except OSError as exc:
            raise StreidError(f"{h5_file}: cannot open HDF5 file ({exc}); {_FIX} with -h5") from None
        if "dataset/images" not in self._handle:
            self.close()
            raise StreidError(f"{self.file}: has no group 'dataset/images'; {_FIX} with -h5")
        self._listings: dict[str, set[str]] = {}

    def close(self) -> None:
        self._handle.close()

    def _has(self, key: str) -> bool:
        """Whether dataset `key` exists, listing each group once (a per-key lookup or a full
        visit of 54k entries would take seconds)."""
        import h5py

        group, _, leaf = key.rpartition("/")
        if group not in self._listings:
            node = self._handle.get(group)
            self._listings[group] = set(node.keys()) if isinstance(node, h5py.Group) else set()
        return leaf in self._listings[group]

    @staticmethod
    def _candidates(name: str) -> list[str]:
        """The release keys entries by the bare stem; the full meta name (which may carry a
        video folder, stored as a sub-group) and variants with/without ".jpg" work too."""
        base = name.rsplit("/", 1)[-1]
        stem, base_stem = name.rsplit(".", 1)[0], base.rsplit(".", 1)[0]
        return [base_stem, base, stem, name]

    def _find(self, group: str, name: str) -> str | None:
        for key in self._candidates(name):
            if self._has(f"{group}/{key}"):
                return h5_path(self.file, f"{group}/{key}")
        return None

    def image(self, name: str) -> str | None:
        return self._find("dataset/images", name)

    def pose(self, name: str) -> str | None:
        return self._find("dataset/poses", name)

    def describe(self, name: str) -> str:
        return f"{self.file}::dataset/images/{self._candidates(name)[0]}"
