"""Fit a stack's parameters to measured serving benchmarks (`splitplan calibrate --serving`).

Each measured row is simulated once as the closed-loop benchmark it describes (apps/benchmark.py); the
run gives mean TTFT and TPOT as weighted sums of iteration times (apps/serving_features.py), so a
parameter vector is scored by evaluating the performance model on recorded iteration shapes, per
instance at once, without simulating again. The fit is least squares on log errors (relative: a 20 ms
TPOT and a 30 s TTFT count alike), with a robust loss for the few rows no model explains.

Kernel efficiencies start from the architecture's measured kernels (profiles/kernels.yaml) and are held
near them by a prior (a log-normal penalty of PRIOR_SIGMA): an engine's kernels differ from cuBLAS and
FlashAttention benchmarks by tens of percent, not by factors, and the prior keeps a parameter the data
cannot see (say FP8 GEMMs for an engine measured in BF16 only) at its physical value. Host-side costs
(per iteration, per sequence, per request) have no prior inside their bounds: they are the stack.

Rows of dense and mixture-of-experts models fit in two stages (the default): FIT_PARAMS on the
dense rows alone, then the grouped-GEMM parameters and the routers' skew (moe_*) on the MoE rows with the dense ones fixed,
so adding MoE rows cannot move a dense model's predictions. A joint fit of everything on all rows is
`staged=False` (docs/stacks.md compares the two).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.serving.params import SPECS, StackParams

DENSE_KERNEL_PARAMS = ("eta_c_bf16", "eta_c_fp8", "eta_c_wo", "eta_m", "eta_fa", "eta_kv", "gemm_t0_us", "ar_alpha_us")
# grouped expert GEMMs: fitted only on data with MoE rows whose experts run in that compute dtype (fit_params_for)
MOE_KERNEL_PARAMS = ("moe_eta_c_bf16", "moe_eta_c_fp8", "moe_eta_c_wo", "moe_eta_m", "moe_t0_us")
KERNEL_PARAMS = DENSE_KERNEL_PARAMS + MOE_KERNEL_PARAMS
# how skewed the routers of the MoE rows are (ops_moe): no prior (no measurement of it), fitted with MoE rows
MOE_ROUTING_PARAMS = ("moe_routing_cv",)
# a fit starts a parameter here when its base value is at the lower bound, where its gradient vanishes
# (the touched-experts count depends on cv^2)
FIT_START = {"moe_routing_cv": 1.0}
HOST_PARAMS = ("step_ms", "seq_us", "api_ms", "prompt_token_us")
FIT_PARAMS = DENSE_KERNEL_PARAMS + HOST_PARAMS  # what every fit moves; fit_params_for adds what MoE rows see
PRIOR_SIGMA = 0.15  # log-normal width of the prior on kernel efficiencies and floors
TTFT_WEIGHT = 0.6  # TTFT residuals count less: they carry queueing the model reproduces less exactly
F_SCALE = 0.10  # robust loss: residuals beyond ~10% count linearly, not quadratically
CAP_MOE_ETA_M = True  # staged fits: moe_eta_m <= the dense stage's eta_m (_fit_staged)


@dataclass
class FitRow:
    """One measured row ready to fit: its instance, iteration features and the measured means."""

    index: int
    instance: Any  # perf.base.Instance
    scheduling: Any
    features: Any  # RowFeatures
    ttft_ms: float
    tpot_ms: float
    groups: dict[str, str]  # grouping keys for cross-validation


class FitData:
    """All rows' features concatenated per instance, so one model evaluation serves many rows."""

    def __init__(self, rows: list[FitRow]):
        self.rows = rows
        self.n = len(rows)
        by_instance: dict[Any, list[int]] = defaultdict(list)
        for i, row in enumerate(rows):
            by_instance[(row.instance, row.scheduling)].append(i)
        self.blocks = []
        for (instance, scheduling), members in by_instance.items():
            dec_b, dec_n, dec_x, dec_row, ch, ch_w, ch_row = [], [], [], [], [], [], []
            for i in members:
                f = rows[i].features
                scale = 1.0 / max(f.measured, 1)
                dec_b.append(f.decode_b)
                dec_n.append(f.decode_n * scale)
                dec_x.append(f.decode_x * scale)
                dec_row.append(np.full(f.decode_b.size, i))
                ch.append(f.chunks)
                ch_w.append(f.chunk_w * scale)
                ch_row.append(np.full(f.chunks.shape[0], i))
            self.blocks.append((instance, scheduling, np.concatenate(dec_b).astype(float), np.concatenate(dec_n),
                                np.concatenate(dec_x), np.concatenate(dec_row), np.concatenate(ch),
                                np.concatenate(ch_w), np.concatenate(ch_row)))
        self.ttft = np.array([r.ttft_ms for r in rows], float)
        self.tpot = np.array([r.tpot_ms for r in rows], float)

    def predict(self, params_for) -> tuple[np.ndarray, np.ndarray]:
        """(TTFT ms, TPOT ms) of every row; `params_for(instance)` gives the StackParams to use."""
        ttft = np.zeros(self.n)
        tpot = np.zeros(self.n)
        api = np.zeros(self.n)
        for instance, scheduling, b, dn, dx, drow, ch, cw, crow in self.blocks:
            params = params_for(instance)
            perf = AnalyticPerfModel(instance, params, "fit", scheduling)
            if b.size:
                base, per = perf.decode_parts(b)
                total = dn * np.asarray(base, float)[:, None] + dx * float(per)
                ttft += np.bincount(drow, weights=total[:, 0], minlength=self.n)
                tpot += np.bincount(drow, weights=total[:, 1], minlength=self.n)
            if ch.size:
                ms = np.asarray(perf.chunk_ms(*(ch[:, k] for k in range(8))), float)
                ttft += np.bincount(crow, weights=ms * cw[:, 0], minlength=self.n)
                tpot += np.bincount(crow, weights=ms * cw[:, 1], minlength=self.n)
            members = np.unique(np.concatenate([drow, crow])).astype(int)
            api[members] = params.api_ms
        return ttft + api, tpot

    def subset(self, keep: np.ndarray) -> FitData:
        return FitData([r for r, k in zip(self.rows, keep) if k])


