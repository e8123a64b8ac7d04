"""`simulate`: build instances for a cluster, run the event loop, and assemble the SimResult.

After the loop only numpy is used: the per-request table stays as arrays and becomes a pandas frame
when it is written or read (sim/result.py), so the hundreds of runs of a search pay nothing for it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

from splitplan.catalog import Catalog, get_catalog
from splitplan.cluster import ClusterSpec, PoolSpec
from splitplan.errors import SplitplanError
from splitplan.perf import build_perf_model, kv_transfer_ms, phase_power_w
from splitplan.perf.base import PerfSettings
from splitplan.sim.config import SimConfig
from splitplan.sim.engine import Engine
from splitplan.sim.links import Links
from splitplan.sim.machines import Inst
from splitplan.sim.miss_watch import MissWatch
from splitplan.sim.metrics import itl_samples, latencies, saturation, stats, throughput_rps
from splitplan.sim.result import SCHEMA_VERSION, SimResult
from splitplan.slo import evaluate_slos, paper_slos, reference_latencies, reference_perf_model
from splitplan.workload import Workload


def _build_perf(model, machine, tp: int, settings: PerfSettings, catalog: Catalog):
    """One performance model per (machine type, tp); indirection so tests can substitute a fake."""
    return build_perf_model(model, machine, tp=tp, settings=settings, catalog=catalog)


def pool_settings(perf: PerfSettings, pool: PoolSpec) -> PerfSettings:
    """The perf settings one pool runs with: its own stack and scheduling settings over the cluster's."""
    if pool.stack is None and not pool.scheduling:
        return perf
    merged = dict(perf.scheduling) | dict(pool.scheduling)
    return replace(perf, stack=pool.stack or perf.stack, scheduling=tuple(sorted(merged.items())))


