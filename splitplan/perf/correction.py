"""Stack-efficiency curves: the measured-versus-roofline factor as a smooth function of batch size.

A serving stack's kernels do not reach a constant fraction of the roofline: cuBLAS picks different
tiles as the token count M grows, wave quantization and padding come and go, the allocator and CPU
side scale with the batch. performance-model.md §7.1 suggests an "M-indexed efficiency table,
interpolated in log M" for exactly this; we fit one factor curve per (GPU, TP, phase) on what the
physics fit leaves unexplained: prefill over log2(batch tokens), decode over log2(batch size).

The curve is piece-wise linear in log2(x) through knots at powers of two, clamped (constant) beyond
the end knots so that it never extrapolates a trend, and fitted by least squares on log residuals
with a second-difference smoothness penalty and Huber re-weighting (one anomalous row does not bend
it). A TP degree without its own curve uses the curves of its neighbours, interpolated in log2(tp).
Decode curves depend on the batch size only, so a decode step stays exactly linear in the context.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable

import numpy as np

Knots = tuple[tuple[float, float], ...]  # ((x, factor), ...) with x ascending
PerTp = tuple[tuple[int | str, Knots], ...]  # ((tp or "model@tp", knots), ...)

SMOOTHNESS = 0.3  # weight of the second-difference penalty (in log-factor units)
HUBER_DELTA = 0.10  # residuals beyond 10% get down-weighted


class FactorCurve:
    """factor(x): piece-wise linear in log2(x) through knots, constant beyond the ends."""

    def __init__(self, knots: Knots):
        self.lx = [math.log2(x) for x, _ in knots]
        self.f = [float(f) for _, f in knots]
        self._alx = np.asarray(self.lx)
        self._af = np.asarray(self.f)

    def __call__(self, x):
        if isinstance(x, np.ndarray):
            return np.interp(np.log2(np.maximum(x.astype(float), 1e-9)), self._alx, self._af)
        lx = math.log2(x) if x > 0 else -30.0
        xs, fs = self.lx, self.f
        if lx <= xs[0]:
            return fs[0]
        if lx >= xs[-1]:
            return fs[-1]
        i = bisect_right(xs, lx) - 1
        return fs[i] + (lx - xs[i]) * (fs[i + 1] - fs[i]) / (xs[i + 1] - xs[i])


def model_key(model: str, tp: int) -> str:
    return f"{model}@{int(tp)}"


def knots_for_tp(per_tp: PerTp, tp: int, model: str = "") -> Knots:
    """The model's own knots at `tp` if fitted, else the all-model knots of `tp`, else the
    log2(tp)-interpolation of the neighbouring TP degrees' curves."""
    if not per_tp:
        return ()
    own = dict(per_tp).get(model_key(model, tp))
    if own:
        return own
    table = {k: v for k, v in per_tp if isinstance(k, int)}
    if not table:
        return ()
    if tp in table:
        return table[tp]
    tps = sorted(table)
    lower = [t for t in tps if t < tp]
    upper = [t for t in tps if t > tp]
    if not lower or not upper:
        return table[lower[-1] if lower else upper[0]]
    a, b = lower[-1], upper[0]
    w = (math.log2(tp) - math.log2(a)) / (math.log2(b) - math.log2(a))
    xs = sorted({x for x, _ in table[a]} | {x for x, _ in table[b]})
    ca, cb = FactorCurve(table[a]), FactorCurve(table[b])
    return tuple((x, (1 - w) * ca(x) + w * cb(x)) for x in xs)


GRID = 9  # points per knot interval checked for a dip of factor x time


def enforce_monotone(knots: Knots, physics_ms: tuple[Callable[[np.ndarray], np.ndarray], ...] = ()) -> Knots:
    """Lower earlier knots until factor(x) * physics_ms(x) never decreases in x (a bigger batch never
    gets faster). With no physics (a curve shared by models of different shapes) the factor itself is
    made non-decreasing, which keeps every model's time monotone. Several physics curves (workload
    shapes) may be given; the product must be monotone for each. Lowering, not raising, keeps the fit
    at large batches, where the time and the planner's interest are."""
    if len(knots) < 2:
        return knots
    xs = np.array([x for x, _ in knots], float)
    fs = np.array([f for _, f in knots], float)
    lx = np.log2(xs)
    for k in range(len(xs) - 2, -1, -1):
        grid = 2.0 ** np.linspace(lx[k], lx[k + 1], GRID)
        phys = np.array([f(grid) for f in physics_ms]) if physics_ms else np.ones((1, GRID))
        w = np.linspace(0.0, 1.0, GRID)
        for _ in range(400):
            total = ((1 - w) * fs[k] + w * fs[k + 1]) * phys
            if np.all(np.diff(total, axis=1) >= -1e-12 * total[:, :-1]):
                break
            fs[k] *= 0.995
    return tuple((float(x), float(f"{f:.5g}")) for x, f in zip(xs, fs))


def power_of_two_knots(x: np.ndarray) -> np.ndarray:
    """Knots at the powers of two spanning the data."""
    lo = math.floor(math.log2(max(float(np.min(x)), 1.0)))
    hi = math.ceil(math.log2(max(float(np.max(x)), 1.0)))
    return 2.0 ** np.arange(lo, max(hi, lo + 1) + 1)


def fit_knots(x: np.ndarray, log_residual: np.ndarray) -> Knots:
    """Knots (x, factor) minimizing the smoothed, Huber-weighted squared log residual of factor(x)."""
    x = np.asarray(x, float)
    r = np.asarray(log_residual, float)
    knots = power_of_two_knots(x)
    lk = np.log2(knots)
    lx = np.clip(np.log2(x), lk[0], lk[-1])
    k = len(knots)
    design = np.zeros((len(x), k))
    idx = np.clip(np.searchsorted(lk, lx, side="right") - 1, 0, k - 2)
    w = (lx - lk[idx]) / (lk[idx + 1] - lk[idx])
    design[np.arange(len(x)), idx] = 1 - w
    design[np.arange(len(x)), idx + 1] = w
    penalty = np.zeros((max(k - 2, 0), k))
    for i in range(k - 2):
        penalty[i, i:i + 3] = (1.0, -2.0, 1.0)
    used = design.sum(axis=0) > 0
    ridge = np.diag(np.where(used, 1e-3, 1.0))  # knots with no data stay near factor 1
    weights = np.ones(len(x))
    coef = np.zeros(k)
    for _ in range(5):
        sw = np.sqrt(weights)[:, None]
        a = np.vstack([design * sw, SMOOTHNESS * penalty, ridge])
        b = np.concatenate([r * sw[:, 0], np.zeros(len(penalty)), np.zeros(k)])
        coef = np.linalg.lstsq(a, b, rcond=None)[0]
        err = np.abs(design @ coef - r)
        weights = np.where(err <= HUBER_DELTA, 1.0, HUBER_DELTA / np.maximum(err, 1e-12))
    return tuple((float(kx), float(f"{math.exp(c):.5g}")) for kx, c in zip(knots, coef))
