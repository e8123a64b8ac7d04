"""Simulator speed, before vs after, side by side in one run: wall time ratios and per-request outputs.

Each case runs in a fresh interpreter, alternating the two versions `--repeat` times (median wall
time of `simulate()` per version). "Before" is either an older revision (`--base REV`: `git archive`
into a temporary folder, run with PYTHONPATH pointing at it) or, without `--base`, this tree with the
routers' heaps turned off (the linear scan per arrival). The SHA-256 of each run's `requests.csv`
tells whether the per-request outputs are byte-identical.

Cases: Baseline-H100 x 640 and Splitwise 320 x H100 + 320 x A100 in the default mode (routing-bound);
Splitwise-HA 25 + 26 in the default mode at 200 req/s coding (borrowing, mixed batching) and 80 req/s
conversation for 10 minutes (the sim_speed.py case); Splitwise-HA in compat mode at 200 req/s coding (overloaded mixed pool), 80 req/s conversation
for 10 minutes (the sim_speed.py case), and SplitwiseSim's validation runs.
Run: .venv/bin/python benchmarks/sim_speed_compare.py [--base REV] [--repeat 3] [--cases a,b]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name -> (design, pools, trace, rate, seconds, compat); rate 0: replay the trace file as is
    "bh640-default": ("baseline", [("dgx-h100", 640)], "AzureLLMInferenceTrace_conv.csv", 1000.0, 20.0, False),
    "sw320+320-default": ("splitwise", [("dgx-h100", 320), ("dgx-a100", 320)], "AzureLLMInferenceTrace_code.csv",
                          2500.0, 10.0, False),
    "ha-default-code200": ("splitwise", [("dgx-h100", 25), ("dgx-a100", 26)], "AzureLLMInferenceTrace_code.csv",
                           200.0, 60.0, False),
    "ha-default-conv80-10min": ("splitwise", [("dgx-h100", 25), ("dgx-a100", 26)], "AzureLLMInferenceTrace_conv.csv",
                                80.0, 600.0, False),
    "ha-compat-code200": ("splitwise", [("dgx-h100", 25), ("dgx-a100", 26)], "AzureLLMInferenceTrace_code.csv",
                          200.0, 120.0, True),
    "ha-compat-conv80-10min": ("splitwise", [("dgx-h100", 25), ("dgx-a100", 26)], "AzureLLMInferenceTrace_conv.csv",
                               80.0, 600.0, True),
    "val-bh40-code": ("baseline", [("dgx-h100", 40)], "rr_code_80_2min.csv", 0.0, 0.0, True),
    "val-ha-code": ("splitwise", [("dgx-h100", 25), ("dgx-a100", 26)], "rr_code_80_2min.csv", 0.0, 0.0, True),
    "val-bh40-conv": ("baseline", [("dgx-h100", 40)], "rr_conv_80_2min.csv", 0.0, 0.0, True),
    "val-ha-conv": ("splitwise", [("dgx-h100", 25), ("dgx-a100", 26)], "rr_conv_80_2min.csv", 0.0, 0.0, True),
}


def child(name: str, scan: bool) -> None:
    """Run one case in this interpreter; print wall time and the requests.csv digest as JSON."""
    from splitplan.cluster import baseline_cluster, splitwise_cluster
    from splitplan.perf.base import PerfSettings
    from splitplan.sim import simulate
    from splitplan.workload import load_trace, poisson_workload, resolve_trace_path

    if scan:
        from splitplan.sim import routers
        routers.HEAP_MIN_INSTANCES = 1 << 60
    design, pools, trace, rate, seconds, compat = CASES[name]
    cluster = (baseline_cluster("llama2-70b", pools) if design == "baseline"
               else splitwise_cluster("llama2-70b", pools[:1], pools[1:]))
    sizes = load_trace(resolve_trace_path(trace))
    workload = poisson_workload(sizes, rate, seconds, seed=0) if rate else sizes
    perf = PerfSettings(backend="profile", compat="splitwisesim") if compat else PerfSettings()
    simulate(cluster, poisson_workload(sizes, 50.0, 2.0, seed=1), perf=perf)  # warm the perf-model caches
    start = time.perf_counter()
    result = simulate(cluster, workload, perf=perf)
    wall_s = time.perf_counter() - start
    digest = hashlib.sha256(result.requests.to_csv(index=False).encode()).hexdigest()
    print(json.dumps({"wall_s": wall_s, "requests": len(workload), "sha": digest}))


def extract(rev: str, into: Path) -> Path:
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(tree: Path, name: str, scan: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name] + (["--scan"] if scan else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=tree).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=None, help="revision to compare with (default: this tree, scan routing)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--scan", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.scan)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        before = (extract(args.base, Path(tmp)), False) if args.base else (ROOT, True)
        after = (ROOT, False)
        label = args.base or "scan routing"
        print(f"{'case':<24} {'requests':>8} {'before_s':>9} {'after_s':>8} {'ratio':>6}  identical  (before: {label})")
        for name in args.cases.split(","):
            walls: dict[str, list[float]] = {"before": [], "after": []}
            shas: dict[str, set[str]] = {"before": set(), "after": set()}
            for _ in range(args.repeat):
                for key, (tree, scan) in (("before", before), ("after", after)):
                    r = run(tree, name, scan)
                    walls[key].append(r["wall_s"])
                    shas[key].add(r["sha"])
                    n = r["requests"]
            b, a = statistics.median(walls["before"]), statistics.median(walls["after"])
            same = shas["before"] == shas["after"] and len(shas["after"]) == 1
            print(f"{name:<24} {n:>8} {b:>9.2f} {a:>8.2f} {b / a:>6.2f}  {'yes' if same else 'NO'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
