"""The paper's iso-power study with the optimizer: six designs (Baseline-A100, Baseline-H100, Splitwise-AA,
-HH, -HA, -HHcap), coding and conversation, power budget = 40 DGX-H100 = 408 kW, max throughput.
Prints each design's verified optimum, throughput ratios vs Baseline-A100 and vs Baseline-H100, and wall
and CPU time (target: both studies <= 30 s on 2 cores, issue 14; a shared machine inflates wall time,
CPU time does not depend on other jobs as much).
    .venv/bin/python benchmarks/opt_iso_power.py [--workers N]
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

from splitplan.plan.optimize import optimize

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ("iso_power_coding", "iso_power_conversation")


def cpu_s() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    workers = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else None
    wall0, cpu0 = time.perf_counter(), cpu_s()
    for name in STUDIES:
        w0, c0 = time.perf_counter(), cpu_s()
        result = optimize(ROOT / "scenarios" / "examples" / f"{name}.yaml", workers=workers)
        wall, cpu = time.perf_counter() - w0, cpu_s() - c0
        sims = sum(c.verification.n_simulations for c in result.all_candidates())
        print(f"\n{name}: {len(result.all_candidates())} candidates verified, {sims} simulations, "
              f"wall {wall:.1f} s, CPU {cpu:.1f} s")
        base = {d.name: d.best for d in result.designs}
        a100, h100 = base.get("Baseline-A100"), base.get("Baseline-H100")
        print(f"{'design':16} {'plan':52} {'req/s':>8} {'95% CI':>15} {'kW':>6} {'$/h':>7} {'vs A100':>8} {'vs H100':>8}")
        for d in result.designs:
            b = d.best
            if b is None:
                print(f"{d.name:16} infeasible: {d.binding}")
                continue
            lo, hi = b.verification.ci95_rps
            ra = b.throughput_rps / a100.throughput_rps if a100 and a100.throughput_rps else float("nan")
            rh = b.throughput_rps / h100.throughput_rps if h100 and h100.throughput_rps else float("nan")
            print(f"{d.name:16} {b.cluster.label().split(': ', 1)[1]:52} {b.throughput_rps:8.1f} "
                  f"{lo:7.1f}-{hi:<7.1f} {b.power_kw:6.1f} {b.cost_usd_per_h:7.1f} {ra:8.2f} {rh:8.2f}")
        print(f"recommended: {result.best.design if result.best else 'none'}")
    wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
    print(f"\nboth studies: wall {wall:.1f} s, CPU {cpu:.1f} s (target wall <= 30 s on 2 idle cores: "
          f"{'ok' if wall <= 30 else 'MISSED'})")


if __name__ == "__main__":
    main()
