"""Seed-to-seed spread of the simulated max rate: what the 5% tolerances of scenarios/splitwise rest on.

The studies verify each cluster on one 2-minute Poisson seed (the paper's provisioning runs are 2 minutes
too). A pinned throughput must tolerate what another seed would give, or a harmless change of the random
stream would look like a regression. For clusters of the studies, this prints the max rate on seeds 0-4,
their mean, standard deviation, coefficient of variation and the largest relative distance of any seed from
seed 0 (the one the studies use).

Run: .venv/bin/python benchmarks/repro_seed_spread.py [--seeds 5] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from splitplan.catalog import get_catalog
from splitplan.cluster import ClusterSpec, PoolSpec
from splitplan.perf import PerfSettings
from splitplan.scenario import resolve_data_path
from splitplan.sim import SimConfig, find_max_rps
from splitplan.workload import load_trace

COMPAT = PerfSettings(backend="profile", profile_path=resolve_data_path("splitwisesim_perf_model.csv", None, "", ""),
                      compat="splitwisesim")
ANALYTIC = PerfSettings()

CASES = [  # (label, model, trace, design, pools, duration_s, quick)
    ("small Baseline-H100 4", "llama2-70b", "code", "baseline", (("mixed", "dgx-h100", 4),), 60, True),
    ("small Splitwise-HH 3+1", "llama2-70b", "code", "splitwise", (("prompt", "dgx-h100", 3),
                                                                    ("token", "dgx-h100", 1)), 60, True),
    ("Baseline-H100 40", "bloom-176b", "code", "baseline", (("mixed", "dgx-h100", 40),), 120, False),
    ("Splitwise-HH 27+3", "bloom-176b", "code", "splitwise", (("prompt", "dgx-h100", 27),
                                                               ("token", "dgx-h100", 3)), 120, False),
    ("Baseline-H100 40 conv", "bloom-176b", "conv", "baseline", (("mixed", "dgx-h100", 40),), 120, False),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="only the small (CI-scale) clusters")
    args = ap.parse_args()
    catalog = get_catalog()
    print(f"{'cluster':24} {'mode':8} {'per-seed max rate (req/s)':44} {'mean':>7} {'sd':>6} {'cv':>6} "
          f"{'max|d|/s0':>9} {'s':>5}")
    for label, model, trace, design, pools, duration, quick in CASES:
        if args.quick and not quick:
            continue
        sizes = load_trace(resolve_data_path(f"AzureLLMInferenceTrace_{trace}.csv", None, "", ""))
        cluster = ClusterSpec(model, design, tuple(PoolSpec(r, m, n, 8) for r, m, n in pools))
        for mode, perf in (("compat", COMPAT), ("analytic", ANALYTIC)):
            t0 = time.perf_counter()
            r = find_max_rps(cluster, sizes, duration_s=duration, seeds=range(args.seeds), perf=perf,
                             catalog=catalog, config=SimConfig(reference_machine="dgx-a100"), tol_rps=0.25)
            rates = np.array(r.per_seed_rps)
            spread = float(np.max(np.abs(rates - rates[0])) / rates[0]) if rates[0] else float("nan")
            print(f"{label:24} {mode:8} {' '.join(f'{x:6.2f}' for x in rates):44} {rates.mean():7.2f} "
                  f"{rates.std(ddof=1):6.2f} {rates.std(ddof=1) / rates.mean():6.1%} {spread:9.1%} "
                  f"{time.perf_counter() - t0:5.0f}", flush=True)


if __name__ == "__main__":
    main()
