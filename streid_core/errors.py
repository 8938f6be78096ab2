"""The one exception users see.

Anything a user can cause (a bad path, a malformed file, a flag out of range) raises
StreidError with a single line that names the file or value and says what to do. The CLI
prints that line and exits 2; it never shows a traceback for these.

A StreidError raised inside a DataLoader worker (a bad image met while training or evaluating)
reaches the main process through torch, which builds a new exception of the same class from a
message holding the worker's whole traceback ("Caught StreidError in DataLoader worker process
0. Original Traceback ... StreidError: <line>"). The constructor recognises that message and
keeps only the original line, so the user still sees one line, from any DataLoader.
"""
from __future__ import annotations

import re

# torch.utils.data re-raises worker errors as exc_type(f"Caught {name} {where}.\nOriginal {traceback}")
_WORKER_WRAPPER = re.compile(r"Caught (\w+) [^\n]*\.\nOriginal Traceback \(most recent call last\):\n")


def original_line(message: str) -> str:
    """The worker's own message when `message` is torch's re-raise wrapper, else `message`."""
    match = _WORKER_WRAPPER.match(message)
    if not match:
        return message
    name = match.group(1)
    for line in reversed(message.splitlines()):
        head, sep, rest = line.partition(": ")
        if sep and (head == name or head.endswith("." + name)):
            return rest
    return message


class StreidError(Exception):
    """A user-facing error: one line, naming the file or value and the fix."""

    def __init__(self, message: str = "", *args: object) -> None:
        super().__init__(original_line(message) if isinstance(message, str) else message, *args)
