"""Finding a column or key by meaning in output files, so the report reads every schema version.

The report is the one consumer of several writers' files (simulator, optimizer). Looking columns up
by a short list of accepted names, rather than one exact spelling, keeps old output folders readable
and keeps a renamed column from turning a whole report section into an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def pick_column(frame: pd.DataFrame, names: Sequence[str], contains: Sequence[str] = ()) -> str | None:
    """The first of `names` present in `frame`, else the first column containing all of `contains`."""
    for name in names:
        if name in frame.columns:
            return name
    if contains:
        for column in frame.columns:
            lowered = str(column).lower()
            if all(part in lowered for part in contains):
                return str(column)
    return None


def pick_key(mapping: Mapping[str, Any] | None, *names: str, default: Any = None) -> Any:
    """The value of the first present key among `names` (dotted names walk nested mappings)."""
    if not isinstance(mapping, Mapping):
        return default
    for name in names:
        node: Any = mapping
        for part in name.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                node = _MISSING
                break
        if node is not _MISSING and node is not None:
            return node
    return default


_MISSING = object()
