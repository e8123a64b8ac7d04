"""Scale: does a 1-million-request trace simulate in bounded memory and reasonable time?

Each run is a fresh interpreter (so `ru_maxrss` is that run's peak, not an earlier one's) simulating
Poisson arrivals with sizes from the bundled Azure conversation trace on Splitwise-HA
(25 x dgx-h100 prompt + 26 x dgx-a100 token, Llama2-70B, analytic perf model):

  100k  : 100,000 requests at 80 req/s
  100k-x8out : the same 100,000 requests with 8x the output tokens, at 10 req/s (8x the tokens to
         generate, same request count): peak memory must stay put -- no per-token state
  1M    : 1,000,000 requests at 80 req/s (3.5 simulated hours)

Printed per run: requests, generated tokens, wall time of simulate() (µs per request), peak RSS of the
process and its growth over the loaded workload (bytes per request), and the saturation verdict.
Usage:  .venv/bin/python benchmarks/scale_sim.py [--quick]    (--quick: skip the 1M run)
Timings on a shared 2-core machine vary with other jobs; compare runs of one invocation.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

RUNS = {  # label -> (requests, rate_rps, output multiplier)
    "100k": (100_000, 80.0, 1),
    "100k-x8out": (100_000, 10.0, 8),
    "1M": (1_000_000, 80.0, 1),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def one_run(label: str) -> dict:
    """Simulate one configuration in this process and return its figures."""
    from splitplan.cluster import splitwise_cluster
    from splitplan.sim import simulate
    from splitplan.workload import Workload, load_trace, poisson_workload, resolve_trace_path

    n, rate_rps, out_mult = RUNS[label]
    cluster = splitwise_cluster("llama2-70b", [("dgx-h100", 25)], [("dgx-a100", 26)])
    sizes = load_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv"))
    simulate(cluster, poisson_workload(sizes, rate_rps, 5.0, seed=1))  # warm perf-model caches
    w = poisson_workload(sizes, rate_rps, n / rate_rps, seed=0)
    w = Workload(w.arrival_s, w.prompt_tokens, w.output_tokens * out_mult, name=f"{w.name}-x{out_mult}")
    base_mb = peak_rss_mb()
    start = time.perf_counter()
    result = simulate(cluster, w)
    wall_s = time.perf_counter() - start
    peak_mb = peak_rss_mb()
    s = result.summary
    return {"label": label, "requests": len(w), "output_tokens": int(w.output_tokens.sum()), "wall_s": wall_s,
            "us_per_request": wall_s / len(w) * 1e6, "base_rss_mb": base_mb, "peak_rss_mb": peak_mb,
            "growth_bytes_per_request": (peak_mb - base_mb) * 2**20 / len(w), "saturated": s["saturated"],
            "completed": s["completed"], "ttft_p99_s": s["ttft_s"]["p99"]}


def main() -> None:
    labels = [k for k in RUNS if not ("--quick" in sys.argv and k == "1M")]
    print(f"{'run':>11} {'requests':>9} {'out tokens':>12} {'wall s':>8} {'us/req':>7} {'base MB':>8} "
          f"{'peak MB':>8} {'B/req':>6} saturated")
    rows = []
    for label in labels:
        proc = subprocess.run([sys.executable, __file__, "--one", label], capture_output=True, text=True, check=True)
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{label:>11} {row['requests']:>9,} {row['output_tokens']:>12,} {row['wall_s']:>8.1f} "
              f"{row['us_per_request']:>7.0f} {row['base_rss_mb']:>8.0f} {row['peak_rss_mb']:>8.0f} "
              f"{row['growth_bytes_per_request']:>6.0f} {row['saturated']}", flush=True)
    by = {r["label"]: r for r in rows}
    a, b = by["100k"], by["100k-x8out"]
    growth = (b["peak_rss_mb"] - b["base_rss_mb"]) / max(a["peak_rss_mb"] - a["base_rss_mb"], 1e-9)
    print(f"8x output tokens, same requests: peak RSS growth x{growth:.2f} (1.00 = no per-token state)")
    if "1M" in by:
        m = by["1M"]
        print(f"1M requests: {m['wall_s']:.0f} s, peak RSS {m['peak_rss_mb'] / 1024:.2f} GiB, "
              f"{m['growth_bytes_per_request']:.0f} B per request of growth; 10x the requests of 100k took "
              f"x{m['wall_s'] / a['wall_s']:.1f} the time")


if __name__ == "__main__":
    if "--one" in sys.argv:
        print(json.dumps(one_run(sys.argv[sys.argv.index("--one") + 1])))
    else:
        main()
