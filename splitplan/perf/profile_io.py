"""Read measured profiles (SplitwiseSim perf_model.csv or our long format) into one normalized table.

Formats:
- SplitwiseSim: model, hardware, prompt_size, batch_size, token_size, prompt_time, token_time,
  tensor_parallel (other columns ignored). A row is `batch_size` requests of `prompt_size` prompt tokens
  generating `token_size` tokens; prompt_time is the whole prompt batch, token_time the mean decode step.
- Long: model, gpu, tp, phase, batch_size, prompt_tokens, context_tokens, time_ms. phase is prefill or
  decode; prompt_tokens is per prompt, context_tokens the mean context per decoding sequence.

Both become rows of (model, hardware, tp, phase, batch_size, prompt_tokens, context_tokens, time_ms,
row) where `row` is the 1-based data line in the file (for error messages and predictions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from splitplan.errors import SplitplanError

SPLITWISESIM_COLUMNS = ("model", "hardware", "prompt_size", "batch_size", "token_size", "prompt_time",
                        "token_time", "tensor_parallel")
LONG_COLUMNS = ("model", "gpu", "tp", "phase", "batch_size", "prompt_tokens", "context_tokens", "time_ms")
NORMALIZED_COLUMNS = ("model", "hardware", "tp", "phase", "batch_size", "prompt_tokens", "context_tokens",
                      "token_size", "time_ms", "row")
PHASES = ("prefill", "decode")


@dataclass(frozen=True)
class Profile:
    """A measured profile: the raw frame as read, its format, and the normalized rows."""

    path: str
    fmt: str  # "splitwisesim" or "long"
    raw: pd.DataFrame
    rows: pd.DataFrame


def read_profile(path: str | Path) -> Profile:
    """Read and validate a profile CSV; every problem is a one-line SplitplanError naming the file."""
    source = str(path)
    raw = _read_csv(source)
    columns = set(raw.columns)
    if "hardware" in columns or "prompt_time" in columns:
        fmt, required = "splitwisesim", SPLITWISESIM_COLUMNS
    elif "phase" in columns or "time_ms" in columns:
        fmt, required = "long", LONG_COLUMNS
    else:
        raise SplitplanError(
            f"unrecognized profile columns {', '.join(map(str, raw.columns[:8]))}; expected SplitwiseSim "
            f"({', '.join(SPLITWISESIM_COLUMNS)}) or long format ({', '.join(LONG_COLUMNS)})", source=source)
    missing = [c for c in required if c not in columns]
    if missing:
        raise SplitplanError(f"missing column '{missing[0]}' ({fmt} format needs {', '.join(required)})",
                             source=source, field=missing[0])
    if raw.empty:
        raise SplitplanError("no data rows", source=source)
    rows = _normalize_splitwisesim(raw, source) if fmt == "splitwisesim" else _normalize_long(raw, source)
    return Profile(path=source, fmt=fmt, raw=raw, rows=rows)


def _read_csv(source: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(source, skipinitialspace=True)
    except FileNotFoundError:
        raise SplitplanError("file not found", source=source) from None
    except pd.errors.EmptyDataError:
        raise SplitplanError("file is empty", source=source) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise SplitplanError(f"malformed CSV ({' '.join(str(exc).split())[:120]})", source=source) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _numeric(raw: pd.DataFrame, column: str, source: str, *, positive: bool = True, integer: bool = False) -> pd.Series:
    values = pd.to_numeric(raw[column], errors="coerce")
    bad = values.isna() | ~values.apply(lambda v: v == v and abs(v) != float("inf"))
    if positive:
        bad |= values <= 0
    else:
        bad |= values < 0
    if integer:
        bad |= values.fillna(0) != values.fillna(0).round()
    if bad.any():
        index = int(bad.to_numpy().nonzero()[0][0])
        kind = "a positive" if positive else "a non-negative"
        kind += " whole number" if integer else " number"
        raise SplitplanError(f"must be {kind}, got {raw[column].iloc[index]!r}", source=source,
                             field=f"line {index + 2}, column {column}")
    return values.astype(float)


def _names(raw: pd.DataFrame, column: str, source: str) -> pd.Series:
    names = raw[column].astype(str).str.strip().str.lower()
    bad = raw[column].isna() | (names == "")
    if bad.any():
        index = int(bad.to_numpy().nonzero()[0][0])
        raise SplitplanError("must be a non-empty name", source=source, field=f"line {index + 2}, column {column}")
    return names


def _normalize_splitwisesim(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    model = _names(raw, "model", source)
    hardware = _names(raw, "hardware", source)
    tp = _numeric(raw, "tensor_parallel", source, integer=True)
    prompt = _numeric(raw, "prompt_size", source, integer=True)
    batch = _numeric(raw, "batch_size", source, integer=True)
    tokens = _numeric(raw, "token_size", source, integer=True)
    prompt_time = _numeric(raw, "prompt_time", source)
    token_time = _numeric(raw, "token_time", source)
    line = pd.Series(range(1, len(raw) + 1), index=raw.index)
    common = {"model": model, "hardware": hardware, "tp": tp, "batch_size": batch, "prompt_tokens": prompt,
              "token_size": tokens, "row": line}
    prefill = pd.DataFrame({**common, "phase": "prefill", "context_tokens": 0.0, "time_ms": prompt_time})
    # decode contexts grow from prompt_size to prompt_size + token_size: the mean step sees the middle
    decode = pd.DataFrame({**common, "phase": "decode", "context_tokens": prompt + tokens / 2.0, "time_ms": token_time})
    return pd.concat([prefill, decode], ignore_index=True)[list(NORMALIZED_COLUMNS)]


def _normalize_long(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    phase = _names(raw, "phase", source)
    bad = ~phase.isin(PHASES)
    if bad.any():
        index = int(bad.to_numpy().nonzero()[0][0])
        raise SplitplanError(f"must be prefill or decode, got {raw['phase'].iloc[index]!r}", source=source,
                             field=f"line {index + 2}, column phase")
    frame = pd.DataFrame({
        "model": _names(raw, "model", source),
        "hardware": _names(raw, "gpu", source),
        "tp": _numeric(raw, "tp", source, integer=True),
        "phase": phase,
        "batch_size": _numeric(raw, "batch_size", source, integer=True),
        "prompt_tokens": _numeric(raw, "prompt_tokens", source, positive=False),
        "context_tokens": _numeric(raw, "context_tokens", source, positive=False),
        "token_size": 0.0,
        "time_ms": _numeric(raw, "time_ms", source),
        "row": range(1, len(raw) + 1),
    })
    need_prompt = (frame["phase"] == "prefill") & (frame["prompt_tokens"] <= 0)
    if need_prompt.any():
        index = int(need_prompt.to_numpy().nonzero()[0][0])
        raise SplitplanError("prefill rows need prompt_tokens > 0", source=source,
                             field=f"line {index + 2}, column prompt_tokens")
    return frame[list(NORMALIZED_COLUMNS)]
