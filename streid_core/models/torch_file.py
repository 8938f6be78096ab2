"""The one reader of torch files (checkpoints, state dicts): `weights_only=True`, and every way
a file can be unusable (missing, a folder, empty, truncated, not a torch file, unreadable) is a
one-line StreidError naming it. `read_state_dict` is the one reader of network weights (it strips
the `module.` prefixes of wrapped networks); `state_dict_mismatch` says why weights do not fit."""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import StreidError


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The exception's first line, cut at a word before `limit` characters (marked "...")."""
    text = str(exc).strip()
    if not text:  # EOFError of an empty file has no text
        return ""
    line = text.splitlines()[0]
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return (cut if len(cut) > limit // 2 else line[:limit]) + "..."


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
        with warnings.catch_warnings():  # torch warns before refusing a TorchScript archive: one line is enough
            warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive.*")
            return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise StreidError(f"{path}: cannot read {what} ({exc.strerror or first_line(exc)}); {fix}") from None
    except Exception as exc:  # zip/pickle/unpickler errors differ by damage; all mean "unusable file"
        if "TorchScript archive" in str(exc):
            raise StreidError(f"{path}: is a TorchScript model (a `streid export --torchscript` output), not a "
                              f"{what}; {fix}") from None
        detail = f"{type(exc).__name__}: {first_line(exc)}" if first_line(exc) else type(exc).__name__
        raise StreidError(f"{path}: cannot read {what} ({detail}); the file is damaged or not a torch "
                          f"file; {fix}") from None


def read_state_dict(path: str | os.PathLike, what: str, fix: str,
                    unwrap: Callable[[Any], Any] | None = None) -> dict[str, torch.Tensor]:
    """The state dict of tensors in `path`, for every reader of network weights: `unwrap` first
    picks it out of a container it knows, then an open-reid / original {"state_dict": ...}
    checkpoint is opened, and every `module.` prefix of DataParallel / DistributedDataParallel
    is stripped."""
    obj = load_torch_file(path, what, fix)
    if unwrap is not None:
        obj = unwrap(obj)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise StreidError(f"{path}: {what} is not a state dict of tensors; {fix}")
    state = {}
    for key, value in obj.items():
        while key.startswith("module."):
            key = key[len("module."):]
        state[key] = value
    return state


def state_dict_mismatch(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str:
    """What keeps `state` from loading into a network whose state dict is `expected` ("" when it
    fits): missing, unexpected and wrongly shaped keys, three of each. BatchNorm counters may be
    missing (old torchvision files carry none; BatchNorm fills them itself)."""
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    return "; ".join(f"{what} {keys[:3]}" for what, keys in
                     (("missing", missing), ("unexpected", unexpected), ("wrong shape at", wrong)) if keys)
