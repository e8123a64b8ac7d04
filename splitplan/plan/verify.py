"""Verification: the simulator's max rate of a cluster over independent seeds, and its SLO margins.

Only simulated numbers are reported as throughput. Per seed, the max rate is searched over a geometric
lattice of rates (2% apart) from the capacity model's estimate (later seeds: from the first seed's
answer), widening until the edge is bracketed, then bisected (sim/maxrate.py: lattice_max): an
estimate near the answer saves simulations, and the lattice makes the answer independent of where the
search started. Pass/fail is not exactly monotone in the rate, so
the reported rate is then re-simulated on every seed and lowered until >= require_fraction of the seeds
meet every SLO unsaturated: the plan's margins are measured at the very rate reported.
`verify_cluster` is a module-level function of picklable arguments (worker processes run it); its seeds
come from the scenario, so its result does not depend on the worker that ran it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np

from splitplan.cluster import ClusterSpec
from splitplan.plan.problem import Problem
from splitplan.plan.progress import note_simulation
from splitplan.plan.result import Verification
from splitplan.sim import SimConfig, simulate
from splitplan.sim.maxrate import HINT_STEP_K, KNOWN_STEP_K, SEED_STEP_K, ci95, lattice_max
from splitplan.workload import Workload, poisson_workload

RATE_STEP = 1.02  # rates are resolved on a geometric lattice (2% steps), whatever the estimate
CONFIRM_STEPS = 6  # at most this many lattice steps down when the seeds disagree at the combined rate


# The optimizer's simulations use the simulator's default saturation tests (SimConfig), so a plan it
# recommends is judged the same way by `splitplan simulate`. The backlog-trend test scales with the
# Poisson noise of the level (SimConfig.saturation_noise_z), which keeps short 30-40 s runs from being
# flagged at low load (that made pass/fail non-monotone in the rate and the bisection meaningless).


def sim_config(problem: Problem) -> SimConfig:
    """The simulator's settings for every plan: the SLO reference and the serving section's transfer mode
    and overflow limits (batch limits travel with each pool's scheduling, the capacity model's too)."""
    sc = problem.scenario
    serving = {k: v for k, v in (("transfer", sc.serving.transfer),
                                 ("prompt_overflow_tokens", sc.serving.prompt_overflow_tokens),
                                 ("token_overflow_tokens", sc.serving.token_overflow_tokens)) if v is not None}
    return SimConfig(reference_machine=problem.catalog.machine(sc.reference_machine).name,
                     reference_tp=sc.reference_tp, **serving)


def lattice_rate(k: int) -> float:
    return RATE_STEP ** k


@dataclass(frozen=True)
class Run:
    """One simulation's verdict: every SLO met unsaturated, the margin of each SLO, and the share of
    requests and tokens that ran co-located (a mixed or borrowed machine)."""

    passed: bool
    margins: dict[str, float]
    mixed_request_share: float = 0.0
    mixed_token_share: float = 0.0
    saturated: bool = False
    stop_reason: str = ""  # ended at a certain SLO miss (which, and how many requests settled it)

    @property
    def stopped_early(self) -> bool:
        """Ended at a certain SLO miss: `passed` is exact, the margins partial."""
        return bool(self.stop_reason)


class _Runs:
    """Simulations of one cluster, memoized by (seed, lattice index): the re-check at the combined rate
    reuses whatever the per-seed bisections already ran there."""

    def __init__(self, problem: Problem, cluster: ClusterSpec):
        self.problem, self.cluster = problem, cluster
        self.memo: dict[tuple[int, int], Run] = {}
        self.known_pass: set[tuple[int, int]] = set()  # passes established by an earlier test_cluster

    @property
    def sims(self) -> int:
        return len(self.memo)

    def run(self, seed: int, k: int, stop_at_miss: bool = True) -> Run:
        """The verdict of one seed at lattice rate k (simulated once; a run that is certain to miss an SLO
        stops there unless told otherwise, sim/miss_watch.py: its verdict is the full run's, its margins
        are not measured)."""
        if (seed, k) not in self.memo:
            self.problem.check_deadline()
            self.memo[seed, k] = self._simulate(seed, k, stop_at_miss=stop_at_miss)
        return self.memo[seed, k]

    def _simulate(self, seed: int, k: int, stop_at_miss: bool) -> Run:
        """One run's verdict: from the problem's memo where another optimization already ran it."""
        memo = self.problem.memo
        if memo is None:
            return self._simulate_now(seed, k, stop_at_miss)
        key = memo.key(self.cluster, seed, k, stop_at_miss)
        stored = memo.get(key)
        if stored is not None:
            try:
                return Run(**stored)
            except TypeError:  # not this version's fields: simulate again
                pass
        run = self._simulate_now(seed, k, stop_at_miss)
        memo.put(key, dataclasses.asdict(run))
        return run

    def _simulate_now(self, seed: int, k: int, stop_at_miss: bool) -> Run:
        p = self.problem
        w = workload_at(p, lattice_rate(k), seed)
        if len(w) == 0:  # a rate so low that no request arrives proves nothing
            return Run(False, {})
        note_simulation(self.cluster, lattice_rate(k), seed)
        r = simulate(self.cluster, w, perf=p.perf, catalog=p.catalog, config=sim_config(p), slos=p.slos,
                     stop_at_miss=stop_at_miss)
        margins = slo_margins(r.summary)
        mixed = r.summary["mixed_pool"]
        return Run(bool(r.all_slos_met), margins, float(mixed["request_share"]), float(mixed["token_share"]),
                   bool(r.saturated), str(r.summary.get("stopped_early", "")))

    def complete(self, seed: int, k: int) -> Run:
        """run(seed, k), simulated to its end if it had stopped at a certain miss (its margins are reported)."""
        run = self.run(seed, k)
        if run.stopped_early:
            run = self.memo[seed, k] = self._simulate(seed, k, stop_at_miss=False)
        return run

    def worst_miss(self) -> tuple[float, str]:
        """(rate, what failed) at the lowest rate simulated: for a plan that met the SLOs at no rate. A run
        that stopped at its first certain miss is simulated to its end here, for the size of the miss."""
        if not self.memo:
            return 0.0, ""
        seed, k = min(self.memo, key=lambda sk: (sk[1], sk[0]))
        run = self.complete(seed, k)
        if run.saturated:
            return lattice_rate(k), "saturated"
        if not run.margins:
            return lattice_rate(k), "no request arrived"
        return lattice_rate(k), miss_text(run.margins)

    def passes(self, seed: int, k: int) -> bool:
        return (seed, k) in self.known_pass or self.run(seed, k).passed


def miss_text(margins: dict[str, float]) -> str:
    """The worst SLO of a failed run, as the plan reports it: 'tbt_p50 missed by 12%' (-inf: unfinished)."""
    name, margin = min(margins.items(), key=lambda kv: kv[1])
    return f"{name} missed by {-margin:.0%}" if math.isfinite(margin) else f"{name} unfinished"


def slo_margins(summary: dict) -> dict[str, float]:
    """Each SLO's margin in a run's summary (-inf where unmeasured: an unfinished percentile)."""
    return {name: (-math.inf if item["margin"] is None else float(item["margin"]))
            for name, item in summary["slo"].items()}


def _lattice_bounds(problem: Problem, hint_rps: float) -> tuple[int, int]:
    """(floor index: rates below rate_tol_rps count as 0, index nearest the estimate)."""
    tol = problem.scenario.search.rate_tol_rps
    floor_k = math.ceil(math.log(tol) / math.log(RATE_STEP))
    return floor_k, max(floor_k, round(math.log(max(hint_rps, tol)) / math.log(RATE_STEP)))


def verify_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float,
                   passed_rps: float | None = None) -> Verification:
    """Max rate meeting every SLO on >= require_fraction of the scenario's seeds, with its SLO margins.

    `passed_rps`: a lattice rate this cluster is known to pass on the first seed (a `test_cluster` result;
    simulations are deterministic), so that seed's bisection starts there instead of re-finding it."""
    floor_k, hint_k = _lattice_bounds(problem, hint_rps)
    runs = _Runs(problem, cluster)
    seeds = problem.scenario.seed_list()
    known = lattice_index(passed_rps) if passed_rps else None
    per_k: list[int] = []
    for i, seed in enumerate(seeds):  # later seeds start from the first seed's answer (sim/maxrate.py)
        start, step = (hint_k, HINT_STEP_K) if not per_k else (max(floor_k, per_k[0]), SEED_STEP_K)
        per_k.append(_seed_max_k(runs, seed, start, floor_k, known if i == 0 else None, step))
    need = max(1, math.ceil(problem.scenario.search.require_fraction * len(per_k)))
    k = sorted(per_k, reverse=True)[need - 1]
    margins, ok, results = {}, False, []
    for _ in range(CONFIRM_STEPS):
        if k < floor_k:
            break
        results = [runs.run(seed, k) for seed in seeds]
        if sum(r.passed for r in results) >= need:
            ok = True
            results = [runs.complete(seed, k) for seed in seeds]  # a failing seed's margins count too
            margins = {name: min(r.margins[name] for r in results if name in r.margins)
                       for name in results[0].margins}
            break
        k -= 1
    per_seed = [lattice_rate(x) if x >= floor_k else 0.0 for x in per_k]
    rate = lattice_rate(k) if ok else 0.0
    miss_rate, miss = (0.0, "") if ok else runs.worst_miss()
    return Verification(rate_rps=rate, per_seed_rps=tuple(per_seed), mean_rps=float(np.mean(per_seed)),
                        ci95_rps=ci95(per_seed), slo_margins=margins, saturated=not ok, n_simulations=runs.sims,
                        mixed_request_share=max(r.mixed_request_share for r in results) if ok else None,
                        mixed_token_share=max(r.mixed_token_share for r in results) if ok else None,
                        miss=miss, miss_rate_rps=miss_rate)


