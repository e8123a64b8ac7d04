"""plan.json read into small dataclasses: the recommended plan and each design's best plan.

The optimizer writes plan.json; this module is the one place that knows its keys, so the sections
that render it deal in `PlanRow`s (name, pools, cost, power, throughput with CI, SLO margins).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from splitplan.report.columns import pick_key


@dataclass(frozen=True)
class Pool:
    role: str
    machine: str
    count: int
    tp: int = 8


@dataclass(frozen=True)
class PlanRow:
    """One design's plan as the optimizer verified it (throughput in req/s, 95% CI across seeds)."""

    name: str
    kind: str
    pools: tuple[Pool, ...]
    cost_usd_per_h: float | None
    power_kw: float | None
    throughput_rps: float | None
    ci_rps: tuple[float, float] | None
    per_seed_rps: tuple[float, ...]
    slo_margins: dict[str, float] = field(default_factory=dict)
    status: str = "feasible"
    binding: str | None = None
    label: str = ""

    @property
    def is_split(self) -> bool:
        return self.kind == "splitwise" or any(p.role in ("prompt", "token") for p in self.pools)

    @property
    def machine_count(self) -> int:
        return sum(p.count for p in self.pools)

    @property
    def feasible(self) -> bool:
        return self.status in ("feasible", "ok", "optimal") and bool(self.pools)


@dataclass(frozen=True)
class PlanView:
    best: PlanRow | None
    designs: tuple[PlanRow, ...]
    objective: str
    status: str
    binding: str | None
    scenario_name: str
    model: str
    constraints: dict[str, Any]


def plan_view(plan: Mapping[str, Any]) -> PlanView:
    """Normalize plan.json (keys looked up by meaning, so older files still read)."""
    scenario = plan.get("scenario") if isinstance(plan.get("scenario"), Mapping) else {}
    best_raw = pick_key(plan, "best", "recommendation", "best_plan")
    best = plan_row(best_raw, default_name="recommended") if isinstance(best_raw, Mapping) else None
    designs_raw = pick_key(plan, "designs", "per_design", "studies.designs", default=[])
    if isinstance(designs_raw, Mapping):
        designs_raw = [{"name": k, **v} if isinstance(v, Mapping) else {"name": k} for k, v in designs_raw.items()]
    designs = tuple(plan_row(d, default_name=f"design {i + 1}") for i, d in enumerate(designs_raw)
                    if isinstance(d, Mapping))
    status = str(pick_key(plan, "status", "best.status", default="feasible" if best else "infeasible"))
    return PlanView(
        best=best if best and best.pools else None,
        designs=designs,
        objective=str(pick_key(plan, "objective", "scenario.objective", default="")),
        status=status,
        binding=pick_key(plan, "binding_constraint", "binding", "reason", "best.binding_constraint"),
        scenario_name=str(pick_key(scenario, "name", default="") or pick_key(plan, "scenario_name", default="")),
        model=str(pick_key(plan, "model", "best.cluster.model", "best.model") or pick_key(scenario, "model", default="")),
        constraints=dict(pick_key(scenario, "constraints", default={}) or pick_key(plan, "constraints", default={})),
    )


def plan_row(entry: Mapping[str, Any], default_name: str = "plan") -> PlanRow:
    """One plan entry; a nested {"plan": {...}} or {"best": {...}} per design is unwrapped."""
    inner = pick_key(entry, "plan", "best")
    merged = {**inner, **{k: v for k, v in entry.items() if k not in ("plan", "best")}} \
        if isinstance(inner, Mapping) else dict(entry)
    throughput, ci, per_seed = _throughput(merged)
    status = str(pick_key(merged, "status", default="feasible" if _pools(merged) else "infeasible"))
    return PlanRow(
        name=str(pick_key(merged, "name", "design", "design_name", default=default_name)),
        kind=str(pick_key(merged, "kind", "design_kind", "cluster.design", default="")),
        pools=_pools(merged),
        cost_usd_per_h=_number(pick_key(merged, "cost_usd_per_h")),
        power_kw=_number(pick_key(merged, "power_kw")),
        throughput_rps=throughput,
        ci_rps=ci,
        per_seed_rps=per_seed,
        slo_margins=_margins(pick_key(merged, "slo_margins", "slo", "margins", default={})),
        status=status,
        binding=pick_key(merged, "binding_constraint", "binding", "reason"),
        label=str(pick_key(merged, "label", "cluster.label", default="")),
    )


def _pools(entry: Mapping[str, Any]) -> tuple[Pool, ...]:
    raw = pick_key(entry, "pools", "cluster.pools", default=[])
    pools = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, Mapping) and item.get("count"):
            pools.append(Pool(str(item.get("role", "mixed")), str(item.get("machine", "?")), int(item["count"]),
                              int(item.get("tp", 8))))
    return tuple(pools)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _throughput(entry: Mapping[str, Any]) -> tuple[float | None, tuple[float, float] | None, tuple[float, ...]]:
    """Throughput as a number or as {mean, ci_low, ci_high, per_seed}; CI also as a 2-list."""
    raw = pick_key(entry, "throughput_rps", "throughput", "rate_rps")
    value = _number(raw)
    ci_raw: Any = pick_key(entry, "throughput_ci95_rps", "throughput_ci_rps", "throughput_rps_ci", "ci95_rps", "ci_rps")
    seeds: Any = pick_key(entry, "throughput_per_seed_rps", "per_seed_rps", "per_seed")
    if isinstance(raw, Mapping):
        value = _number(pick_key(raw, "mean", "value", "rate", "rps", "min"))
        ci_raw = ci_raw or pick_key(raw, "ci95", "ci", "ci_rps")
        low, high = _number(pick_key(raw, "ci_low", "low", "lo")), _number(pick_key(raw, "ci_high", "high", "hi"))
        if ci_raw is None and low is not None and high is not None:
            ci_raw = (low, high)
        seeds = seeds or pick_key(raw, "per_seed", "seeds", "per_seed_rps")
    if ci_raw is None:
        low, high = _number(pick_key(entry, "ci_low_rps", "throughput_ci_low")), \
            _number(pick_key(entry, "ci_high_rps", "throughput_ci_high"))
        ci_raw = (low, high) if low is not None and high is not None else None
    ci = None
    if isinstance(ci_raw, (list, tuple)) and len(ci_raw) == 2 and all(_number(v) is not None for v in ci_raw):
        ci = (float(ci_raw[0]), float(ci_raw[1]))
    per_seed = tuple(float(v) for v in seeds if _number(v) is not None) if isinstance(seeds, (list, tuple)) else ()
    return value, ci, per_seed


def _margins(raw: Any) -> dict[str, float]:
    """{slo name: margin} from either {name: margin} or {name: {value, limit, met, margin}}."""
    margins = {}
    if isinstance(raw, Mapping):
        for name, item in raw.items():
            margin = item.get("margin") if isinstance(item, Mapping) else item
            if isinstance(margin, (int, float)) and not isinstance(margin, bool):
                margins[str(name)] = float(margin)
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, Mapping) and "margin" in item:
                margins[str(pick_key(item, "name", "slo", default=len(margins)))] = float(item["margin"])
    return margins


def pools_text(pools: tuple[Pool, ...]) -> str:
    """'prompt 25 x dgx-h100 + token 26 x dgx-a100' (tp shown only when not 8)."""
    parts = []
    for pool in pools:
        tp = "" if pool.tp == 8 else f" (tp{pool.tp})"
        role = "" if pool.role == "mixed" else f"{pool.role} "
        parts.append(f"{role}{pool.count} × {pool.machine}{tp}")
    return " + ".join(parts) if parts else "—"
