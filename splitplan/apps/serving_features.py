"""A simulated closed-loop benchmark as a linear function of iteration times (what calibration fits).

In a closed loop of identical clients on one instance, requests arrive exactly when others finish, so
the sequence of iterations (which prompts, chunks and decodes each holds) depends on the scheduler and
the KV cache only, not on how long an iteration takes. Each measured request's TTFT is then the sum of
the durations of the iterations between its arrival and its first token, and its TPOT the sum over its
decode window divided by OSL - 1. So mean TTFT and mean TPOT are weighted sums of iteration durations,
with weights that one simulation gives: a stack's parameters can be fitted against measured means by
evaluating the performance model on the recorded iteration shapes, without simulating again.

Decode runs of n steps (batch B, summed context S0 growing by B per step) cost n x base(B) +
per x (n S0 + B n (n - 1) / 2), so they aggregate per batch size; prompt iterations aggregate per shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splitplan.sim.machines import SEG_DECODE


@dataclass(frozen=True)
class RowFeatures:
    """Iteration shapes of one simulated benchmark with their TTFT and TPOT weights (per measured request)."""

    decode_b: np.ndarray  # unique decode batch sizes
    decode_n: np.ndarray  # (len(decode_b), 2): sum of weight x steps, for TTFT and TPOT
    decode_x: np.ndarray  # (len(decode_b), 2): sum of weight x (n S0 + B n (n-1) / 2)
    chunks: np.ndarray  # (k, 8): n_chunks, tokens, pairs, pairs_per_len, prefix, n_last, decode_b, decode_s
    chunk_w: np.ndarray  # (k, 2): TTFT and TPOT weights of each chunk shape
    measured: int  # requests in the means

    def predict_ms(self, perf) -> tuple[float, float]:
        """(mean engine TTFT, mean TPOT) in ms under `perf` (a PerfModel of the row's instance)."""
        ttft = tpot = 0.0
        if self.decode_b.size:
            base, per = perf.decode_parts(self.decode_b.astype(float))
            base = np.broadcast_to(np.asarray(base, float), self.decode_b.shape)
            total = self.decode_n * base[:, None] + self.decode_x * float(per)
            ttft += float(total[:, 0].sum())
            tpot += float(total[:, 1].sum())
        if self.chunks.size:
            c = self.chunks
            ms = np.asarray(perf.chunk_ms(c[:, 0], c[:, 1], c[:, 2], c[:, 3], c[:, 4], c[:, 5], c[:, 6], c[:, 7]),
                            float)
            ttft += float(ms @ self.chunk_w[:, 0])
            tpot += float(ms @ self.chunk_w[:, 1])
        n = max(self.measured, 1)
        return ttft / n, tpot / n


def row_features(eng, output_tokens: np.ndarray, measured: np.ndarray) -> RowFeatures:
    """Features of one closed-loop run recorded with `record_segments=True` (one instance)."""
    seg = np.asarray(eng.segments, dtype=np.float64)
    if seg.size == 0:
        raise ValueError("the run recorded no iterations")
    start = seg[:, 0]
    arr = np.asarray(eng.arr, float)[measured]
    first = np.asarray(eng.t_first, float)[measured]
    done = np.asarray(eng.t_done, float)[measured]
    inv_gaps = 1.0 / np.maximum(output_tokens[measured] - 1, 1).astype(float)
    inv_gaps = np.where(output_tokens[measured] > 1, inv_gaps, 0.0)
    # requests in their TTFT window when a segment starts: arrived at or before it, first token after it
    w_ttft = _count_le(arr, start) - _count_le(first, start)
    w_tpot = _weight_le(first, inv_gaps, start) - _weight_le(done, inv_gaps, start)
    weights = np.stack([w_ttft, w_tpot], axis=1)
    is_decode = seg[:, 3] == SEG_DECODE
    dec = seg[is_decode]
    b, n, s0 = dec[:, 4], dec[:, 5], dec[:, 6]
    x = n * s0 + b * n * (n - 1) / 2.0
    ub, inverse = np.unique(b, return_inverse=True)
    wd = weights[is_decode]
    decode_n = np.zeros((ub.size, 2))
    decode_x = np.zeros((ub.size, 2))
    np.add.at(decode_n, inverse, wd * n[:, None])
    np.add.at(decode_x, inverse, wd * x[:, None])
    it = seg[~is_decode]
    shapes = np.column_stack([it[:, 7], it[:, 8], it[:, 9], it[:, 10], it[:, 11], it[:, 12], it[:, 4], it[:, 6]])
    if shapes.size:
        ushapes, inv = np.unique(shapes, axis=0, return_inverse=True)
        chunk_w = np.zeros((ushapes.shape[0], 2))
        np.add.at(chunk_w, inv.ravel(), weights[~is_decode])
    else:
        ushapes, chunk_w = np.zeros((0, 8)), np.zeros((0, 2))
    return RowFeatures(ub, decode_n, decode_x, ushapes, chunk_w, int(measured.sum()))


def _count_le(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many `times` are <= each value of `at`."""
    return np.searchsorted(np.sort(times), at, side="right").astype(float)


def _weight_le(times: np.ndarray, weights: np.ndarray, at: np.ndarray) -> np.ndarray:
    order = np.argsort(times)
    cum = np.concatenate([[0.0], np.cumsum(weights[order])])
    return cum[np.searchsorted(times[order], at, side="right")]
