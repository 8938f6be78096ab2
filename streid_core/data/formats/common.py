"""Small helpers every layout reader and converter shares: reading JSON with one-line errors,
listing image files, checking that an image decodes, and stderr warnings."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from ...errors import StreidError
from ..images import load_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


_warned: set[str] = set()


def warn(message: str) -> None:
    """One warning line on stderr, once per process (a notebook that reloads a dataset is not
    flooded); a plain line rather than a Python warning, since users read it in a terminal."""
    if message not in _warned:
        _warned.add(message)
        print(f"streid: warning: {message}", file=sys.stderr)


def read_json(path: Path, fix: str) -> Any:
    """Parse a JSON file; a missing or malformed file is a StreidError naming it and `fix`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StreidError(f"{path}: missing; {fix}") from None
    except OSError as exc:
        raise StreidError(f"{path}: cannot read ({exc.strerror}); {fix}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise StreidError(
            f"{path}: invalid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); {fix}"
        ) from None


def require_dir(path: Path, fix: str) -> Path:
    if not path.is_dir():
        raise StreidError(f"{path}: missing folder; {fix}")
    return path


def files_in(folder: Path) -> set[str]:
    """Names of the regular files directly inside `folder` (one directory scan, no stat per file)."""
    with os.scandir(folder) as entries:
        return {e.name for e in entries if e.is_file()}


def image_files(folder: Path) -> list[str]:
    """Sorted names of the image files directly inside `folder` (other files such as Thumbs.db
    are ignored)."""
    return sorted(n for n in files_in(folder) if n.lower().endswith(IMAGE_EXTENSIONS))


def verify_image(path: str) -> None:
    """Decode `path` fully; a corrupt or truncated image raises a StreidError naming it."""
    load_image(path)


def as_int(value: Any) -> int | None:
    """`value` as an int when it is a JSON integer (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


SPLITS_FILE = "splits.json"
RELEASED_SPLITS_FILE = "split.json"  # the name DanceReID's gen_DanceReID.py writes


def read_splits(root: Path) -> tuple[list[dict[str, list[int]]], Path]:
    """The list of {"trainval", "query", "gallery"} pid lists, and the file it came from.

    The DanceReID release writes `split.json` while every loader reads `splits.json`; the released
    name is accepted with a warning so that users need not rename it.
    """
    path = root / SPLITS_FILE
    if not path.is_file() and (root / RELEASED_SPLITS_FILE).is_file():
        path = root / RELEASED_SPLITS_FILE
        warn(f"{path}: read as {SPLITS_FILE} (the DanceReID release's name); rename it to silence this")
    splits = read_json(path, "it must hold a list of {\"trainval\", \"query\", \"gallery\"} pid lists")
    if not isinstance(splits, list) or not splits:
        raise StreidError(f"{path}: expected a non-empty list of splits; regenerate it")
    for i, split in enumerate(splits):
        if not isinstance(split, dict):
            raise StreidError(f"{path}: split {i} is not an object; regenerate it")
        for key in ("trainval", "query", "gallery"):
            pids = split.get(key)
            if not isinstance(pids, list) or any(as_int(p) is None for p in pids):
                raise StreidError(f"{path}: split {i} needs {key!r} as a list of integer pids; fix it")
    return splits, path


def refuse_existing(dst: Path, overwrite: bool) -> None:
    """Converters never silently replace a dataset, and --dst must be a folder that can be
    written: checked before any work starts."""
    from ...atomic import check_output_dir

    check_output_dir(dst, "--dst")
    if dst.exists() and not overwrite:
        raise StreidError(f"{dst}: already exists; pass --overwrite to replace it or choose another --dst")


def refuse_dst_over_input(dst: Path, source: Path, what: str) -> None:
    """--dst is replaced whole, so it must be neither the input `source` (named `what` in the
    message) nor a folder holding it: --overwrite would delete the source with the old --dst."""
    target = dst.resolve()
    if target == source.resolve() or target in source.resolve().parents:
        raise StreidError(f"--dst {dst}: holds {what}, which the new dataset would replace; choose a --dst outside it")


def copy_verified(src: Path, dst: Path) -> None:
    """Copy an image byte for byte after checking that it decodes (a truncated JPEG would
    otherwise surface only in the middle of training)."""
    verify_image(str(src))
    shutil.copyfile(src, dst)
