"""Compat mode under heavy coding load: Splitwise-HA (25 x dgx-h100 prompt + 26 x dgx-a100 token,
Llama2-70B, profile backend, `--compat splitwisesim`) on 2-minute Poisson coding traces (seed 0) at
140 and 200 req/s. Prints TTFT/TBT/E2E P50/P90/P99 (SplitwiseSim's definitions), the requests routed
through the mixed pool, machines borrowed, and the wall time; `--csv DIR` also writes each run's
per-request outputs (byte-comparable between versions). docs/simulator.md ("Heavy load") quotes it.
Run: .venv/bin/python benchmarks/ssim_heavy.py [--rates 140,200] [--csv DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from splitplan.cluster import splitwise_cluster
from splitplan.perf.base import PerfSettings
from splitplan.sim import simulate
from splitplan.workload import load_trace, poisson_workload, resolve_trace_path

CLUSTER = splitwise_cluster("llama2-70b", [("dgx-h100", 25)], [("dgx-a100", 26)])
PERF = PerfSettings(backend="profile", compat="splitwisesim")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="140,200")
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args()
    sizes = load_trace(resolve_trace_path("AzureLLMInferenceTrace_code.csv"))
    print(f"{'rate':>5} {'requests':>8} {'mixed':>6} {'borrows':>7}  "
          + "  ".join(f"{m}_p{q:<2}" for m in ("ttft", "tbt", "e2e") for q in (50, 90, 99)) + "   wall_s")
    for rate in (float(r) for r in args.rates.split(",")):
        workload = poisson_workload(sizes, rate, args.duration, seed=0)
        start = time.perf_counter()
        result = simulate(CLUSTER, workload, perf=PERF)
        wall_s = time.perf_counter() - start
        s = result.summary
        pool = s.get("mixed_pool", {})
        cells = "  ".join(f"{s[m + '_s'][f'p{q}']:7.4f}" for m in ("ttft", "tbt", "e2e") for q in (50, 90, 99))
        print(f"{rate:5g} {len(workload):8d} {pool.get('requests', 0):6d} {pool.get('borrowed_machines', 0):7d}  "
              f"{cells}  {wall_s:7.2f}")
        if args.csv:
            args.csv.mkdir(parents=True, exist_ok=True)
            result.requests.to_csv(args.csv / f"code_{rate:g}.csv", index=False)


if __name__ == "__main__":
    main()
