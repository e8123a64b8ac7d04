"""Fit a serving stack's parameters, per GPU architecture, to a measured step-time profile.

The datasheet part (peak FLOP/s, HBM, NVLink, model shapes) stays fixed; only the stack parameters of
FIT_PARAMS move, inside their physical bounds (serving/params.py): GEMM, HBM-streaming and attention
efficiencies, all-reduce latency and its big-iteration regime, the host's kernel-launch and prompt
costs (which overlap the GPU) and its serial per-sequence and per-prompt costs (performance-model.md
§7.2 step 3). Residuals are log(pred/meas), so a 30 ms decode step and a 10 s prompt batch count
equally, with a soft-L1 loss against the odd outlier. The architecture's measured kernels
(profiles/kernels.yaml) are a weak prior on the kernel parameters (PRIOR_WEIGHT): where the data
cannot tell two of them apart (HBM efficiency against all-reduce latency when one TP degree is left
out), the measured kernel value decides rather than an arbitrary corner. A fitted value at a bound is
reported (`GpuFit.at_bound`): the data wanted something the physics does not allow.

Rows of power-capped machines are excluded: SplitwiseSim's pcap rows are synthetic (H100 x 1.30), and
the cap is modelled separately (power.py). The cap exponent k is then set so that the calibrated
H100 model, capped at the catalog's 50% of TDP, is 1.30x slower on the profile's prompts (the paper's
one data point). Power weights are fitted where the profile has measured request power (power_fit.py).
Failed measurements (`anomalous_rows`) are skipped throughout. Cross-validation: profile_cv.py.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import brentq, least_squares

from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.metrics import Errors
from splitplan.perf.power_fit import POWER_PARAMS, fit_power, power_rows
from splitplan.perf.profile_io import Profile
from splitplan.perf.profile_rows import (InstanceRows, anomalous_rows, design, fit_rows, flagged_lines, gpu_rows,
                                         instance_of)
from splitplan.serving.kernels import arch_kernels, gpu_arch
from splitplan.serving.params import SPECS, StackParams

if TYPE_CHECKING:
    from splitplan.serving.stack import Stack

__all__ = ["FIT_PARAMS", "GpuFit", "Errors", "anomalous_rows", "calibrate", "fit_gpu", "flagged_lines", "gpu_rows",
           "instance_of", "predict_with", "write_stack"]

# Fitted parameters (bounds from serving/params.py SPECS); everything else keeps the architecture's kernels.
FIT_PARAMS = ("eta_c_bf16", "smooth_n", "eta_m", "eta_fa", "eta_kv", "ar_alpha_us", "ar_alpha_log2_us",
              "ar_big_tokens", "ar_big_bw_fraction", "launch_us", "prompt_layer_us", "seq_us", "prompt_seq_ms")
# ar_big_bw_fraction 0 means "no second regime"; a fit that wants none ends at the lower bound instead
FIT_BOUNDS: dict[str, tuple[float, float]] = {k: (SPECS[k].lo, SPECS[k].hi) for k in FIT_PARAMS} | {
    "ar_big_bw_fraction": (0.01, 1.0)}
# where the base value is 0 ("off"), the fit starts here
START = {"launch_us": 20.0, "prompt_layer_us": 100.0, "seq_us": 100.0, "prompt_seq_ms": 2.0,
         "ar_big_tokens": 3000.0, "ar_big_bw_fraction": 0.1, "ar_alpha_log2_us": 5.0}
PRIOR_PARAMS = ("eta_c_bf16", "smooth_n", "eta_m", "eta_fa", "eta_kv", "ar_alpha_us")
PRIOR_SIGMA = 0.3  # in log: a factor 1.35 from the measured kernel value is one sigma
PRIOR_WEIGHT = 0.05  # a one-sigma move costs as much as one row 5% off (out of ~800)
LOSS_SCALE = 0.05  # soft-L1: rows more than 5% off count linearly, not quadratically
CAP_TARGET = 1.30  # Splitwise: prompt phase 1.30x slower on a power-capped H100, tokens ~1.0x
CAP_REFERENCE_MACHINE = "dgx-h100-pcap"
AT_BOUND_TOLERANCE = 1e-3  # of the parameter's range


@dataclass(frozen=True)
class GpuFit:
    gpu: str
    params: StackParams
    prefill: Errors
    decode: Errors
    power: Errors | None = None  # average request power, after fitting the power weights (if the profile has it)
    at_bound: tuple[str, ...] = ()  # fitted parameters that ended at a bound of their physical range


def predict_with(params: StackParams, rows: pd.DataFrame, catalog: Catalog, *, apply_cap: bool = True,
                 parts: list[InstanceRows] | None = None) -> np.ndarray:
    """Predicted time (ms) of each normalized row under `params` (vectorized per instance)."""
    pred = np.empty(len(rows))
    for part in parts if parts is not None else design(rows, catalog):
        perf = AnalyticPerfModel(part.instance, params, "fit", apply_cap=apply_cap)
        pred[part.where] = part.predict(perf)
    return pred


def _start(base: StackParams, fit_params: tuple[str, ...]) -> np.ndarray:
    x0 = []
    for k in fit_params:
        lo, hi = FIT_BOUNDS[k]
        value = getattr(base, k)
        x0.append(value if lo < value < hi and value > 0 else START.get(k, lo + 0.1 * (hi - lo)))
    return np.array(x0, float)


def fit_gpu(rows: pd.DataFrame, catalog: Catalog, base: StackParams = StackParams(),
            fit_params: tuple[str, ...] = FIT_PARAMS, x0: np.ndarray | None = None,
            max_nfev: int = 400) -> StackParams:
    """Least-squares fit of `fit_params` on log relative error over the rows of one GPU, with the
    weak prior of PRIOR_PARAMS toward `base` (the architecture's kernels). `x0` warm-starts it."""
    rows = rows.reset_index(drop=True)
    parts = design(rows, catalog)
    meas = np.log(rows["time_ms"].to_numpy(float))
    lo = np.array([FIT_BOUNDS[k][0] for k in fit_params])
    hi = np.array([FIT_BOUNDS[k][1] for k in fit_params])
    margin = 1e-6 * (hi - lo)
    x0 = np.clip(_start(base, fit_params) if x0 is None else np.asarray(x0, float), lo + margin, hi - margin)
    prior = [(i, math.log(getattr(base, k))) for i, k in enumerate(fit_params)
             if k in PRIOR_PARAMS and getattr(base, k) > 0]
    prior_idx = np.array([i for i, _ in prior], int)
    prior_mu = np.array([mu for _, mu in prior])

    def residuals(x: np.ndarray) -> np.ndarray:
        params = replace(base, **dict(zip(fit_params, map(float, x))))
        r = np.log(np.maximum(predict_with(params, rows, catalog, apply_cap=False, parts=parts), 1e-9)) - meas
        if not len(prior_idx):
            return r
        return np.concatenate([r, PRIOR_WEIGHT * (np.log(x[prior_idx]) - prior_mu) / PRIOR_SIGMA])

    result = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=LOSS_SCALE, x_scale="jac", tr_solver="lsmr",
                           max_nfev=max_nfev)
    return replace(base, **dict(zip(fit_params, map(float, result.x))))


