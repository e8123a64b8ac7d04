"""The pandas-free trace reader gives exactly the pandas reader's arrays, and defers to it otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from splitplan import workload as wl
from splitplan.trace_csv import read_valid_trace
from splitplan.workload import _FORMAT_COLUMNS, MAX_TOKENS_PER_REQUEST, BUNDLED_TRACES_DIR


def _pandas_read(path) -> wl.Workload:
    """The pandas path alone (the fast reader switched off)."""
    original = wl.read_valid_trace
    wl.read_valid_trace = lambda *a, **k: None
    try:
        wl._load_trace_cached.cache_clear()
        return wl.load_trace(path)
    finally:
        wl.read_valid_trace = original
        wl._load_trace_cached.cache_clear()


@pytest.mark.parametrize("name", sorted(p.name for p in BUNDLED_TRACES_DIR.glob("*.csv")))
def test_bundled_traces_read_bit_identically_without_pandas(name):
    path = BUNDLED_TRACES_DIR / name
    fast = read_valid_trace(str(path), _FORMAT_COLUMNS, MAX_TOKENS_PER_REQUEST)
    assert fast is not None, "a bundled trace must take the fast path"
    slow = _pandas_read(path)
    for a, b in zip(fast, (slow.arrival_s, slow.prompt_tokens, slow.output_tokens)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_plain_floats_with_bom_crlf_and_blank_lines_match_pandas(tmp_path):
    rng = np.random.default_rng(3)
    arrivals = np.sort(rng.random(500) * 100)
    lines = ["arrival_s, prompt_tokens, output_tokens"] + [f"{a!r}, {rng.integers(1, 4000)}, {rng.integers(1, 900)}"
                                                          for a in arrivals.tolist()]
    path = tmp_path / "t.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines[:200]) + "\r\n\r\n" + "\r\n".join(lines[200:]) + "\r\n")
                     .encode("utf-8"))
    fast = read_valid_trace(str(path), _FORMAT_COLUMNS, MAX_TOKENS_PER_REQUEST)
    slow = _pandas_read(path)
    assert fast is not None
    for a, b in zip(fast, (slow.arrival_s, slow.prompt_tokens, slow.output_tokens)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("body", [
    "arrival_s,prompt_tokens,output_tokens\n0.5,10,2\n0.2,10,2\n",  # unsorted
    "arrival_s,prompt_tokens,output_tokens\n0.5,10.5,2\n",  # fractional tokens
    "arrival_s,prompt_tokens,output_tokens\n0.5,1_000,2\n",  # Python-only number syntax
    "arrival_s,prompt_tokens,output_tokens\n0.5,10,2,7\n",  # extra field
    "arrival_s,prompt_tokens,output_tokens\n\"0.5\",10,2\n",  # quoting
    "arrival_s,prompt_tokens,output_tokens\n",  # no rows
    "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,10,2\n",  # not a timestamp
    "arrival_s,prompt_tokens,output_tokens\nnan,10,2\n",
])
def test_anything_irregular_is_left_to_the_pandas_reader(tmp_path, body):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    assert read_valid_trace(str(path), _FORMAT_COLUMNS, MAX_TOKENS_PER_REQUEST) is None
