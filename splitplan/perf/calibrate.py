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
from splitplan.serving.stack import Stack
from splitplan.perf.metrics import Errors
from splitplan.perf.power_fit import POWER_PARAMS, fit_power, power_rows
from splitplan.perf.profile_io import Profile
from splitplan.serving.kernels import arch_kernels, gpu_arch
from splitplan.serving.params import SPECS, StackParams

# Fitted knobs (bounds from serving/params.py SPECS); everything else keeps the architecture's kernels.
FIT_PARAMS = ("eta_c_bf16", "gemm_m_half", "eta_fa", "fa_s_half", "eta_kv", "ar_alpha_us", "step_ms", "seq_us",
              "prompt_token_us", "prompt_seq_ms")
FIT_BOUNDS: dict[str, tuple[float, float]] = {k: (SPECS[k].lo, SPECS[k].hi) for k in FIT_PARAMS}
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


def instance_of(catalog: Catalog, model: str, machine: str, tp: int) -> Instance:
    mach = catalog.machine(machine)
    return Instance(model=catalog.model(model), machine=mach, gpu=catalog.gpu_of(mach), tp=int(tp))


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
        gpu_spec = catalog.gpu(gpu)
        params = fit_gpu(group, catalog, base=arch_kernels(gpu_arch(gpu_spec))[0])
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


def write_stack(path: str | Path, fits: dict[str, GpuFit], catalog: Catalog, *, base: "Stack", name: str,
                description: str, source: str, date: str | None = None) -> None:
    """Write a stack YAML (loadable with --stack): `base`'s engine and scheduling, the fitted values of
    each GPU's architecture under `arch:`, and the in-sample fit errors."""
    date = date or _dt.date.today().isoformat()
    keys = (*FIT_PARAMS, "cap_exponent")
    arch: dict[str, dict] = {}
    for gpu, fit in fits.items():
        values = {k: _round(getattr(fit.params, k)) for k in keys}
        if fit.power:
            values |= {k: _round(getattr(fit.params, k)) for k in POWER_PARAMS}
        arch[gpu_arch(catalog.gpu(gpu))] = values
    sched = base.scheduling
    doc = {
        "name": name, "engine": base.engine, "versions": base.versions, "description": description,
        "scheduling": {"policy": sched.policy.value, "max_batched_tokens": sched.max_batched_tokens,
                       "max_seqs": sched.max_seqs, "kv_policy": sched.kv_policy.value,
                       "block_tokens": sched.block_tokens, "memory_fraction": sched.memory_fraction,
                       "memory_basis": sched.memory_basis.value, "fp8_weights_kv": sched.fp8_weights_kv.value,
                       "reserve_gb": sched.reserve_gb},
        "params": dict(base.params),
        "arch": arch,
        "fitted": {"data": source, "date": date, "archs": sorted(arch),
                   "accuracy": {gpu: {phase: {"rows": e.n, "mape_percent": round(e.mape, 2), "p90_percent": round(e.p90, 2),
                                              "max_percent": round(e.max, 2), "kind": "in-sample"}
                                      for phase, e in (("prefill", fit.prefill), ("decode", fit.decode))}
                                for gpu, fit in fits.items()}},
    }
    header = (f"# {description}\n# Fitted {date} by `splitplan calibrate` on {source}.\n"
              "# Parameters not listed keep the architecture's kernels (profiles/kernels.yaml).\n")
    Path(path).write_text(header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120))


def _round(value: float) -> float:
    return float(f"{value:.6g}")
