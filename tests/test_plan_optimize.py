"""The optimizer against the exhaustive simulated grid on small spaces, and its promises:
never over a budget, never saturated, deterministic whatever the worker count, infeasibility explained."""

import pytest

from splitplan.errors import SplitplanError
from splitplan.plan.optimize import optimize
from splitplan.plan.schema import check_plan
from splitplan.scenario import parse_scenario

HA = {"name": "Splitwise-HA", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a100"]}
HH = {"name": "Splitwise-HHcap", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-h100-pcap"]}
BH = {"name": "Baseline-H100", "kind": "baseline", "machines": ["dgx-h100"]}


def small(designs, constraints, objective="max_throughput", **search):
    """A tiny but real question: Llama2-70B on the 2-minute conversation trace, 10 s runs, 2 seeds."""
    data = {"model": "llama2-70b", "workload": {"trace": "rr_conv_80_2min.csv", "duration_s": 10},
            "designs": designs, "constraints": constraints, "objective": objective,
            "search": {"seeds": 2, "max_per_pool": 6, "verify_top": 1, "workers": 1, "rate_tol_rps": 0.5,
                       **search}}
    return parse_scenario(data, source="test.yaml")


def objective_value(candidate, objective):
    return {"max_throughput": candidate.throughput_rps, "min_cost": candidate.cost_usd_per_h,
            "min_power": candidate.power_kw}[objective]


def assert_close_to_grid(design_result, objective):
    ilp, grid = design_result.ilp_best, design_result.grid_best
    assert grid is not None and ilp is not None
    if ilp.key() == grid.key():
        return
    distance = sum(abs(a.count - b.count) for a, b in zip(ilp.cluster.pools, grid.cluster.pools))
    a, b = objective_value(ilp, objective), objective_value(grid, objective)
    assert distance <= 1 and abs(a - b) <= 0.02 * abs(b), (ilp.cluster.label(), grid.cluster.label(), a, b)


@pytest.mark.parametrize("designs,constraints,objective", [
    ([HA], {"cost_usd_per_h": 200}, "max_throughput"),
    ([BH], {"power_kw": 45}, "max_throughput"),
    ([HH], {"min_throughput_rps": 12}, "min_power"),
])
def test_optimizer_matches_exhaustive_grid(designs, constraints, objective):
    result = optimize(small(designs, constraints, objective, method="both"))
    assert result.feasible
    for d in result.designs:
        assert_close_to_grid(d, objective)
    assert check_plan(result.to_dict()) == []


def test_plan_respects_budgets_and_is_verified():
    result = optimize(small([BH, HA], {"cost_usd_per_h": 160, "power_kw": 60}))
    for d in result.designs:
        if d.best is not None:
            assert d.best.cost_usd_per_h <= 160 and d.best.power_kw <= 60
            assert d.best.verified and not d.best.verification.saturated and d.best.throughput_rps > 0
            assert all(m >= 0 for m in d.best.verification.slo_margins.values())
    for c in result.all_candidates():
        assert c.cost_usd_per_h <= 160 + 1e-9 and c.power_kw <= 60 + 1e-9


def test_same_result_whatever_the_worker_count():
    scenario = small([HA], {"cost_usd_per_h": 140})
    one = optimize(scenario, workers=1).to_json()
    two = optimize(scenario, workers=2).to_json()
    assert one == two


def test_infeasible_power_budget_names_the_binding_constraint():
    result = optimize(small([HA], {"power_kw": 10}))
    assert not result.feasible
    assert "power budget 10 kW is below the smallest Splitwise-HA cluster (16.7 kW: 1 prompt + 1 token machine)" \
        in result.binding


def test_infeasible_target_names_the_budget():
    result = optimize(small([HA], {"min_throughput_rps": 70, "cost_usd_per_h": 150}, "min_cost"))
    assert not result.feasible
    # the verdict rests on simulations within the budget, the model's estimate is context
    assert "min_throughput 70 req/s not reached within cost budget $150/h" in result.binding
    assert "the best simulated Splitwise-HA cluster (prompt" in result.binding
    assert "the capacity model estimates about" in result.binding
    assert any(c.within_budget for c in result.designs[0].candidates)


def test_model_that_does_not_fit_is_never_planned():
    data = {"model": "bloom-176b", "workload": {"trace": "rr_conv_80_2min.csv", "duration_s": 10},
            "designs": [{"name": "B", "kind": "baseline", "machines": ["l40s-x8"], "tp": 4}],
            "constraints": {"cost_usd_per_h": 500}, "search": {"seeds": 1, "workers": 1}}
    with pytest.raises(SplitplanError, match="designs.B.machines: bloom-176b does not fit any mixed machine"):
        optimize(parse_scenario(data, source="t.yaml"))  # an input error, before any simulation


def test_replay_generator_is_refused_with_field():
    data = {"model": "llama2-70b", "workload": {"trace": "rr_conv_80_2min.csv", "generator": "replay"},
            "designs": [BH], "constraints": {"cost_usd_per_h": 100}}
    with pytest.raises(SplitplanError, match="workload.generator"):
        optimize(parse_scenario(data, source="t.yaml"))


def test_borrowed_token_rates_model_prompt_machines_without_a_token_slot():
    """Splitwise-HA's H100 prompt machines decode when borrowed: their modelled rate seeds the token screens
    (plan/refine.py), faster than the A100 token machines; designs that need none get none."""
    from splitplan.catalog import get_catalog
    from splitplan.plan.optimize import _sized_space
    from splitplan.plan.problem import make_problem, request_sample

    sc = small([HA, HH, BH], {"cost_usd_per_h": 200})
    problem = make_problem(sc, get_catalog())
    sample = request_sample(problem)
    rates = {d.name: _sized_space(problem, d, sample)[1] for d in sc.designs}
    ha = rates["Splitwise-HA"]
    a100_token = next(o.cap_rps for o in ha.options if o.role == "token")
    assert set(ha.borrowed_token_rps) == {("dgx-h100", o.tp) for o in ha.options if o.role == "prompt"}
    assert all(r > a100_token for r in ha.borrowed_token_rps.values())
    assert rates["Splitwise-HHcap"].borrowed_token_rps  # H100 prompt, capped H100 token: another machine type
    assert rates["Baseline-H100"].borrowed_token_rps == {}
