"""Fidelity against SplitwiseSim: compat mode + profile backend on its validation traces, clusters bh40
(baseline 40 x dgx-h100) and ha26a25h (Splitwise 25 x dgx-h100 prompt + 26 x dgx-a100 token).
Prints P50/P90/P99 of TTFT, TBT, E2E next to SplitwiseSim's (../shared reference results.csv) with the
relative error, and the worst error. Run: .venv/bin/python benchmarks/sim_fidelity.py

The validation results live in the project's reference folder beside the repository
(../shared/reference/splitwisesim-validation), which a clone does not have and the package does not ship:
without them the script says so in one line and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from splitplan.cluster import baseline_cluster, splitwise_cluster
from splitplan.perf.base import PerfSettings
from splitplan.sim import simulate
from splitplan.workload import load_trace, resolve_trace_path

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "splitwisesim-validation"
CLUSTERS = {
    "bh40": baseline_cluster("llama2-70b", [("dgx-h100", 40)]),
    "ha26a25h": splitwise_cluster("llama2-70b", [("dgx-h100", 25)], [("dgx-a100", 26)]),
}
METRICS = ("ttft", "tbt", "e2e")
TOLERANCE = 0.10


def main() -> int:
    if not (REFERENCE / "results.csv").is_file():
        print(f"skipped: SplitwiseSim's validation results ({REFERENCE.name}/results.csv in ../shared/reference) "
              "are not beside this checkout; a clone of the repository does not have them")
        return 0
    results = pd.read_csv(REFERENCE / "results.csv").set_index("run")
    perf = PerfSettings(backend="profile", compat="splitwisesim")
    worst = 0.0
    print(f"{'run':<24} {'metric':<8} {'splitplan':>10} {'splitwisesim':>12} {'rel.err':>8}")
    for trace in ("code", "conv"):
        workload = load_trace(resolve_trace_path(f"rr_{trace}_80_2min.csv"))
        for name, cluster in CLUSTERS.items():
            run = f"{name}_{trace}_80_2min"
            result = simulate(cluster, workload, perf=perf)
            ref_requests = pd.read_csv(REFERENCE / "requests" / f"{run}.csv")
            for metric in METRICS:
                for q in ("p50", "p90", "p99"):
                    ours = result.summary[f"{metric}_s"][q]
                    theirs = float(results.loc[run, f"{metric}_{q}"])
                    err = ours / theirs - 1.0
                    worst = max(worst, abs(err))
                    print(f"{run:<24} {metric + '_' + q:<8} {ours:>10.4f} {theirs:>12.4f} {err:>+8.2%}")
            # per-request agreement (same request ids): median absolute relative E2E difference
            mine = result.requests.set_index("request_id")["e2e_s"]
            ref = ref_requests.set_index(ref_requests.request_ids.astype(int))["response_times"]
            rel = np.abs(mine.loc[ref.index].values / ref.values - 1.0)
            print(f"{run:<24} per-request E2E: median |rel.err| {np.median(rel):.3%}, p99 {np.percentile(rel, 99):.3%}; "
                  f"throughput {result.summary['window_completed_rps']:.2f} vs {results.loc[run, 'throughput_rps_window']:.2f} "
                  f"req/s; meets SLOs {result.all_slos_met} vs {results.loc[run, 'meets_paper_slos']}")
    print(f"worst percentile error {worst:.4%} (acceptance: within {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
