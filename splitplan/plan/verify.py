"""Verification: the simulator's max rate of a cluster over independent seeds, and its SLO margins.

Only simulated numbers are reported as throughput. Per seed, the max rate is bisected over a geometric
lattice of rates (2% apart) in a bracket around the capacity model's estimate (moved when the estimate
is off): a tight bracket takes about half the simulations of a blind one, and the lattice makes the
answer independent of where the bracket started. Pass/fail is not exactly monotone in the rate, so
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
from splitplan.sim import SimConfig, simulate
from splitplan.workload import Workload, poisson_workload

RATE_STEP = 1.02  # rates are resolved on a geometric lattice (2% steps), whatever the estimate
BRACKET_STEPS = (-15, 13)  # initial bracket around the estimate: about [0.74, 1.29] x estimate
CONFIRM_STEPS = 6  # at most this many lattice steps down when the seeds disagree at the combined rate


# The simulator's backlog-trend test flags a run as saturated when the requests in the system grow by
# more than `saturation_growth` x their mean level over the second half of the arrivals. Its default
# (0.25, 20 requests) is tuned for long runs; on the optimizer's 30-40 s runs Poisson noise trips it at
# low load (Splitwise-HH 36+4, coding, seed 1: "saturated" at 48.5 and 60 req/s, passing at 80-140),
# which makes pass/fail non-monotone in the rate and the bisection meaningless. The optimizer asks for
# growth above 0.75 x the level and 40 requests; real overload still fails (SLOs, unfinished requests
# at the drain limit, growth well above the level), as the same runs show at 170-200 req/s.
SATURATION_GROWTH = 0.75
SATURATION_MIN_REQUESTS = 40


def sim_config(problem: Problem) -> SimConfig:
    return SimConfig(reference_machine=problem.catalog.machine(problem.scenario.reference_machine).name,
                     saturation_growth=SATURATION_GROWTH, saturation_min_requests=SATURATION_MIN_REQUESTS)


def lattice_rate(k: int) -> float:
    return RATE_STEP ** k


def verify_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float) -> Verification:
    """Max rate meeting every SLO on >= require_fraction of the scenario's seeds, with its SLO margins."""
    s = problem.scenario.search
    floor_k = math.ceil(math.log(s.rate_tol_rps) / math.log(RATE_STEP))  # rates below rate_tol_rps count as 0
    hint_k = max(floor_k, round(math.log(max(hint_rps, s.rate_tol_rps)) / math.log(RATE_STEP)))
    per_k, sims = [], 0
    for seed in problem.scenario.seed_list():
        k, n = _seed_max_k(problem, cluster, seed, hint_k, floor_k)
        per_k.append(k)
        sims += n
    need = max(1, math.ceil(s.require_fraction * len(per_k)))
    k = sorted(per_k, reverse=True)[need - 1]
    margins, ok = {}, False
    for _ in range(CONFIRM_STEPS):
        if k < floor_k:
            break
        margins, passed = slo_margins(problem, cluster, lattice_rate(k), need)
        sims += len(per_k)
        if passed:
            ok = True
            break
        k -= 1
    per_seed = [lattice_rate(x) if x >= floor_k else 0.0 for x in per_k]
    rate = lattice_rate(k) if ok else 0.0
    return Verification(rate_rps=rate, per_seed_rps=tuple(per_seed), mean_rps=float(np.mean(per_seed)),
                        ci95_rps=_ci95(per_seed), slo_margins=margins if ok else {}, saturated=not ok,
                        n_simulations=sims)


def screen_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float) -> Verification:
    """Max rate on the first seed only, without the re-check: a cheap, paired comparison for local search
    (every neighbour sees the same seed's arrivals), never reported as a plan's throughput."""
    s = problem.scenario.search
    floor_k = math.ceil(math.log(s.rate_tol_rps) / math.log(RATE_STEP))
    hint_k = max(floor_k, round(math.log(max(hint_rps, s.rate_tol_rps)) / math.log(RATE_STEP)))
    k, sims = _seed_max_k(problem, cluster, problem.scenario.seed_list()[0], hint_k, floor_k)
    rate = lattice_rate(k) if k >= floor_k else 0.0
    return Verification(rate_rps=rate, per_seed_rps=(rate,), mean_rps=rate, ci95_rps=(rate, rate), slo_margins={},
                        saturated=rate <= 0, n_simulations=sims, screened=True)


def _seed_max_k(problem: Problem, cluster: ClusterSpec, seed: int, hint_k: int, floor_k: int) -> tuple[int, int]:
    """One seed's highest passing lattice index (floor_k - 1 when none passes), by bisection.

    The bracket starts around the estimate and moves until it straddles the edge, so the answer depends
    on the estimate only through the noise of non-monotone seeds, not through the bracket's ends."""
    sims = 0

    def passes(k: int) -> bool:
        nonlocal sims
        w = workload_at(problem, lattice_rate(k), seed)
        if len(w) == 0:  # a rate so low that no request arrives proves nothing
            return False
        sims += 1
        r = simulate(cluster, w, perf=problem.perf, catalog=problem.catalog, config=sim_config(problem),
                     slos=problem.slos)
        return bool(r.all_slos_met)

    lo, hi = max(floor_k, hint_k + BRACKET_STEPS[0]), max(floor_k + 1, hint_k + BRACKET_STEPS[1])
    for _ in range(8):  # make hi fail (x1.8 per move)
        if not passes(hi):
            break
        lo, hi = hi, hi + 30
    else:
        return hi, sims
    while not passes(lo):  # make lo pass (/2.4 per move)
        if lo <= floor_k:
            return floor_k - 1, sims
        hi, lo = lo, max(floor_k, lo - 45)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo, sims


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
        w = workload_at(problem, rate_rps, seed)
        if len(w) == 0:
            continue
        r = simulate(cluster, w, perf=problem.perf, catalog=problem.catalog, config=sim_config(problem),
                     slos=problem.slos)
        passed += bool(r.all_slos_met)
        for name, item in r.summary["slo"].items():
            m = item["margin"]
            m = -math.inf if m is None else float(m)
            margins[name] = min(margins.get(name, math.inf), m)
    return margins, passed >= need


def workload_at(problem: Problem, rate_rps: float, seed: int) -> Workload:
    """One seed's workload at a rate: trace sizes with Poisson arrivals (as find_max_rps simulates)."""
    return poisson_workload(problem.sizes, rate_rps, problem.scenario.workload.duration_s, seed)
