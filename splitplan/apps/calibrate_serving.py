"""`splitplan calibrate --serving ROWS.csv`: fit serving stacks on measured end-to-end benchmarks.

Rows are grouped by engine; each engine's rows fit that engine's stack (the bundled one as the base,
whose scheduling defaults and policy stay as they are). Every row is simulated once with its iteration
shapes recorded; the fit and the grouped cross-validation then evaluate the performance model on those
shapes only (apps/serving_fit.py). Cross-validation holds out whole configurations (model, weights, tp,
isl, osl: every concurrency of one curve together), or one TP degree, or one (isl, osl) pair, at a
time, and refits on the rest: never a random split of rows.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from splitplan.apps.benchmark import measured_mask, request_sizes
from splitplan.apps.benchmark_rows import INFERENCEX, RowJob, plan_row
from splitplan.apps.serving_features import row_features
from splitplan.apps.serving_fit import FIT_PARAMS, FitData, FitRow, errors, fit, grouped_cv
from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError
from splitplan.serving.kernels import arch_kernels, gpu_arch
from splitplan.serving.stack import Stack, closest_stack, get_stack

CV_KEYS = ("config", "tp", "isl_osl")


@dataclass
class EngineCalibration:
    engine: str
    stack: Stack
    arch: str
    values: dict[str, float]
    at_bound: tuple[str, ...]
    data: FitData
    in_sample: dict[str, dict[str, float]]
    cv: dict[str, dict[str, dict[str, float]]]  # key -> metric -> errors
    refused: int


def _groups(row: dict[str, Any]) -> dict[str, str]:
    tp = str(row.get("tp", ""))
    shape = f"{row.get('isl')}/{row.get('osl')}"
    return {"config": f"{row.get('model')}|{row.get('weights')}|tp{tp}|{shape}", "tp": tp, "isl_osl": shape,
            "model": str(row.get("model"))}


def _simulate(job: RowJob, catalog: Catalog):
    """Worker task: the row's simulated features (or None when the row is refused or fails)."""
    from splitplan.apps.benchmark import run_benchmark

    if job.config is None:
        return None
    try:
        result = run_benchmark(job.config, catalog, record_segments=True)
    except SplitplanError:
        return None
    eng = result["_engine"]
    _, output = request_sizes(job.config)
    keep = measured_mask(len(output), job.config.protocol.warmup_requests(job.config.concurrency))
    perf = eng.insts[0].perf
    return perf.instance, perf.scheduling, row_features(eng, output, keep)


_CATALOG: Catalog | None = None


def _task(job: RowJob):
    return _simulate(job, _CATALOG)


def prepare(frame: pd.DataFrame, catalog: Catalog, stack: Stack, protocol=INFERENCEX,
            workers: int | None = None) -> tuple[list[FitRow], int]:
    """Simulate every modelable row with measured TTFT and TPOT once; (rows ready to fit, refused)."""
    from splitplan.plan.parallel import WorkerPool

    global _CATALOG
    _CATALOG = catalog
    records = frame.to_dict("records")
    jobs = [plan_row(i, row, catalog, stack, protocol) for i, row in enumerate(records)]
    with WorkerPool(workers) as pool:
        outputs = pool.map(_task, [(job,) for job in jobs])
    rows, refused = [], 0
    for job, out, record in zip(jobs, outputs, records):
        ttft, tpot = pd.to_numeric(pd.Series([record.get("ttft_ms"), record.get("tpot_ms")]), errors="coerce")
        if out is None or not (np.isfinite(ttft) and np.isfinite(tpot)) or ttft <= 0 or tpot <= 0:
            refused += 1
            continue
        instance, scheduling, features = out
        rows.append(FitRow(job.index, instance, scheduling, features, float(ttft), float(tpot), _groups(record)))
    return rows, refused