def fit_params_for(rows: list[FitRow]) -> tuple[str, ...]:
    """FIT_PARAMS plus the grouped-GEMM parameters the rows can see: MoE rows' expert efficiency in the
    compute dtype their experts run in (weight-only 4-bit experts on Hopper: moe_eta_c_wo), and the expert
    streaming efficiency. Parameters no row exercises stay at the architecture's measured kernels."""
    from splitplan.perf.ops_core import expert_format

    seen: list[str] = []
    for row in rows:
        if not row.instance.model.is_moe:
            continue
        _, dtype, weight_only = expert_format(row.instance)
        name = "moe_eta_c_wo" if weight_only else f"moe_eta_c_{dtype.value}"
        seen += [name, "moe_eta_m", "moe_t0_us", *MOE_ROUTING_PARAMS]
    return FIT_PARAMS + tuple(k for k in MOE_KERNEL_PARAMS + MOE_ROUTING_PARAMS if k in seen)


def _is_moe(data: FitData) -> np.ndarray:
    return np.array([row.instance.model.is_moe for row in data.rows], dtype=bool)


@dataclass(frozen=True)
class FitResult:
    values: dict[str, float]  # fitted parameter values
    at_bound: tuple[str, ...]  # parameters that ended at a bound of their physical range
    cost: float


def fit(data: FitData, base: StackParams, fit_params: tuple[str, ...] | None = None,
        prior: StackParams | None = None, sigma: float = PRIOR_SIGMA, staged: bool = True) -> FitResult:
    """Least-squares fit of `fit_params` (default: fit_params_for the rows; others stay at `base`) on log
    TTFT and TPOT errors. With `staged` and both dense and MoE rows (and no explicit `fit_params`): the
    dense stage, then the MoE stage (module docstring); otherwise one joint fit."""
    moe = _is_moe(data)
    if staged and fit_params is None and moe.any() and not moe.all():
        return _fit_staged(data, moe, base, prior, sigma)
    return _fit_joint(data, base, fit_params or fit_params_for(data.rows), prior, sigma)


def _fit_staged(data: FitData, moe: np.ndarray, base: StackParams, prior: StackParams | None,
                sigma: float) -> FitResult:
    """FIT_PARAMS on the dense rows, then fit_params_for(MoE rows) minus FIT_PARAMS on the MoE rows from
    the dense values. moe_eta_m is held at or below the dense stage's eta_m: a grouped GEMM streams the
    weights of E_l experts in tiles of a few routed rows each, and measured on an H200 it reaches 0.62
    of HBM bandwidth where a dense GEMM reaches 0.85 (docs/kernel-measurements.md)."""
    dense = _fit_joint(data.subset(~moe), base, FIT_PARAMS, prior, sigma)
    moe_data = data.subset(moe)
    moe_params = tuple(k for k in fit_params_for(moe_data.rows) if k not in FIT_PARAMS)
    after_dense = replace(base, **dense.values)
    caps = {"moe_eta_m": dense.values["eta_m"]} if CAP_MOE_ETA_M else {}
    experts = _fit_joint(moe_data, after_dense, moe_params, prior, sigma, caps=caps)
    return FitResult({**dense.values, **experts.values}, dense.at_bound + experts.at_bound,
                     dense.cost + experts.cost)


