"""Fit the analytic model's stack parameters per GPU type to a measured profile.

The datasheet part (peak FLOP/s, HBM, NVLink, model shapes) stays fixed; only the software-stack knobs
of `StackParams` move: kernel efficiencies, collective latency and bandwidth, CPU-side per-step,
per-sequence and per-token overheads (performance-model.md §7.2 step 3). Residuals are log(pred/meas),
so a 30 ms decode step and a 10 s prompt batch count equally, with a soft-L1 loss so that the few
anomalous rows of SplitwiseSim's table (e.g. A100 TP2 batch 64) do not drag the fit.

Rows of power-capped machines are excluded: SplitwiseSim's pcap rows are synthetic (H100 x 1.30), and
the cap is modelled separately (power.py). The cap exponent k is then set so that the calibrated
H100 model, capped at the catalog's 50% of TDP, is 1.30x slower on the profile's prompts.

Steps per GPU: (1) physics fit of FIT_PARAMS; (2) stack-efficiency curves on what it leaves
(correction.py); (3) the cap exponent (H100 only); (4) power weights where the profile has measured
request power (power_fit.py). Failed measurements (`anomalous_rows`) are skipped throughout.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import brentq, least_squares

from splitplan.catalog import Catalog, Machine
from splitplan.errors import SplitplanError
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.base import Instance
from splitplan.perf.correction import fit_knots, model_key
from splitplan.perf.metrics import Errors
from splitplan.perf.power_fit import POWER_PARAMS, fit_power, power_rows
from splitplan.perf.params import StackParams, curves_to_yaml
from splitplan.perf.profile_io import Profile

# Fitted knobs and their bounds; everything else keeps the spec default.
FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "eta_c": (0.05, 1.0),
    "eta_fa": (0.02, 1.0),
    "eta_m": (0.2, 1.0),
    "eta_kv": (0.01, 1.0),
    "gemm_t0_us": (0.0, 200.0),
    "ar_alpha_us": (0.0, 500.0),
    "ar_alpha_log2_us": (0.0, 500.0),
    "ar_bw_fraction": (0.01, 1.0),
    "step_ms": (0.0, 100.0),
    "step_log2tp_ms": (0.0, 100.0),
    "seq_ms": (0.0, 10.0),
    "seq2_ms": (0.0, 1.0),
    "prompt_seq_ms": (0.0, 200.0),
    "prompt_token_us": (0.0, 500.0),
    "elem_kernels": (0.0, 200.0),
    "l2_mb": (0.0, 200.0),
}
FIT_PARAMS = tuple(FIT_BOUNDS)
CAP_TARGET = 1.30  # Splitwise: prompt phase 1.30x slower on a power-capped H100, tokens ~1.0x
CAP_REFERENCE_MACHINE = "dgx-h100-pcap"


@dataclass(frozen=True)
class GpuFit:
    gpu: str
    params: StackParams
    prefill: Errors
    decode: Errors
    power: Errors | None = None  # average request power, after fitting the power weights (if the profile has it)


ANOMALY_RATIO = 0.5  # a prompt batch faster than half of a batch with fewer tokens is a failed measurement


def anomalous_rows(rows: pd.DataFrame) -> pd.Series:
    """Profile lines whose prompt batch took less than ANOMALY_RATIO x the median of a batch with fewer
    tokens on the same instance (physically impossible; SplitwiseSim's A100/H100 TP2 batch-64 rows).
    Returns a boolean mask over `rows` flagging every normalized row (prefill and decode) of such lines."""
    prefill = rows[rows["phase"] == "prefill"]
    bad_lines: set[tuple] = set()
    for key, group in prefill.groupby(["model", "hardware", "tp"], sort=False):
        tokens = group["batch_size"] * group["prompt_tokens"]
        medians = group.groupby(tokens)["time_ms"].median().sort_index()
        running = medians.cummax().shift(1)
        for x, flagged in ((medians < ANOMALY_RATIO * running) & running.notna()).items():
            if flagged:
                bad_lines |= {(*key, line) for line in group.loc[tokens == x, "row"]}
    keys = list(zip(rows["model"], rows["hardware"], rows["tp"], rows["row"]))
    return pd.Series([k in bad_lines for k in keys], index=rows.index)


def flagged_lines(profile: Profile, catalog: Catalog) -> list[int]:
    """File line numbers (the header is line 1, as in error messages) that calibration skips as failed."""
    rows = gpu_rows(profile.rows, catalog, source=profile.path)
    return sorted({int(r) + 1 for r in rows.loc[anomalous_rows(rows), "row"]})


def gpu_rows(profile_rows: pd.DataFrame, catalog: Catalog, *, include_capped: bool = False,
             source: str | None = None) -> pd.DataFrame:
    """Rows with resolved model, machine and GPU names; a name the catalog does not know is a
    one-line error naming the profile file and column."""
    rows = profile_rows.copy()
    machines: dict[str, Machine] = {}
    for hw in rows["hardware"].unique():
        try:
            machines[hw] = catalog.machine(hw)
        except SplitplanError:
            try:
                gpu = catalog.gpu(hw)  # a GPU name: use the first uncapped machine with it
            except SplitplanError as exc:
                raise SplitplanError(f"'{hw}' is neither a machine nor a GPU of the catalog ({exc.problem})",
                                     source=source, field="hardware") from None
            candidates = [m for m in catalog.machines.values() if m.gpu == gpu.name and not m.is_power_capped]
            if not candidates:
                raise SplitplanError(f"no machine in the catalog has GPU '{gpu.name}'", source=source,
                                     field="hardware") from None
            machines[hw] = candidates[0]
    models = {}
    for name in rows["model"].unique():
        try:
            models[name] = catalog.model(name).name
        except SplitplanError as exc:
            raise SplitplanError(exc.problem, source=source, field="model") from None
    rows["machine"] = rows["hardware"].map(lambda h: machines[h].name)
    rows["capped"] = rows["hardware"].map(lambda h: machines[h].is_power_capped)
    rows["gpu"] = rows["hardware"].map(lambda h: machines[h].gpu)
    rows["model"] = rows["model"].map(models)
    return rows if include_capped else rows[~rows["capped"]]


def instance_of(catalog: Catalog, model: str, machine: str, tp: int, dtype: str = "bf16") -> Instance:
    mach = catalog.machine(machine)
    return Instance(model=catalog.model(model), machine=mach, gpu=catalog.gpu_of(mach), tp=int(tp), dtype=dtype)


def predict_with(params: StackParams, rows: pd.DataFrame, catalog: Catalog, *, apply_cap: bool = True) -> np.ndarray:
    """Predicted time (ms) of each normalized row under `params` (vectorized per instance)."""
    pred = np.empty(len(rows))
    positions = np.arange(len(rows))
    for (model, machine, tp), group in rows.groupby(["model", "machine", "tp"], sort=False):
        perf = AnalyticPerfModel(instance_of(catalog, model, machine, tp), params, "fit", apply_cap=apply_cap)
        where = positions[rows.index.get_indexer(group.index)]
        b = group["batch_size"].to_numpy(float)
        p = group["prompt_tokens"].to_numpy(float)
        c = group["context_tokens"].to_numpy(float)
        is_prefill = (group["phase"] == "prefill").to_numpy()
        out = np.where(is_prefill, perf.prefill_ms(b, b * p, b * p * p), perf.decode_ms(b, b * c))
        pred[where] = out
    return pred


def fit_gpu(rows: pd.DataFrame, catalog: Catalog, base: StackParams = StackParams(),
            fit_params: tuple[str, ...] = FIT_PARAMS) -> StackParams:
    """Least-squares fit of `fit_params` on log relative error over the rows of one GPU."""
    rows = rows.reset_index(drop=True)
    meas = np.log(rows["time_ms"].to_numpy(float))
    lo = np.array([FIT_BOUNDS[k][0] for k in fit_params])
    hi = np.array([FIT_BOUNDS[k][1] for k in fit_params])
    x0 = np.clip(np.array([getattr(base, k) for k in fit_params], float), lo, hi)
    x0 = np.where(x0 <= lo, lo + 1e-3 * (hi - lo), x0)

    def residuals(x: np.ndarray) -> np.ndarray:
        params = replace(base, **dict(zip(fit_params, map(float, x))))
        return np.log(np.maximum(predict_with(params, rows, catalog, apply_cap=False), 1e-9)) - meas

    result = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.05, x_scale="jac",
                           max_nfev=400)
    return replace(base, **dict(zip(fit_params, map(float, result.x))))


def fit_corrections(params: StackParams, rows: pd.DataFrame, catalog: Catalog) -> StackParams:
    """Stack-efficiency curves per (tp, phase), and per (model, tp, phase), on the log residuals of the
    physics fit. They are stored as fitted; each instance makes its curve monotone against its own
    roofline when it is built (analytic.py), so that no model gets faster with a bigger batch."""
    rows = rows.reset_index(drop=True)
    residual = np.log(rows["time_ms"].to_numpy(float)) - np.log(predict_with(params, rows, catalog, apply_cap=False))
    curves: dict[str, list] = {"prefill": [], "decode": []}
    for keys in (["phase", "tp"], ["phase", "tp", "model"]):
        for key, group in rows.groupby(keys, sort=True):
            phase, tp = key[0], int(key[1])
            b = group["batch_size"].to_numpy(float)
            x = b * group["prompt_tokens"].to_numpy(float) if phase == "prefill" else b
            knots = fit_knots(x, residual[group.index.to_numpy()])
            curves[phase].append((tp if len(key) == 2 else model_key(key[2], tp), knots))
    return replace(params, prefill_corr=tuple(curves["prefill"]), decode_corr=tuple(curves["decode"]))


def fit_cap_exponent(params: StackParams, rows: pd.DataFrame, catalog: Catalog,
                     capped_machine: str = CAP_REFERENCE_MACHINE) -> float:
    """k such that the mean prompt slowdown of `rows` (prefill) on the capped machine is CAP_TARGET."""
    prefill = rows[rows["phase"] == "prefill"].copy()
    if prefill.empty:
        return params.cap_exponent
    base = predict_with(params, prefill, catalog, apply_cap=False)
    capped_rows = prefill.assign(machine=capped_machine)

    def gap(k: float) -> float:
        slow = predict_with(replace(params, cap_exponent=k), capped_rows, catalog) / base
        return float(np.exp(np.mean(np.log(slow)))) - CAP_TARGET

    try:
        return float(brentq(gap, 0.0, 5.0, xtol=1e-4))
    except ValueError:  # the cap cannot reach the target (overhead-dominated): use the largest k
        return 5.0


def calibrate(profile: Profile, catalog: Catalog, gpus: tuple[str, ...] = (),
              rows: pd.DataFrame | None = None) -> dict[str, GpuFit]:
    """Fit every GPU of the profile (or only `gpus`); returns the parameters and in-sample errors."""
    if rows is None:
        rows = gpu_rows(profile.rows, catalog, source=profile.path)
        rows = rows[~anomalous_rows(rows)]
    fits: dict[str, GpuFit] = {}
    for gpu, group in rows.groupby("gpu", sort=True):
        if gpus and gpu not in gpus:
            continue
        params = fit_gpu(group, catalog)
        params = fit_corrections(params, group, catalog)
        reference = catalog.machines.get(CAP_REFERENCE_MACHINE)
        if reference is not None and reference.gpu == gpu and reference.is_power_capped:
            # the paper's one cap data point (H100 at 50% TDP: prompts 1.30x) sets k for this GPU
            params = replace(params, cap_exponent=round(fit_cap_exponent(params, group, catalog), 4))
        power = None
        measured_power = power_rows(profile, catalog, gpu) if profile is not None else pd.DataFrame()
        if len(measured_power) >= len(POWER_PARAMS) + 1:
            params, _, power = fit_power(params, measured_power, catalog)
        pred = predict_with(params, group, catalog, apply_cap=False)
        fits[gpu] = GpuFit(gpu, params, *phase_errors(group, pred), power=power)
    if not fits:
        raise SplitplanError("no uncapped rows to calibrate on", source=profile.path)
    return fits


def phase_errors(rows: pd.DataFrame, pred: np.ndarray) -> tuple[Errors, Errors]:
    is_prefill = (rows["phase"] == "prefill").to_numpy()
    meas = rows["time_ms"].to_numpy(float)
    return Errors.of(pred[is_prefill], meas[is_prefill]), Errors.of(pred[~is_prefill], meas[~is_prefill])


def write_calibration(path: str | Path, fits: dict[str, GpuFit], *, name: str, description: str,
                      source: str, date: str | None = None) -> None:
    """Write a calibration YAML (loadable with --calibration) with each GPU's fit errors."""
    date = date or _dt.date.today().isoformat()
    doc = {
        "name": name,
        "description": description,
        "fitted_on": source,
        "fit_date": date,
        "gpus": {gpu: {**{k: _round(getattr(fit.params, k)) for k in (*FIT_PARAMS, "cap_exponent")},
                       **({k: _round(getattr(fit.params, k)) for k in POWER_PARAMS} if fit.power else {}),
                       "prefill_corr": curves_to_yaml(fit.params.prefill_corr),
                       "decode_corr": curves_to_yaml(fit.params.decode_corr)} for gpu, fit in fits.items()},
        "fit_errors_percent": {gpu: {phase: {"rows": e.n, "mape": round(e.mape, 2), "p90": round(e.p90, 2), "max": round(e.max, 2)}
                                     for phase, e in (("prefill", fit.prefill), ("decode", fit.decode))}
                               for gpu, fit in fits.items()},
    }
    power = {gpu: {"rows": fit.power.n, "mape": round(fit.power.mape, 2), "p90": round(fit.power.p90, 2),
                   "max": round(fit.power.max, 2)} for gpu, fit in fits.items() if fit.power}
    if power:
        doc["power_fit_errors_percent"] = power
    header = (f"# {description}\n# Fitted {date} by `splitplan calibrate` on {source}.\n"
              "# Parameters not listed keep the spec defaults of splitplan/perf/params.py.\n")
    Path(path).write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120))


def _round(value: float) -> float:
    return float(f"{value:.6g}")
