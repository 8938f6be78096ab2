"""The one exception users see.

Anything a user can cause (a bad path, a malformed file, a flag out of range) raises
StreidError with a single line that names the file or value and says what to do. The CLI
prints that line and exits 2; it never shows a traceback for these.
"""


class StreidError(Exception):
    """A user-facing error: one line, naming the file or value and the fix."""
