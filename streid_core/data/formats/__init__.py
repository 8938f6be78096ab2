"""Dataset layouts on disk: readers for prepared datasets and converters that prepare them.

    openreid.py     open-reid layout (+ FD-GAN poses, + streid's official_split.json etc.): read/write
    dancereid.py    DanceReID as released (flat, --split-folder, -h5): read
    market_duke.py  raw Market-1501 / DukeMTMC-reID -> open-reid layout
    folder.py       your own images (one folder per identity, or a CSV) -> open-reid layout
    mot.py          MOTChallenge tracking files (det.txt, gt.txt, results, seqinfo.ini): read/write

`read_index(root)` detects which prepared layout `root` holds and reads it.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import StreidError
from .common import read_json
from .dancereid import H5_FILE, is_dancereid_meta, read_dancereid
from .index import DatasetIndex
from .market_duke import SUBSETS
from .openreid import is_openreid_meta, read_openreid

__all__ = ["DatasetIndex", "detect_layout", "read_index"]

_HOW_TO_GET = (
    "prepare it with `streid prepare market1501|dukemtmc|folder --src RAW --dst OUT` "
    "or generate the synthetic set with `streid synth`"
)


def _looks_raw(folder: Path) -> bool:
    candidates = [folder] + ([c for c in folder.iterdir() if c.is_dir()] if folder.is_dir() else [])
    return any(all((c / s).is_dir() for s in SUBSETS) for c in candidates)


def detect_layout(root: Path, meta: object = None) -> str:
    """"dancereid" or "open-reid" for a prepared dataset; a StreidError says what to do otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise StreidError(f"{root}: no such dataset folder; {_HOW_TO_GET}")
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        if _looks_raw(root):
            raise StreidError(
                f"{root}: raw Market-1501/DukeMTMC-reID folders, not a prepared dataset; convert them with "
                f"`streid prepare market1501 --src {root} --dst OUT` (or dukemtmc)"
            )
        raise StreidError(f"{meta_path}: missing, so {root} is not a prepared dataset; {_HOW_TO_GET}")
    if meta is None:
        meta = read_json(meta_path, _HOW_TO_GET)
    if is_dancereid_meta(meta) or (root / H5_FILE).is_file():
        return "dancereid"
    if is_openreid_meta(meta):
        return "open-reid"
    raise StreidError(
        f"{meta_path}: \"identities\" is neither open-reid's [pid][camera] -> names nor DanceReID's "
        f"[pid] -> names; {_HOW_TO_GET}"
    )


def read_index(root: Path) -> DatasetIndex:
    """Detect the layout of the prepared dataset at `root` and read it (no image is decoded)."""
    root = Path(root)
    meta = read_json(root / "meta.json", _HOW_TO_GET) if (root / "meta.json").is_file() else None
    layout = detect_layout(root, meta)
    return read_dancereid(root, meta) if layout == "dancereid" else read_openreid(root, meta)
