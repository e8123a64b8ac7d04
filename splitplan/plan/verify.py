"""Verification: the simulator's max rate of a cluster over independent seeds, and its SLO margins.

Only simulated numbers are reported as throughput. `verify_cluster` is a module-level function of
picklable arguments so worker processes can run it; its seeds come from the scenario, so the result
does not depend on which worker ran it.
"""

from __future__ import annotations

import math

from splitplan.cluster import ClusterSpec
from splitplan.plan.problem import Problem
from splitplan.plan.result import Verification
from splitplan.sim import SimConfig, find_max_rps, simulate
from splitplan.workload import Workload, poisson_workload


def sim_config(problem: Problem) -> SimConfig:
    return SimConfig(reference_machine=problem.catalog.machine(problem.scenario.reference_machine).name)


def verify_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float) -> Verification:
    """Max rate meeting every SLO on >= require_fraction of the scenario's seeds (bisection per seed)."""
    sc = problem.scenario
    s = sc.search
    # The bracket is left to find_max_rps (it widens an automatic bracket; an explicit one would cap the
    # answer at our estimate); the estimate only sets how fine the bisection needs to be.
    result = find_max_rps(cluster, problem.sizes, duration_s=sc.workload.duration_s, seeds=sc.seed_list(),
                          perf=problem.perf, catalog=problem.catalog, config=sim_config(problem),
                          slos=problem.slos, tol_rps=_tolerance(s.rate_tol_rps, hint_rps),
                          require_fraction=s.require_fraction)
    return Verification(rate_rps=float(result.max_rps), per_seed_rps=tuple(float(x) for x in result.per_seed_rps),
                        mean_rps=float(result.mean_rps), ci95_rps=tuple(float(x) for x in result.ci95_rps),
                        slo_margins={}, saturated=result.max_rps <= 0, n_simulations=int(result.simulations))


def _tolerance(tol_rps: float, hint_rps: float) -> float:
    """The scenario's tolerance, but no finer than 1% of the expected rate (large clusters)."""
    return max(tol_rps, 0.01 * hint_rps)


def slo_margins(problem: Problem, cluster: ClusterSpec, rate_rps: float) -> tuple[dict[str, float], bool]:
    """Worst margin per SLO over the seeds at `rate_rps`, and whether any seed saturated there."""
    if rate_rps <= 0:
        return {}, True
    margins: dict[str, float] = {}
    saturated = False
    for seed in problem.scenario.seed_list():
        w = workload_at(problem, rate_rps, seed)
        r = simulate(cluster, w, perf=problem.perf, catalog=problem.catalog, config=sim_config(problem),
                     slos=problem.slos)
        saturated |= bool(r.saturated)
        for name, item in r.summary["slo"].items():
            m = item["margin"]
            m = -math.inf if m is None else float(m)
            margins[name] = min(margins.get(name, math.inf), m)
    return margins, saturated


def workload_at(problem: Problem, rate_rps: float, seed: int) -> Workload:
    """What find_max_rps simulates for one seed: trace sizes with Poisson arrivals at the rate."""
    return poisson_workload(problem.sizes, rate_rps, problem.scenario.workload.duration_s, seed)
