"""Check reference latencies and SLO evaluation against SplitwiseSim's own slowdown figures.

SplitwiseSim's validation runs (../shared/reference/splitwisesim-validation) give per-request
latencies and, in results.csv, the P50/P90/P99 slowdowns it computed against an unloaded DGX-A100.
We recompute those from the per-request latencies with splitplan's `reference_latencies(compat=True)`
(profile backend on SplitwiseSim's measured table) and `evaluate_slos`, and print both side by side.

Run: .venv/bin/python benchmarks/slo_reference_check.py

The validation runs are not part of the repository (a clone has no ../shared): without them the script
says so in one line and exits 0.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from splitplan.perf import PerfSettings, build_perf_model
from splitplan.slo import evaluate_slos, paper_slos, reference_latencies

ROOT = Path(__file__).resolve().parent.parent
VALIDATION = ROOT.parent / "shared" / "reference" / "splitwisesim-validation"
PROFILE = ROOT / "profiles" / "measured" / "splitwisesim_perf_model.csv"


def main() -> int:
    if not (VALIDATION / "results.csv").is_file():
        print(f"skipped: SplitwiseSim's validation runs ({VALIDATION.name}/results.csv in ../shared/reference) "
              "are not beside this checkout; a clone of the repository does not have them")
        return 0
    settings = PerfSettings(backend="profile", profile_path=str(PROFILE), compat="splitwisesim")
    ref_perf = build_perf_model("llama2-70b", "dgx-a100", 8, settings)
    with open(VALIDATION / "results.csv") as handle:
        runs = list(csv.DictReader(handle))
    worst = 0.0
    print(f"{'run':24s} {'SLO':10s} {'splitwisesim':>12s} {'splitplan':>10s} {'rel err':>8s}")
    for run in runs:
        requests = pd.read_csv(VALIDATION / "requests" / f"{run['run']}.csv")
        start = time.perf_counter()
        refs = reference_latencies(requests["prompt_sizes"].to_numpy(), requests["token_sizes"].to_numpy(),
                                   ref_perf, compat=True)
        results = evaluate_slos(paper_slos(), ttft_s=requests["ttft_times"].to_numpy(),
                                tbt_s=requests["tbt_times"].to_numpy(), e2e_s=requests["response_times"].to_numpy(),
                                refs=refs)
        elapsed_ms = (time.perf_counter() - start) * 1000
        for result in results:
            theirs = float(run[f"{result.slo.metric}_slowdown_p{result.slo.percentile:g}"])
            error = abs(result.value - theirs) / theirs
            worst = max(worst, error)
            print(f"{run['run']:24s} {result.slo.name:10s} {theirs:12.5f} {result.value:10.5f} {error:8.2e}")
        met = all(r.met for r in results)
        print(f"{run['run']:24s} all nine met: splitwisesim {run['meets_paper_slos']}, splitplan {met}; "
              f"{len(requests)} requests evaluated in {elapsed_ms:.1f} ms")
    print(f"worst relative error over {len(runs) * 9} slowdown percentiles: {worst:.2e}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
