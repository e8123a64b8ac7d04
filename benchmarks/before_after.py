"""Side-by-side timings of this tree against an earlier one: each case runs as a fresh command under
both trees' interpreters, alternating before/after, and reports median wall, CPU (the command and its
worker processes) and peak RSS, with the before/after ratio of the medians.

Make the before tree once (its own virtual environment, so each tree runs its own code and data):
    mkdir ../before && git archive 52b75cb | tar -x -C ../before && cd ../before && python3 -m venv .venv \
        && .venv/bin/pip install -q -e '.[dev]'
Then, back in this tree:
    .venv/bin/python benchmarks/before_after.py --before ../before [--cases sim48k,sim1m,isopower,checkall,sweep]

Cases (one core via `taskset -c 0` for the simulate cases, two for the others, when taskset exists):
  sim48k-profile  splitplan simulate: Splitwise-HA 25 x dgx-h100 + 26 x dgx-a100, conversation, 80 req/s,
                  600 s, --perf profile --compat splitwisesim (the paper's setting; ~48k requests)
  sim48k          the same on the analytic model
  sim1m           the same (analytic) at 12,500 s: one million requests
  isopower        benchmarks/opt_iso_power.py (six designs, both traces, 408 kW)
  checkall        splitplan check scenarios/ --all  (make check-all)
  sweep           the quick-start over 10 budgets ($200-2000/h): before = 10 separate `optimize` runs,
                  after = one `splitplan sweep`, locally and with --executor ray (tables compared)
On a shared machine wall times move with other jobs; CPU seconds move less.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
SIM = ["simulate", "--model", "llama2-70b", "--prompt", "dgx-h100:25", "--token", "dgx-a100:26", "--trace",
       "AzureLLMInferenceTrace_conv.csv", "--rate", "80", "--seed", "0", "--quiet"]
PROFILE = ["--perf", "profile", "--compat", "splitwisesim"]
BUDGETS = [200 + 200 * i for i in range(10)]
# Runs `splitplan ARGS` (or a script) and appends its own peak RSS and children's CPU to $BA_STATS.
PROBE = """
import json, os, resource, runpy, sys
target = sys.argv[1]
try:
    if target.endswith(".py"):
        sys.argv = sys.argv[1:]
        runpy.run_path(target, run_name="__main__")
    else:
        sys.argv = ["splitplan", *sys.argv[1:]]
        from splitplan.cli.main import main
        main()
except SystemExit as exc:
    if exc.code not in (0, 1, None):
        raise
finally:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.environ["BA_STATS"], "a") as f:
        f.write(json.dumps({"rss_mb": max(me.ru_maxrss, kids.ru_maxrss) / 1024,
                            "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime}) + "\\n")
"""


def run(python: str, tree: Path, args: list[str], cores: int | None) -> dict:
    """One fresh process in `tree`; wall, CPU and peak RSS."""
    stats = Path(tempfile.mkstemp(suffix=".json")[1])
    cmd = [python, "-c", PROBE, *args]
    if cores and shutil.which("taskset"):
        cmd = ["taskset", "-c", ",".join(str(c) for c in range(cores)), *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env={**os.environ, "BA_STATS": str(stats)})
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed in {tree}:\n{proc.stderr[-2000:]}")
    row = json.loads(stats.read_text().splitlines()[-1])
    stats.unlink()
    return {"wall_s": wall, **row, "stdout": proc.stdout}


def case(name: str, before: tuple[str, Path], after: tuple[str, Path], args_before: list[str],
         args_after: list[str], runs: int, cores: int | None, results: list[dict]) -> None:
    runs_b, runs_a = [], []
    for _ in range(runs):  # alternate, so that a change in the machine's load hits both trees alike
        runs_b.append(run(*before, args_before, cores))
        runs_a.append(run(*after, args_after, cores))
    med = {k: (statistics.median(r[k] for r in runs_b), statistics.median(r[k] for r in runs_a))
           for k in ("wall_s", "cpu_s", "rss_mb")}
    results.append({"case": name, "runs": runs, "cores": cores, **{f"{k}_before": v[0] for k, v in med.items()},
                    **{f"{k}_after": v[1] for k, v in med.items()}})
    print(f"{name:16} runs {runs}  wall {med['wall_s'][0]:8.2f} -> {med['wall_s'][1]:8.2f} s "
          f"(x{med['wall_s'][0] / med['wall_s'][1]:.2f})  CPU {med['cpu_s'][0]:8.2f} -> {med['cpu_s'][1]:8.2f} s "
          f"(x{med['cpu_s'][0] / med['cpu_s'][1]:.2f})  peak RSS {med['rss_mb'][0]:6.0f} -> {med['rss_mb'][1]:6.0f} MB",
          flush=True)


def sweep_case(before: tuple[str, Path], after: tuple[str, Path], results: list[dict]) -> None:
    """Ten optimizations of the quick-start at ten budgets: separately (before) and as one sweep (after)."""
    t0 = time.perf_counter()
    cpu_b = 0.0
    for budget in BUDGETS:
        cpu_b += run(*before, ["optimize", "scenarios/quickstart.yaml", "--quiet", "--max-cost-usd-per-h",
                               str(budget)], 2)["cpu_s"]
    wall_b = time.perf_counter() - t0
    out = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    rows = {}
    for executor in ("local", "ray"):
        r = run(*after, ["sweep", "scenarios/quickstart.yaml", "--vary", "constraints.cost_usd_per_h=200:2000:10",
                         "--out", str(out / executor), "--quiet", "--executor", executor], 2)
        rows[executor] = r
    same = (out / "local" / "sweep.csv").read_bytes() == (out / "ray" / "sweep.csv").read_bytes()
    results.append({"case": "sweep", "wall_s_before": wall_b, "cpu_s_before": cpu_b,
                    "wall_s_after": rows["local"]["wall_s"], "cpu_s_after": rows["local"]["cpu_s"],
                    "wall_s_ray": rows["ray"]["wall_s"], "tables_identical": same})
    print(f"{'sweep':16} 10 budgets: 10 x optimize {wall_b:.1f} s (CPU {cpu_b:.1f}); sweep local "
          f"{rows['local']['wall_s']:.1f} s (CPU {rows['local']['cpu_s']:.1f}), ray {rows['ray']['wall_s']:.1f} s; "
          f"x{wall_b / rows['local']['wall_s']:.2f}; tables identical: {same}", flush=True)
    shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="the earlier tree (with its own .venv)")
    ap.add_argument("--cases", default="sim48k-profile,sim48k,sim1m,isopower,checkall,sweep")
    ap.add_argument("--runs", type=int, default=5, help="runs per tree of the 48k cases")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    before = (str(args.before / ".venv" / "bin" / "python"), args.before)
    after = (sys.executable, HERE)
    results: list[dict] = []
    cases = args.cases.split(",")
    if "sim48k-profile" in cases:
        a = SIM + ["--duration", "600"] + PROFILE
        case("sim48k-profile", before, after, a, a, args.runs, 1, results)
    if "sim48k" in cases:
        a = SIM + ["--duration", "600"]
        case("sim48k", before, after, a, a, args.runs, 1, results)
    if "sim1m" in cases:
        a = SIM + ["--duration", "12500"]
        case("sim1m", before, after, a, a, 1, 1, results)
    if "isopower" in cases:
        a = ["benchmarks/opt_iso_power.py"]
        case("isopower", before, after, a, a, 1, 2, results)
    if "checkall" in cases:
        a = ["check", "scenarios/", "--all", "--quiet"]
        case("checkall", before, after, a, a, 1, 2, results)
    if "sweep" in cases:
        sweep_case(before, after, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
