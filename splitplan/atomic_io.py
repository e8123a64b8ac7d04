"""Atomic file writes: the data goes to a temporary file next to the target, which is then renamed over
it, so an interrupted run (Ctrl-C, a lost machine) never leaves half a file, and a reader in another
process sees the old file or the new one. One helper for the sweep's points and tables, the
simulation memo and the HTML report; and `prepare_output`, which a long command calls on its output
paths before the work, so that a folder that cannot be made fails in one line then, not afterwards."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from splitplan.errors import SplitplanError


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` (text is UTF-8) to `path` atomically, with the permissions of a plainly created file."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes the file private; outputs are meant to be shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def prepare_output(path: str | Path | None, option: str) -> None:
    """Make the folder that `path` (the file an `option` such as --out names) will be written into, or
    raise the one-line reason it cannot be; nothing for None."""
    if path is None:
        return
    folder = Path(path).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SplitplanError(f"cannot create the folder for {option} ({exc.strerror or exc.__class__.__name__})",
                             source=str(folder)) from None
    if not os.access(folder, os.W_OK):
        raise SplitplanError(f"cannot write the file {option} names (its folder is not writable)", source=str(path))
