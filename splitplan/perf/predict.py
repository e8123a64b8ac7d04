"""Predict every row of a measured profile with a PerfModel, and summarize the errors.

Library side of `splitplan predict`: the output keeps the input columns and adds `predicted_ms`
(long format) or `predicted_prompt_ms` and `predicted_token_ms` (SplitwiseSim format). Power-capped
hardware rows are predicted on the capped machine, so the cap model is checked too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from splitplan.catalog import Catalog
from splitplan.perf.base import PerfSettings
from splitplan.perf.build import build_perf_model
from splitplan.perf.calibrate import Errors, gpu_rows
from splitplan.perf.profile_io import Profile


@dataclass(frozen=True)
class PredictionSummary:
    """Errors per (hardware as written in the file, phase) and the provenance of the models used."""

    errors: dict[tuple[str, str], Errors]
    provenance: dict[str, str]


def predict_rows(profile: Profile, catalog: Catalog, settings: PerfSettings) -> tuple[np.ndarray, list[str]]:
    """Predicted ms of each normalized row, and the provenance of each (model, hardware, tp) used."""
    rows = gpu_rows(profile.rows, catalog, include_capped=True, source=profile.path).reset_index(drop=True)
    pred = np.empty(len(rows))
    provenance: dict[str, str] = {}
    for (model, machine, hardware, tp), group in rows.groupby(["model", "machine", "hardware", "tp"], sort=False):
        perf = build_perf_model(model, machine, int(tp), settings, catalog)
        provenance[f"{model}/{hardware}/tp{int(tp)}"] = perf.provenance
        b = group["batch_size"].to_numpy(float)
        p = group["prompt_tokens"].to_numpy(float)
        c = group["context_tokens"].to_numpy(float)
        is_prefill = (group["phase"] == "prefill").to_numpy()
        out = np.where(is_prefill, perf.prefill_ms(b, b * p, b * p * p), perf.decode_ms(b, b * c))
        pred[group.index.to_numpy()] = np.asarray(out, float)
    return pred, [f"{k}: {v}" for k, v in provenance.items()]


def predict_profile(profile: Profile, catalog: Catalog, settings: PerfSettings) -> tuple[pd.DataFrame, PredictionSummary]:
    """The input table with predictions appended, and errors per (hardware, phase)."""
    rows = profile.rows.reset_index(drop=True)
    pred, provenance = predict_rows(profile, catalog, settings)
    out = profile.raw.copy()
    if profile.fmt == "splitwisesim":
        n = len(out)
        out["predicted_prompt_ms"] = np.round(pred[:n], 4)
        out["predicted_token_ms"] = np.round(pred[n:], 4)
    else:
        out["predicted_ms"] = np.round(pred, 4)
    errors: dict[tuple[str, str], Errors] = {}
    for (hardware, phase), group in rows.groupby(["hardware", "phase"], sort=True):
        idx = group.index.to_numpy()
        errors[(hardware, phase)] = Errors.of(pred[idx], group["time_ms"].to_numpy(float))
    return out, PredictionSummary(errors=errors, provenance=dict(p.split(": ", 1) for p in provenance))
