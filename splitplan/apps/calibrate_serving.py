"""`splitplan calibrate --serving ROWS.csv`: fit serving stacks on measured end-to-end benchmarks.

Rows are grouped by engine; each engine's rows fit that engine's stack (the bundled one as the base,
whose scheduling defaults and policy stay as they are). Every row is simulated once with its iteration
shapes recorded; the fit and the grouped cross-validation then evaluate the performance model on those
shapes only (apps/serving_fit.py). Cross-validation holds out whole configurations (model, weights, tp,
isl, osl: every concurrency of one curve together), or one TP degree, or one (isl, osl) pair, or one
model, at a time, and refits on the rest: never a random split of rows. Errors are also reported per
model (`per_model`), so an engine's MoE rows are read apart from its dense ones.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from splitplan.apps.benchmark import INFERENCEX, Protocol, measured_mask, request_sizes
from splitplan.apps.benchmark_rows import RowJob, plan_row
from splitplan.apps.serving_features import row_features
from splitplan.apps.serving_fit import FitData, FitRow, errors, fit, fit_params_for, grouped_cv
from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError
from splitplan.serving.kernels import arch_kernels, gpu_arch
from splitplan.serving.stack import Stack, closest_stack, get_stack

CV_KEYS = ("config", "tp", "isl_osl", "model")  # model: leave one model out (dense and MoE rows together)
# The rows do not record the benchmark client's length distribution; these are the two in use (InferenceX's
# client: lengths uniform in [0.8 L, L]; fixed-length sweeps), and calibration keeps the one under which
# the engine's held-out error is lowest.
PROTOCOLS = {"inferencex": Protocol(range_ratio=0.8, warmup=0), "exact": Protocol(range_ratio=1.0, warmup=0)}


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
    protocol: str = "inferencex"
    protocol_scores: dict[str, float] | None = None  # held-out score of each candidate client protocol
    per_model: dict[str, dict[str, dict[str, dict[str, float]]]] | None = None  # grouping -> model -> metric -> errors
    staged: bool = True  # dense rows fitted first, MoE rows then (serving_fit.fit)


def _groups(row: dict[str, Any]) -> dict[str, str]:
    tp = str(row.get("tp", ""))
    shape = f"{row.get('isl')}/{row.get('osl')}"
    return {"config": f"{row.get('model')}|{row.get('weights')}|tp{tp}|{shape}", "tp": tp, "isl_osl": shape,
            "model": str(row.get("model")), "concurrency": str(row.get("concurrency"))}


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


CONFIG_COLUMNS = ("model", "engine", "weights", "moe_weights", "tp", "ep", "attention_dp", "isl", "osl")
TPOT_DROP = 0.6  # a row whose TPOT is 40% below one at fewer clients of the same configuration is flagged


def failed_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows no closed loop can produce, flagged and left out of fits and error tables: in one configuration
    (CONFIG_COLUMNS), a TPOT below TPOT_DROP x the TPOT measured with fewer clients. More clients never make
    a decode step faster (a larger batch reads as many weights and more KV; preemption and queueing do
    not shorten steps). Aggregated rows only. In the H100 rows this flags exactly six gpt-oss-120b vLLM
    rows at 512 clients (TPOT 3.6-5.6 ms against 7.1-16.7 ms at 64 clients of the same configuration;
    TTFT 20-118 s): their means describe some other setup than the closed loop the row names. The set
    is the same for thresholds 0.55-0.6 (0.5: five of them); at 0.7 a 64-client row whose 32-client
    neighbour is the odd one would be flagged too."""
    flagged = np.zeros(len(frame), dtype=bool)
    if not {"tpot_ms", "concurrency"} <= set(frame.columns):
        return flagged
    keys = [c for c in CONFIG_COLUMNS if c in frame.columns]
    tpot = pd.to_numeric(frame["tpot_ms"], errors="coerce").to_numpy(float)
    conc = pd.to_numeric(frame["concurrency"], errors="coerce").to_numpy(float)
    agg = frame["mode"].astype(str).str.strip().str.lower().isin(("agg", "")).to_numpy() if "mode" in frame else \
        np.ones(len(frame), dtype=bool)
    for _, idx in frame.groupby(keys, sort=False).indices.items():
        idx = [i for i in idx if agg[i]]
        for i in idx:
            lower = [tpot[j] for j in idx if conc[j] < conc[i] and np.isfinite(tpot[j])]
            if lower and np.isfinite(tpot[i]) and tpot[i] < TPOT_DROP * max(lower):
                flagged[i] = True
    return flagged


