"""Argument helpers shared by several commands."""
from __future__ import annotations

from ..errors import StreidError


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
