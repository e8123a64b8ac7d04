"""Where `splitplan check --all`'s time goes: every simulation it runs, by kind and by the search step
that asked for it.

Each simulation is logged (JSON lines: pid, kind = verify | screen | test, the search step, the cluster,
lattice index, seconds, verdict, early stop) by wrapping the optimizer's single-simulation function;
worker processes are forked, so they log too. Then a summary: simulated seconds per kind and step, and
how many simulations each calibration screen took (a screen that starts near its edge takes 4).
Step "-": a worker's task whose stack names no search step (the robustness re-measurements of a study
run in a pool of their own).

Run:  .venv/bin/python benchmarks/check_sim_log.py [PATHS...] [--log FILE]     (default: scenarios/)
Read an earlier log again:  .venv/bin/python benchmarks/check_sim_log.py --summary FILE
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time
import traceback

STEPS = ("role_scales", "refine_max_throughput", "_ray_to_target", "_shrink_pools", "_descend",
         "refine_to_target", "ilp_search", "steady_warnings")
KINDS = {"verify_cluster": "verify", "screen_cluster": "screen", "test_cluster": "test"}


def install(log_path: str) -> None:
    """Wrap plan/verify.py's one-simulation function so that each run appends a line to `log_path`."""
    from splitplan.plan import verify

    original = verify._Runs._simulate_now

    def logged(self, seed: int, k: int, stop_at_miss: bool):
        start = time.perf_counter()
        run = original(self, seed, k, stop_at_miss)
        names = [frame.name for frame in traceback.extract_stack()]
        kind = next((KINDS[n] for n in reversed(names) if n in KINDS), "?")
        step = next((n for n in STEPS if n in names), "")
        pools = ";".join(f"{p.role}:{p.count}x{p.machine}" for p in self.cluster.pools)
        with open(log_path, "a") as out:
            out.write(json.dumps({"pid": os.getpid(), "kind": kind, "step": step, "cluster": pools, "k": k,
                                  "seed": seed, "s": time.perf_counter() - start, "passed": run.passed,
                                  "early": run.stop_reason}) + "\n")
        return run

    verify._Runs._simulate_now = logged


def summary(log_path: str) -> None:
    rows = [json.loads(line) for line in open(log_path)]
    print(f"{len(rows)} simulations, {sum(r['s'] for r in rows):.1f} s simulated "
          f"({sum(1 for r in rows if r['early'])} ended at a certain SLO miss)")
    by = collections.defaultdict(lambda: [0, 0.0])
    for r in rows:
        by[(r["kind"], r["step"])][0] += 1
        by[(r["kind"], r["step"])][1] += r["s"]
    for (kind, step), (n, s) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind:7} {step or '-':22} {n:5} runs {s:7.1f} s")
    screens = collections.Counter()
    for r in rows:
        if r["kind"] == "screen":
            screens[(r["pid"], r["cluster"])] += 1
    hist = collections.Counter(screens.values())
    print("simulations per calibration screen: " + ", ".join(f"{n}: {c} screens" for n, c in sorted(hist.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["scenarios"])
    ap.add_argument("--log", default="check-sims.jsonl", help="JSON-lines file to write (appended to)")
    ap.add_argument("--summary", metavar="FILE", help="only summarise an earlier log")
    args = ap.parse_args()
    if args.summary:
        summary(args.summary)
        return
    from splitplan.check import run_check

    install(args.log)
    start = time.perf_counter()
    report = run_check(args.paths, include_slow=True)
    ok, total = report.n_checks()
    print(f"{ok}/{total} expectations hold; wall {time.perf_counter() - start:.0f} s; log {args.log}")
    summary(args.log)


if __name__ == "__main__":
    main()