def _fit_joint(data: FitData, base: StackParams, fit_params: tuple[str, ...], prior: StackParams | None,
               sigma: float, caps: dict[str, float] | None = None) -> FitResult:
    """One least-squares fit of `fit_params` on all of `data`; `caps` lower a parameter's upper bound."""
    prior = prior or base
    lo = np.array([SPECS[k].lo for k in fit_params])
    hi = np.array([min(SPECS[k].hi, (caps or {}).get(k, math.inf)) for k in fit_params])
    start = [FIT_START.get(k, v) if v <= SPECS[k].lo else v for k, v in ((k, getattr(base, k)) for k in fit_params)]
    x0 = np.clip(np.array(start, float), lo + 1e-9 * (hi - lo), hi)
    kernel = np.array([k in KERNEL_PARAMS for k in fit_params])
    prior_x = np.array([max(getattr(prior, k), 1e-6) for k in fit_params])
    log_ttft, log_tpot = np.log(data.ttft), np.log(data.tpot)

    def residuals(x: np.ndarray) -> np.ndarray:
        params = replace(base, **dict(zip(fit_params, map(float, x))))
        ttft, tpot = data.predict(lambda _instance: params)
        r_ttft = TTFT_WEIGHT * (np.log(np.maximum(ttft, 1e-6)) - log_ttft)
        r_tpot = np.log(np.maximum(tpot, 1e-6)) - log_tpot
        r_prior = np.log(np.maximum(x[kernel], 1e-9) / prior_x[kernel]) / sigma * math.sqrt(F_SCALE)
        return np.concatenate([r_tpot, r_ttft, r_prior])

    result = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=F_SCALE, x_scale="jac",
                           diff_step=1e-3, max_nfev=200)
    span = hi - lo
    snapped = [a if v - a <= 1e-6 * w else (b if b - v <= 1e-6 * w else v)
               for v, a, b, w in zip(result.x, lo, hi, span)]  # 4e-8 ms means 0: say so
    values = {k: float(f"{v:.5g}") for k, v in zip(fit_params, snapped)}
    at_bound = tuple(k for k, v, a, b, w in zip(fit_params, result.x, lo, hi, span)
                     if v - a <= 1e-4 * w or b - v <= 1e-4 * w)
    return FitResult(values, at_bound, float(result.cost))


def errors(pred: np.ndarray, meas: np.ndarray) -> dict[str, float]:
    """MAPE, median, P90 and max of |pred/meas - 1| in percent."""
    good = np.isfinite(pred) & np.isfinite(meas) & (meas > 0)
    rel = np.abs(pred[good] / meas[good] - 1.0) * 100.0
    if rel.size == 0:
        return {"rows": 0, "mape": math.nan, "median": math.nan, "p90": math.nan, "max": math.nan}
    return {"rows": int(rel.size), "mape": float(rel.mean()), "median": float(np.median(rel)),
            "p90": float(np.percentile(rel, 90)), "max": float(rel.max())}


_CV: tuple | None = None  # (data, labels, base, fit_params, prior, staged) of the running grouped_cv, for workers


def _fold(label: str) -> tuple[np.ndarray, np.ndarray]:
    """One fold of grouped_cv: fit without the rows of `label`, predict them."""
    data, labels, base, fit_params, prior, staged = _CV
    held = labels == label
    fitted = fit(data.subset(~held), base, fit_params, prior, staged=staged)
    params = replace(base, **fitted.values)
    return data.subset(held).predict(lambda _instance: params)


def grouped_cv(data: FitData, key: str, base: StackParams, fit_params: tuple[str, ...] | None = None,
               prior: StackParams | None = None, workers: int | None = 1,
               staged: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (TTFT, TPOT) of every row: for each value of group `key`, fit (`staged` or joint) on the
    other groups only. Folds are independent fits, run on `workers` processes (the result does not depend
    on how many)."""
    from splitplan.plan.parallel import WorkerPool

    global _CV
    labels = np.array([row.groups[key] for row in data.rows])
    ttft = np.full(data.n, np.nan)
    tpot = np.full(data.n, np.nan)
    folds = [label for label in sorted(set(labels)) if not (labels == label).all()]
    _CV = (data, labels, base, fit_params, prior, staged)
    try:
        with WorkerPool(workers) as pool:
            results = pool.map(_fold, [(label,) for label in folds])
    finally:
        _CV = None
    for label, (t, p) in zip(folds, results):
        held = labels == label
        ttft[held], tpot[held] = t, p
    return ttft, tpot
