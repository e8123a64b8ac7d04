"""The plan.json schema, written as data, and a checker (no jsonschema dependency).

A schema node is a Python type (or tuple of types), a dict of required keys -> nodes, a one-element
list [node] for "list of node", `Nullable(node)`, `MapOf(node)` for free-form keys, or `OneOf(...)` of
literal values. `check_plan(data)` returns the list of problems ("best.pools[0].count: expected int").
Consumers (report, check) can rely on every key below existing in schema_version 2 (the report also
reads schema-1 files, whose rates were named throughput_rps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from splitplan.scenario_designs import DESIGN_KINDS

NUM = (int, float)
STATUSES = ("feasible", "infeasible", "time_limit", "interrupted")
PHASES = ("split", "partly co-located", "co-located")


@dataclass(frozen=True)
class Nullable:
    node: Any


@dataclass(frozen=True)
class MapOf:
    node: Any


@dataclass(frozen=True)
class OneOf:
    values: tuple


POOL = {"role": OneOf(("prompt", "token", "mixed")), "machine": str, "count": int, "tp": int}

CANDIDATE = {
    "design": str, "kind": OneOf(DESIGN_KINDS), "label": str, "pools": [POOL],
    "machines": int, "prompt_machines": int, "token_machines": int, "mixed_machines": int,
    "cost_usd_per_h": NUM, "power_kw": NUM,
    "max_rate_rps": NUM, "max_rate_mean_rps": NUM, "max_rate_ci95_rps": [Nullable(NUM)],
    "per_seed_max_rate_rps": [NUM], "slo_margins": MapOf(Nullable(NUM)), "saturated": bool,
    "phases": OneOf(PHASES), "mixed_request_share": Nullable(NUM), "mixed_token_share": Nullable(NUM),
    "model_rate_rps": NUM, "model_error": Nullable(NUM), "within_budget": bool, "verified": bool,
    "source": OneOf(("ilp", "local", "grid", "screen")), "n_simulations": int, "miss": Nullable(str),
    "perf_provenance": MapOf(str),
}

DESIGN = {
    "kind": OneOf(DESIGN_KINDS), "status": OneOf(STATUSES), "binding": str,
    "max_rate_rps": Nullable(NUM), "cost_usd_per_h": Nullable(NUM), "power_kw": Nullable(NUM),
    "machines": Nullable(int), "prompt_machines": Nullable(int), "token_machines": Nullable(int),
    "mixed_machines": Nullable(int), "phases": Nullable(OneOf(PHASES)), "best": Nullable(CANDIDATE),
    "capacity_model": [{"role": str, "machine": str, "tp": int, "rate_rps": NUM, "bound": str, "instances": int}],
    "model_error": {"candidates": int, "median": Nullable(NUM), "min": Nullable(NUM), "max": Nullable(NUM)},
}

COMPARISON = {
    "design": str, "kind": str, "status": str, "binding": str, "label": Nullable(str),
    "max_rate_rps": Nullable(NUM), "phases": Nullable(OneOf(PHASES)), "cost_usd_per_h": Nullable(NUM),
    "power_kw": Nullable(NUM), "max_rate_ratio": Nullable(NUM), "cost_ratio": Nullable(NUM),
    "power_ratio": Nullable(NUM),
}

PARETO_POINT = {"design": str, "label": str, "cost_usd_per_h": NUM, "power_kw": NUM, "max_rate_rps": NUM}

PLAN = {
    "schema_version": OneOf((2,)),
    "scenario": {"name": str, "model": str, "workload": dict, "slos": [str], "reference_machine": str,
                 "designs": [dict], "constraints": dict, "objective": str, "search": dict, "perf": dict},
    "objective": OneOf(("max_throughput", "min_cost", "min_power")),
    "method": OneOf(("ilp", "grid", "both")),
    "status": OneOf(STATUSES),
    "binding": str,
    "warnings": [str],
    "best": Nullable(CANDIDATE),
    "designs": MapOf(DESIGN),
    "comparisons": [COMPARISON],
    "candidates": [CANDIDATE],
    "pareto": {"cost": [PARETO_POINT], "power": [PARETO_POINT]},
    "perf": {"backend": str, "compat": Nullable(str), "provenance": MapOf(str)},
}


def check(data: Any, node: Any, where: str = "") -> list[str]:
    """Problems of `data` against schema `node`, each 'path: problem'."""
    here = where or "<root>"
    if isinstance(node, Nullable):
        return [] if data is None else check(data, node.node, where)
    if isinstance(node, OneOf):
        return [] if data in node.values and type(data) is not bool else [f"{here}: {data!r} not in {node.values}"]
    if isinstance(node, MapOf):
        if not isinstance(data, dict):
            return [f"{here}: expected a mapping"]
        return [p for k, v in data.items() for p in check(v, node.node, f"{where}.{k}" if where else str(k))]
    if isinstance(node, dict):
        if not isinstance(data, dict):
            return [f"{here}: expected a mapping"]
        problems = [f"{where + '.' if where else ''}{k}: missing" for k in node if k not in data]
        for k, sub in node.items():
            if k in data:
                problems += check(data[k], sub, f"{where}.{k}" if where else k)
        return problems
    if isinstance(node, list):
        if not isinstance(data, list):
            return [f"{here}: expected a list"]
        return [p for i, item in enumerate(data) for p in check(item, node[0], f"{where}[{i}]")]
    types = node if isinstance(node, tuple) else (node,)
    if isinstance(data, bool) and bool not in types:
        return [f"{here}: expected {'/'.join(t.__name__ for t in types)}, got bool"]
    if not isinstance(data, types):
        return [f"{here}: expected {'/'.join(t.__name__ for t in types)}, got {type(data).__name__}"]
    return []


def check_plan(data: Any) -> list[str]:
    """Problems of a plan.json mapping; also the invariants the optimizer promises for the best plan."""
    problems = check(data, PLAN)
    if problems:
        return problems
    best = data["best"]
    if data["status"] == "feasible" and best is None:
        problems.append("best: missing for a feasible plan")
    if best is not None:
        if not best["verified"] or best["saturated"] or not best["within_budget"]:
            problems.append("best: not a verified, unsaturated, within-budget plan")
        c = data["scenario"]["constraints"]
        if c.get("cost_usd_per_h") is not None and best["cost_usd_per_h"] > c["cost_usd_per_h"] + 1e-6:
            problems.append("best.cost_usd_per_h: over the cost budget")
        if c.get("power_kw") is not None and best["power_kw"] > c["power_kw"] + 1e-6:
            problems.append("best.power_kw: over the power budget")
    return problems
