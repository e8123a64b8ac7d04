"""One design at one budget: Splitwise-HA for Llama2-70B conversation at $400/h (the quickstart's
question, one design). Target: <= 10 s. Prints the verified plan, the number of simulations and wall/CPU
time; then the whole quickstart (three designs) for reference.
    .venv/bin/python benchmarks/opt_single.py
"""

from __future__ import annotations

import resource
import time
from dataclasses import replace
from pathlib import Path

from splitplan.plan.optimize import optimize
from splitplan.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def cpu_s() -> float:
    self_, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def timed(scenario, label: str, target_s: float | None) -> None:
    w0, c0 = time.perf_counter(), cpu_s()
    result = optimize(scenario)
    wall, cpu = time.perf_counter() - w0, cpu_s() - c0
    best = result.best
    sims = sum(c.verification.n_simulations for c in result.all_candidates())
    verdict = "" if target_s is None else f" [target <= {target_s:g} s: {'ok' if wall <= target_s else 'MISSED'}]"
    print(f"{label}: {best.cluster.label() if best else result.binding}; "
          f"{best.throughput_rps if best else 0:.2f} req/s; {len(result.all_candidates())} candidates, {sims} "
          f"simulations; wall {wall:.1f} s, CPU {cpu:.1f} s{verdict}")


if __name__ == "__main__":
    quick = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    timed(replace(quick, designs=(quick.design("Splitwise-HA"),)), "one design (Splitwise-HA, $400/h)", 10.0)
    timed(quick, "quickstart (3 designs)", 60.0)
