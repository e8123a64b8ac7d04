"""plan.json read into small dataclasses: the recommended plan and each design's best plan.

The optimizer writes plan.json (schema in splitplan/plan/schema.py); this module is the one place in
the report that knows its keys, so the sections that render it deal in `PlanRow`s (name, pools, cost,
power, throughput with its CI, SLO margins) and keep working if a key is absent from an older file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from splitplan.plan.phases import is_split_kind


@dataclass(frozen=True)
class Pool:
    role: str
    machine: str
    count: int
    tp: int = 8


@dataclass(frozen=True)
class PlanRow:
    """One design's plan as the optimizer verified it (rates in req/s)."""

    name: str
    kind: str
    pools: tuple[Pool, ...]
    cost_usd_per_h: float | None
    power_kw: float | None
    throughput_rps: float | None  # max_rate_rps: the highest offered rate meeting every SLO on every seed
    ci_rps: tuple[float, float] | None  # 95% CI of the per-seed max rates' mean
    per_seed_rps: tuple[float, ...]  # each seed's own max rate
    mean_rps: float | None = None
    slo_margins: dict[str, float] = field(default_factory=dict)  # (limit - value) / limit, worst seed
    status: str = "feasible"
    binding: str | None = None  # what limits the plan, or why there is none
    phases: str | None = None  # "split" | "partly co-located" | "co-located" (schema 2)
    mixed_request_share: float | None = None  # at the verified rate, worst seed
    mixed_token_share: float | None = None
    model_error: float | None = None  # capacity model / simulated max rate - 1

    @property
    def is_split(self) -> bool:
        """Split as run, not only as designed: a split design whose traffic mostly ran co-located is not."""
        if not is_split_kind(self.kind):
            return False
        return self.phases in (None, "split")

    @property
    def machine_count(self) -> int:
        return sum(p.count for p in self.pools)

    @property
    def feasible(self) -> bool:
        return self.status == "feasible" and bool(self.pools)


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
    """The recommendation and the per-design answers of a plan.json mapping."""
    scenario = _mapping(plan.get("scenario"))
    best = plan_row(plan["best"], str(plan.get("status", "feasible")), plan.get("binding")) \
        if isinstance(plan.get("best"), Mapping) else None
    designs = tuple(_design_row(name, _mapping(entry)) for name, entry in _mapping(plan.get("designs")).items())
    return PlanView(
        best=best if best is not None and best.pools else None,
        designs=designs,
        objective=str(plan.get("objective") or scenario.get("objective") or ""),
        status=str(plan.get("status") or ("feasible" if best else "infeasible")),
        binding=plan.get("binding"),
        scenario_name=str(scenario.get("name") or ""),
        model=str(scenario.get("model") or ""),
        constraints=dict(_mapping(scenario.get("constraints"))),
    )


def _design_row(name: str, entry: Mapping[str, Any]) -> PlanRow:
    """A `designs` entry: its status and binding constraint, and its best candidate when it has one."""
    status, binding = str(entry.get("status", "infeasible")), entry.get("binding")
    if isinstance(entry.get("best"), Mapping):
        return plan_row({**entry["best"], "design": name, "kind": entry.get("kind", "")}, status, binding)
    return PlanRow(name=name, kind=str(entry.get("kind", "")), pools=(), cost_usd_per_h=None, power_kw=None,
                   throughput_rps=None, ci_rps=None, per_seed_rps=(), status=status, binding=binding)


def plan_row(candidate: Mapping[str, Any], status: str = "feasible", binding: str | None = None) -> PlanRow:
    """One verified candidate (plan.json `best`, or a design's `best`)."""
    return PlanRow(
        name=str(candidate.get("design", "plan")),
        kind=str(candidate.get("kind", "")),
        pools=_pools(candidate.get("pools")),
        cost_usd_per_h=_number(candidate.get("cost_usd_per_h")),
        power_kw=_number(candidate.get("power_kw")),
        throughput_rps=_number(_either(candidate, "max_rate_rps", "throughput_rps")),
        ci_rps=_pair(_either(candidate, "max_rate_ci95_rps", "throughput_ci95_rps")),
        per_seed_rps=tuple(v for v in map(_number, _either(candidate, "per_seed_max_rate_rps", "per_seed_rps") or ())
                           if v is not None),
        mean_rps=_number(_either(candidate, "max_rate_mean_rps", "throughput_mean_rps")),
        phases=candidate.get("phases") if isinstance(candidate.get("phases"), str) else None,
        mixed_request_share=_number(candidate.get("mixed_request_share")),
        mixed_token_share=_number(candidate.get("mixed_token_share")),
        model_error=_number(candidate.get("model_error")),
        slo_margins={str(k): float(v) for k, v in _mapping(candidate.get("slo_margins")).items()
                     if _number(v) is not None},
        status=status,
        binding=binding,
    )


def _either(entry: Mapping[str, Any], name: str, old_name: str) -> Any:
    """A schema-2 key, or its schema-1 name in an older plan.json."""
    return entry.get(name) if name in entry else entry.get(old_name)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pools(raw: Any) -> tuple[Pool, ...]:
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


def _pair(raw: Any) -> tuple[float, float] | None:
    """A [low, high] interval; None when absent or when either end is null (a single seed has no CI)."""
    if isinstance(raw, (list, tuple)) and len(raw) == 2:
        low, high = _number(raw[0]), _number(raw[1])
        if low is not None and high is not None:
            return low, high
    return None


def pools_text(pools: tuple[Pool, ...]) -> str:
    """'prompt 25 × dgx-h100 + token 26 × dgx-a100' (tp shown only when not 8)."""
    parts = []
    for pool in pools:
        tp = "" if pool.tp == 8 else f" (tp{pool.tp})"
        role = "" if pool.role == "mixed" else f"{pool.role} "
        parts.append(f"{role}{pool.count} × {pool.machine}{tp}")
    return " + ".join(parts) if parts else "—"
