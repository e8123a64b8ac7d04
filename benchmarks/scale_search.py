"""Scale: a search over far more than 10,000 candidate clusters must blow up neither the ILP nor the run.

Scenario: Llama2-70B conversation, one Splitwise design with 4 machine types per pool
(prompt: dgx-h100, dgx-h200, hgx-b200, mi300x-x8; token: dgx-a100, dgx-h100-pcap, dgx-h100, mi300x-x8),
a $1,500/h budget and up to `max_per_pool` machines per pool. For each pool limit it prints:

  candidates  the exact number of distinct clusters within the limits (count vectors with 1..max machines
              per pool and cost <= budget), i.e. what an exhaustive grid would have to consider
  capacity    wall time of the capacity model for the 8 (role, machine) options
  ILP         variables, constraints and solve time of the sizing ILP (top 1, and top 3 with no-good
              cuts), with CBC and HiGHS

then one full `optimize()` (capacity model + ILP + simulated verification + local search, 1 seed,
20 s runs, 2 workers) on the largest space: total wall time, clusters simulated, simulations run.
Usage:  .venv/bin/python benchmarks/scale_search.py [--no-optimize]
Timings on a shared 2-core machine vary with other jobs; compare rows of one invocation.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from splitplan.catalog import default_catalog
from splitplan.plan.ilp import _build, solve_ilp
from splitplan.plan.optimize import ProgressHooks, optimize
from splitplan.plan.problem import design_capacities, make_problem, pool_options, request_sample
from splitplan.scenario import parse_scenario

PROMPT = ["dgx-h100", "dgx-h200", "hgx-b200", "mi300x-x8"]
TOKEN = ["dgx-a100", "dgx-h100-pcap", "dgx-h100", "mi300x-x8"]
BUDGET_USD_PER_H = 1500.0


def scenario_data(max_per_pool: int) -> dict:
    return {
        "name": f"scale-search-{max_per_pool}",
        "model": "llama2-70b",
        "workload": {"trace": "AzureLLMInferenceTrace_conv.csv", "generator": "poisson", "duration_s": 20,
                     "seed": 0},
        "slos": "paper",
        "designs": [{"name": "Splitwise-4x4", "kind": "splitwise", "prompt": PROMPT, "token": TOKEN}],
        "constraints": {"cost_usd_per_h": BUDGET_USD_PER_H},
        "objective": "max_throughput",
        "search": {"max_per_pool": max_per_pool, "seeds": 1, "verify_top": 1, "local_radius": 1, "workers": 2},
    }


def pool_costs(costs: list[float], max_machines: int) -> np.ndarray:
    """Sorted costs (cents) of every count vector of one 4-type pool with 1..max_machines machines."""
    c1, c2, c3, c4 = (int(round(c * 100)) for c in costs)
    n1, n2, n3 = (a.ravel() for a in np.meshgrid(*[np.arange(max_machines + 1)] * 3, indexing="ij"))
    keep = n1 + n2 + n3 <= max_machines
    n1, n2, n3 = n1[keep], n2[keep], n3[keep]
    first = np.where(n1 + n2 + n3 == 0, 1, 0)  # n4 from here (a pool needs a machine) ...
    last = max_machines - (n1 + n2 + n3)  # ... to here
    reps = last - first + 1
    base = np.repeat(n1 * c1 + n2 * c2 + n3 * c3 + first * c4, reps)
    offset = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    return np.sort(base + offset * c4)


def count_candidates(max_per_pool: int) -> int:
    """Distinct (prompt vector, token vector) pairs within the budget: exact, by sorting and bisection."""
    cat = default_catalog()
    p = pool_costs([cat.machine(m).cost_usd_per_h for m in PROMPT], max_per_pool)
    t = pool_costs([cat.machine(m).cost_usd_per_h for m in TOKEN], max_per_pool)
    budget = int(round(BUDGET_USD_PER_H * 100))
    return int(np.searchsorted(t, budget - p, side="right").sum())


def ilp_figures(max_per_pool: int) -> None:
    scenario = parse_scenario(scenario_data(max_per_pool), source="scale_search")
    problem = make_problem(scenario, default_catalog())
    design = scenario.designs[0]
    start = time.perf_counter()
    sample = request_sample(problem)
    caps = design_capacities(problem, design, sample)
    capacity_s = time.perf_counter() - start
    options, limits = pool_options(problem, caps), problem.limits()
    prob, _, _, _ = _build(options, limits, "max_throughput", [])
    size = f"{prob.numVariables()} vars, {prob.numConstraints()} constraints"
    timings = []
    for solver, top in (("cbc", 1), ("cbc", 3), ("highs", 1), ("highs", 3)):
        start = time.perf_counter()
        sols = solve_ilp(options, limits, "max_throughput", solver, top=top)
        timings.append(f"{solver} top{top} {time.perf_counter() - start:6.3f} s")
    best = sols[0]
    print(f"max_per_pool {max_per_pool:>3}: candidates {count_candidates(max_per_pool):>16,}  "
          f"capacity {capacity_s:5.2f} s  "
          f"ILP ({size}): {'; '.join(timings)}  -> {best.rate_rps:.1f} req/s modelled, "
          f"${best.cost_usd_per_h:,.0f}/h, {best.machines()} machines", flush=True)


def full_optimize(max_per_pool: int) -> None:
    scenario = parse_scenario(scenario_data(max_per_pool), source="scale_search")
    start = time.perf_counter()
    done = [0]

    def advance() -> None:  # one line per simulated cluster: a stalled search is visible while it runs
        done[0] += 1
        print(f"  {time.perf_counter() - start:7.1f} s: {done[0]} clusters verified", flush=True)

    result = optimize(scenario, progress=ProgressHooks(advance=advance))
    total_s = time.perf_counter() - start
    found = result.all_candidates()
    sims = sum(c.verification.n_simulations for c in found)
    best = result.best
    answer = (f"{best.cluster.label()}: {best.throughput_rps:.1f} req/s verified, ${best.cost_usd_per_h:,.0f}/h"
              if best else f"infeasible ({result.binding})")
    print(f"optimize (max_per_pool {max_per_pool}, candidates {count_candidates(max_per_pool):,}): total "
          f"{total_s:.1f} s, {len(found)} clusters simulated, {sims} simulations; {answer}", flush=True)


if __name__ == "__main__":
    for limit in (10, 40, 100):
        ilp_figures(limit)
    if "--no-optimize" not in sys.argv:
        full_optimize(40)
