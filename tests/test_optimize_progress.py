"""A long optimize must be followable and stoppable: progress lines with stdout and stderr redirected,
Ctrl-C keeping the designs that finished (plan.json, status interrupted), --time-limit returning the
best verified plan so far (status time_limit)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

QUICK = {"name": "Baseline-H100", "kind": "baseline", "machines": ["dgx-h100"]}
SLOW = {"name": "Split-mix", "kind": "splitwise", "prompt": ["dgx-h100", "dgx-h200"],
        "token": ["dgx-a100", "dgx-h100-pcap"]}


# Long enough that the whole search takes many times the time limit below even on a fast CI machine
# (about 20 s here on 2 cores); the interrupted and time-limited runs stop long before that.
LONG_S = 240


def scenario_file(tmp_path: Path, designs: list[dict], duration_s: float = 10, seeds: int = 2) -> Path:
    data = {"name": "progress", "model": "llama2-70b",
            "workload": {"trace": "rr_conv_80_2min.csv", "generator": "poisson", "duration_s": duration_s},
            "designs": designs, "constraints": {"cost_usd_per_h": 200}, "objective": "max_throughput",
            "search": {"seeds": seeds, "max_per_pool": 6, "verify_top": 1, "rate_tol_rps": 0.5}}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "splitplan.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=300)


def test_redirected_optimize_prints_progress_lines(tmp_path):
    scenario = scenario_file(tmp_path, [QUICK, {**SLOW, "prompt": ["dgx-h100"], "token": ["dgx-a100"]}])
    done = run(["optimize", str(scenario), "--out", str(tmp_path / "out"), "--workers", "2"], tmp_path,
               SPLITPLAN_PROGRESS_EVERY_S="0.3")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any("optimizing 2 design(s)" in line for line in lines), done.stderr
    assert any("Baseline-H100: started" in line for line in lines)
    assert any("finished Split-mix: feasible" in line and "designs)" in line for line in lines)
    beats = [line for line in lines if "s so far;" in line]  # the heartbeat names what is simulated
    assert beats and any(" req/s, seed " in line for line in beats), done.stderr
    assert all(line.startswith("[") for line in lines), lines  # plain lines, no terminal control codes
    assert "\x1b[" not in done.stderr


def test_quiet_and_json_print_no_progress(tmp_path):
    scenario = scenario_file(tmp_path, [QUICK])
    done = run(["optimize", str(scenario), "--json"], tmp_path)
    assert done.returncode == 0 and done.stderr == "" and json.loads(done.stdout)["status"] == "feasible"


def test_ctrl_c_keeps_the_designs_already_finished(tmp_path):
    scenario = scenario_file(tmp_path, [QUICK, SLOW], duration_s=LONG_S, seeds=3)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "splitplan.cli.main", "optimize", str(scenario), "--out", str(out),
                             "--workers", "1"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    seen: list[str] = []
    finished = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            seen.append(line)
            if "finished Baseline-H100" in line:
                finished.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert finished.wait(240), "".join(seen)
    time.sleep(1.0)  # inside the second design's search
    assert proc.poll() is None, "the run ended before it could be interrupted; make the second design slower"
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(timeout=5)
    assert proc.returncode == 130, "".join(seen)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["status"] == "interrupted"
    assert plan["designs"]["Baseline-H100"]["status"] == "feasible"
    assert plan["designs"]["Baseline-H100"]["best"]["verified"]
    assert plan["designs"]["Split-mix"]["status"] == "interrupted"
    assert "Traceback" not in "".join(seen)
    assert sorted(p.name for p in out.iterdir()) == ["candidates.csv", "pareto.csv", "plan.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_time_limit_returns_the_best_verified_plan_so_far(tmp_path):
    from splitplan.plan.schema import check_plan

    scenario = scenario_file(tmp_path, [QUICK, SLOW], duration_s=LONG_S, seeds=3)
    start = time.monotonic()
    done = run(["optimize", str(scenario), "--out", str(tmp_path / "out"), "--time-limit", "3", "--workers", "1"],
               tmp_path)
    elapsed = time.monotonic() - start
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["status"] == "time_limit", plan["binding"]
    assert check_plan(plan) == []
    assert "time limit reached: best plan verified so far" in done.stdout
    assert elapsed < 60, elapsed  # stops at a simulation boundary, not after the whole search
    for name, d in plan["designs"].items():
        assert d["status"] in ("feasible", "time_limit"), (name, d["status"])
        if d["status"] == "time_limit" and d["best"] is not None:
            assert d["best"]["verified"] and "best verified plan so far" in d["binding"]
    assert done.returncode == (0 if plan["best"] else 1)


@pytest.mark.parametrize("bad", ["0", "-3", "soon"])
def test_bad_time_limit_is_one_line_and_exit_2(tmp_path, bad):
    scenario = scenario_file(tmp_path, [QUICK])
    done = run(["optimize", str(scenario), "--time-limit", bad], tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--time-limit" in done.stderr
