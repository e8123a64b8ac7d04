"""Say which constraint binds: why a design has no plan, or what stops its plan from growing.

Messages are for planners: they name the budget, its value and what the smallest (or the needed)
cluster would take, e.g. "power budget 10 kW is below the smallest Splitwise-HA cluster (16.7 kW:
1 prompt + 1 token machine)".
"""

from __future__ import annotations

import math

from splitplan.plan.ilp import Limits, solve_ilp
from splitplan.plan.result import Candidate
from splitplan.plan.search import DesignSpace

_ROLE_WORDS = {"prompt": "prompt", "token": "token", "mixed": "machine"}


def smallest_cluster(space: DesignSpace, attr: str) -> tuple[float, str]:
    """Cost or power of one machine per pool, choosing the cheapest type per pool, and its description."""
    total, parts = 0.0, []
    for role in space.roles():
        total += min(getattr(o, attr) for o in space.options if o.role == role)
        parts.append(f"1 {_ROLE_WORDS[role]}")
    return total, " + ".join(parts) + (" machine" if len(parts) > 1 else "")


def why_no_ilp_solution(space: DesignSpace, objective: str, solver: str) -> str:
    """The ILP is infeasible: find the first constraint whose absence makes it feasible."""
    lim, name = space.limits, space.design.name
    cost, what = smallest_cluster(space, "cost_usd_per_h")
    if lim.cost_usd_per_h is not None and cost > lim.cost_usd_per_h:
        return (f"cost budget ${lim.cost_usd_per_h:g}/h is below the smallest {name} cluster "
                f"(${cost:.1f}/h: {what})")
    power, what = smallest_cluster(space, "power_kw")
    if lim.power_kw is not None and power > lim.power_kw:
        return f"power budget {lim.power_kw:g} kW is below the smallest {name} cluster ({power:.1f} kW: {what})"
    pools = len(space.roles())
    if lim.max_machines is not None and lim.max_machines < pools:
        return f"max_machines {lim.max_machines} is below the {pools} pools of {name}"
    target = lim.min_throughput_rps
    if target is None:
        return f"no {name} cluster satisfies the constraints together"
    needed = solve_ilp(space.options, Limits(max_per_pool=10**5, min_throughput_rps=target), "min_cost", solver)
    if not needed:
        return f"min_throughput {target:g} req/s: no {name} machine type has modelled capacity under the SLOs"
    sol = needed[0]
    n = sol.machines()
    if lim.cost_usd_per_h is not None and sol.cost_usd_per_h > lim.cost_usd_per_h:
        allows = _machines_allowed(space, "cost_usd_per_h", lim.cost_usd_per_h)
        return (f"min_throughput {target:g} req/s needs about {n} {name} machines (${sol.cost_usd_per_h:.0f}/h), "
                f"cost budget ${lim.cost_usd_per_h:g}/h allows {allows}")
    if lim.power_kw is not None and sol.power_kw > lim.power_kw:
        allows = _machines_allowed(space, "power_kw", lim.power_kw)
        return (f"min_throughput {target:g} req/s needs about {n} {name} machines ({sol.power_kw:.1f} kW), "
                f"power budget {lim.power_kw:g} kW allows {allows}")
    biggest = max(sol.count(r) for r in space.roles())
    if biggest > lim.max_per_pool:
        return (f"min_throughput {target:g} req/s needs about {biggest} machines in one pool of {name}, "
                f"more than the {lim.max_per_pool} allowed per pool")
    if lim.max_machines is not None and n > lim.max_machines:
        return f"min_throughput {target:g} req/s needs about {n} {name} machines, max_machines is {lim.max_machines}"
    return f"no {name} cluster meets min_throughput {target:g} req/s within the constraints"


def _machines_allowed(space: DesignSpace, attr: str, budget: float) -> int:
    return int(math.floor(budget / min(getattr(o, attr) for o in space.options) + 1e-9))


