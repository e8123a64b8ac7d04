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
from splitplan.sim.maxrate import ci95
from splitplan.workload import Workload, poisson_workload

RATE_STEP = 1.02  # rates are resolved on a geometric lattice (2% steps), whatever the estimate
BRACKET_STEPS = (-15, 13)  # initial bracket around the estimate: about [0.74, 1.29] x estimate
CONFIRM_STEPS = 6  # at most this many lattice steps down when the seeds disagree at the combined rate


# The optimizer's simulations use the simulator's default saturation tests (SimConfig), so a plan it
# recommends is judged the same way by `splitplan simulate`. The backlog-trend test scales with the
# Poisson noise of the level (SimConfig.saturation_noise_z), which keeps short 30-40 s runs from being
# flagged at low load (that made pass/fail non-monotone in the rate and the bisection meaningless).


def sim_config(problem: Problem) -> SimConfig:
    return SimConfig(reference_machine=problem.catalog.machine(problem.scenario.reference_machine).name)


def lattice_rate(k: int) -> float:
    return RATE_STEP ** k


class _Runs:
    """Simulations of one cluster, memoized by (seed, lattice index): the re-check at the combined rate
    reuses whatever the per-seed bisections already ran there."""

    def __init__(self, problem: Problem, cluster: ClusterSpec):
        self.problem, self.cluster = problem, cluster
        self.memo: dict[tuple[int, int], tuple[bool, dict[str, float]]] = {}

    @property
    def sims(self) -> int:
        return len(self.memo)

    def run(self, seed: int, k: int) -> tuple[bool, dict[str, float]]:
        """(every SLO met unsaturated, margin per SLO) for one seed at lattice rate k."""
        if (seed, k) not in self.memo:
            p = self.problem
            w = workload_at(p, lattice_rate(k), seed)
            if len(w) == 0:  # a rate so low that no request arrives proves nothing
                self.memo[seed, k] = (False, {})
            else:
                r = simulate(self.cluster, w, perf=p.perf, catalog=p.catalog, config=sim_config(p), slos=p.slos)
                margins = {name: (-math.inf if item["margin"] is None else float(item["margin"]))
                           for name, item in r.summary["slo"].items()}
                self.memo[seed, k] = (bool(r.all_slos_met), margins)
        return self.memo[seed, k]

    def passes(self, seed: int, k: int) -> bool:
        return self.run(seed, k)[0]


def _lattice_bounds(problem: Problem, hint_rps: float) -> tuple[int, int]:
    """(floor index: rates below rate_tol_rps count as 0, index nearest the estimate)."""
    tol = problem.scenario.search.rate_tol_rps
    floor_k = math.ceil(math.log(tol) / math.log(RATE_STEP))
    return floor_k, max(floor_k, round(math.log(max(hint_rps, tol)) / math.log(RATE_STEP)))


def verify_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float) -> Verification:
    """Max rate meeting every SLO on >= require_fraction of the scenario's seeds, with its SLO margins."""
    floor_k, hint_k = _lattice_bounds(problem, hint_rps)
    runs = _Runs(problem, cluster)
    seeds = problem.scenario.seed_list()
    per_k = [_seed_max_k(runs, seed, hint_k, floor_k) for seed in seeds]
    need = max(1, math.ceil(problem.scenario.search.require_fraction * len(per_k)))
    k = sorted(per_k, reverse=True)[need - 1]
    margins, ok = {}, False
    for _ in range(CONFIRM_STEPS):
        if k < floor_k:
            break
        results = [runs.run(seed, k) for seed in seeds]
        if sum(passed for passed, _ in results) >= need:
            ok = True
            margins = {name: min(m[name] for _, m in results if name in m) for name in results[0][1]}
            break
        k -= 1
    per_seed = [lattice_rate(x) if x >= floor_k else 0.0 for x in per_k]
    rate = lattice_rate(k) if ok else 0.0
    return Verification(rate_rps=rate, per_seed_rps=tuple(per_seed), mean_rps=float(np.mean(per_seed)),
                        ci95_rps=ci95(per_seed), slo_margins=margins, saturated=not ok, n_simulations=runs.sims)


def screen_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float) -> Verification:
    """Max rate on the first seed only, without the re-check: a cheap, paired comparison for local search
    (every neighbour sees the same seed's arrivals), never reported as a plan's throughput."""
    floor_k, hint_k = _lattice_bounds(problem, hint_rps)
    runs = _Runs(problem, cluster)
    k = _seed_max_k(runs, problem.scenario.seed_list()[0], hint_k, floor_k)
    rate = lattice_rate(k) if k >= floor_k else 0.0
    return Verification(rate_rps=rate, per_seed_rps=(rate,), mean_rps=rate, ci95_rps=(rate, rate), slo_margins={},
                        saturated=rate <= 0, n_simulations=runs.sims, screened=True)


def _seed_max_k(runs: _Runs, seed: int, hint_k: int, floor_k: int) -> int:
    """One seed's highest passing lattice index (floor_k - 1 when none passes), by bisection.

    The bracket starts around the estimate and moves until it straddles the edge, so the answer depends
    on the estimate only through the noise of non-monotone seeds, not through the bracket's ends."""
    lo, hi = max(floor_k, hint_k + BRACKET_STEPS[0]), max(floor_k + 1, hint_k + BRACKET_STEPS[1])
    for _ in range(8):  # make hi fail (x1.8 per move)
        if not runs.passes(seed, hi):
            break
        lo, hi = hi, hi + 30
    else:
        return hi
    while not runs.passes(seed, lo):  # make lo pass (/2.4 per move)
        if lo <= floor_k:
            return floor_k - 1
        hi, lo = lo, max(floor_k, lo - 45)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if runs.passes(seed, mid):
            lo = mid
        else:
            hi = mid
    return lo


def workload_at(problem: Problem, rate_rps: float, seed: int) -> Workload:
    """One seed's workload at a rate: trace sizes with Poisson arrivals (as find_max_rps simulates)."""
    return poisson_workload(problem.sizes, rate_rps, problem.scenario.workload.duration_s, seed)
