"""Reading hand-written YAML mappings field by field, with one-line errors naming file and field.

Shared by the scenario loader and `splitplan check`, so both report a typo or a wrong type the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from splitplan.errors import SplitplanError, nearest_names


class FieldReader:
    """Reads one mapping of a YAML file, checking names and types; `done()` rejects unknown fields.

    Every problem becomes a one-line SplitplanError naming the file and the dotted field path."""

    def __init__(self, data: Any, source: str, prefix: str):
        if not isinstance(data, Mapping):
            raise SplitplanError(f"must be a mapping, got {describe_kind(data)}", source=source, field=prefix or None)
        self.data, self.source, self.prefix, self.seen = data, source, prefix, set()

    def where(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, problem: str) -> SplitplanError:
        return SplitplanError(problem, source=self.source, field=self.where(name))

    def raw(self, name: str, default: Any = None, required: bool = False) -> Any:
        self.seen.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                raise self.error(name, "required field is missing")
            return default
        return self.data[name]

    def string(self, name: str, default: str | None = None, required: bool = False,
               choices: Sequence[str] = ()) -> Any:
        value = self.raw(name, default, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be a non-empty string, got {describe_kind(value)}")
        if choices and value not in choices:
            raise self.error(name, f"'{value}' is not one of {', '.join(choices)}{nearest_names(value, choices)}")
        return value

    def number(self, name: str, default: float | None = None, *, positive: bool = False, integer: bool = False,
               lo: float | None = None, hi: float | None = None, hi_why: str = "") -> Any:
        value = self.raw(name, default)
        if value is None:
            return None
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
            raise self.error(name, f"must be {'an integer' if integer else 'a number'}, got {describe_kind(value)}")
        if positive and value <= 0:
            raise self.error(name, f"must be > 0, got {value}")
        if lo is not None and value < lo:
            raise self.error(name, f"must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            raise self.error(name, f"must be <= {hi:,}, got {value:,}{f' ({hi_why})' if hi_why else ''}")
        return value

    def names(self, name: str, required: bool = False) -> tuple[str, ...]:
        value = self.raw(name, None, required)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.error(name, "must be a non-empty list of machine names")
        if len(set(value)) != len(value):
            raise self.error(name, "lists a machine twice")
        return tuple(value)

    def done(self) -> None:
        for key in self.data:
            if key not in self.seen:
                raise self.error(str(key), f"unknown field{nearest_names(str(key), self.seen)}")


def describe_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"
