"""What a plan says it is: split designs that ran co-located say so, infeasible verdicts give the SLO
missed even unloaded, simulations name offered and completed rates the same way everywhere."""

from __future__ import annotations

from dataclasses import replace

import pytest

from splitplan.catalog import get_catalog
from splitplan.plan.optimize import optimize
from splitplan.plan.phases import Phases, phases_of, phases_text
from splitplan.plan.problem import make_problem
from splitplan.plan.unloaded import unloaded_line
from splitplan.scenario import Design, load_scenario, parse_scenario
from splitplan.sim import simulate
from splitplan.cluster import ClusterSpec, PoolSpec
from splitplan.workload import load_trace, poisson_workload, resolve_trace_path

CHAT = "scenarios/examples/llama70b_chat_h100_h200.yaml"


@pytest.mark.parametrize("share,expected", [(None, Phases.SPLIT), (0.0, Phases.SPLIT), (0.099, Phases.SPLIT),
                                            (0.1, Phases.PARTLY), (0.49, Phases.PARTLY), (0.5, Phases.COLOCATED)])
def test_phases_follow_the_co_located_share(share, expected):
    assert phases_of("splitwise", share) is expected
    assert phases_of("baseline", share) is Phases.COLOCATED


def test_a_split_design_that_ran_co_located_is_not_called_a_split():
    assert phases_text("splitwise", 0.97, 0.98).startswith("not split in practice: 97% of requests, 98% of tokens")
    assert phases_text("splitwise", 0.02).startswith("split prompt/token pools (2% of requests")


def test_chat_question_split_designs_split_or_say_they_do_not():
    """Acceptance: Llama-3.1-70B chat at 40 req/s, min cost; each split design's verified plan either keeps
    its co-located share under 10% or is reported as not split (plan.json, table, report)."""
    from splitplan.report.plan_sections import split_text
    from splitplan.report.plan_view import plan_view

    scenario = load_scenario(CHAT)
    splits = tuple(d for d in scenario.designs if d.kind == "splitwise")
    result = optimize(replace(scenario, designs=splits))
    plan = result.to_dict()
    view = {row.name: row for row in plan_view(plan).designs}
    for d in result.designs:
        assert d.best is not None, d.binding
        share = d.best.verification.mixed_request_share
        assert share is not None and 0 <= share <= 1
        entry = plan["designs"][d.name]
        assert entry["phases"] == ("split" if share < 0.10 else "partly co-located" if share < 0.5 else "co-located")
        if share >= 0.10:
            assert split_text(view[d.name]).startswith("Not in practice")
            assert not view[d.name].is_split


def test_unloaded_slo_miss_is_named_with_its_size():
    """A TP-1 A100 design against a full-machine H100 reference misses TTFT P50 <= 2x at any load."""
    data = {"model": "llama3.1-8b", "workload": {"trace": "rr_conv_80_2min.csv", "duration_s": 10},
            "reference_machine": "dgx-h100", "slos": ["ttft:p50:2x", "tbt:p90:1.5x"],
            "designs": [{"name": "A100-tp1", "kind": "baseline", "machines": ["dgx-a100"], "tp": 1}],
            "constraints": {"cost_usd_per_h": 100}}
    scenario = parse_scenario(data, source="t.yaml")
    problem = make_problem(scenario, get_catalog())
    line = unloaded_line(problem, scenario.designs[0])
    assert line.startswith("even unloaded, dgx-a100 at tp1 misses TTFT P50 <= 2x unloaded: unloaded ")
    assert "x the reference" in line and "% over the limit" in line and "(reference dgx-h100" in line
    fine = replace(scenario.designs[0], machines=("dgx-h100",), tp=8)
    assert unloaded_line(problem, fine) == ""


def test_simulation_summary_names_offered_and_completed_rates():
    sizes = load_trace(resolve_trace_path("rr_conv_80_2min.csv"))
    cluster = ClusterSpec("llama2-70b", "splitwise", (PoolSpec("prompt", "dgx-h100", 2, 8),
                                                       PoolSpec("token", "dgx-a100", 2, 8)))
    s = simulate(cluster, poisson_workload(sizes, 5.0, 30.0, seed=0)).summary
    assert "throughput_rps" not in s and "arrival_rps" not in s
    assert s["offered_rps"] == pytest.approx((s["requests"] - 1) / 30.0, rel=0.1)
    assert s["completed_rps"] == pytest.approx(s["offered_rps"] * s["completed"] / s["requests"])
    assert s["window_completed_rps"] < s["offered_rps"]  # SplitwiseSim's window lags on a short run
    assert set(s["mixed_pool"]) >= {"request_share", "token_share"}
