"""The `streid` console script.

Every module in this package is one command group: it defines `register(subparsers)`, which
adds its sub-command(s) with `set_defaults(run=function)`; the function takes the parsed
arguments and returns an exit code. Modules are found automatically (except private `_*.py` helpers), so adding a
command means adding a file. Command modules import heavy libraries inside their functions so that
`streid --help` stays fast.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys

from ..errors import StreidError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streid",
        description="Pose-invariant person re-identification workbench (ST-ReIDNet).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # private helpers shared by commands, not commands
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except StreidError as exc:
        print(f"streid: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except OSError as exc:  # a full disk, a folder where a file was expected, no permission: the user's to fix
        print(f"streid: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("streid: error: out of memory; lower -b/--batch-size (or --workers), or free memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("streid: interrupted", file=sys.stderr)
        return 130


_OS_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and run again",
    errno.EDQUOT: "the disk quota is exceeded; free some space and run again",
    errno.EFBIG: "the file is too large for this disk or limit; free space or raise the limit",
    errno.EACCES: "choose a path you can write, or fix its permissions",
    errno.EPERM: "choose a path you can write, or fix its permissions",
    errno.EROFS: "the disk is read-only; choose another path",
    errno.EISDIR: "it is a folder; pass a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.ENOENT: "no such file or folder; check the path",
}


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the file it is about, what went wrong, what to do."""
    # OSError("text") has no strerror, and once a filename is set its str() is "[Errno None] None: ..."
    text = str(exc.args[0]) if len(exc.args) == 1 else str(exc)
    what = exc.strerror or (text.strip().splitlines() or [type(exc).__name__])[0]
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.filename2:
        where = f"{exc.filename} -> {exc.filename2}: "
    hint = _OS_HINTS.get(exc.errno)
    return f"{where}{what}" + (f"; {hint}" if hint else "")


if __name__ == "__main__":
    sys.exit(main())
