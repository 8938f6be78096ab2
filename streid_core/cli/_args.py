"""Argument helpers shared by several commands, and the convention of the commands streid added
(every command but `baseline` and `train`, which keep the original system's flags):

- a dataset is `-d NAME` looked up in `--data-dir`, or a dataset folder (`-d DIR`, or the
  command's DATASET positional where it has one): `add_dataset_args` / `dataset_root`;
- `--device` defaults to auto (CUDA if present; resolved by streid_core.device): `add_device_arg`;
- `--amp off|bf16|fp16` wherever the command runs a network (bare `--amp` is bf16): `add_amp_arg`;
- `--checkpoint FILE` is always a file the command reads: `add_checkpoint_arg`;
- --help shows every default: `DefaultsHelpFormatter` (`command_parser` makes a sub-command with it).
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import StreidError
from ..training.config import AMP_MODES
DEVICE_HELP = "auto (CUDA if present), cpu, cuda or cuda:N"


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help ends each option's line with its default, taken from the parser (so from the config
    dataclass the parser's defaults come from); switches and options that default to nothing
    show none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or "(default" in text or not action.option_strings or default is None \
                or default is False or default == [] \
                or default == "" or default is argparse.SUPPRESS:
            return text
        return f"{text} (default %(default)s)"


class RawDescriptionDefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter, DefaultsHelpFormatter):
    """DefaultsHelpFormatter that keeps the description's own line breaks."""


def config_values(config_class: type, args: argparse.Namespace) -> dict[str, Any]:
    """The fields of dataclass `config_class` that this command has a flag for (a flag's dest is
    the field's name), as parsed."""
    return {f.name: getattr(args, f.name) for f in fields(config_class) if hasattr(args, f.name)}


def parse_named_pairs(pairs: list[str], flag: str, value_name: str, example: str) -> dict[str, str]:
    """NAME=VALUE arguments (e.g. `--checkpoint baseline=ckpt.pth`) as an ordered dict; a
    malformed pair or a repeated name is a one-line error naming `flag`."""
    named: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise StreidError(f"{flag} {pair!r}: expected NAME={value_name}, e.g. {example}")
        if name in named:
            raise StreidError(f"{flag}: the name {name!r} is given twice; give each tracker its own name")
        named[name] = value
    return named


def command_parser(subparsers: argparse._SubParsersAction, name: str, *, raw_description: bool = False,
                   **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command whose --help shows each option's default (and keeps the description's line
    breaks with `raw_description`)."""
    formatter = RawDescriptionDefaultsHelpFormatter if raw_description else DefaultsHelpFormatter
    return subparsers.add_parser(name, formatter_class=formatter, **kwargs)


def add_device_arg(parser: argparse.ArgumentParser, what: str = "") -> None:
    """`--device`, default auto; `what` says what runs there (e.g. " for the re-ID model")."""
    parser.add_argument("--device", default="auto", help=DEVICE_HELP + what)


def add_amp_arg(parser: argparse.ArgumentParser, default: str = "off", help: str | None = None) -> None:
    """`--amp off|bf16|fp16`; a bare `--amp` means bf16, as in `streid baseline` / `streid train`."""
    parser.add_argument("--amp", nargs="?", const="bf16", default=default, choices=AMP_MODES,
                        help=help or "mixed precision: bf16 (CPU or CUDA; bare --amp) or fp16 (CUDA)")


def add_checkpoint_arg(parser: argparse.ArgumentParser, help: str, metavar: str = "FILE", **kwargs: Any) -> None:
    """`--checkpoint`: always a file the command reads, never one it writes."""
    parser.add_argument("--checkpoint", metavar=metavar, help=f"read: {help}", **kwargs)


def add_dataset_args(parser: argparse.ArgumentParser, *, positional: bool = False, default: str | None = None,
                     help: str = "dataset") -> None:
    """`-d NAME|DIR` and `--data-dir`, plus an optional DATASET positional (a folder or a name) when
    `positional`; `dataset_root` turns them into the dataset's folder."""
    if positional:
        parser.add_argument("dataset_dir", nargs="?", metavar="DATASET",
                            help=f"{help} folder (or a name looked up in --data-dir); instead of -d")
    parser.add_argument("-d", "--dataset", default=default, metavar="NAME|DIR",
                        help=f"{help}: a name looked up case-insensitively in --data-dir, or a dataset folder")
    parser.add_argument("--data-dir", default="data", help="folder holding the datasets")


def dataset_root(args: argparse.Namespace, must_exist: bool = True) -> Path:
    """The dataset folder that `add_dataset_args`' flags name. A bare name is looked up in
    --data-dir (a folder of that name here is the fallback; a positional prefers it); anything
    with a path separator is a folder. Without `must_exist`, a dataset not found is the folder
    where it would be (for commands that generate it)."""
    from ..data.dataset import resolve_dataset_dir

    positional, named = getattr(args, "dataset_dir", None), args.dataset
    if positional and named:
        raise StreidError(f"give the dataset once: DATASET {positional!r} or -d {named!r}, not both")
    value = positional or named
    if not value:
        raise StreidError("no dataset: pass -d NAME (looked up in --data-dir) or a dataset folder")
    path = Path(value)
    if len(path.parts) == 1 and not (positional and path.is_dir()):
        try:
            return resolve_dataset_dir(args.data_dir, value)
        except StreidError:
            if path.is_dir():
                return path
            if must_exist:
                raise
            return Path(args.data_dir) / value
    if must_exist and not path.is_dir():
        raise StreidError(f"{path}: no such dataset folder; pass a dataset folder, or -d NAME looked up in --data-dir")
    return path
