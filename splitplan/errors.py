"""The one user-facing error type.

Anything the user can fix (bad file, unknown name, impossible request) raises `SplitplanError` with a
single line that names the file, field and problem. The CLI prints that line and exits with status 2;
it never shows a traceback for these.
"""

from __future__ import annotations

from collections.abc import Iterable

USAGE_EXIT_CODE = 2


class SplitplanError(Exception):
    """A problem with the user's input, reported as one line (exit status 2)."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.problem = message
        super().__init__(self._format(message, source, field))

    @staticmethod
    def _format(message: str, source: str | None, field: str | None) -> str:
        where = ": ".join(part for part in (source, field) if part)
        one_line = " ".join(str(message).split())
        return f"{where}: {one_line}" if where else one_line


class InfeasibleError(SplitplanError):
    """No plan satisfies the constraints; the message names the constraint that binds."""


def nearest_names(name: str, valid: Iterable[str], limit: int = 3) -> str:
    """A ' (did you mean a, b?)' hint with the closest valid names, or the list of valid names."""
    import difflib  # only an error message needs it; every command imports this module at start-up

    valid = sorted(set(valid))
    close = difflib.get_close_matches(name, valid, n=limit, cutoff=0.4)
    if close:
        return f" (did you mean {', '.join(close)}?)"
    shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
    return f" (valid: {shown})"
