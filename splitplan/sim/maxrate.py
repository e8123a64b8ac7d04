"""Highest request rate a cluster sustains within its SLOs: bisection over Poisson workloads, per seed.

A rate passes for a seed when the simulation is not saturated and every SLO holds. Each seed is
bisected on its own (pass/fail is monotone in the rate up to noise); the cluster's max rate is the
highest rate that at least `require_fraction` of the seeds pass. The bracket comes from a capacity
estimate (prompt and decode throughput of the pools) unless lo/hi are given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from splitplan.catalog import Catalog, get_catalog
from splitplan.cluster import ClusterSpec
from splitplan.errors import SplitplanError
from splitplan.perf.base import PerfSettings
from splitplan.sim.api import build_instances, simulate
from splitplan.sim.config import SimConfig
from splitplan.sim.policies import scheduling
from splitplan.workload import Workload, poisson_workload


@dataclass
class MaxRateResult:
    """Max sustainable rate (req/s) and how it was found."""

    max_rps: float
    per_seed_rps: list[float]
    mean_rps: float
    ci95_rps: tuple[float, float]
    simulations: int
    bracket_rps: tuple[float, float]
    history: list[tuple[int, float, bool]] = field(default_factory=list)  # (seed, rate, passed)

    def to_dict(self) -> dict:
        return {"max_rps": self.max_rps, "per_seed_rps": self.per_seed_rps, "mean_rps": self.mean_rps,
                "ci95_rps": list(self.ci95_rps), "simulations": self.simulations,
                "bracket_rps": list(self.bracket_rps)}


def capacity_estimate_rps(cluster: ClusterSpec, sizes: Workload, perf: PerfSettings, catalog: Catalog,
                          config: SimConfig) -> float:
    """Rough sustainable rate: prompt-phase and decode-phase throughput of the pools, the tighter one."""
    insts, _, _, _ = build_instances(cluster.validate(catalog), perf, catalog)
    p = float(np.mean(sizes.prompt_tokens))
    o = float(np.mean(sizes.output_tokens))
    prompt_rps = decode_rps = mixed_rps = 0.0
    for inst in insts:
        prefill_s = float(inst.perf.prefill_ms(1, p, p * p)) / 1000.0
        batch = int(max(1, min(scheduling(inst).max_seqs, inst.kv_cap // max(p + o, 1))))
        base, per = inst.coeffs_ms(batch)
        step_s = (base + per * batch * (p + o / 2.0)) / 1000.0
        dec = batch / (step_s * max(o - 1.0, 1.0))
        if inst.home == "prompt":
            prompt_rps += 1.0 / prefill_s
        elif inst.home == "token":
            decode_rps += dec
        else:
            mixed_rps += 1.0 / (prefill_s + 1.0 / dec)
    if cluster.design == "baseline":
        return max(mixed_rps, 1e-3)
    return max(min(prompt_rps, decode_rps) + mixed_rps, 1e-3)


def find_max_rps(cluster: ClusterSpec, sizes: Workload, *, duration_s: float = 120.0, seeds=(0,),
                 perf: PerfSettings = PerfSettings(), catalog: Catalog | None = None,
                 config: SimConfig = SimConfig(), slos=None, lo_rps: float | None = None,
                 hi_rps: float | None = None, tol_rps: float = 0.5, require_fraction: float = 1.0,
                 progress: Callable[[int, float, bool], None] | None = None) -> MaxRateResult:
    """Bisection per seed for the highest passing rate; see the module docstring."""
    catalog = catalog or get_catalog()
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise SplitplanError("need at least one seed", field="seeds")
    if not 0 < require_fraction <= 1:
        raise SplitplanError(f"require_fraction must be in (0, 1], got {require_fraction}", field="require_fraction")
    if tol_rps <= 0:
        raise SplitplanError(f"tol_rps must be > 0, got {tol_rps}", field="tol_rps")
    estimate = capacity_estimate_rps(cluster, sizes, perf, catalog, config)
    lo0 = lo_rps if lo_rps is not None else max(estimate * 0.1, tol_rps)
    hi0 = hi_rps if hi_rps is not None else estimate * 1.5
    if not 0 < lo0 < hi0:
        raise SplitplanError(f"need 0 < lo_rps < hi_rps, got {lo0:g}, {hi0:g}", field="lo_rps")
    history: list[tuple[int, float, bool]] = []

    def passes(seed: int, rate: float) -> bool:
        w = poisson_workload(sizes, rate, duration_s, seed)
        ok = len(w) > 0
        if ok:
            r = simulate(cluster, w, perf=perf, catalog=catalog, config=config, slos=slos, stop_at_miss=True)
            ok = r.all_slos_met
        history.append((seed, rate, ok))
        if progress is not None:
            progress(seed, rate, ok)
        return ok

    per_seed = [_bisect(lambda r, s=seed: passes(s, r), lo0, hi0, tol_rps, explicit=(lo_rps, hi_rps))
                for seed in seeds]
    ordered = sorted(per_seed, reverse=True)
    need = max(1, math.ceil(require_fraction * len(seeds)))
    max_rps = ordered[need - 1]
    mean = float(np.mean(per_seed))
    ci = ci95(per_seed)
    return MaxRateResult(max_rps, per_seed, mean, ci, len(history), (lo0, hi0), history)


def _bisect(passes: Callable[[float], bool], lo: float, hi: float, tol: float, explicit) -> float:
    """Largest passing rate within tol. Widens an automatic bracket that does not straddle the edge."""
    for _ in range(6):  # make hi fail
        if not passes(hi):
            break
        if explicit[1] is not None:
            return hi
        lo, hi = hi, hi * 2.0
    else:
        return lo
    while not passes(lo):  # make lo pass
        if explicit[0] is not None or lo <= tol:
            return 0.0
        hi, lo = lo, lo / 4.0
    while hi - lo > tol:
        mid = (lo + hi) / 2.0
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo


# Where a lattice search starts (plan/verify.py): steps of the 2% rate lattice between the first two rates
# tested. The capacity model's error against the simulator is about 10% at the median (benchmarks/
# capacity_accuracy.py), seed-to-seed spread at one rate a few percent; a search that starts at the
# estimate and doubles its step until it brackets the edge needs ~5 simulations instead of the 7 of a
# fixed [0.74, 1.29] x estimate bracket, and ~4 when the estimate is a seed already measured.
HINT_STEP_K = 4  # from a capacity estimate (uncalibrated or calibrated by simulation)
SEED_STEP_K = 2  # from another seed's max rate of the same cluster
KNOWN_STEP_K = 4  # up from a rate this seed is known to pass
MAX_STEP_K = 16  # the step doubles up to 16 lattice steps (x1.37): a far-off estimate must not send the
# search into runs at many times the answer's rate (saturated runs are the slowest ones)
MAX_MOVES = 40  # 40 x 16 steps = 1.02^640: any real edge is bracketed long before


def lattice_max(passes: Callable[[int], bool], start_k: int, floor_k: int, step_k: int = HINT_STEP_K,
                start_passes: bool | None = None) -> int:
    """Highest lattice index k >= floor_k with passes(k) (floor_k - 1 when none does), assuming pass/fail
    is monotone: test the start, move away from it by step_k, 2 step_k, 4 step_k, ... (at most MAX_STEP_K)
    until the edge is bracketed, then bisect. `start_passes`: the start's outcome when already known (no simulation)."""
    start = max(floor_k, start_k)
    ok = passes(start) if start_passes is None else start_passes
    step = max(1, step_k)
    if ok:
        lo = start
        for _ in range(MAX_MOVES):
            if not passes(lo + step):
                hi = lo + step
                break
            lo, step = lo + step, min(step * 2, MAX_STEP_K)
        else:
            return lo
    else:
        hi = start
        while True:
            if hi <= floor_k:
                return floor_k - 1
            lo = max(floor_k, hi - step)
            if passes(lo):
                break
            hi, step = lo, min(step * 2, MAX_STEP_K)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            lo = mid
        else:
            hi = mid
    return lo


def ci95(values: list[float]) -> tuple[float, float]:
    """Student-t 95% interval of the mean across seeds (a point for one seed)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return (mean, mean)
    from scipy import special  # stdtrit is what scipy.stats.t.ppf computes; scipy.stats costs ~0.4 s to import

    half = float(special.stdtrit(len(values) - 1, 0.975) * np.std(values, ddof=1) / math.sqrt(len(values)))
    return (mean - half, mean + half)