def at_bounds(params: StackParams, fit_params: tuple[str, ...] = FIT_PARAMS) -> tuple[str, ...]:
    """The fitted parameters that sit at a bound of their fit range (within AT_BOUND_TOLERANCE)."""
    out = []
    for k in fit_params:
        lo, hi = FIT_BOUNDS[k]
        value = getattr(params, k)
        if min(value - lo, hi - value) <= AT_BOUND_TOLERANCE * (hi - lo):
            out.append(f"{k}={value:.6g} at its {'lower' if value - lo < hi - value else 'upper'} bound")
    return tuple(out)


def fit_cap_exponent(params: StackParams, rows: pd.DataFrame, catalog: Catalog,
                     capped_machine: str = CAP_REFERENCE_MACHINE) -> float:
    """k such that the mean prompt slowdown of `rows` (prefill) on the capped machine is CAP_TARGET."""
    prefill = rows[rows["phase"] == "prefill"].reset_index(drop=True)
    if prefill.empty:
        return params.cap_exponent
    base = predict_with(params, prefill, catalog, apply_cap=False)
    capped_rows = prefill.assign(machine=capped_machine)
    parts = design(capped_rows, catalog)

    def gap(k: float) -> float:
        slow = predict_with(replace(params, cap_exponent=k), capped_rows, catalog, parts=parts) / base
        return float(np.exp(np.mean(np.log(slow)))) - CAP_TARGET

    try:
        return float(brentq(gap, 0.0, SPECS["cap_exponent"].hi, xtol=1e-4))
    except ValueError:  # the cap cannot reach the target (overhead-dominated): use the largest k
        return SPECS["cap_exponent"].hi


def base_params(gpu: str, catalog: Catalog) -> StackParams:
    """What a fit starts from: the GPU architecture's measured kernels (the prior of PRIOR_PARAMS)."""
    return arch_kernels(gpu_arch(catalog.gpu(gpu)))[0]