def prepare(frame: pd.DataFrame, catalog: Catalog, stack: Stack, protocol=INFERENCEX,
            workers: int | None = None) -> tuple[list[FitRow], int]:
    """Simulate every modelable row with measured TTFT and TPOT once; (rows ready to fit, refused).
    Flagged rows (failed_rows) count as refused."""
    from splitplan.plan.parallel import WorkerPool

    global _CATALOG
    _CATALOG = catalog
    frame = frame[~failed_rows(frame)]
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
                     protocols: dict[str, Protocol] | None = None, workers: int | None = None, cv: bool = True,
                     rounds: int = 1, staged: bool = True) -> EngineCalibration:
    """Fit one engine's stack on its rows, under the client protocol its held-out error prefers, and
    cross-validate it. With client delays the iteration sequence depends a little on iteration times, so
    `rounds` > 1 re-simulates with the fitted values. `staged`: dense rows first, then MoE rows for the
    grouped-GEMM parameters (serving_fit.fit); False: one joint fit."""
    engine_rows = frame[frame["engine"].astype(str).str.strip().str.lower() == engine]
    if engine_rows.empty:
        raise SplitplanError(f"no rows for engine '{engine}'", field="engine")
    stack = base_stack or closest_stack(engine, "")[0]
    candidates = protocols or PROTOCOLS
    fits = {name: _fit_under(engine_rows, catalog, engine, stack, protocol, workers, rounds, staged)
            for name, protocol in candidates.items()}
    held = {name: _held_out(f, workers, staged) for name, f in fits.items()} if len(fits) > 1 or cv else {}
    scores = {name: _score(f[0], *held[name]) for name, f in fits.items()} if len(fits) > 1 else {n: 0.0 for n in fits}
    chosen = min(scores, key=scores.get)
    data, base, kernels, result, arch, refused = fits[chosen]
    params = replace(base, **result.values)
    ttft, tpot = data.predict(lambda _instance: params)
    in_sample = {"ttft": errors(ttft, data.ttft), "tpot": errors(tpot, data.tpot)}
    per_model = {"in_sample": _per_model(data, ttft, tpot)}
    cv_errors: dict[str, dict[str, dict[str, float]]] = {}
    if cv:
        for key in CV_KEYS:
            if len({row.groups[key] for row in data.rows}) < 2:
                continue  # one group (an engine measured on one model): nothing to hold out
            t, p = held[chosen] if key == "config" else grouped_cv(data, key, base, prior=kernels, workers=workers,
                                                                   staged=staged)
            cv_errors[key] = {"ttft": errors(t, data.ttft), "tpot": errors(p, data.tpot)}
            per_model[key] = _per_model(data, t, p)
    return EngineCalibration(engine, stack, arch, result.values, result.at_bound, data, in_sample, cv_errors, refused,
                             chosen, scores, per_model, staged)


def _per_model(data: FitData, ttft: np.ndarray, tpot: np.ndarray) -> dict[str, dict[str, dict[str, float]]]:
    """Errors of predictions `ttft`, `tpot` per model of the rows, and pooled over the dense and over the
    mixture-of-experts models ("dense models", "moe models") when the rows have both."""
    models = np.array([row.groups["model"] for row in data.rows])
    moe = np.array([row.instance.model.is_moe for row in data.rows])
    groups = {str(m): models == m for m in sorted(set(models))}
    if moe.any() and not moe.all():
        groups.update({"dense models": ~moe, "moe models": moe})
    return {name: {"ttft": errors(ttft[mask], data.ttft[mask]), "tpot": errors(tpot[mask], data.tpot[mask])}
            for name, mask in groups.items()}


def _fit_under(rows: pd.DataFrame, catalog: Catalog, engine: str, stack: Stack, protocol: Protocol,
               workers: int | None, rounds: int, staged: bool = True):
    fit_rows, refused = prepare(rows, catalog, stack, protocol, workers)
    if len(fit_rows) < len(fit_params_for(fit_rows)) + 2:
        raise SplitplanError(f"only {len(fit_rows)} modelable rows with measured TTFT and TPOT for '{engine}'; "
                             f"a fit of {len(fit_params_for(fit_rows))} parameters needs more", field="engine")
    archs = {gpu_arch(r.instance.gpu) for r in fit_rows}
    if len(archs) != 1:
        raise SplitplanError(f"rows of '{engine}' mix GPU architectures ({', '.join(sorted(archs))}); "
                             "calibrate one architecture at a time", field="gpu")
    arch = archs.pop()
    kernels, _ = arch_kernels(arch)
    base = kernels.with_values(stack.params)
    data = FitData(fit_rows)
    result = fit(data, base, prior=kernels, staged=staged)
    for _ in range(rounds - 1):
        trial = replace(stack, arch_params={**stack.arch_params, arch: result.values})
        fit_rows, refused = prepare(rows, catalog, trial, protocol, workers)
        data = FitData(fit_rows)
        result = fit(data, replace(base, **result.values), prior=kernels, staged=staged)
    return data, base, kernels, result, arch, refused


