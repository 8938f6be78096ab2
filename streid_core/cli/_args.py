"""Argument helpers shared by several commands."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from ..errors import StreidError


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """--help ends each option's line with its default, taken from the parser (so from the config
    dataclass the parser's defaults come from); switches and options that default to nothing
    show none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or not action.option_strings or default is None or default is False \
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
