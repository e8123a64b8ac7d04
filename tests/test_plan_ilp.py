"""The sizing ILP on small instances whose optima are known by hand (or by brute force)."""

import itertools

import pytest

from splitplan.plan.ilp import Limits, PoolOption, solve_ilp

H_P = PoolOption("prompt", "dgx-h100", cap_rps=2.0, cost_usd_per_h=38.0, power_kw=10.2)
A_T = PoolOption("token", "dgx-a100", cap_rps=3.0, cost_usd_per_h=17.6, power_kw=6.5)
H_T = PoolOption("token", "dgx-h100", cap_rps=4.0, cost_usd_per_h=38.0, power_kw=10.2)


def brute_force(options, limits, objective):
    best = None
    for counts in itertools.product(range(limits.max_per_pool + 1), repeat=len(options)):
        roles = {o.role for o in options}
        if any(sum(c for o, c in zip(options, counts) if o.role == r) < 1 for r in roles):
            continue
        cost = sum(o.cost_usd_per_h * c for o, c in zip(options, counts))
        power = sum(o.power_kw * c for o, c in zip(options, counts))
        rate = min(sum(o.cap_rps * c for o, c in zip(options, counts) if o.role == r) for r in roles)
        if limits.cost_usd_per_h is not None and cost > limits.cost_usd_per_h + 1e-9:
            continue
        if limits.power_kw is not None and power > limits.power_kw + 1e-9:
            continue
        if limits.max_machines is not None and sum(counts) > limits.max_machines:
            continue
        if limits.min_throughput_rps is not None and rate < limits.min_throughput_rps - 1e-9:
            continue
        key = {"max_throughput": (-rate, cost), "min_cost": (cost, power), "min_power": (power, cost)}[objective]
        if best is None or key < best[0]:
            best = (key, rate, cost, power)
    return best


def test_max_throughput_known_optimum():
    # Budget $200/h: 3 prompt (6 rps, $114) + 2 token A100 (6 rps, $35.2) = $149.2; 4P would cost 152+2T...
    sol = solve_ilp([H_P, A_T], Limits(cost_usd_per_h=200.0, max_per_pool=10), "max_throughput")[0]
    assert sol.count("prompt") == 3 and sol.count("token") == 2
    assert sol.rate_rps == pytest.approx(6.0)
    assert sol.cost_usd_per_h <= 200.0


def test_min_cost_at_target():
    sol = solve_ilp([H_P, A_T, H_T], Limits(min_throughput_rps=8.0, max_per_pool=10), "min_cost")[0]
    # 4 prompt machines are needed (8 rps); tokens: 3 x A100 ($52.8) beats 2 x H100 ($76)
    assert (sol.count("prompt"), sol.count("token", "dgx-a100"), sol.count("token", "dgx-h100")) == (4, 3, 0)


@pytest.mark.parametrize("objective,limits", [
    ("max_throughput", Limits(power_kw=60.0, max_per_pool=6)),
    ("max_throughput", Limits(cost_usd_per_h=300.0, max_machines=7, max_per_pool=6)),
    ("min_power", Limits(min_throughput_rps=7.0, max_per_pool=6)),
    ("min_cost", Limits(min_throughput_rps=5.0, power_kw=70.0, max_per_pool=6)),
])
def test_matches_brute_force(objective, limits):
    options = [H_P, A_T, H_T]
    sol = solve_ilp(options, limits, objective)[0]
    _, rate, cost, power = brute_force(options, limits, objective)
    assert (sol.rate_rps, sol.cost_usd_per_h, sol.power_kw) == pytest.approx((rate, cost, power))


def test_top_k_distinct_and_ordered():
    sols = solve_ilp([H_P, A_T], Limits(cost_usd_per_h=200.0, max_per_pool=10), "max_throughput", top=3)
    assert len(sols) == 3
    assert len({s.counts for s in sols}) == 3
    assert sols[0].rate_rps >= sols[1].rate_rps >= sols[2].rate_rps


def test_infeasible_returns_empty():
    assert solve_ilp([H_P, A_T], Limits(power_kw=10.0, max_per_pool=10), "max_throughput") == []


def test_highs_agrees_with_cbc():
    pytest.importorskip("highspy", reason="HiGHS is optional (pip install splitplan[highs])")
    limits = Limits(cost_usd_per_h=250.0, max_per_pool=8)
    a = solve_ilp([H_P, A_T, H_T], limits, "max_throughput", solver="cbc")[0]
    b = solve_ilp([H_P, A_T, H_T], limits, "max_throughput", solver="highs")[0]
    assert a.rate_rps == pytest.approx(b.rate_rps)
