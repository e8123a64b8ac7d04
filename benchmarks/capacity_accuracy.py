"""How close is the capacity model to the simulator? Per bundled scenario and design: the capacity
model's first ILP answer (the cluster the optimizer simulates first), and for each of its pools the
modelled rate against the simulated max rate of that pool alone (the others over-provisioned 3x + 1,
as plan/refine.py's calibration measures it; first seed, the scenario's own duration and lattice).

The ratio simulated / modelled is what the calibration step corrects and what the verification
bisection's starting bracket has to cover: the closer to 1, the fewer simulations per max rate.

Usage:  .venv/bin/python benchmarks/capacity_accuracy.py [SCENARIO ...] [--workers N] [--json FILE]
(default: the quick-start and the examples; scenarios/splitwise/*.yaml take minutes each.)
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from splitplan.catalog import get_catalog
from splitplan.plan.ilp import solve_ilp
from splitplan.plan.optimize import _sized_space, _unfit_roles
from splitplan.plan.parallel import WorkerPool
from splitplan.plan.problem import make_problem, request_sample
from splitplan.plan.verify import screen_cluster
from splitplan.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "scenarios" / "quickstart.yaml", *sorted((ROOT / "scenarios" / "examples").glob("*.yaml"))]


def pool_tasks(path: Path) -> list[tuple]:
    """(problem, calibration cluster, modelled rate) per pool of each design's first ILP answer, with labels."""
    scenario = load_scenario(path)
    catalog = get_catalog(tuple(scenario.catalog_files))
    problem = make_problem(scenario, catalog)
    sample = request_sample(problem)
    out = []
    for design in scenario.designs:
        if _unfit_roles(problem, design):
            continue
        caps, space = _sized_space(problem, design, sample)
        sols = solve_ilp(space.options, space.limits, scenario.objective, scenario.search.solver)
        if not sols:
            continue
        v = space.vector(sols[0].counts)
        for role in space.roles():
            modelled = sum(o.cap_rps * n for o, n in zip(space.options, v) if o.role == role)
            w = v if len(space.roles()) == 1 else tuple(n if o.role == role else 3 * n + 1
                                                         for o, n in zip(space.options, v))
            label = " + ".join(f"{n} {o.machine}" for o, n in zip(space.options, v) if o.role == role and n)
            out.append(((problem, space.cluster(w), modelled), (path.stem, design.name, role, label)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    labelled = [item for path in args.scenarios for item in pool_tasks(path)]
    with WorkerPool(args.workers) as pool:
        measured = pool.map(screen_cluster, [task for task, _ in labelled])
    rows = []
    print(f"{'scenario':24} {'design':16} {'role':6} {'pool':24} {'model':>8} {'sim':>8} {'sim/model':>9} {'sims':>5}")
    for (task, (scenario, design, role, label)), v in zip(labelled, measured):
        ratio = v.rate_rps / task[2] if task[2] > 0 else math.nan
        rows.append({"scenario": scenario, "design": design, "role": role, "pool": label,
                     "model_rps": round(task[2], 3), "sim_rps": round(v.rate_rps, 3), "ratio": round(ratio, 4),
                     "simulations": v.n_simulations})
        print(f"{scenario:24} {design:16} {role:6} {label:24} {task[2]:8.1f} {v.rate_rps:8.1f} {ratio:9.3f} "
              f"{v.n_simulations:5d}")
    ratios = [r["ratio"] for r in rows if r["ratio"] > 0 and math.isfinite(r["ratio"])]
    if ratios:
        logs = sorted(abs(math.log(r)) for r in ratios)
        within = {p: sum(x <= math.log(1 + p) for x in logs) / len(logs) for p in (0.05, 0.10, 0.20)}
        gmean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"\n{len(ratios)} pools: geometric-mean sim/model {gmean:.3f}; median |error| "
              f"{math.exp(logs[len(logs) // 2]) - 1:.1%}; worst {math.exp(logs[-1]) - 1:.1%}; within 5% / 10% / "
              f"20%: {within[0.05]:.0%} / {within[0.10]:.0%} / {within[0.20]:.0%}; "
              f"{sum(r['simulations'] for r in rows)} simulations, wall {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
