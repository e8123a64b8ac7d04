"""Request latencies, ITL samples, throughput window and saturation, computed once after the loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from splitplan.sim.config import SimConfig


@dataclass
class Latencies:
    """Per-request arrays in seconds (NaN where a request never reached that point)."""

    ttft_s: np.ndarray
    tbt_s: np.ndarray
    e2e_s: np.ndarray
    queue_s: np.ndarray
    transfer_s: np.ndarray
    completed: np.ndarray  # bool


def latencies(eng, arrival_s: np.ndarray, output_tokens: np.ndarray, compat: bool) -> Latencies:
    """TTFT at prompt completion. TBT: compat (E2E - TTFT) / output tokens (SplitwiseSim); default
    (E2E - TTFT) / (output - 1), the true mean gap between tokens (0 for one-token requests)."""
    t_first = np.asarray(eng.t_first, dtype=np.float64)
    t_done = np.asarray(eng.t_done, dtype=np.float64)
    t_start = np.asarray(eng.t_start, dtype=np.float64)
    ttft = t_first - arrival_s
    e2e = t_done - arrival_s
    gaps = output_tokens.astype(np.float64) if compat else np.maximum(output_tokens - 1, 1).astype(np.float64)
    tbt = (e2e - ttft) / gaps
    transfer = np.asarray(eng.xfer_s, dtype=np.float64)
    return Latencies(ttft, tbt, e2e, t_start - arrival_s, np.where(np.isnan(t_done), np.nan, transfer),
                     ~np.isnan(t_done))


def itl_samples(eng, points_per_run: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(gap seconds, token weights): decode step durations weighted by the tokens they produced, plus
    each resume gap (transfer, queueing, preemption) with weight 1.

    A closed-form run of n steps has step times linear in the step index; runs up to
    `points_per_run` steps are expanded exactly, longer ones as that many equal-count groups at their
    mean (exact for a linear run up to within-group spread), so memory stays bounded on long traces."""
    if len(eng.itl_n):
        n = np.frombuffer(eng.itl_n, dtype=np.int64)
        d0 = np.frombuffer(eng.itl_d0, dtype=np.float64)
        dd = np.frombuffer(eng.itl_dd, dtype=np.float64)
        b = np.frombuffer(eng.itl_b, dtype=np.int64)
        m = np.minimum(n, points_per_run)
        seg = np.repeat(np.arange(n.size), m)
        j = np.arange(seg.size) - np.repeat(np.cumsum(m) - m, m)
        pos = (j + 0.5) * n[seg] / m[seg] - 0.5
        values = d0[seg] + dd[seg] * pos
        weights = (b * n / m)[seg].astype(np.float64)
    else:
        values, weights = np.zeros(0), np.zeros(0)
    gaps = np.frombuffer(eng.gap_s, dtype=np.float64) if len(eng.gap_s) else np.zeros(0)
    gaps = gaps[gaps > 0]
    return np.concatenate([values, gaps]), np.concatenate([weights, np.ones(gaps.size)])


def stats(values: np.ndarray) -> dict[str, float]:
    """p50/p90/p99/mean with numpy's linear percentiles (as SplitwiseSim's analysis does)."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return {"p50": None, "p90": None, "p99": None, "mean": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(values.mean())}


def throughput_rps(arrival_s: np.ndarray, t_done: np.ndarray) -> float:
    """Completions within 10%-90% of the trace span, per second (SplitwiseSim's window)."""
    if arrival_s.size < 2:
        return math.nan
    t0, span = float(arrival_s[0]), float(arrival_s[-1] - arrival_s[0])
    if span <= 0:
        return math.nan
    lo, hi = t0 + 0.1 * span, t0 + 0.9 * span
    done = t_done[~np.isnan(t_done)]
    return float(np.count_nonzero((done >= lo) & (done <= hi)) / (0.8 * span))


def saturation(eng, arrival_s: np.ndarray, lat: Latencies, config: SimConfig) -> str | None:
    """Why the cluster cannot keep up, or None: requests it can never serve, work left after the drain
    limit, or queueing delay that keeps growing over the trace (backlog trend)."""
    if eng.unservable:
        worst = max(eng.reserve[r] for r in eng.unservable)
        return (f"{len(eng.unservable)} request(s) need more KV cache than any instance holds "
                f"(largest {worst} tokens > {eng.max_cap})")
    unfinished = int(np.count_nonzero(~lat.completed))
    if unfinished:
        return f"{unfinished} request(s) unfinished at the drain limit ({eng.end_s:.1f} s)"
    n = arrival_s.size
    if n < 40:
        return None
    t0, span = float(arrival_s[0]), float(arrival_s[-1] - arrival_s[0])
    if span <= 0:
        return None
    second = (t0 + 0.25 * span, t0 + 0.5 * span)
    last = (t0 + 0.75 * span, t0 + span)
    queue = lat.queue_s
    q2 = queue[(arrival_s >= second[0]) & (arrival_s < second[1])]
    q4 = queue[arrival_s >= last[0]]
    if q2.size and q4.size:
        late, early = float(np.mean(q4)), float(np.mean(q2))
        if late > config.saturation_queue_s and late > 2.0 * early:
            return (f"queueing grows without bound: mean prompt queue {late:.2f} s for the last quarter of "
                    f"arrivals vs {early:.2f} s for the second")
    # requests in the system (queued or being served) over the second half of the arrivals: a stable
    # cluster hovers around rate x latency; an overloaded one keeps accumulating work (queues, or
    # decode batches that grow and slow every step)
    if eng.in_system:
        samples = np.asarray(eng.in_system, dtype=np.float64)
        half = samples[(samples[:, 0] >= t0 + 0.5 * span) & (samples[:, 0] <= t0 + span)]
        if half.shape[0] >= 8:
            slope = float(np.polyfit(half[:, 0], half[:, 1], 1)[0])
            growth, level = slope * 0.5 * span, float(half[:, 1].mean())
            threshold = max(config.saturation_growth * max(level, 1.0), float(config.saturation_min_requests),
                            config.saturation_noise_z * math.sqrt(max(level, 1.0)))
            if growth > threshold:
                return (f"work in the system grows without bound: +{growth:.0f} requests over the second half "
                        f"of the arrivals (mean {level:.0f} in the system)")
    return None
