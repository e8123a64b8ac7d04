"""Verification: the simulator's max rate of a cluster over independent seeds, and its SLO margins.

Only simulated numbers are reported as throughput. Per seed, the max rate is bisected in a tight
bracket around the capacity model's estimate (widened automatically when the estimate is off), which
takes about half the simulations of a blind bracket. Pass/fail is not exactly monotone in the rate, so
the reported rate is then re-simulated on every seed and lowered until >= require_fraction of the seeds
meet every SLO unsaturated: the plan's margins are measured at the very rate reported.
`verify_cluster` is a module-level function of picklable arguments (worker processes run it); its seeds
come from the scenario, so its result does not depend on the worker that ran it.
"""

from __future__ import annotations

import math

import numpy as np

from splitplan.cluster import ClusterSpec
from splitplan.plan.problem import Problem
from splitplan.plan.result import Verification
from splitplan.sim import SimConfig, find_max_rps, simulate
from splitplan.workload import Workload, poisson_workload

BRACKET = (0.75, 1.3)  # initial bisection bracket around the estimate
REL_TOL = 0.02  # bisection resolution relative to the expected rate (seed-to-seed noise is larger)
CONFIRM_STEPS = 6  # at most this many lowering steps when the seeds disagree at the combined rate


def sim_config(problem: Problem) -> SimConfig:
    return SimConfig(reference_machine=problem.catalog.machine(problem.scenario.reference_machine).name)


def verify_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float) -> Verification:
    """Max rate meeting every SLO on >= require_fraction of the scenario's seeds, with its SLO margins."""
    s = problem.scenario.search
    tol = max(s.rate_tol_rps, REL_TOL * max(hint_rps, 0.0))  # no finer than 2% of the expected rate
    per_seed, sims = [], 0
    for seed in problem.scenario.seed_list():
        rate, n = _seed_max_rate(problem, cluster, seed, max(hint_rps, 4 * tol), tol)
        per_seed.append(rate)
        sims += n
    need = max(1, math.ceil(s.require_fraction * len(per_seed)))
    rate = sorted(per_seed, reverse=True)[need - 1]
    margins, ok = {}, False
    for _ in range(CONFIRM_STEPS):
        if rate <= 0:
            break
        margins, passed = slo_margins(problem, cluster, rate, need)
        sims += len(per_seed)
        if passed:
            ok = True
            break
        rate = max(0.0, rate - max(tol, 0.02 * rate))
    if not ok:
        rate, margins = 0.0, {}
    return Verification(rate_rps=rate, per_seed_rps=tuple(per_seed), mean_rps=float(np.mean(per_seed)),
                        ci95_rps=_ci95(per_seed), slo_margins=margins, saturated=rate <= 0, n_simulations=sims)


def _seed_max_rate(problem: Problem, cluster: ClusterSpec, seed: int, hint: float, tol: float) -> tuple[float, int]:
    """One seed's max passing rate: bisection in [0.75, 1.3] x hint, moved up or down until it straddles."""
    sc = problem.scenario
    lo, hi = BRACKET[0] * hint, BRACKET[1] * hint
    sims = 0
    for _ in range(12):
        r = find_max_rps(cluster, problem.sizes, duration_s=sc.workload.duration_s, seeds=(seed,),
                         perf=problem.perf, catalog=problem.catalog, config=sim_config(problem), slos=problem.slos,
                         lo_rps=lo, hi_rps=hi, tol_rps=tol)
        sims += r.simulations
        rate = float(r.max_rps)
        if rate >= hi * (1 - 1e-12):  # passes at the top: the bracket is too low
            lo, hi = hi, hi * 2.0
        elif rate <= 0:  # fails at the bottom: too high
            if lo <= tol:
                return 0.0, sims
            lo, hi = lo / 3.0, lo
        else:
            return rate, sims
    return rate, sims


def _ci95(values: list[float]) -> tuple[float, float]:
    """Student-t 95% interval of the mean across seeds (a point for one seed)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return (mean, mean)
    from scipy import stats

    half = float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return (mean - half, mean + half)


def slo_margins(problem: Problem, cluster: ClusterSpec, rate_rps: float,
                need: int | None = None) -> tuple[dict[str, float], bool]:
    """Worst margin per SLO over the seeds at `rate_rps`, and whether >= `need` seeds (default all) pass."""
    seeds = problem.scenario.seed_list()
    need = len(seeds) if need is None else need
    margins: dict[str, float] = {}
    passed = 0
    for seed in seeds:
        r = simulate(cluster, workload_at(problem, rate_rps, seed), perf=problem.perf, catalog=problem.catalog,
                     config=sim_config(problem), slos=problem.slos)
        passed += bool(r.all_slos_met)
        for name, item in r.summary["slo"].items():
            m = item["margin"]
            m = -math.inf if m is None else float(m)
            margins[name] = min(margins.get(name, math.inf), m)
    return margins, passed >= need


def workload_at(problem: Problem, rate_rps: float, seed: int) -> Workload:
    """What find_max_rps simulates for one seed: trace sizes with Poisson arrivals at the rate."""
    return poisson_workload(problem.sizes, rate_rps, problem.scenario.workload.duration_s, seed)
