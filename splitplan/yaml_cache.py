"""A content-addressed cache of the parsed data of splitplan's own YAML files (catalog, kernels, stacks).

Why: nearly every command reads the bundled catalog, and parsing it means importing PyYAML (~27 ms) and
running the parser (~5-15 ms), while reading the same data back as JSON takes about a millisecond. So the
first parse of a bundled file stores its data as JSON, and later starts read that instead.

- Only files shipped with splitplan are cached (`yaml_io` decides, see `_is_bundled`); what a user hands
  over is parsed every time, under yaml_io's limits and with its error messages.
- The key is a BLAKE2b hash of the file's bytes and of `CACHE_FORMAT`: an edited file (editable
  checkout) or a new release is a miss, never stale data. Old entries are a few KB each and harmless.
- Data is stored only when JSON gives it back exactly, types included (not a date, a non-string key,
  NaN); anything else is simply not cached.
- Location: `$SPLITPLAN_CACHE_DIR` (the value `off` disables the cache), else `$XDG_CACHE_HOME/splitplan`,
  else `~/.cache/splitplan`. Entries are written atomically (temporary file, then `os.replace`).
- The cache never fails a command: an unwritable folder, a missing, truncated or corrupt entry all fall
  back to parsing, silently. Validation (catalog.py's `_coerce` and the like) runs on the data either way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

try:  # the hash alone: hashlib would also load OpenSSL's _hashlib (~5 ms at start-up)
    from _blake2 import blake2b
except ImportError:  # an interpreter without CPython's private module
    from hashlib import blake2b

CACHE_ENV = "SPLITPLAN_CACHE_DIR"
CACHE_OFF = "off"
# Part of every key: bump it when what is stored, or how it is read, changes.
CACHE_FORMAT = "splitplan-yaml-cache/1"
_DIGEST_BYTES = 20


def cache_dir() -> Path | None:
    """The cache folder in use, or None when caching is off (or no home folder can be found)."""
    override = os.environ.get(CACHE_ENV, "")
    if override:
        return None if override.strip().lower() == CACHE_OFF else Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # the XDG spec: a relative value is to be ignored
        return Path(xdg) / "splitplan"
    try:
        return Path.home() / ".cache" / "splitplan"
    except (RuntimeError, KeyError, OSError):  # no HOME and no password entry
        return None


def _key(raw: bytes) -> str:
    return blake2b(CACHE_FORMAT.encode() + b"\0" + raw, digest_size=_DIGEST_BYTES).hexdigest()


def _entry_path(raw: bytes) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"{_key(raw)}.json"


def load(raw: bytes) -> Any | None:
    """The data stored for a file with these bytes, or None (not cached, caching off, unreadable entry)."""
    try:
        path = _entry_path(raw)
        if path is None:
            return None
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # ValueError: corrupt JSON or not UTF-8
        return None
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or "data" not in entry:
        return None
    return entry["data"]


def store(raw: bytes, data: Any) -> bool:
    """Store `data` (the parse of a file with bytes `raw`) if JSON holds it exactly; True when written."""
    if data is None:  # an empty file: nothing to save, and None means "not cached" to load()
        return False
    try:
        text = json.dumps({"format": CACHE_FORMAT, "data": data})  # ASCII: non-ASCII text is escaped
        if not _same(json.loads(text)["data"], data):
            return False
    except (TypeError, ValueError, RecursionError):  # not JSON data (a date, a non-string key, deep nesting)
        return False
    path = _entry_path(raw)
    if path is None:
        return False
    # A name no other process or thread uses, in the entry's folder (os.replace is atomic within one).
    temp = path.with_name(f".{path.stem}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(text.encode("ascii"))
        os.replace(temp, path)
    except OSError:
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        return False
    return True


def _same(a: Any, b: Any) -> bool:
    """Equal and of identical types all the way down (so 1 vs 1.0 vs True and list vs tuple differ),
    dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(type(k) is str and _same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)