def why_unverified(space: DesignSpace, candidates: list[Candidate], unloaded: str = "") -> str:
    """Plans were simulated and none was acceptable: which constraint, which SLO (even unloaded, when
    that is the cause), and the closest plan that was simulated, in one line."""
    name, target = space.design.name, space.limits.min_throughput_rps
    ok = [c for c in candidates if c.verified]
    if not ok:
        line = (f"no simulated {name} cluster within the constraints met every SLO at any rate "
                f"({len(candidates)} tried)")
        if unloaded:
            line += f"; {unloaded}"
        closest = _closest_failure(candidates)
        return line + (f"; closest simulated: {closest}" if closest else "")
    top = max(ok, key=lambda c: (c.throughput_rps, -c.cost_usd_per_h))
    return (f"min_throughput {target:g} req/s not reached within {_limits_text(space)}: the best simulated "
            f"{name} cluster ({_plan(top)}) sustains {top.throughput_rps:.1f} req/s"
            + (f"; {unloaded}" if unloaded else "") + model_estimate(space))


def _limits_text(space: DesignSpace) -> str:
    lim = space.limits
    parts = [f"cost budget ${lim.cost_usd_per_h:g}/h" if lim.cost_usd_per_h is not None else "",
             f"power budget {lim.power_kw:g} kW" if lim.power_kw is not None else "",
             f"max_machines {lim.max_machines}" if lim.max_machines is not None else "",
             f"{lim.max_per_pool} machines per pool"]
    return ", ".join(p for p in parts if p)


def model_estimate(space: DesignSpace, solver: str = "cbc") -> str:
    """'; the capacity model estimates about 39 machines ($992/h) for it' (context, not the verdict)."""
    target = space.limits.min_throughput_rps
    if target is None:
        return ""
    sols = solve_ilp(space.options, Limits(max_per_pool=10**5, min_throughput_rps=target), "min_cost", solver)
    if not sols:
        return "; the capacity model finds no machine type with capacity under the SLOs"
    n = sols[0].machines()
    return f"; the capacity model estimates about {n} machines (${sols[0].cost_usd_per_h:.0f}/h) for it"


def _closest_failure(candidates: list[Candidate]) -> str:
    """The largest simulated plan, with what it missed at the lowest rate tried."""
    if not candidates:
        return ""
    top = max(candidates, key=lambda c: (c.cost_usd_per_h, c.power_kw, c.key()))
    v = top.verification
    what = f"{v.miss} at {v.miss_rate_rps:.2f} req/s" if v.miss else "failed at every rate tried"
    return f"{_plan(top)} ({what})"


def _plan(c: Candidate) -> str:
    return f"{c.cluster.label().split(': ', 1)[-1]}, ${c.cost_usd_per_h:.1f}/h"


def what_binds(space: DesignSpace, best: Candidate, objective: str) -> str:
    """For a feasible plan: the limit that stops it from growing (max_throughput) or the target."""
    if objective != "max_throughput":
        return f"min_throughput {space.limits.min_throughput_rps:g} req/s"
    lim, eps = space.limits, 1e-9
    cheapest = min(space.options, key=lambda o: o.cost_usd_per_h)
    lowest = min(space.options, key=lambda o: o.power_kw)
    if lim.cost_usd_per_h is not None and best.cost_usd_per_h + cheapest.cost_usd_per_h > lim.cost_usd_per_h + eps:
        return f"cost budget ${lim.cost_usd_per_h:g}/h (plan ${best.cost_usd_per_h:.1f}/h)"
    if lim.power_kw is not None and best.power_kw + lowest.power_kw > lim.power_kw + eps:
        return f"power budget {lim.power_kw:g} kW (plan {best.power_kw:.1f} kW)"
    if lim.max_machines is not None and best.machines() >= lim.max_machines:
        return f"max_machines {lim.max_machines}"
    return f"max {lim.max_per_pool} machines per pool"
