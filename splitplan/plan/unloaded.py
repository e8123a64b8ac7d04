"""SLOs a design misses even with no load: the first thing an infeasible verdict should say.

A slowdown SLO compares each request with the same request alone on the reference instance
(`reference_machine` x `reference_tp`); a design whose instances are slower than that reference, alone,
(a TP-1 A100 against a TP-8 reference) misses "TTFT P50 <= 2x" at every rate, and no number of
machines changes it. Computed from the same performance model the simulator uses: each request alone
on the fastest machine type of each pool (prompt for TTFT, token for TBT; E2E adds them).
"""

from __future__ import annotations

import math

import numpy as np

from splitplan.perf import build_perf_model
from splitplan.slo import SLO, ReferenceLatencies, percentile, reference_latencies


def unloaded_misses(problem, design) -> list[str]:
    """One phrase per SLO the design misses alone, with by how much; [] when unloaded meets them all."""
    alone = _design_alone(problem, design)
    if alone is None:
        return []
    ref = _reference(problem)
    out = []
    for slo in problem.slos:
        if slo.metric == "itl":
            continue
        value = _unloaded_value(slo, alone, ref)
        if value is None or value <= slo.limit * (1 + 1e-9):
            continue
        shown = f"{value:.2f}x the reference" if slo.kind == "slowdown" else f"{value * 1000:.0f} ms"
        over = value / slo.limit - 1
        out.append(f"{slo.describe()}: unloaded {shown}, {over:.0%} over the limit")
    return out


def unloaded_line(problem, design) -> str:
    """'even unloaded, a dgx-a100 tp1 instance misses TTFT P50 <= 2x unloaded (unloaded 3.41x ...)', or ''."""
    misses = unloaded_misses(problem, design)
    if not misses:
        return ""
    machines = ", ".join(sorted({m for ms in design.pools().values() for m in ms}))
    tp = design.shape_text().replace("tp ", "tp") if len(design.tp) == 1 else f"any shape ({design.shape_text()})"
    sc = problem.scenario
    ref = f"{sc.reference_machine} tp{sc.reference_tp}" if sc.reference_tp else sc.reference_machine
    return (f"even unloaded, {machines} at {tp} misses " + "; ".join(misses)
            + (f" (reference {ref})" if any(s.kind == "slowdown" for s in problem.slos) else ""))


def _reference(problem) -> ReferenceLatencies:
    sc = problem.scenario
    perf = build_perf_model(sc.model, sc.reference_machine, sc.reference_tp, problem.perf, problem.catalog)
    return _alone(problem, perf)


def _alone(problem, perf) -> ReferenceLatencies:
    sizes = problem.sizes
    return reference_latencies(sizes.prompt_tokens, sizes.output_tokens, perf,
                               compat=problem.perf.compat == "splitwisesim")


def _design_alone(problem, design) -> ReferenceLatencies | None:
    """Per-request unloaded latencies on the design: best TTFT of its prompt-capable machines and shapes,
    best TBT of its token-capable ones (the same machines for a co-located design)."""
    from splitplan.plan.problem import role_shapes

    by_role: dict[str, list[ReferenceLatencies]] = {}
    for role, machines in design.pools().items():
        for machine in machines:
            for tp in role_shapes(problem, design, role, machine):
                perf = problem.pool_perf(design, role, machine, tp)
                by_role.setdefault(role, []).append(_alone(problem, perf))
    prompt = by_role.get("prompt") or by_role.get("mixed")
    token = by_role.get("token") or by_role.get("mixed")
    if not prompt or not token:
        return None
    ttft = np.min([r.ttft_s for r in prompt], axis=0)
    tbt = np.min([r.tbt_s for r in token], axis=0)
    o = np.asarray(problem.sizes.output_tokens, dtype=np.float64)
    return ReferenceLatencies(ttft_s=ttft, tbt_s=tbt, e2e_s=ttft + tbt * np.maximum(o - 1, 0))


def _unloaded_value(slo: SLO, alone: ReferenceLatencies, ref: ReferenceLatencies) -> float | None:
    values = np.asarray(getattr(alone, f"{slo.metric}_s"), dtype=np.float64)
    if slo.kind == "slowdown":
        base = np.asarray(getattr(ref, f"{slo.metric}_s"), dtype=np.float64)
        keep = base > 0
        if not keep.any():
            return None
        values = values[keep] / base[keep]
    value = percentile(values, slo.percentile)
    return None if math.isnan(value) else float(value)
