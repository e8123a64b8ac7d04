"""Studies as in the paper: per-design comparisons under one constraint set, and Pareto frontiers.

Optimizing every design of a scenario under the same budget gives the paper's iso-power / iso-cost
(max throughput) and iso-throughput (min cost or min power) comparisons; ratios are relative to the
first design, which by convention is the baseline.
"""

from __future__ import annotations

from typing import Any

from splitplan.plan.result import Candidate, DesignResult


def pareto_rows(candidates: list[Candidate], axis: str) -> list[dict[str, Any]]:
    """Verified candidates no other beats on both `axis` (lower) and throughput (higher), by axis."""
    pts = sorted((c for c in candidates if c.verified), key=lambda c: (getattr(c, axis), -c.throughput_rps,
                                                                       c.key()))
    frontier, best = [], -1.0
    for c in pts:
        if c.throughput_rps > best + 1e-9:
            frontier.append(c)
            best = c.throughput_rps
    return [{"design": c.design, "label": c.cluster.label(), "cost_usd_per_h": round(c.cost_usd_per_h, 6),
             "power_kw": round(c.power_kw, 6), "max_rate_rps": round(c.throughput_rps, 6)} for c in frontier]


def comparisons(designs: tuple[DesignResult, ...]) -> tuple[dict[str, Any], ...]:
    """Each design's best plan with throughput/cost/power ratios against the first feasible-or-not design."""
    ref = designs[0].best if designs else None
    rows = []
    for d in designs:
        row: dict[str, Any] = {"design": d.name, "kind": d.kind, "status": d.status, "binding": d.binding}
        b = d.best
        row.update({"label": b.cluster.label() if b else None,
                    "max_rate_rps": round(b.throughput_rps, 6) if b else None,
                    "phases": b.phases.value if b else None,
                    "cost_usd_per_h": round(b.cost_usd_per_h, 6) if b else None,
                    "power_kw": round(b.power_kw, 6) if b else None})
        for key, attr in (("max_rate_ratio", "throughput_rps"), ("cost_ratio", "cost_usd_per_h"),
                          ("power_ratio", "power_kw")):
            num, den = (getattr(b, attr) if b else None), (getattr(ref, attr) if ref else None)
            row[key] = round(num / den, 4) if num is not None and den else None
        rows.append(row)
    return tuple(rows)


def better(a: Candidate, b: Candidate | None, objective: str, target_rps: float | None = None) -> bool:
    """Is candidate a a better answer than b? Verified beats unverified; then the objective; then cheaper."""
    if b is None:
        return True
    ok_a, ok_b = _acceptable(a, objective, target_rps), _acceptable(b, objective, target_rps)
    if ok_a != ok_b:
        return ok_a
    if not ok_a and target_rps is not None and objective != "max_throughput":
        # Neither reaches the target yet: the one closer to it is where a local search should continue
        # (by cost, the search would settle on the cheapest failing plan and never climb to the target).
        return (round(a.throughput_rps, 9), -round(a.cost_usd_per_h, 9)) > (round(b.throughput_rps, 9),
                                                                              -round(b.cost_usd_per_h, 9))
    return sort_key(a, objective) < sort_key(b, objective)


def _acceptable(c: Candidate, objective: str, target_rps: float | None) -> bool:
    return c.verified and (target_rps is None or c.throughput_rps >= target_rps - 1e-9)


def sort_key(c: Candidate, objective: str) -> tuple:
    """Total order used everywhere (deterministic whatever the evaluation order)."""
    if objective == "max_throughput":
        return (-round(c.throughput_rps, 9), round(c.cost_usd_per_h, 9), round(c.power_kw, 9), c.key())
    if objective == "min_cost":
        return (round(c.cost_usd_per_h, 9), round(c.power_kw, 9), -round(c.throughput_rps, 9), c.key())
    return (round(c.power_kw, 9), round(c.cost_usd_per_h, 9), -round(c.throughput_rps, 9), c.key())


def pick_best(candidates: list[Candidate], objective: str, target_rps: float | None = None) -> Candidate | None:
    """The best acceptable candidate, or None if none is acceptable."""
    ok = [c for c in candidates if _acceptable(c, objective, target_rps)]
    return min(ok, key=lambda c: sort_key(c, objective)) if ok else None