def screen_cluster(problem: Problem, cluster: ClusterSpec, hint_rps: float) -> Verification:
    """Max rate on the first seed only, without the re-check: a cheap, paired comparison for local search
    (every neighbour sees the same seed's arrivals), never reported as a plan's throughput."""
    floor_k, hint_k = _lattice_bounds(problem, hint_rps)
    runs = _Runs(problem, cluster)
    k = _seed_max_k(runs, problem.scenario.seed_list()[0], hint_k, floor_k)
    rate = lattice_rate(k) if k >= floor_k else 0.0
    return Verification(rate_rps=rate, per_seed_rps=(rate,), mean_rps=rate, ci95_rps=(rate, rate), slo_margins={},
                        saturated=rate <= 0, n_simulations=runs.sims, screened=True)


def test_cluster(problem: Problem, cluster: ClusterSpec, rate_rps: float) -> Verification:
    """Does the cluster meet every SLO unsaturated at one lattice rate, on the first seed? One simulation.

    The search's cheap question ("does this neighbour beat the current plan?", "does this plan reach the
    target?") needs no max rate. A pass is recorded as that rate (a lower bound on the max rate), a fail as
    0; like screens, tests are never reported as a plan's throughput. A failing run ends as soon as an SLO
    is certain to be missed (sim/miss_watch.py), so its miss names that SLO and how many requests settled
    it rather than the size of the miss at the end: most tests of a search fail, and most of their time
    was the rest of a run whose verdict was already known."""
    k = lattice_index(rate_rps)
    runs = _Runs(problem, cluster)
    run = runs.run(problem.scenario.seed_list()[0], k)  # ends at a certain miss: the verdict is the full run's
    rate = lattice_rate(k) if run.passed else 0.0
    miss = "" if run.passed else run.stop_reason or runs.worst_miss()[1]
    return Verification(rate_rps=rate, per_seed_rps=(rate,), mean_rps=rate, ci95_rps=(rate, rate), slo_margins={},
                        saturated=rate <= 0, n_simulations=1, screened=True,
                        mixed_request_share=run.mixed_request_share if run.passed else None,
                        mixed_token_share=run.mixed_token_share if run.passed else None,
                        miss=miss, miss_rate_rps=0.0 if run.passed else lattice_rate(k))


