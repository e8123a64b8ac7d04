"""Ctrl-C in the middle of a long run: exit status 130, no traceback, and no half-written output
(either no output folder at all, or the complete previous one, untouched; no temp folders left).

Runs go through a fresh interpreter in its own session; SIGINT goes to the whole process group, as a
terminal's Ctrl-C does (the optimizer's worker processes receive it too). The signal is sent once
the run has used enough CPU time to be past start-up and inside the work.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc for CPU times")

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its finished children (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICKS


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return out


def interrupt(argv: list[str], cwd: Path, *, cpu_s: float, need_children: bool = False,
              timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """Start `splitplan argv`, wait until it has burnt `cpu_s` CPU seconds (and started worker processes),
    then SIGINT its process group; return the finished process with its output."""
    proc = subprocess.Popen([sys.executable, "-m", "splitplan.cli.main", *argv], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, PYTHONFAULTHANDLER="1"))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        busy = cpu_seconds(proc.pid) + sum(cpu_seconds(c) for c in children(proc.pid))
        if busy >= cpu_s and (not need_children or children(proc.pid)):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be interrupted; make it longer"
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # hung after Ctrl-C: fail with every thread's stack (faulthandler)
        os.kill(proc.pid, signal.SIGABRT)
        time.sleep(2.0)
        os.killpg(proc.pid, signal.SIGKILL)  # workers ignoring SIGINT would keep the pipes open
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"still running 60 s after Ctrl-C; stacks:\n{err[-6000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_clean_interrupt(result: subprocess.CompletedProcess, folder: Path, out: Path,
                           previous: dict[str, bytes] | None) -> None:
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "Error" not in result.stderr, result.stderr
    if previous is None:
        assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    else:
        assert {p.name: p.read_bytes() for p in out.iterdir()} == previous
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    assert leftovers == [], leftovers


def fake_previous_output(out: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """A complete earlier output folder (contents only need to be recognisable)."""
    out.mkdir()
    for name in names:
        (out / name).write_bytes(f"previous {name}\n".encode())
    return {name: (out / name).read_bytes() for name in names}


SCENARIO = {
    "name": "interrupt-me",
    "model": "llama2-70b",
    # long enough that the signal lands mid-search even on a quiet machine (at 60 s x 3 seeds the run
    # could finish right as the signal arrived, exiting 0 during interpreter shutdown)
    "workload": {"trace": "AzureLLMInferenceTrace_conv.csv", "generator": "poisson", "duration_s": 180, "seed": 0},
    "slos": "paper",
    "designs": [{"name": "Baseline-H100", "kind": "baseline", "machines": ["dgx-h100"]},
                {"name": "Splitwise-HA", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a100"]}],
    "constraints": {"cost_usd_per_h": 400},
    "objective": "max_throughput",
    "search": {"seeds": 5, "verify_top": 2, "local_radius": 1},
}


@pytest.mark.parametrize("with_previous", [False, True], ids=["no-previous", "previous-kept"])
def test_interrupted_optimize_leaves_no_partial_output(tmp_path: Path, with_previous: bool) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO))
    results = tmp_path / "results"
    results.mkdir()
    out = results / "plan"
    previous = fake_previous_output(out, ("plan.json", "candidates.csv", "pareto.csv")) if with_previous else None
    run = interrupt(["optimize", str(scenario), "--out", str(out), "--workers", "2"], tmp_path, cpu_s=2.0,
                    need_children=True)
    assert_clean_interrupt(run, results, out, previous)


SIM = ["simulate", "--model", "llama2-70b", "--prompt", "dgx-h100:25", "--token", "dgx-a100:26",
       "--trace", "AzureLLMInferenceTrace_conv.csv", "--rate", "80", "--quiet"]


def test_interrupted_simulate_leaves_no_partial_output(tmp_path: Path) -> None:
    out = tmp_path / "results" / "sim"
    out.parent.mkdir()
    previous = fake_previous_output(out, ("summary.json", "requests.csv", "machines.csv", "timeline.csv"))
    run = interrupt(SIM + ["--duration", "3600", "--out", str(out)], tmp_path, cpu_s=2.5)
    assert_clean_interrupt(run, out.parent, out, previous)


def test_interrupted_multi_seed_simulate_writes_nothing(tmp_path: Path) -> None:
    """Several seeds: interrupted after some seeds finished, the folder must not hold only some of them."""
    out = tmp_path / "results" / "sims"
    out.parent.mkdir()
    run = interrupt(SIM + ["--duration", "120", "--seeds", "30", "--out", str(out)], tmp_path, cpu_s=4.0)
    assert_clean_interrupt(run, out.parent, out, None)
