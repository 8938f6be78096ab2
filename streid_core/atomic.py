"""Write files and folders so that a crash never leaves half an output behind.

Everything is first written next to its final place under a hidden temporary name, then
renamed over it (rename is atomic on one filesystem).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from .errors import StreidError


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of `path`; on success fsync and rename it to `path`."""
    path = Path(path)
    if path.exists() and not path.is_file():
        # a rename would replace a folder's entry or a device (/dev/full) with a plain file
        raise StreidError(f"{path}: is {_kind(path)}, not a file; pass a file path to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        with open(tmp, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(path)  # a full disk names the output, not a temporary that is gone
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False)
        handle.write("\n")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path` in one rename.

    On failure the temporary folder is removed and `path` is left as it was.
    """
    path = Path(os.path.abspath(path))  # "." or "x/.." cannot be renamed, their absolute names can
    if overwrite and path.is_dir() and (Path.cwd() == path.resolve() or path.resolve() in Path.cwd().parents):
        raise StreidError(f"{path}: holds the current folder, which cannot be replaced; run streid from another "
                          "folder or choose another output folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; outputs get the usual permissions
        yield tmp
        if path.exists():
            if not overwrite:
                raise FileExistsError(path)
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            try:
                os.replace(path, old / "x")
            except BaseException:  # e.g. a mount point: leave no empty .old folder behind
                os.rmdir(old)
                raise
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ------------------------------------------------------------------ checks before long work


def _kind(path: Path) -> str:
    return "a folder" if path.is_dir() else "a file" if path.is_file() else "a device, pipe or socket"


def _check_can_create(folder: Path, flag: str) -> None:
    """`folder` exists as a writable folder or can be created (its nearest existing ancestor is one)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StreidError(f"{flag} {folder}: cannot create it, {existing} is {_kind(existing)}; choose another path")
    try:  # an unnamed temporary file: leaves nothing behind, and sees read-only disks as root does
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise StreidError(f"{flag} {folder}: cannot write in {existing} ({exc.strerror}); choose a folder you can write") from None


def check_output_dir(path: str | os.PathLike, flag: str) -> None:
    """Fail before the work, not after it: `path` must be a folder that exists or can be created,
    and that can be written. Creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StreidError(f"{flag} {path}: is {_kind(path)}, not a folder; choose a folder path")
    _check_can_create(path, flag)


def check_output_file(path: str | os.PathLike, flag: str) -> None:
    """Fail before the work, not after it: `path` must be a regular file or a new name in a
    folder that exists or can be created, and that can be written. Creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise StreidError(f"{flag} {path}: is a folder; pass a file path, e.g. {path / 'out'}")
    if path.exists() and not path.is_file():
        raise StreidError(f"{flag} {path}: is {_kind(path)}, not a file; pass a file path to write")
    _check_can_create(path.parent, flag)


def check_not_an_input(path: str | os.PathLike, flag: str, inputs: dict[str, str | os.PathLike | None]) -> None:
    """Fail before the work when output `path` is one of the files the command reads (or writes
    under another flag), given as {flag: path}: writing it would replace that file, e.g. a
    checkpoint exported over itself."""
    path = Path(path)
    for other_flag, other in inputs.items():
        if not other:
            continue
        if path.resolve() == Path(other).resolve():
            raise StreidError(f"{flag} {path}: is also the {other_flag} file, which writing it would replace; "
                              f"choose another {flag}")