def build_instances(cluster: ClusterSpec, perf: PerfSettings, catalog: Catalog):
    """Instances in pool order (gpus // tp per machine), their perf models, and the machine list."""
    model = catalog.model(cluster.model)
    perfs: dict[tuple, Any] = {}
    caches: dict[tuple, tuple[dict, dict]] = {}
    insts: list[Inst] = []
    machines = []
    for pool in cluster.pools:
        machine = catalog.machine(pool.machine)
        key = (machine.name, pool.tp, pool.stack, pool.scheduling)
        if key not in perfs:
            perfs[key] = _build_perf(model, machine, pool.tp, pool_settings(perf, pool), catalog)
            caches[key] = shared_caches(perfs[key])
        model_perf = perfs[key]
        cap = int(model_perf.kv_capacity_tokens())
        for _ in range(pool.count):
            machines.append(machine)
            for _ in range(machine.gpus // pool.tp):
                insts.append(Inst(len(insts), pool.role, machine.name, len(machines) - 1, model_perf, cap,
                                  *caches[key]))
    return insts, perfs, machines, model


_CACHES: WeakKeyDictionary = WeakKeyDictionary()


def shared_caches(model_perf) -> tuple[dict, dict]:
    """(decode coefficients by batch size, single-prompt prefill seconds by prompt size) of one perf model:
    pure functions of it, so they are kept across simulations (the optimizer runs hundreds on the same
    few models; perf/build.py caches the models themselves)."""
    try:
        caches = _CACHES.get(model_perf)
        if caches is None:
            caches = _CACHES[model_perf] = ({}, {})
        return caches
    except TypeError:  # a stand-in model that cannot be weakly referenced: caches for this run only
        return {}, {}


def provenance_key(key: tuple) -> str:
    """'dgx-h100/tp8' for a perf model of build_instances (with '/stack' when a pool names its own)."""
    machine, tp, stack, sched = key
    return f"{machine}/tp{tp}" + (f"/{stack}" if stack else "") + ("/tuned" if sched else "")


def simulate(cluster: ClusterSpec, workload: Workload, *, perf: PerfSettings = PerfSettings(),
             catalog: Catalog | None = None, config: SimConfig = SimConfig(),
             slos: tuple | None = None, stop_at_miss: bool = False) -> SimResult:
    """Simulate `workload` on `cluster`; deterministic (no randomness inside the simulator).

    `stop_at_miss`: end the run as soon as one SLO is certain to be missed (sim/miss_watch.py), for
    callers that only need the verdict (the optimizer's searches). Such a result is partial: its
    summary's `stopped_early` says why, `all_slos_met` is False, and its statistics cover what ran."""
    catalog = catalog or get_catalog()
    cluster = cluster.validate(catalog)
    if cluster.stack and cluster.stack != perf.stack:
        perf = replace(perf, stack=cluster.stack)
    if len(workload) == 0:
        raise SplitplanError("the workload has no requests", source=workload.name)
    compat = perf.compat == "splitwisesim"
    insts, perfs, machines, model = build_instances(cluster, perf, catalog)
    first_perf = next(iter(perfs.values()))
    links = Links(len(machines), compat_gibps=config.compat_transfer_gibps if compat else None,
                  layerwise=config.transfer == "layerwise", layerwise_min_tokens=config.layerwise_min_prompt_tokens,
                  layers=model.layers, transfer_ms=kv_transfer_ms)
    arrival = np.asarray(workload.arrival_s, dtype=np.float64)
    prompt = np.asarray(workload.prompt_tokens, dtype=np.int64)
    output = np.asarray(workload.output_tokens, dtype=np.int64)
    slos = paper_slos() if slos is None else tuple(slos)
    ref_perf = reference_perf_model(model, catalog.machine(config.reference_machine), config.reference_tp, perf,
                                    catalog)
    refs = reference_latencies(prompt, output, ref_perf, compat=compat)
    watch = MissWatch(slos, refs, len(prompt), output.tolist(), compat) if stop_at_miss else None
    eng = Engine(insts, cluster.design, arrival, prompt, output, float(first_perf.kv_bytes_per_token()),
                 links, machines, config, compat, _longest_unloaded_s(perfs.values(), prompt, output),
                 record_itl=any(s.metric == "itl" for s in slos), watch=watch)
    eng.run()
    return _assemble(eng, cluster, workload, arrival, prompt, output, perf, perfs, catalog, config, slos, compat,
                     ref_perf, refs)


def run_closed_loop(perf, prompt_tokens: np.ndarray, output_tokens: np.ndarray, clients: int, *,
                    policy: str, catalog: Catalog, record_itl: bool = True, record_segments: bool = False,
                    client_delay_s=None) -> Engine:
    """One instance of `perf` serving `clients` closed-loop users: request i+clients is sent the moment
    some earlier request finishes (the benchmark of `vllm bench serve --max-concurrency`). Returns the
    engine after the run, with its per-request arrays (and iteration segments if asked)."""
    machine = perf.instance.machine
    inst = Inst(0, "mixed", machine.name, 0, perf, int(perf.kv_capacity_tokens()))
    prompt = np.asarray(prompt_tokens, dtype=np.int64)
    output = np.asarray(output_tokens, dtype=np.int64)
    links = Links(1, compat_gibps=None, layerwise=False, layerwise_min_tokens=0, layers=perf.instance.model.layers,
                  transfer_ms=kv_transfer_ms)
    eng = Engine([inst], "baseline", np.zeros(len(prompt)), prompt, output, float(perf.kv_bytes_per_token()), links,
                 [machine], SimConfig(), False, record_itl=record_itl, clients=clients, colocated_policy=policy,
                 record_segments=record_segments, client_delay_s=client_delay_s)
    eng.run()
    return eng


def run_closed_loop_disagg(prefill_perf, decode_perf, prefill_workers: int, decode_workers: int,
                           prompt_tokens: np.ndarray, output_tokens: np.ndarray, clients: int, *, catalog: Catalog,
                           record_itl: bool = True, client_delay_s=None) -> Engine:
    """Disaggregated serving: `prefill_workers` instances of `prefill_perf` only prefill, `decode_workers`
    of `decode_perf` only decode, and each prompt's KV cache moves from one to the other (over NVLink when
    both sit in one machine, over the NICs otherwise; workers fill machines in order, prefill first).
    Prefill batches use the prefill stack's token budget, decode batches the decode stack's sequence limit."""
    insts: list[Inst] = []
    machines: list = []
    free = 0
    for role, perf, count in (("prompt", prefill_perf, prefill_workers), ("token", decode_perf, decode_workers)):
        machine, tp = perf.instance.machine, perf.instance.tp
        cap = int(perf.kv_capacity_tokens())
        for _ in range(count):
            if tp > free or machines[-1].name != machine.name:
                machines.append(machine)
                free = machine.gpus
            insts.append(Inst(len(insts), role, machine.name, len(machines) - 1, perf, cap))
            free -= tp
    prompt = np.asarray(prompt_tokens, dtype=np.int64)
    output = np.asarray(output_tokens, dtype=np.int64)
    gpu = prefill_perf.instance.gpu
    links = Links(len(machines), compat_gibps=None, layerwise=False, layerwise_min_tokens=0,
                  layers=prefill_perf.instance.model.layers, transfer_ms=kv_transfer_ms, intra_gbps=gpu.nvlink_gbps / 2)
    config = SimConfig(transfer="serialized")
    eng = Engine(insts, "disagg", np.zeros(len(prompt)), prompt, output, float(decode_perf.kv_bytes_per_token()),
                 links, machines, config, False, record_itl=record_itl, clients=clients,
                 client_delay_s=client_delay_s)
    eng.run()
    return eng


def _longest_unloaded_s(perfs, prompt: np.ndarray, output: np.ndarray) -> float:
    """The slowest request's latency alone on the slowest instance type (sets the drain limit)."""
    longest = np.argsort(prompt + output)[-64:]
    p, o = prompt[longest].astype(np.float64), output[longest].astype(np.float64)
    worst = 0.0
    for model_perf in perfs:
        ms = np.asarray(model_perf.prefill_ms(np.ones_like(p), p, p * p)) + \
            (o - 1.0) * np.asarray(model_perf.decode_ms(np.ones_like(p), p + o / 2.0))
        worst = max(worst, float(np.max(ms)) / 1000.0)
    return worst


def _assemble(eng: Engine, cluster: ClusterSpec, workload: Workload, arrival, prompt, output, perf: PerfSettings,
              perfs: dict, catalog: Catalog, config: SimConfig, slos, compat: bool, ref_perf,
              refs) -> SimResult:
    lat = latencies(eng, arrival, output, compat)
    reason = None if eng.stopped_early else saturation(eng, arrival, lat, config)  # a partial run: no trend test
    saturated = reason is not None
    tbt_eval = np.where(output <= 1, np.where(lat.completed, 0.0, np.nan), lat.tbt_s) if not compat else lat.tbt_s
    itl_s, itl_w = itl_samples(eng) if any(s.metric == "itl" for s in slos) else (None, None)
    slo_results = evaluate_slos(slos, ttft_s=lat.ttft_s, tbt_s=tbt_eval, e2e_s=lat.e2e_s, refs=refs,
                                itl_s=itl_s, itl_weights=itl_w)
    all_met = (not saturated) and not eng.stopped_early and all(r.met for r in slo_results)
    requests = {
        "request_id": np.arange(len(workload)), "arrival_s": arrival, "prompt_tokens": prompt,
        "output_tokens": output, "ttft_s": lat.ttft_s, "tbt_s": lat.tbt_s, "e2e_s": lat.e2e_s,
        "queue_s": lat.queue_s, "transfer_s": lat.transfer_s, "prompt_instance": np.asarray(eng.p_inst, dtype=np.int64),
        "token_instance": np.asarray(eng.t_inst, dtype=np.int64), "completed": lat.completed}
    machines = _machine_rows(eng, catalog)
    window_s = max(eng.end_s, 1e-9)
    energy_j = float(np.sum(np.array([row["energy_j"] for row in machines], dtype=np.float64)))  # as pandas sums
    n = len(workload)
    span = float(arrival[-1] - arrival[0])
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "workload": workload.name,
        "requests": n,
        "completed": int(lat.completed.sum()),
        "unfinished": int(n - lat.completed.sum()),
        "saturated": saturated,
        "saturation_reason": reason,
        **({"stopped_early": eng.stopped_early} if eng.stopped_early else {}),
        **rates_rps(n, int(lat.completed.sum()), span),
        "window_completed_rps": throughput_rps(arrival, np.asarray(eng.t_done, dtype=np.float64)),
        "simulated_s": eng.end_s,
        "slo": {r.slo.name: {"value": r.value, "limit": r.limit, "met": r.met, "margin": r.margin, "unit": r.unit}
                for r in slo_results},
        "all_slos_met": all_met,
        "cluster": {**cluster.to_dict(), "label": cluster.label()},
        "cost_usd_per_h": cluster.cost_usd_per_h(catalog),
        "power_kw": cluster.power_kw(catalog),
        "energy_kwh": energy_j / 3.6e6,
        "mean_power_kw": energy_j / window_s / 1000.0,
        "perf": {"backend": perf.backend, "compat": perf.compat,
                 "provenance": dict(sorted((provenance_key(k), p.provenance) for k, p in perfs.items())),
                 "reference_machine": config.reference_machine, "reference_tp": ref_perf.instance.tp},
        "config": config.to_dict(),
        "mixed_pool": mixed_pool_summary(eng.router, n, int(prompt.sum() + output.sum())),
    }
    for key in ("ttft_s", "tbt_s", "e2e_s", "queue_s", "transfer_s"):
        values = getattr(lat, key)
        summary[key] = {"p50": None, "p90": None, "p99": None, "mean": None} if saturated else stats(values)
    return SimResult(summary, requests, machines, eng.timeline, slo_results, saturated, all_met)


