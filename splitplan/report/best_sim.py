"""A simulation of the recommended plan, for an optimize output that saved none.

plan.json records the plan (pools), the verified rate and everything the run used (model, trace,
duration, seeds, SLOs, reference machine, performance settings), so the report can replay what the
optimizer's verification simulated: Poisson arrivals at the verified rate with the trace's sizes, on
the scenario's first seed. Deterministic like every simulation, and about a second for a typical plan.
If anything needed is missing or no longer resolves (a trace moved, a custom catalog), the report
says so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitplan.errors import SplitplanError
from splitplan.report.columns import pick_key
from splitplan.report.inputs import PlanOutput, SimOutput


@dataclass(frozen=True)
class Replay:
    """The simulated best plan, or why there is none; `note` says how it was obtained."""

    sim: SimOutput | None
    note: str


def best_plan_simulation(data: PlanOutput) -> Replay:
    """The optimizer's saved simulation if any, else a replay of its verification at the planned rate."""
    if data.best_sim is not None:
        return Replay(data.best_sim, f"Saved by the optimizer in {data.best_sim.path.name}/.")
    try:
        return _replay(data.plan, data.path)
    except (SplitplanError, OSError, KeyError, TypeError, ValueError) as exc:
        return Replay(None, f"Could not re-simulate the recommended plan: {exc}.")


def _replay(plan: dict[str, Any], out_dir: Path) -> Replay:
    from dataclasses import replace

    from splitplan.cluster import ClusterSpec, serving_overrides
    from splitplan.scenario import PerfSection, perf_settings_of_section
    from splitplan.scenario_designs import CLUSTER_DESIGNS
    from splitplan.sim import SimConfig, simulate
    from splitplan.slo import parse_slos
    from splitplan.workload import load_trace, poisson_workload, resolve_trace_path

    scenario = plan.get("scenario") or {}
    best = plan.get("best") or {}
    rate_rps = pick_key(best, "max_rate_rps") if "max_rate_rps" in best else pick_key(best, "throughput_rps")
    if not best.get("pools") or not isinstance(rate_rps, (int, float)) or rate_rps <= 0:
        raise SplitplanError("plan.json has no verified best plan")
    workload = scenario.get("workload") or {}
    for key, value in (("scenario.model", scenario.get("model")), ("scenario.workload.trace", workload.get("trace"))):
        if not value:
            raise SplitplanError(f"plan.json has no {key}")
    seeds = workload.get("seeds") or [workload.get("seed", 0)]
    seed, duration_s = int(seeds[0]), float(workload.get("duration_s") or 120.0)
    source = scenario.get("source")
    sizes = load_trace(resolve_trace_path(str(workload["trace"]), Path(source).parent if source else None))
    perf = scenario.get("perf") or {}
    settings = perf_settings_of_section(PerfSection(
        backend=perf.get("backend") or "analytic", profile=perf.get("profile"),
        stack=perf.get("stack_file") or perf.get("stack"), compat=perf.get("compat"), weights=perf.get("weights"),
        moe_weights=perf.get("moe_weights"), kv=perf.get("kv")))
    design = next((d for d in scenario.get("designs") or [] if d.get("name") == best.get("design")), {})
    cluster = ClusterSpec.from_dict({"model": scenario["model"],
                                     "design": CLUSTER_DESIGNS.get(best.get("kind") or "", "splitwise"),
                                     "pools": best["pools"], "stack": design.get("stack")},
                                    source=str(out_dir / "plan.json"))
    serving = scenario.get("serving") or {}
    top = {k: v for k, v in serving.items() if k not in ("prompt", "token", "mixed", "transfer",
                                                         "prompt_overflow_tokens", "token_overflow_tokens")}
    if top:
        settings = replace(settings, scheduling=serving_overrides(top, str(out_dir / "plan.json"), "serving"))
    slos = parse_slos(scenario["slos"], source=str(out_dir / "plan.json")) if scenario.get("slos") else None
    extra = {k: serving[k] for k in ("transfer", "prompt_overflow_tokens", "token_overflow_tokens") if k in serving}
    config = SimConfig(reference_machine=scenario.get("reference_machine") or "dgx-a100",
                       reference_tp=scenario.get("reference_tp"), **extra)
    result = simulate(cluster, poisson_workload(sizes, float(rate_rps), duration_s, seed), perf=settings,
                      catalog=_catalog(source), config=config, slos=slos)
    sim = SimOutput(path=out_dir, summary=result.summary, requests=result.requests, machines=result.machines,
                    timeline=result.timeline)
    note = (f"The optimizer saved no simulation, so this report re-ran its verification: Poisson arrivals at the "
            f"planned {rate_rps:.2f} req/s, {duration_s:g} s, seed {seed}, trace {Path(str(workload['trace'])).name}.")
    return Replay(sim, note)


def _catalog(scenario_source: str | None):
    """The scenario's own catalog files (plan.json does not echo them), when its file is still there."""
    from splitplan.catalog import get_catalog
    from splitplan.scenario import load_scenario

    if scenario_source and Path(scenario_source).is_file():
        return get_catalog(load_scenario(scenario_source).catalog_files)
    return get_catalog()