def calibrate(profile: Profile | None, catalog: Catalog, gpus: tuple[str, ...] = (),
              rows: pd.DataFrame | None = None) -> dict[str, GpuFit]:
    """Fit every GPU of the profile (or only `gpus`); returns the parameters and in-sample errors."""
    if rows is None:
        assert profile is not None
        rows = fit_rows(profile, catalog)
    fits: dict[str, GpuFit] = {}
    for gpu, group in rows.groupby("gpu", sort=True):
        if gpus and gpu not in gpus:
            continue
        group = group.reset_index(drop=True)
        params = fit_gpu(group, catalog, base=base_params(gpu, catalog))
        reference = catalog.machines.get(CAP_REFERENCE_MACHINE)
        if reference is not None and reference.gpu == gpu and reference.is_power_capped:
            # the paper's one cap data point (H100 at 50% TDP: prompts 1.30x) sets k for this GPU
            params = replace(params, cap_exponent=round(fit_cap_exponent(params, group, catalog), 4))
        power = None
        measured_power = power_rows(profile, catalog, gpu) if profile is not None else pd.DataFrame()
        if len(measured_power) >= len(POWER_PARAMS) + 1:
            params, _, power = fit_power(params, measured_power, catalog)
        pred = predict_with(params, group, catalog, apply_cap=False)
        fits[gpu] = GpuFit(gpu, params, *phase_errors(group, pred), power=power, at_bound=at_bounds(params))
    if not fits:
        raise SplitplanError("no uncapped rows to calibrate on", source=profile.path if profile else None)
    return fits


def phase_errors(rows: pd.DataFrame, pred: np.ndarray) -> tuple[Errors, Errors]:
    is_prefill = (rows["phase"] == "prefill").to_numpy()
    meas = rows["time_ms"].to_numpy(float)
    return Errors.of(pred[is_prefill], meas[is_prefill]), Errors.of(pred[~is_prefill], meas[~is_prefill])


def fitted_ranges(rows: pd.DataFrame) -> dict[str, list[float]]:
    """[low, high] of what the fit saw: batch, prompt and decode-context tokens, TP, iteration tokens."""
    prefill, decode = rows[rows["phase"] == "prefill"], rows[rows["phase"] == "decode"]

    def span(values: pd.Series) -> list[float]:
        return [float(values.min()), float(values.max())] if len(values) else [0.0, 0.0]

    return {"batch": span(rows["batch_size"]), "prompt_tokens": span(prefill["prompt_tokens"]),
            "prefill_tokens": span(prefill["batch_size"] * prefill["prompt_tokens"]),
            "decode_context_tokens": span(decode["context_tokens"]), "tp": span(rows["tp"])}


def _errors_doc(e: Errors) -> dict[str, float]:
    return {"rows": e.n, "mape_percent": round(e.mape, 2), "median_percent": round(e.median, 2),
            "p90_percent": round(e.p90, 2), "max_percent": round(e.max, 2)}


def write_stack(path: str | Path, fits: dict[str, GpuFit], catalog: Catalog, *, base: Stack, name: str,
                description: str, source: str, date: str | None = None, rows: pd.DataFrame | None = None,
                validation: Mapping[str, Any] | None = None) -> None:
    """Write a stack YAML (loadable with --stack): `base`'s engine and scheduling, the fitted values of
    each GPU's architecture under `arch:`, the ranges fitted (from `rows`), the in-sample errors and,
    when given, the cross-validation figures (`validation`: {gpu: {scheme: {phase: Errors}}})."""
    date = date or _dt.date.today().isoformat()
    keys = (*FIT_PARAMS, "cap_exponent")
    arch: dict[str, dict] = {}
    accuracy: dict[str, dict] = {}
    for gpu, fit in fits.items():
        values = {k: _round(getattr(fit.params, k)) for k in keys}
        if fit.power:
            values |= {k: _round(getattr(fit.params, k)) for k in POWER_PARAMS}
        arch[gpu_arch(catalog.gpu(gpu))] = values
        entry: dict[str, Any] = {"in_sample": {"prefill": _errors_doc(fit.prefill), "decode": _errors_doc(fit.decode)}}
        for scheme, phases in (validation or {}).get(gpu, {}).items():
            entry[scheme] = {phase: _errors_doc(e) for phase, e in phases.items()}
        entry["params_at_bound"] = list(fit.at_bound)
        accuracy[gpu] = entry
    sched = base.scheduling
    fitted: dict[str, Any] = {"data": source, "date": date, "archs": sorted(arch)}
    if rows is not None:
        fitted["ranges"] = fitted_ranges(rows)
    fitted["accuracy"] = accuracy
    doc = {
        "name": name, "engine": base.engine, "versions": base.versions, "description": description,
        "scheduling": {"policy": sched.policy.value, "max_batched_tokens": sched.max_batched_tokens,
                       "max_seqs": sched.max_seqs, "kv_policy": sched.kv_policy.value,
                       "block_tokens": sched.block_tokens, "memory_fraction": sched.memory_fraction,
                       "memory_basis": sched.memory_basis.value, "fp8_weights_kv": sched.fp8_weights_kv.value,
                       "reserve_gb": sched.reserve_gb},
        "params": dict(base.params),
        "arch": arch,
        "fitted": fitted,
    }
    header = (f"# {description}\n# Fitted {date} by `splitplan calibrate` on {source}.\n"
              "# Parameters not listed keep the architecture's kernels (profiles/kernels.yaml); units and bounds:\n"
              "# splitplan/serving/params.py. fitted.accuracy: in-sample and cross-validated errors (profile_cv.py).\n")
    Path(path).write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120))


def _round(value: float) -> float:
    return float(f"{value:.6g}")
