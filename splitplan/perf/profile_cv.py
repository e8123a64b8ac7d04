"""Cross-validation of a calibration on a measured profile: hold data out, refit, predict it.

Why: a fit's in-sample error says how flexible the model is, not how well it predicts what it has not
seen. A random row split of SplitwiseSim's profile says little more, because every configuration is
measured 5 times: a held-out row's 4 siblings stay in training. So the schemes here hold out whole
groups of rows, per GPU (parameters are fitted per GPU architecture):

- "grouped": one measured configuration (model, hardware, tp, prompt_size, batch_size) per fold,
  with all its repetitions (and, for the decode rows, all its output lengths);
- "leave_one_tp_out": one tensor-parallel degree per fold (extrapolation in TP);
- "leave_one_model_out": one model per fold (e.g. BLOOM-176B predicted from Llama2-70B fits).

Each fold refits from the same starting point as the full calibration (the architecture's kernels),
never from the full-data solution, so no held-out row influences its own prediction.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from splitplan.catalog import Catalog
from splitplan.perf.calibrate import base_params, fit_gpu, predict_with
from splitplan.perf.metrics import Errors
from splitplan.perf.profile_rows import CONFIG_KEYS

SCHEMES = ("grouped", "leave_one_tp_out", "leave_one_model_out")
SCHEME_TITLES = {"grouped": "whole-configuration groups", "leave_one_tp_out": "leave one TP degree out",
                 "leave_one_model_out": "leave one model out"}


@dataclass(frozen=True)
class Fold:
    """One held-out group of one GPU's rows: `test` is a boolean mask over those rows."""

    gpu: str
    name: str
    test: np.ndarray


def config_labels(rows: pd.DataFrame) -> pd.Series:
    """The measured configuration of each row, as one string per CONFIG_KEYS tuple."""
    return rows[list(CONFIG_KEYS)].astype(str).agg("/".join, axis=1)


def folds(rows: pd.DataFrame, scheme: str) -> Iterator[Fold]:
    """The folds of `scheme` over `rows` (all GPUs; each fold holds out rows of one GPU only)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r} (valid: {', '.join(SCHEMES)})")
    column = {"grouped": None, "leave_one_tp_out": "tp", "leave_one_model_out": "model"}[scheme]
    for gpu in sorted(rows["gpu"].unique()):
        mine = (rows["gpu"] == gpu).to_numpy()
        labels = config_labels(rows) if column is None else rows[column].astype(str)
        values = sorted(labels[mine].unique())
        if len(values) < 2:
            continue  # nothing would be left to train on
        for value in values:
            yield Fold(gpu, f"{column or 'config'}={value}", mine & (labels == value).to_numpy())


def training_rows(rows: pd.DataFrame, fold: Fold) -> pd.DataFrame:
    """What a fold trains on: the fold's GPU, minus its held-out rows."""
    return rows[(rows["gpu"] == fold.gpu).to_numpy() & ~fold.test].reset_index(drop=True)


FitFn = Callable[[pd.DataFrame, Catalog, str], object]  # (training rows, catalog, gpu) -> StackParams


def _fit(train: pd.DataFrame, catalog: Catalog, gpu: str):
    return fit_gpu(train, catalog, base=base_params(gpu, catalog))


def _run_fold(args) -> np.ndarray:
    rows, fold, catalog, fit = args
    params = fit(training_rows(rows, fold), catalog, fold.gpu)
    return predict_with(params, rows[fold.test].reset_index(drop=True), catalog, apply_cap=False)


@dataclass(frozen=True)
class CrossValidation:
    """Held-out predictions of one scheme: `pred[i]` is row i predicted by a fit that never saw it."""

    scheme: str
    rows: pd.DataFrame
    pred: np.ndarray
    folds: tuple[Fold, ...]

    def errors(self, by: tuple[str, ...] = ("gpu", "phase")) -> dict[tuple, Errors]:
        """Errors of the held-out predictions per group of `by` columns."""
        out: dict[tuple, Errors] = {}
        done = ~np.isnan(self.pred)
        for key, group in self.rows[done].groupby(list(by), sort=True):
            idx = group.index.to_numpy()
            out[key if isinstance(key, tuple) else (key,)] = Errors.of(self.pred[idx], group["time_ms"].to_numpy(float))
        return out


def cross_validate(rows: pd.DataFrame, catalog: Catalog, scheme: str = "grouped", *, workers: int | None = None,
                   fit: FitFn = _fit) -> CrossValidation:
    """Refit without each fold of `scheme`, predict the fold. `rows` as calibrate() fits them (index
    0..n-1); `workers` processes (default: the CPU count; 1 = in this process); `fit` is replaceable
    (tests use it to see what each fold trained on)."""
    rows = rows.reset_index(drop=True)
    todo = list(folds(rows, scheme))
    jobs = [(rows, fold, catalog, fit) for fold in todo]
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            results = list(pool.map(_run_fold, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    else:
        results = [_run_fold(job) for job in jobs]
    pred = np.full(len(rows), np.nan)
    for fold, values in zip(todo, results):
        pred[fold.test] = values
    return CrossValidation(scheme, rows, pred, tuple(todo))


def validation_summary(results: list[CrossValidation]) -> dict[str, dict[str, dict[str, Errors]]]:
    """{gpu: {scheme: {phase: Errors}}}, as write_stack records it."""
    out: dict[str, dict[str, dict[str, Errors]]] = {}
    for result in results:
        for (gpu, phase), e in result.errors().items():
            out.setdefault(gpu, {}).setdefault(result.scheme, {})[phase] = e
    return out
