"""`splitplan optimize` end to end: outputs, --json, exit statuses (0 plan, 1 infeasible, 2 bad input)."""

import json
from types import SimpleNamespace

import pytest
import yaml

from splitplan.cli.main import main
from splitplan.plan.schema import check_plan

BASE = {"model": "llama2-70b", "workload": {"trace": "rr_code_80_2min.csv", "duration_s": 10},
        "designs": [{"name": "Splitwise-HA", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a100"]}],
        "constraints": {"cost_usd_per_h": 100}, "search": {"seeds": 1, "max_per_pool": 3, "workers": 1}}


@pytest.fixture
def run(capsys):
    """Run the CLI in-process (as the console script does) and capture exit status and output."""
    def invoke(*args):
        with pytest.raises(SystemExit) as info:
            main(["optimize", *map(str, args)])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=info.value.code, stdout=out.out, stderr=out.err)
    return invoke


def scenario(tmp_path, **changes):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data.update(changes)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_writes_plan_and_prints_json(run, tmp_path):
    out = tmp_path / "out"
    proc = run(scenario(tmp_path), "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert check_plan(plan) == [] and plan["status"] == "feasible"
    assert json.loads((out / "plan.json").read_text()) == plan
    assert (out / "candidates.csv").is_file() and (out / "pareto.csv").is_file()


def test_infeasible_exits_1_with_binding_constraint(run, tmp_path):
    proc = run(scenario(tmp_path), "--max-power-kw", "10")
    assert proc.returncode == 1
    assert "power budget 10 kW is below the smallest Splitwise-HA cluster" in proc.stdout


def test_bad_field_exits_2_with_one_line(run, tmp_path):
    proc = run(scenario(tmp_path, constraints={"powr_kw": 5}))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "constraints.powr_kw: unknown field (did you mean power_kw?)" in proc.stderr


def test_help_has_examples(run):
    proc = run("--help")
    assert proc.returncode == 0 and "Examples:" in proc.stdout and "quickstart.yaml" in proc.stdout


def test_simulate_takes_model_trace_and_slos_from_scenario(capsys, tmp_path):
    path = scenario(tmp_path, slos=["ttft:p99:6x", "tbt:p90:200ms"])
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--scenario", str(path), "--prompt", "dgx-h100:1", "--token", "dgx-a100:1",
              "--rate", "1", "--json"])
    assert info.value.code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cluster"]["model"] == "llama2-70b" and set(summary["slo"]) == {"ttft_p99", "tbt_p90_abs"}