def _held_out(fitted, workers: int | None = 1, staged: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Whole-configuration held-out (TTFT, TPOT) of every row of one protocol's fit."""
    data, base, kernels, _, _, _ = fitted
    return grouped_cv(data, "config", base, prior=kernels, workers=workers, staged=staged)


def _score(data: FitData, ttft: np.ndarray, tpot: np.ndarray) -> float:
    """Mean absolute log error of held-out predictions (TPOT + weighted TTFT)."""
    from splitplan.apps.serving_fit import TTFT_WEIGHT

    good = np.isfinite(ttft) & np.isfinite(tpot)
    return float(np.mean(np.abs(np.log(tpot[good] / data.tpot[good])))
                 + TTFT_WEIGHT * np.mean(np.abs(np.log(ttft[good] / data.ttft[good]))))


def stack_doc(cal: EngineCalibration, source: str, date: str | None = None) -> dict[str, Any]:
    """The engine's stack as a YAML mapping: its base file's content with the fitted values under arch:
    and the fit's provenance, ranges, client protocol and accuracy under fitted:."""
    date = date or _dt.date.today().isoformat()
    stack = cal.stack
    data = yaml.safe_load(Path(stack.source).read_text()) if Path(stack.source).is_file() else {
        "name": stack.name, "engine": stack.engine, "versions": stack.versions, "description": stack.description}
    tps = [r.instance.tp for r in cal.data.rows]
    concurrency = [float(r.groups["concurrency"]) for r in cal.data.rows]
    protocol = PROTOCOLS.get(cal.protocol, PROTOCOLS["inferencex"])
    from splitplan.apps.serving_fit import HOST_PARAMS

    # host-side costs are the engine's on any GPU; kernel efficiencies belong to the architecture fitted
    data["params"] = {**(data.get("params") or {}), **{k: v for k, v in cal.values.items() if k in HOST_PARAMS}}
    data["arch"] = {**(data.get("arch") or {}), cal.arch: {k: v for k, v in cal.values.items() if k not in HOST_PARAMS}}
    data["fitted"] = {
        "data": source, "date": date, "archs": sorted({*stack.fitted.archs, cal.arch}),
        "protocol": {"range_ratio": protocol.range_ratio, "warmup": protocol.warmup},
        "ranges": {"tp": [min(tps), max(tps)], "concurrency": [min(concurrency), max(concurrency)]} | _ranges(cal),
        "accuracy": {"fit": fit_kind(cal), "rows": len(cal.data.rows), "in_sample": _round(cal.in_sample),
                     "held_out": {k: _round(v) for k, v in cal.cv.items()},
                     "per_model": {key: {m: _round(e) for m, e in models.items()}
                                   for key, models in (cal.per_model or {}).items()
                                   if key in ("in_sample", "config", "model")},
                     "at_bound": list(cal.at_bound),
                     "protocol_scores": {k: round(v, 4) for k, v in (cal.protocol_scores or {}).items()}},
    }
    return data


def fit_kind(cal: EngineCalibration) -> str:
    """How the fitted values were found: one fit, or the two stages of dense and MoE rows."""
    kinds = {row.instance.model.is_moe for row in cal.data.rows}
    if len(kinds) < 2:
        return "one fit (MoE rows only)" if True in kinds else "one fit (dense rows only)"
    return ("staged: dense parameters on the dense rows, then moe_* on the MoE rows (moe_eta_m <= eta_m)"
            if cal.staged else "joint: every parameter on the dense and MoE rows together")


def write_stacks(path: str | Path, cals: list[EngineCalibration], source: str, header: str = "") -> None:
    """One stack file per calibration set: a single stack mapping, or `stacks: [...]` for several."""
    docs = [stack_doc(cal, source) for cal in cals]
    body = docs[0] if len(docs) == 1 else {"stacks": docs}
    Path(path).write_text(header + yaml.safe_dump(body, sort_keys=False, default_flow_style=None, width=120))


def base_header(stack: Stack) -> str:
    """The comment lines at the top of a stack's bundled file (its sources), kept when it is rewritten."""
    if not Path(stack.source).is_file():
        return ""
    return "".join(line + "\n" for line in Path(stack.source).read_text().splitlines() if line.startswith("#"))


def _ranges(cal: EngineCalibration) -> dict[str, list[float]]:
    labels = [r.groups["isl_osl"].split("/") for r in cal.data.rows]
    isl = [float(a) for a, _ in labels]
    osl = [float(b) for _, b in labels]
    return {"isl": [min(isl), max(isl)], "osl": [min(osl), max(osl)]}


def _round(errs: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {metric: {k: (round(v, 2) if isinstance(v, float) else v) for k, v in e.items()} for metric, e in errs.items()}
