"""The `streid` console script.

Every module in this package is one command group: it defines `register(subparsers)`, which
adds its sub-command(s) with `set_defaults(run=function)`; the function takes the parsed
arguments and returns an exit code. Modules are found automatically (except private `_*.py` helpers), so adding a
command means adding a file. Command modules import heavy libraries inside their functions so that
`streid --help` stays fast.
"""
from __future__ import annotations

import argparse
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
    except KeyboardInterrupt:
        print("streid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
