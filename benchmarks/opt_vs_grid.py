"""Optimizer (capacity model + ILP + simulated calibration and local search) vs the exhaustive simulated
grid (the paper's method) on spaces of up to 20 x 20 machine counts. For each scenario both methods run
separately; prints each one's plan, objective value and number of simulations, and whether the optimizer
equals the grid's best or is within one machine and 2% of its objective (the acceptance criterion).
    .venv/bin/python benchmarks/opt_vs_grid.py
"""

from __future__ import annotations

import time

from splitplan.plan.optimize import optimize
from splitplan.scenario import parse_scenario

HA = {"name": "Splitwise-HA", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a100"]}
HH = {"name": "Splitwise-HH", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-h100"]}
HHCAP = {"name": "Splitwise-HHcap", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-h100-pcap"]}
BA = {"name": "Baseline-A100", "kind": "baseline", "machines": ["dgx-a100"]}

CASES = [  # (label, trace, design, constraints, objective)
    ("HA code, $500/h", "rr_code_80_2min.csv", HA, {"cost_usd_per_h": 500}, "max_throughput"),
    ("HH conv, 150 kW", "rr_conv_80_2min.csv", HH, {"power_kw": 150}, "max_throughput"),
    ("HHcap conv, min power @ 30 req/s", "rr_conv_80_2min.csv", HHCAP, {"min_throughput_rps": 30}, "min_power"),
    ("HA conv, min cost @ 25 req/s", "rr_conv_80_2min.csv", HA, {"min_throughput_rps": 25}, "min_cost"),
    ("Baseline-A100 code, 20 machines", "rr_code_80_2min.csv", BA, {"max_machines": 20}, "max_throughput"),
]


def scenario(trace, design, constraints, objective, method):
    return parse_scenario({"name": "bench", "model": "llama2-70b",
                           "workload": {"trace": trace, "duration_s": 40},
                           "designs": [design], "constraints": constraints, "objective": objective,
                           "search": {"method": method, "seeds": 2, "max_per_pool": 20, "verify_top": 1}},
                          source="opt_vs_grid")


def value(c, objective):
    return {"max_throughput": c.throughput_rps, "min_cost": c.cost_usd_per_h, "min_power": c.power_kw}[objective]


def main() -> None:
    ok_all = True
    for label, trace, design, constraints, objective in CASES:
        runs = {}
        for method in ("ilp", "grid"):
            t0 = time.perf_counter()
            result = optimize(scenario(trace, design, constraints, objective, method))
            sims = sum(c.verification.n_simulations for c in result.all_candidates())
            runs[method] = (result.best, sims, len(result.all_candidates()), time.perf_counter() - t0)
        (ilp, s_i, n_i, t_i), (grid, s_g, n_g, t_g) = runs["ilp"], runs["grid"]
        if ilp is None or grid is None:
            print(f"{label}: ilp {ilp and ilp.cluster.label()} / grid {grid and grid.cluster.label()}")
            ok_all &= (ilp is None) == (grid is None)
            continue
        dist = sum(abs(a.count - b.count) for a, b in zip(ilp.cluster.pools, grid.cluster.pools))
        gap = (value(ilp, objective) - value(grid, objective)) / value(grid, objective)
        ok = ilp.key() == grid.key() or (dist <= 1 and abs(gap) <= 0.02) or \
            (objective == "max_throughput" and gap >= 0) or (objective != "max_throughput" and gap <= 0)
        ok_all &= ok
        print(f"{label} [{objective}]\n  ilp : {ilp.cluster.label():55} {value(ilp, objective):9.2f}  "
              f"{n_i:3d} candidates {s_i:5d} sims {t_i:6.1f} s\n  grid: {grid.cluster.label():55} "
              f"{value(grid, objective):9.2f}  {n_g:3d} candidates {s_g:5d} sims {t_g:6.1f} s\n"
              f"  distance {dist} machines, objective gap {gap:+.1%}: {'ok' if ok else 'MISSED'}")
    print(f"\nall cases within one machine and 2% of the grid (or better): {'yes' if ok_all else 'NO'}")


if __name__ == "__main__":
    main()
