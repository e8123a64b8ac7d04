"""plan.json against its schema, the schema checker itself, and the written files (atomic, deterministic)."""

import copy
import json

import pytest

from splitplan.plan.optimize import optimize
from splitplan.plan.schema import check, check_plan
from splitplan.scenario import parse_scenario


@pytest.fixture(scope="module")
def result():
    data = {"model": "llama2-70b", "workload": {"trace": "rr_code_80_2min.csv", "duration_s": 10},
            "designs": [{"name": "Baseline-H100", "kind": "baseline", "machines": ["dgx-h100"]},
                        {"name": "Splitwise-HA", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a100"]}],
            "constraints": {"cost_usd_per_h": 120}, "search": {"seeds": 2, "max_per_pool": 4, "workers": 1},
            "expect": [{"path": "best.throughput_rps", "min": 0.1}]}
    return optimize(parse_scenario(data, source="schema.yaml"))


def test_plan_json_matches_schema(result):
    data = json.loads(result.to_json())
    assert check_plan(data) == []
    assert data["schema_version"] == 2 and data["status"] in ("feasible", "infeasible")
    for c in data["candidates"]:
        assert "throughput_rps" not in c  # one vocabulary: max_rate_rps
        assert c["phases"] in ("split", "partly co-located", "co-located")
        if c["verified"] and c["source"] != "screen":
            assert c["model_error"] == pytest.approx(c["model_rate_rps"] / c["max_rate_rps"] - 1, abs=1e-5)
    assert set(data["designs"]) == {"Baseline-H100", "Splitwise-HA"}


def test_checker_catches_missing_and_wrong_types(result):
    data = json.loads(result.to_json())
    broken = copy.deepcopy(data)
    del broken["best"]["max_rate_rps"]
    broken["candidates"][0]["pools"][0]["count"] = "three"
    broken["status"] = "maybe"
    problems = check_plan(broken)
    assert "best.max_rate_rps: missing" in problems
    assert any(p.startswith("candidates[0].pools[0].count: expected int") for p in problems)
    assert any(p.startswith("status:") for p in problems)


def test_checker_enforces_budget_invariant(result):
    data = json.loads(result.to_json())
    data["best"]["cost_usd_per_h"] = 1e6
    assert "best.cost_usd_per_h: over the cost budget" in check_plan(data)


def test_check_bool_is_not_a_number():
    assert check(True, (int, float)) != [] and check(3, (int, float)) == []


def test_written_files_are_complete_and_deterministic(result, tmp_path):
    out = result.write(tmp_path / "plan")
    assert sorted(p.name for p in out.iterdir()) == ["candidates.csv", "pareto.csv", "plan.json"]
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    result.write(tmp_path / "plan")  # overwrite in place
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
    frame = result.candidates_frame()
    assert len(frame) == len(result.all_candidates()) and "max_rate_rps" in frame and "model_error" in frame


def test_expectations_address_plan_json(result):
    from splitplan.scenario import evaluate_expectations

    checks = evaluate_expectations(result, result.scenario.expect)  # a schema-1 name: still resolves
    assert [c.passed for c in checks] == [True]
    assert result.expectation_view()["best"]["throughput_rps"] == result.to_dict()["best"]["max_rate_rps"]
