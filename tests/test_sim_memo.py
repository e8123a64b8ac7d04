"""The simulation memo (plan/sim_memo.py): verdicts read back are the ones simulated, and every input that
changes a simulation changes its key."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from splitplan.apps.sweep import Vary, sweep
from splitplan.apps.sweep_table import write_outputs
from splitplan.catalog import get_catalog
from splitplan.cluster import splitwise_cluster
from splitplan.plan import verify
from splitplan.plan.optimize import optimize
from splitplan.plan.problem import make_problem
from splitplan.plan.sim_memo import SimMemo
from splitplan.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def small(tmp_path) -> Path:
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data["designs"] = data["designs"][:2]
    data["workload"]["duration_s"] = 10
    data["search"] = {"method": "ilp", "seeds": 2, "verify_top": 1, "local_radius": 0}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _problem(path: Path):
    scenario = load_scenario(path)
    return make_problem(scenario, get_catalog(tuple(scenario.catalog_files)))


def _variant(small: Path, name: str, section: str, field: str, value) -> Path:
    data = yaml.safe_load(small.read_text())
    data[section][field] = value
    path = small.with_name(name)
    path.write_text(yaml.safe_dump(data))
    return path


def _no_simulation(*args, **kwargs):
    raise AssertionError("simulated although the memo holds the run")


def test_a_second_optimization_reads_every_run_back_and_gives_the_same_plan(small, tmp_path, monkeypatch):
    plain = optimize(small, workers=1).to_dict()
    first = optimize(small, workers=1, sim_memo=tmp_path / "memo").to_dict()
    entries = list((tmp_path / "memo").rglob("*.json"))
    assert first == plain and entries
    monkeypatch.setattr(verify, "simulate", _no_simulation)
    assert optimize(small, workers=1, sim_memo=tmp_path / "memo").to_dict() == plain


def test_a_torn_or_foreign_entry_is_simulated_again(small, tmp_path):
    plain = optimize(small, workers=1).to_dict()
    optimize(small, workers=1, sim_memo=tmp_path / "memo")
    entries = sorted((tmp_path / "memo").rglob("*.json"))
    entries[0].write_text("{trunc")
    record = json.loads(entries[1].read_text())
    entries[1].write_text(json.dumps({"key": "another", "run": record["run"]}))
    entries[2].write_text(json.dumps({"key": record["key"], "run": {"passed": True, "unknown_field": 1}}))
    assert optimize(small, workers=1, sim_memo=tmp_path / "memo").to_dict() == plain


def test_every_input_of_a_run_is_in_its_key(small, tmp_path):
    problem = _problem(small)
    memo = SimMemo.for_problem(tmp_path, problem)
    cluster = splitwise_cluster("llama2-70b", [("dgx-h100", 2)], [("dgx-a100", 2)])
    other = splitwise_cluster("llama2-70b", [("dgx-h100", 2)], [("dgx-a100", 3)])
    key = memo.key(cluster, 0, 10, True)
    assert key == SimMemo.for_problem(tmp_path, _problem(small)).key(cluster, 0, 10, True)
    assert len({key, memo.key(other, 0, 10, True), memo.key(cluster, 1, 10, True), memo.key(cluster, 0, 11, True),
                memo.key(cluster, 0, 10, False)}) == 5
    changed = [_problem(_variant(small, "longer.yaml", "workload", "duration_s", 11)),
               _problem(_variant(small, "code.yaml", "workload", "trace", "AzureLLMInferenceTrace_code.csv")),
               replace(problem, slos=problem.slos[1:]), replace(problem, perf=replace(problem.perf, stack="sglang"))]
    digests = {memo.problem_digest} | {SimMemo.for_problem(tmp_path, p).problem_digest for p in changed}
    assert len(digests) == 5


def test_a_stack_file_is_keyed_by_its_contents(small, tmp_path):
    stack = tmp_path / "mine.yaml"
    stack.write_text((ROOT / "profiles" / "stacks" / "vllm.yaml").read_text())
    problem = _problem(small)
    problem = replace(problem, perf=replace(problem.perf, stack=str(stack)))
    before = SimMemo.for_problem(tmp_path, problem).problem_digest
    stack.write_text(stack.read_text() + "\n# edited\n")
    assert SimMemo.for_problem(tmp_path, problem).problem_digest != before


def test_keys_are_the_same_in_another_process(small, tmp_path):
    """Worker processes and Ray tasks share entries only if they compute the same keys."""
    code = ("import sys; from pathlib import Path; from tests.test_sim_memo import _problem;"
            "from splitplan.plan.sim_memo import SimMemo;"
            "print(SimMemo.for_problem('m', _problem(Path(sys.argv[1]))).problem_digest)")
    out = subprocess.run([sys.executable, "-c", code, str(small)], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout.strip()
    assert out == SimMemo.for_problem("m", _problem(small)).problem_digest


def test_a_sweep_shares_runs_between_its_points_and_keeps_its_bytes(small, tmp_path, monkeypatch):
    varies = [Vary("constraints.cost_usd_per_h", (150, 300))]
    write_outputs(sweep(small, varies, tmp_path / "a", workers=1), tmp_path / "a", "max_throughput", plot=False)
    assert list((tmp_path / "a" / "sims").rglob("*.json"))
    for point in (tmp_path / "a" / "points").glob("*.json"):
        point.unlink()  # the points are recomputed, every run read back
    monkeypatch.setattr(verify, "simulate", _no_simulation)
    write_outputs(sweep(small, varies, tmp_path / "a", workers=1), tmp_path / "b", "max_throughput", plot=False)
    assert (tmp_path / "a" / "sweep.csv").read_bytes() == (tmp_path / "b" / "sweep.csv").read_bytes()


def test_optimize_sim_memo_flag_reuses_an_earlier_command_s_runs(small, tmp_path, monkeypatch):
    from splitplan.cli.main import main

    def run(out: Path) -> bytes:
        with pytest.raises(SystemExit) as done:
            main(["optimize", str(small), "--quiet", "--workers", "1", "--sim-memo", str(tmp_path / "memo"),
                  "--out", str(out)])
        assert done.value.code == 0
        return (out / "plan.json").read_bytes()

    first = run(tmp_path / "one")
    monkeypatch.setattr(verify, "simulate", _no_simulation)
    assert run(tmp_path / "two") == first
