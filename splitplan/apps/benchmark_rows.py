"""`splitplan benchmark --rows`: predict every row of a measured-serving table, refuse what cannot be.

Input: the columns of shared/reference/measured-serving/h100.csv (model, gpu, engine, engine_version,
mode, weights, moe_weights, isl, osl, concurrency, tp, pp, ep, attention_dp; extra columns kept and
ignored; measured ttft_ms/tpot_ms, when present, are never used for the prediction). Each row is
simulated as the closed-loop benchmark it describes on the closest shipped stack for its engine and
version (or the --stack given), and written back with predicted_ttft_ms, predicted_tpot_ms,
predicted_output_tokens_per_s_per_gpu, stack and status: `ok`, or `refused: <reason>` for what splitplan
cannot model yet (pipeline parallelism, instances or workers spanning machines, disaggregated rows
without worker counts and shapes). Dense and mixture-of-experts models are predicted with the row's tp,
ep and attention_dp as the instance's shape; disaggregated rows with their prefill and decode workers'
tp, ep and attention_dp (prefill_*, decode_* columns).
A row is refused, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from splitplan.apps.benchmark import BenchmarkConfig, Disagg, Protocol, calibrated_protocol, run_benchmark
from splitplan.catalog import Catalog, Machine
from splitplan.errors import SplitplanError
from splitplan.serving.quant import Quant
from splitplan.serving.stack import Stack, closest_stack, get_stack, load_stacks

REQUIRED = ("model", "gpu", "isl", "osl", "concurrency")
OUTPUT_COLUMNS = ("predicted_ttft_ms", "predicted_tpot_ms", "predicted_output_tokens_per_s_per_gpu", "stack", "status")
MAX_ROWS = 100_000


@dataclass(frozen=True)
class RowJob:
    index: int
    config: BenchmarkConfig | None
    stack_note: str
    refusal: str = ""


def read_rows(path: str | Path) -> pd.DataFrame:
    """The table as strings (BOM and CRLF accepted); a missing required column is a one-line error."""
    source = str(path)
    if Path(source).suffix.lower() in (".json", ".jsonl") or Path(source).is_dir() or any(c in source for c in "*?["):
        from splitplan.apps.serving_results import read_results  # benchmark client outputs (vLLM, AIPerf, ...)

        return read_results(source)
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise SplitplanError("file not found", source=source) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise SplitplanError(f"cannot read CSV ({exc.__class__.__name__})", source=source) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SplitplanError(f"missing column '{missing[0]}' (needs {', '.join(REQUIRED)})", source=source,
                             field=missing[0])
    if frame.empty:
        raise SplitplanError("no data rows", source=source)
    if len(frame) > MAX_ROWS:
        raise SplitplanError(f"{len(frame):,} rows is more than splitplan predicts in one run ({MAX_ROWS:,})",
                             source=source)
    return frame


def _int(row: pd.Series, key: str, default: int | None = None) -> int | None:
    raw = str(row.get(key, "") or "").strip()
    if not raw:
        return default
    value = float(raw)
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{key} must be a whole number, got {raw!r}")
    return int(value)


def machine_for(catalog: Catalog, gpu_name: str, gpus: int) -> Machine:
    """The uncapped catalog machine with this GPU (a machine name is accepted too), with >= `gpus` GPUs."""
    try:
        return catalog.machine(gpu_name)
    except SplitplanError:
        pass
    gpu = catalog.gpu(gpu_name)
    candidates = [m for m in catalog.machines.values() if m.gpu == gpu.name and not m.is_power_capped]
    machines = [m for m in candidates if m.gpus >= gpus]
    if not machines:
        largest = max((m.gpus for m in candidates), default=0)
        raise SplitplanError(f"an instance of {gpus} x {gpu.name} spans machines (the largest {gpu.name} machine "
                             f"has {largest} GPUs): multi-machine instances are not modelled yet")
    return sorted(machines, key=lambda m: (m.gpus, m.name))[0]


def protocol_for(row, stack: Stack) -> Protocol:
    """The client a row was measured with: its own columns (range_ratio, num_prompts, warmup) where the
    table has them, else the protocol the row's stack was calibrated under, else InferenceX's."""
    given = {k: float(row[k]) for k in ("range_ratio", "num_prompts", "warmup", "client_delay_ms")
             if str(row.get(k, "") or "").strip()}
    return calibrated_protocol(stack, **given)


def plan_row(index: int, row: pd.Series, catalog: Catalog, forced: Stack | None, protocol,
             pool: dict[str, Stack] | None = None) -> RowJob:
    """What to simulate for one row, or why it is refused."""
    def refuse(reason: str, note: str = "") -> RowJob:
        return RowJob(index, None, note, f"refused: {reason}")

    mode = str(row.get("mode", "agg") or "agg").strip().lower()
    if mode not in ("agg", "disagg"):
        return refuse(f"unknown mode '{mode}' (agg or disagg)")
    try:
        tp = _int(row, "tp", 1)
        pp, ep, dp = _int(row, "pp", 1), _int(row, "ep", 1), _int(row, "attention_dp", 1)
        isl, osl, conc = _int(row, "isl"), _int(row, "osl"), _int(row, "concurrency")
    except ValueError as exc:
        return refuse(str(exc))
    if None in (isl, osl, conc):
        return refuse("isl, osl and concurrency are required" if mode == "agg" else
                      "a disaggregated row needs isl, osl and concurrency (the closed loop's clients)")
    disagg = None
    if mode == "disagg":
        try:
            shape = {k: _int(row, k) for k in ("prefill_workers", "prefill_tp", "decode_workers", "decode_tp")}
            extra = {f"{role}_{kind}": _int(row, f"{role}_{column}", 1) or 1 for role in ("prefill", "decode")
                     for kind, column in (("ep", "ep"), ("dp", "attention_dp"))}
        except ValueError as exc:
            return refuse(str(exc))
        if None in shape.values():
            return refuse("a disaggregated row needs prefill/decode worker counts and TP degrees")
        for role in ("prefill", "decode"):
            shape[f"{role}_tp"] = worker_gpus(shape[f"{role}_tp"], extra[f"{role}_ep"], extra[f"{role}_dp"])
        disagg = Disagg(**shape, **extra)
        try:
            disagg.validate()
        except SplitplanError as exc:
            return refuse(exc.problem)
        tp = max(disagg.prefill_tp, disagg.decode_tp)
    if pp and pp > 1:
        return refuse("pipeline parallelism is not modelled")
    try:
        model = catalog.model(str(row["model"]))
    except SplitplanError as exc:
        return refuse(exc.problem)
    ep, dp = (ep or 1, dp or 1) if disagg is None else (1, 1)  # disaggregated workers: their own shapes (above)
    if disagg is None:
        tp = worker_gpus(tp, ep, dp)
    try:
        largest = max_gpus_per_machine(catalog, str(row["gpu"]))
        if tp > largest:
            return refuse(f"instances spanning machines are not modelled (tp {tp} > the {largest} GPUs of one machine)")
        machine = machine_for(catalog, str(row["gpu"]), tp)
        if tp % ep or tp % dp:
            return refuse(f"ep {ep} and attention_dp {dp} must divide tp {tp} (they split the instance's GPUs)")
        shapes = [(tp, ep, dp)] if disagg is None else [
            (disagg.prefill_tp, disagg.prefill_ep, disagg.prefill_dp), (disagg.decode_tp, disagg.decode_ep, disagg.decode_dp)]
        for shard_tp, shard_ep, shard_dp in shapes:
            model.check_tp(shard_tp // shard_dp)
            model.check_ep(shard_ep)
        if forced is not None:
            stack, note = forced, forced.name
        else:
            stack, note = closest_stack(str(row.get("engine", "")), str(row.get("engine_version", "")), pool)
        weights, moe_weights = checkpoint_formats(model, str(row.get("weights", "") or "") or None,
                                                  str(row.get("moe_weights", "") or "") or None)
        quant = stack.default_quant(weights, moe_weights, None)
    except SplitplanError as exc:
        return refuse(exc.problem)
    chosen = protocol_for(row, stack) if protocol is None else (protocol(row, stack) if callable(protocol) else protocol)
    config = BenchmarkConfig(model=model.name, machine=machine.name, isl=isl, osl=osl, concurrency=conc,
                             stack=stack, quant=quant, tp=None if disagg else tp, protocol=chosen, ep=ep, dp=dp,
                             disagg=disagg)
    return RowJob(index, config, note)


def worker_gpus(tp: int, ep: int, dp: int) -> int:
    """GPUs of one instance or worker from a row's tp, ep and attention_dp. Tables write these two ways:
    tp as the GPU count with attention DP inside it (InferenceX's 'tp4, dp-attention 4' = 4 GPUs), or
    tp as the attention's TP degree with dp groups of it and experts over all of them (TensorRT-LLM's
    'tp 1, ep 16, attention_dp 16' prefill worker = 16 GPUs). The largest of the three is the GPU
    count in both: dp and ep never exceed it."""
    return max(tp or 1, ep or 1, dp or 1)


FOUR_BIT = ("mxfp4", "nvfp4", "int4_wo")
QUANTIZED = FOUR_BIT + ("fp8", "fp8_block")  # labels that name a quantized checkpoint


def checkpoint_formats(model, weights: str | None, moe_weights: str | None) -> tuple[str | None, str | None]:
    """The formats a row's labels mean for this model. A 4-bit label on a model whose published checkpoint
    is 4-bit in its experts only (gpt-oss: MXFP4 experts, BF16 attention, router and head) names that
    checkpoint: the dense weights keep their native format and the experts take the checkpoint's 4-bit
    format (the measured rows label openai/gpt-oss-120b 'nvfp4'; on Hopper both 4-bit formats run
    weight-only with 16-bit math and differ by 6% in bytes). An FP8 label on such a model names the same
    checkpoint: none with FP8 experts is published, and an engine serving it runs its MXFP4 experts (the
    TensorRT-LLM rows label gpt-oss-120b 'fp8', the precision of the run's activations and KV cache, not
    of its weights). A 'bf16' label stays: dequantized BF16 copies exist. A 4-bit label naming another
    published checkpoint of the model (`expert_checkpoints`: NVIDIA's NVFP4 Kimi-K2.5) runs those experts,
    with the dense weights still in their native format (ModelOpt quantizes the experts only)."""
    from splitplan.serving.quant import weight_format

    native_w, native_e = model.native_weights, model.native_moe_weights
    if not (model.is_moe and native_e in FOUR_BIT and native_w not in FOUR_BIT):
        return weights, moe_weights
    w = weight_format(weights).value if weights else None
    e = weight_format(moe_weights, "moe_weights").value if moe_weights else w
    if w in QUANTIZED:
        w = native_w
    if e in QUANTIZED and e not in model.expert_checkpoints:
        e = native_e
    return w, e


def max_gpus_per_machine(catalog: Catalog, gpu_name: str) -> int:
    """The most GPUs one uncapped catalog machine of this GPU (or this machine) has."""
    try:
        return catalog.machine(gpu_name).gpus
    except SplitplanError:
        pass
    gpu = catalog.gpu(gpu_name)
    counts = [m.gpus for m in catalog.machines.values() if m.gpu == gpu.name and not m.is_power_capped]
    if not counts:
        raise SplitplanError(f"no machine of the catalog holds {gpu.name}")
    return max(counts)


def _run(job: RowJob, catalog: Catalog) -> dict[str, Any]:
    if job.config is None:
        return {"stack": job.stack_note, "status": job.refusal}
    try:
        r = run_benchmark(job.config, catalog)
    except SplitplanError as exc:
        return {"stack": job.stack_note, "status": f"refused: {exc.problem}"}
    return {"predicted_ttft_ms": r["ttft_ms"]["mean"], "predicted_tpot_ms": r["tpot_ms"]["mean"],
            "predicted_output_tokens_per_s_per_gpu": r["output_tokens_per_s_per_gpu"], "stack": job.stack_note,
            "status": "ok" + (f" (extrapolated: {'; '.join(r['extrapolated'])})" if r["extrapolated"] else "")}


_CATALOG: Catalog | None = None


def _run_task(job: RowJob) -> dict[str, Any]:
    return _run(job, _CATALOG)


def stack_choice(stack: str | None) -> tuple[Stack | None, dict[str, Stack] | None]:
    """--stack: a bundled name or a one-stack file forces it; a file of several stacks is the pool each
    row's engine and version pick from; None: the bundled stacks."""
    if not stack:
        return None, None
    path = Path(stack)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        stacks = load_stacks(path)
        return (next(iter(stacks.values())), None) if len(stacks) == 1 else (None, stacks)
    return get_stack(stack), None


def predict_rows(frame: pd.DataFrame, catalog: Catalog, *, stack: str | None = None,
                 protocol: Protocol | None = None, workers: int | None = None, on_done=None) -> pd.DataFrame:
    """The input rows with the prediction columns appended (input columns unchanged, in order).
    `protocol` None: each row's own client (protocol_for)."""
    from splitplan.plan.parallel import WorkerPool

    global _CATALOG
    forced, pool_stacks = stack_choice(stack)
    jobs = [plan_row(i, row, catalog, forced, protocol, pool_stacks) for i, row in enumerate(frame.to_dict("records"))]
    _CATALOG = catalog  # forked workers inherit it
    with WorkerPool(workers) as pool:
        results = pool.map(_run_task, [(job,) for job in jobs], on_done=on_done)
    out = frame.copy()
    for column in OUTPUT_COLUMNS:
        out[column] = [r.get(column) for r in results]
    return out


def error_table(out: pd.DataFrame, by: tuple[str, ...] = ("engine", "model")) -> pd.DataFrame:
    """MAPE and median absolute error (%) of TTFT and TPOT per group, on rows predicted and measured
    (`rows`: how many of the group's predicted rows have a measurement; groups with none are left out)."""
    have = [c for c in ("ttft_ms", "tpot_ms") if c in out.columns]
    if not have:
        return pd.DataFrame()
    ok = out[out["status"].astype(str).str.startswith("ok")].copy()
    keys = [k for k in by if k in ok.columns]
    rows = []
    for key, group in (ok.groupby(keys, sort=True) if keys else [("all", ok)]):
        entry: dict[str, Any] = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        measured = np.zeros(len(group), dtype=bool)
        for metric in have:
            meas = pd.to_numeric(group[metric], errors="coerce").to_numpy(float)
            pred = pd.to_numeric(group[f"predicted_{metric}"], errors="coerce").to_numpy(float)
            good = np.isfinite(meas) & np.isfinite(pred) & (meas > 0)
            measured |= good
            rel = np.abs(pred[good] / meas[good] - 1.0) * 100.0
            entry[f"{metric[:-3]}_mape_pct"] = float(rel.mean()) if rel.size else math.nan
            entry[f"{metric[:-3]}_median_pct"] = float(np.median(rel)) if rel.size else math.nan
        if measured.any():
            rows.append({**entry, "rows": int(measured.sum())})
    columns = [*keys, "rows", *(f"{m[:-3]}_{s}_pct" for m in have for s in ("mape", "median"))]
    return pd.DataFrame(rows, columns=columns)