def calibrate_engine(frame: pd.DataFrame, catalog: Catalog, engine: str, *, base_stack: Stack | None = None,
                     protocol=INFERENCEX, workers: int | None = None, cv: bool = True,
                     rounds: int = 1) -> EngineCalibration:
    """Fit one engine's stack on its rows and cross-validate it. With client delays the iteration
    sequence depends a little on iteration times, so `rounds` > 1 re-simulates with the fitted values."""
    engine_rows = frame[frame["engine"].astype(str).str.strip().str.lower() == engine]
    if engine_rows.empty:
        raise SplitplanError(f"no rows for engine '{engine}'", field="engine")
    stack = base_stack or closest_stack(engine, "")[0]
    rows, refused = prepare(engine_rows, catalog, stack, protocol, workers)
    if len(rows) < len(FIT_PARAMS) + 2:
        raise SplitplanError(f"only {len(rows)} modelable rows with measured TTFT and TPOT for '{engine}'; "
                             f"a fit of {len(FIT_PARAMS)} parameters needs more", field="engine")
    archs = {gpu_arch(r.instance.gpu) for r in rows}
    if len(archs) != 1:
        raise SplitplanError(f"rows of '{engine}' mix GPU architectures ({', '.join(sorted(archs))}); "
                             "calibrate one architecture at a time", field="gpu")
    arch = archs.pop()
    kernels, _ = arch_kernels(arch)
    base = kernels.with_values(stack.params)
    data = FitData(rows)
    result = fit(data, base, prior=kernels)
    for _ in range(rounds - 1):
        trial = replace(stack, arch_params={**stack.arch_params, arch: result.values})
        rows, refused = prepare(engine_rows, catalog, trial, protocol, workers)
        data = FitData(rows)
        result = fit(data, replace(base, **result.values), prior=kernels)
    params = replace(base, **result.values)
    ttft, tpot = data.predict(lambda _instance: params)
    in_sample = {"ttft": errors(ttft, data.ttft), "tpot": errors(tpot, data.tpot)}
    cv_errors: dict[str, dict[str, dict[str, float]]] = {}
    if cv:
        for key in CV_KEYS:
            t, p = grouped_cv(data, key, base, prior=kernels)
            cv_errors[key] = {"ttft": errors(t, data.ttft), "tpot": errors(p, data.tpot)}
    return EngineCalibration(engine, stack, arch, result.values, result.at_bound, data, in_sample, cv_errors, refused)


def write_stack_file(path: str | Path, cal: EngineCalibration, source: str, date: str | None = None) -> None:
    """The engine's stack YAML with the fitted values under arch: and the fit's provenance and accuracy."""
    date = date or _dt.date.today().isoformat()
    stack = cal.stack
    data = yaml.safe_load(Path(stack.source).read_text()) if Path(stack.source).is_file() else {}
    rows = [r.instance for r in cal.data.rows]
    tps = [i.tp for i in rows]
    ranges = {"tp": [min(tps), max(tps)]}
    data["arch"] = {**(data.get("arch") or {}), cal.arch: cal.values}
    data["fitted"] = {
        "data": source, "date": date, "archs": sorted({*stack.fitted.archs, cal.arch}),
        "ranges": ranges | _ranges(cal),
        "accuracy": {"rows": len(cal.data.rows), "in_sample": _round(cal.in_sample),
                     "held_out": {k: _round(v) for k, v in cal.cv.items()},
                     "at_bound": list(cal.at_bound)},
    }
    header = "".join(line + "\n" for line in Path(stack.source).read_text().splitlines() if line.startswith("#")) \
        if Path(stack.source).is_file() else ""
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120))


def _ranges(cal: EngineCalibration) -> dict[str, list[float]]:
    labels = [r.groups["isl_osl"].split("/") for r in cal.data.rows]
    isl = [float(a) for a, _ in labels]
    osl = [float(b) for _, b in labels]
    return {"isl": [min(isl), max(isl)], "osl": [min(osl), max(osl)]}


def _round(errs: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {metric: {k: (round(v, 2) if isinstance(v, float) else v) for k, v in e.items()} for metric, e in errs.items()}