def rates_rps(requests: int, completed: int, span_s: float) -> dict[str, float | None]:
    """offered_rps: the arrival rate the run was given ((n - 1) / arrival span, the rate a Poisson
    workload was drawn at); completed_rps: the offered requests that finished, per second of that same
    span (offered_rps x completed / requests: equal to it when nothing was left unfinished)."""
    if span_s <= 0 or requests < 2:
        return {"offered_rps": None, "completed_rps": None}
    offered = (requests - 1) / span_s
    return {"offered_rps": offered, "completed_rps": offered * completed / requests}


def mixed_pool_summary(router, requests: int, tokens: int) -> dict[str, float | int]:
    """How much of the traffic ran co-located (a provisioned mixed machine or a borrowed one): what
    tells a split plan that splits from one that only works because its machines run both phases."""
    return {"requests": router.mixed_requests, "borrowed_machines": router.borrows,
            "max_borrowed_at_once": router.max_borrowed,
            "request_share": router.mixed_requests / requests if requests else 0.0,
            "token_share": router.mixed_tokens / tokens if tokens else 0.0}


def _machine_rows(eng: Engine, catalog: Catalog) -> list[dict[str, Any]]:
    """Per-instance busy time, batch sizes and energy (phase power x phase time, plus idle and host)."""
    total_s = max(eng.end_s, 1e-9)
    rows = []
    for inst in eng.insts:
        machine = catalog.machine(inst.machine)
        per_machine = max(machine.gpus // inst.perf.instance.tp, 1)
        busy = inst.busy_prefill_s + inst.busy_decode_s + inst.busy_mixed_s
        decode_time = inst.busy_decode_s + inst.busy_mixed_s
        mean_b = inst.batch_time / decode_time if decode_time > 0 else 0.0
        prompts_per_batch = inst.prefill_prompts / inst.prefill_batches if inst.prefill_batches else 1
        tokens_per_batch = inst.prefill_tokens / inst.prefill_batches if inst.prefill_batches else 0
        energy = phase_power_w(inst.perf, "idle") * max(total_s - busy, 0.0)
        if inst.busy_prefill_s:
            energy += phase_power_w(inst.perf, "prefill", max(int(round(prompts_per_batch)), 1),
                                     int(tokens_per_batch)) * inst.busy_prefill_s
        if inst.busy_decode_s:
            energy += phase_power_w(inst.perf, "decode", max(int(round(mean_b)), 1)) * inst.busy_decode_s
        if inst.busy_mixed_s:
            energy += phase_power_w(inst.perf, "mixed", max(int(round(mean_b)), 1),
                                     int(tokens_per_batch)) * inst.busy_mixed_s
        energy += machine.idle_kw * 1000.0 * total_s / per_machine
        rows.append({"instance": inst.id, "pool": inst.home, "machine": inst.machine, "machine_index": inst.machine_idx,
                     "busy_s": busy, "utilization": busy / total_s, "mean_batch_size": mean_b,
                     "prompts": inst.prefill_prompts, "tokens": inst.decode_tokens + inst.prefill_prompts,
                     "requests_completed": inst.served, "energy_j": energy, "mean_power_w": energy / total_s})
    return rows