def lattice_index(rate_rps: float) -> int:
    """Index of the lattice rate nearest `rate_rps` (exact for rates that came from the lattice)."""
    return round(math.log(rate_rps) / math.log(RATE_STEP))


def _seed_max_k(runs: _Runs, seed: int, hint_k: int, floor_k: int, known_pass_k: int | None = None,
                step_k: int = HINT_STEP_K) -> int:
    """One seed's highest passing lattice index (floor_k - 1 when none passes): a search that starts at
    the estimate (or at a known passing index) and widens until it brackets the edge (sim/maxrate.py),
    so the answer depends on the estimate only through the noise of non-monotone seeds."""
    passes = functools.partial(runs.passes, seed)
    if known_pass_k is not None and known_pass_k >= floor_k:
        runs.known_pass.add((seed, known_pass_k))  # margins, if needed there, are simulated by the re-check
        return lattice_max(passes, known_pass_k, floor_k, KNOWN_STEP_K, start_passes=True)
    return lattice_max(passes, hint_k, floor_k, step_k)


def workload_at(problem: Problem, rate_rps: float, seed: int) -> Workload:
    """One seed's workload at a rate: trace sizes with Poisson arrivals (as find_max_rps simulates)."""
    return poisson_workload(problem.sizes, rate_rps, problem.scenario.workload.duration_s, seed)
