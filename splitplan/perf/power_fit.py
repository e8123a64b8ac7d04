"""Fit the power model's weights to measured request power (SplitwiseSim's `average_power` column).

SplitwiseSim's profile carries, for A100 rows only, `average_power` and `peak_power` per request. Their
meaning is undocumented; we read `average_power` as the mean per-GPU draw over the request (prompt
plus decode) as a fraction of TDP, which is what its values suggest (0.43-0.79, lower at higher TP).
We fit `busy_floor`, `power_a_c` and `power_a_m` of power.py so the time-weighted mean of the
predicted prefill and decode power matches it (least squares on log ratios).

A request whose average is within 25% of the GPU's idle fraction is a failed measurement (it ran for
seconds, it cannot have drawn idle power): SplitwiseSim's 8192-token A100 rows read 0.17-0.18.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from splitplan.catalog import Catalog
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.base import Instance
from splitplan.perf.metrics import Errors
from splitplan.serving.params import StackParams
from splitplan.perf.power import phase_power_w
from splitplan.perf.profile_io import Profile

POWER_PARAMS = ("busy_floor", "power_a_c", "power_a_m")
BOUNDS = ((0.0, 0.0, 0.0), (1.0, 5.0, 5.0))
IDLE_MARGIN = 1.25  # averages below 1.25 x the idle fraction are failed measurements


def power_rows(profile: Profile, catalog: Catalog, gpu: str) -> pd.DataFrame:
    """Per-configuration median average_power of one GPU's uncapped rows (plausible ones only)."""
    raw = profile.raw
    if profile.fmt != "splitwisesim" or "average_power" not in raw.columns:
        return pd.DataFrame()
    frame = raw.assign(average_power=pd.to_numeric(raw["average_power"], errors="coerce"))
    keep = []
    for hw in frame["hardware"].astype(str).str.strip().str.lower().unique():
        try:
            machine = catalog.machine(hw)
        except Exception:  # a GPU name or unknown: the timing fit already reported it
            continue
        if machine.gpu == gpu and not machine.is_power_capped:
            keep.append(hw)
    frame = frame[frame["hardware"].astype(str).str.strip().str.lower().isin(keep)]
    idle_fraction = catalog.gpu(gpu).idle_w / catalog.gpu(gpu).tdp_w
    frame = frame[frame["average_power"] > IDLE_MARGIN * idle_fraction]
    if frame.empty:
        return frame
    keys = ["model", "hardware", "tensor_parallel", "prompt_size", "batch_size", "token_size"]
    return frame.groupby(keys)["average_power"].median().reset_index()


def predicted_average_fraction(params: StackParams, rows: pd.DataFrame, catalog: Catalog) -> np.ndarray:
    """Time-weighted mean per-GPU power over prompt + decode of each row, as a fraction of TDP."""
    out = []
    for r in rows.itertuples(index=False):
        machine = catalog.machine(r.hardware)
        inst = Instance(catalog.model(r.model), machine, catalog.gpu_of(machine), int(r.tensor_parallel))
        perf = AnalyticPerfModel(inst, params, "fit")
        b, s, n = float(r.batch_size), float(r.prompt_size), float(r.token_size)
        prefill_ms = float(perf.prefill_ms(b, b * s, b * s * s))
        decode_ms = float(perf.decode_ms(b, b * (s + n / 2))) * max(n - 1, 0)
        watts = (phase_power_w(perf, "prefill", int(b), b * s) * prefill_ms
                 + phase_power_w(perf, "decode", int(b), b * (s + n / 2)) * decode_ms) / (prefill_ms + decode_ms)
        out.append(watts / inst.tp / inst.gpu.tdp_w)
    return np.array(out)


def fit_power(params: StackParams, rows: pd.DataFrame, catalog: Catalog) -> tuple[StackParams, Errors, Errors]:
    """(params with fitted power weights, errors before, errors after) on the rows' average power."""
    measured = rows["average_power"].to_numpy(float)
    before = Errors.of(predicted_average_fraction(params, rows, catalog), measured)

    def residuals(x: np.ndarray) -> np.ndarray:
        trial = replace(params, **dict(zip(POWER_PARAMS, map(float, x))))
        return np.log(predicted_average_fraction(trial, rows, catalog) / measured)

    x0 = np.clip([getattr(params, k) for k in POWER_PARAMS], BOUNDS[0], BOUNDS[1])
    result = least_squares(residuals, x0, bounds=BOUNDS)
    fitted = replace(params, **{k: float(f"{v:.4g}") for k, v in zip(POWER_PARAMS, result.x)})
    after = Errors.of(predicted_average_fraction(fitted, rows, catalog), measured)
    return fitted, before, after
