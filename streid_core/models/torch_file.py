"""The one reader of torch files (checkpoints, state dicts): `weights_only=True`, and every way
a file can be unusable (missing, a folder, empty, truncated, not a torch file, unreadable) is a
one-line StreidError naming it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..errors import StreidError


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:120] if text else ""  # EOFError of an empty file has no text


def load_torch_file(path: str | os.PathLike, what: str, fix: str) -> Any:
    """torch.load(path, weights_only=True) on the CPU. `what` names the file for the message
    ("checkpoint", "--netE-pretrain file"), `fix` says what to pass instead."""
    path = Path(path)
    if path.is_dir():
        raise StreidError(f"{path}: is a folder, not a {what}; {fix}")
    if not path.is_file():
        raise StreidError(f"{path}: {what} not found; {fix}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StreidError(f"{path}: cannot read {what} ({exc.strerror}); {fix}") from None
    if size == 0:
        raise StreidError(f"{path}: {what} is empty (0 bytes; an interrupted copy?); {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise StreidError(f"{path}: cannot read {what} ({exc.strerror or first_line(exc)}); {fix}") from None
    except Exception as exc:  # zip/pickle/unpickler errors differ by damage; all mean "unusable file"
        detail = f"{type(exc).__name__}: {first_line(exc)}" if first_line(exc) else type(exc).__name__
        raise StreidError(f"{path}: cannot read {what} ({detail}); the file is damaged or not a torch "
                          f"file; {fix}") from None
