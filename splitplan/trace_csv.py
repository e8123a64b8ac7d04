"""A pandas-free reader for well-formed trace CSVs: the common case of `splitplan simulate` and the
optimizer's start, which otherwise import pandas (0.2-0.8 s) to read three columns.

`read_valid_trace` returns the three arrays only when the file is plainly valid (UTF-8, one header,
the same number of fields on every row, no quoting, numbers and timestamps that parse, token counts in
range, arrivals sorted and non-negative) and None otherwise; the caller then reads the file with the
pandas reader in workload.py, whose one-line errors name the line and column. Both readers give
bit-identical arrays (numpy and pandas parse decimal strings the same way; tests/test_trace_csv.py).
"""

from __future__ import annotations

import csv
import re

import numpy as np

_NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBERS = re.compile(rf"(?:{_NUMBER}\n)*{_NUMBER}")
_STAMP = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
_STAMPS = re.compile(rf"(?:{_STAMP}\n)*{_STAMP}")


def read_valid_trace(path: str, formats: tuple[tuple[str, str, str], ...], max_tokens: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(arrival_s, prompt_tokens, output_tokens) of a plainly valid trace, else None (see module doc)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return None
    if '"' in text:
        return None
    rows = [row for row in csv.reader(text.splitlines(), skipinitialspace=True) if row]
    if len(rows) < 2:
        return None
    header = [c.strip() for c in rows[0]]
    width = len(header)
    if len(set(header)) != width or any(len(row) != width for row in rows):
        return None
    names = next((fmt for fmt in formats if set(fmt) <= set(header)), None)
    if names is None:
        return None
    columns = [[row[header.index(name)].strip() for row in rows[1:]] for name in names]
    arrival = _arrivals(columns[0], names[0] == "TIMESTAMP")
    prompt, output = _tokens(columns[1], max_tokens), _tokens(columns[2], max_tokens)
    if arrival is None or prompt is None or output is None:
        return None
    if np.any(arrival < 0) or np.any(np.diff(arrival) < 0):
        return None
    return arrival, prompt, output


def _arrivals(values: list[str], timestamps: bool) -> np.ndarray | None:
    """Seconds: Azure timestamps from the earliest request (as the pandas reader), else the numbers."""
    if timestamps:
        if not _STAMPS.fullmatch("\n".join(values)):
            return None
        try:
            nanos = np.array(values, dtype="datetime64[ns]").astype(np.int64)
        except ValueError:
            return None
        return (nanos - nanos.min()).astype(np.float64) / 1e9
    numbers = _numbers(values)
    return numbers if numbers is not None and np.all(np.isfinite(numbers)) else None


def _tokens(values: list[str], max_tokens: int) -> np.ndarray | None:
    numbers = _numbers(values)
    if numbers is None or np.any((numbers < 1) | (numbers != np.floor(numbers)) | (numbers > max_tokens)):
        return None
    return numbers.astype(np.int64)


def _numbers(values: list[str]) -> np.ndarray | None:
    if not _NUMBERS.fullmatch("\n".join(values)):
        return None
    return np.array(values).astype(np.float64)
