"""What is done with a workload once built: written out (plain CSV, or SplitwiseSim's trace format to
run SplitwiseSim on the same requests) and summarized (`splitplan trace stats`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from splitplan.errors import SplitplanError
from splitplan.workload import Workload


def write_trace(w: Workload, path: str | Path, fmt: str = "plain") -> None:
    """Write a workload as plain CSV or in SplitwiseSim's trace format (to run SplitwiseSim on it)."""
    n = len(w)
    columns = {
        "plain": {"arrival_s": w.arrival_s, "prompt_tokens": w.prompt_tokens, "output_tokens": w.output_tokens},
        "splitwisesim": {"request_id": np.arange(n), "request_type": np.full(n, 2), "application_id": np.zeros(n, int),
                         "arrival_timestamp": w.arrival_s, "batch_size": np.ones(n, int),
                         "prompt_size": w.prompt_tokens, "token_size": w.output_tokens},
    }
    if fmt not in columns:
        raise SplitplanError(f"unknown trace format '{fmt}' (plain, splitwisesim)", field="format")
    import pandas as pd

    frame = pd.DataFrame(columns[fmt])
    try:
        frame.to_csv(path, index=False, lineterminator="\n")
    except OSError as exc:
        raise SplitplanError(f"cannot write ({exc.strerror or exc})", source=str(path)) from None


def workload_stats(w: Workload) -> dict[str, float | int | str]:
    """Summary a planner checks before trusting a trace: size, rate, burstiness, token percentiles."""
    n = len(w)
    span_s = float(w.arrival_s[-1] - w.arrival_s[0]) if n else 0.0
    gaps = np.diff(w.arrival_s)
    cv = float(gaps.std() / gaps.mean()) if gaps.size > 1 and gaps.mean() > 0 else float("nan")
    stats: dict[str, float | int | str] = {
        "name": w.name, "requests": n, "span_s": span_s,
        "rate_rps": (n - 1) / span_s if span_s > 0 else float("nan"), "interarrival_cv": cv,
    }
    for label, tokens in (("prompt", w.prompt_tokens), ("output", w.output_tokens)):
        if n:
            p50, p90, p99 = np.percentile(tokens, [50, 90, 99])
            stats.update({f"{label}_p50": float(p50), f"{label}_mean": float(tokens.mean()),
                          f"{label}_p90": float(p90), f"{label}_p99": float(p99), f"{label}_max": int(tokens.max())})
        stats[f"total_{label}_tokens"] = int(tokens.sum())
    return stats
