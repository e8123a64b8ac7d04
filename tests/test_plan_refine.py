"""The refinement stage on a synthetic cluster whose true max rate is known in closed form:
min(prompt machines x 2 req/s, token machines x 9 req/s). The capacity model handed to the ILP is
deliberately wrong, as it is for the paper's studies, and the search must still land on the optimum
with few simulations."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from splitplan.plan.ilp import Limits, PoolOption, solve_ilp
from splitplan.plan.parallel import WorkerPool
from splitplan.plan.refine import refine_max_throughput, refine_to_target
from splitplan.plan.result import Verification
from splitplan.plan.search import DesignSpace, Evaluator
from splitplan.plan.verify import RATE_STEP, lattice_index, lattice_rate
from splitplan.scenario import Design

PROMPT_RPS, TOKEN_RPS = 2.0, 9.0
COST = {"h": 38.0, "a": 17.6}


@dataclass(frozen=True)
class _Search:
    rate_tol_rps: float = 0.5


@dataclass(frozen=True)
class _Scenario:
    search: _Search = field(default_factory=_Search)


@dataclass(frozen=True)
class _Problem:
    scenario: _Scenario = field(default_factory=_Scenario)


def true_rate(cluster) -> float:
    counts = {p.role: p.count for p in cluster.pools}
    return min(PROMPT_RPS * counts.get("prompt", 0), TOKEN_RPS * counts.get("token", 0))


def on_lattice(rate: float) -> float:
    """The highest lattice rate <= rate (what a bisection over the lattice finds)."""
    if rate <= 0:
        return 0.0
    k = lattice_index(rate)
    return lattice_rate(k if lattice_rate(k) <= rate * (1 + 1e-12) else k - 1)


def fake_verify(problem, cluster, hint_rps, passed_rps=None) -> Verification:
    r = on_lattice(true_rate(cluster))
    return Verification(r, (r,), r, (r, r), {}, r <= 0, 6)


def fake_test(problem, cluster, rate_rps) -> Verification:
    r = lattice_rate(lattice_index(rate_rps)) if true_rate(cluster) >= rate_rps * (1 - 1e-9) else 0.0
    return Verification(r, (r,), r, (r, r), {}, r <= 0, 1, screened=True)


def evaluator(limits: Limits, prompt_cap: float, token_cap: float) -> Evaluator:
    design = Design("Splitwise-HA", "splitwise", prompt=("h",), token=("a",))
    options = [PoolOption("prompt", "h", prompt_cap, COST["h"], 10.2), PoolOption("token", "a", token_cap, COST["a"], 6.5)]
    space = DesignSpace("m", design, options, limits)
    return Evaluator(_Problem(), space, fake_verify, WorkerPool(1), screen_fn=fake_verify, test_fn=fake_test)


def counts(candidate) -> tuple[int, int]:
    c = {p.role: p.count for p in candidate.cluster.pools}
    return c["prompt"], c["token"]


@pytest.mark.parametrize("prompt_cap", [3.0, 2.0, 1.4])  # model 50% optimistic, right, 30% pessimistic
def test_min_cost_reaches_the_target_whatever_the_model_error(prompt_cap):
    ev = evaluator(Limits(max_per_pool=200, min_throughput_rps=50.0), prompt_cap, TOKEN_RPS)
    sols = solve_ilp(ev.space.options, ev.space.limits, "min_cost", "cbc")
    best = refine_to_target(ev, [ev.space.vector(sols[0].counts)], "min_cost", radius=1)
    assert best is not None and best.verified and best.throughput_rps >= 50.0
    need = lattice_rate(math.ceil(math.log(50.0) / math.log(RATE_STEP)))  # the target, on the rate lattice
    cheapest = min((p * COST["h"] + t * COST["a"], (p, t)) for p in range(1, 60) for t in range(1, 60)
                   if min(PROMPT_RPS * p, TOKEN_RPS * t) >= need)
    assert counts(best) == cheapest[1] == (26, 6)
    assert len(ev.tests) + len(ev.seen) <= 30, (len(ev.tests), len(ev.seen))


def test_min_cost_target_out_of_reach_reports_the_closest_plan():
    ev = evaluator(Limits(max_per_pool=20, min_throughput_rps=50.0), 3.0, TOKEN_RPS)
    sols = solve_ilp(ev.space.options, ev.space.limits, "min_cost", "cbc")
    best = refine_to_target(ev, [ev.space.vector(sols[0].counts)], "min_cost", radius=1)
    assert best is not None and best.throughput_rps < 50.0  # measured, and not acceptable
    assert counts(best)[0] == 20  # the climb went as far as the pool limit allows


def test_max_throughput_climbs_to_the_best_split_of_the_budget():
    budget = 20 * COST["h"] + 4 * COST["a"]
    ev = evaluator(Limits(cost_usd_per_h=budget, max_per_pool=100), 2.0, 4.5)  # token model 2x pessimistic
    sols = solve_ilp(ev.space.options, ev.space.limits, "max_throughput", "cbc")
    start = ev.evaluate([ev.space.vector(sols[0].counts)], "ilp")
    best = refine_max_throughput(ev, start, "max_throughput", radius=2, max_rounds=8)
    grid = max((min(PROMPT_RPS * p, TOKEN_RPS * t), -(p * COST["h"] + t * COST["a"]))
               for p in range(1, 40) for t in range(1, 40) if p * COST["h"] + t * COST["a"] <= budget + 1e-9)
    assert best.throughput_rps == pytest.approx(on_lattice(grid[0]), rel=RATE_STEP - 1)


@pytest.mark.parametrize("prompt_cap,token_cap", [(4.0, TOKEN_RPS), (1.0, TOKEN_RPS), (PROMPT_RPS, 18.0),
                                                  (PROMPT_RPS, 4.5), (4.0, 4.5), (1.0, 18.0)])
def test_min_cost_finds_the_cheapest_plan_with_the_model_off_by_2x(prompt_cap, token_cap):
    """Acceptance: the capacity model 2x optimistic or 2x pessimistic, per pool or both ways at once."""
    ev = evaluator(Limits(max_per_pool=200, min_throughput_rps=50.0), prompt_cap, token_cap)
    sols = solve_ilp(ev.space.options, ev.space.limits, "min_cost", "cbc")
    best = refine_to_target(ev, [ev.space.vector(sols[0].counts)], "min_cost", radius=1)
    assert best is not None and best.verified and counts(best) == (26, 6)
    assert len(ev.tests) + len(ev.seen) <= 30, (len(ev.tests), len(ev.seen))


@pytest.mark.parametrize("prompt_cap", [1.0, 1.4])
def test_model_saying_no_plan_fits_the_budget_is_not_a_verdict(prompt_cap):
    """The budget allows the cheapest true plan (26 + 6), the pessimistic model says nothing in it reaches
    the target: the search must simulate, not declare the design infeasible."""
    from splitplan.plan.refine import ilp_search

    budget = 26 * COST["h"] + 6 * COST["a"] + 1.0
    ev = evaluator(Limits(cost_usd_per_h=budget, max_per_pool=200, min_throughput_rps=50.0), prompt_cap, TOKEN_RPS)
    assert solve_ilp(ev.space.options, ev.space.limits, "min_cost", "cbc") == []  # the model's verdict
    best = ilp_search(ev, "min_cost", top=1, radius=1, solver="cbc")
    assert best is not None and best.verified and counts(best) == (26, 6)


@pytest.mark.parametrize("start,most", [((26, 6), 2), ((27, 7), 6), ((52, 12), 14)])
def test_pool_shrink_costs_few_tests_near_the_answer(start, most):
    """Each pool is searched down from its size in steps of 1, 2, 4, ...: a plan already at its smallest
    passing size costs one failing test per pool (the bisection from one machine spent ~log2(size) each),
    and a 2x over-provisioned one still reaches the smallest plan."""
    from splitplan.plan.refine import _shrink_pools

    ev = evaluator(Limits(max_per_pool=200, min_throughput_rps=50.0), PROMPT_RPS, TOKEN_RPS)
    kt = math.ceil(math.log(50.0) / math.log(RATE_STEP))
    assert _shrink_pools(ev, start, kt) == (26, 6)
    assert len(ev.tests) <= most, sorted(ev.tests)


def test_borrowing_screen_start_by_hand():
    """172 A100 prompt machines (2.63 req/s each as prompt machines, 5.27 as token machines) beside 29 A100
    token machines: r = (29 x 5.27 + 172 x 5.27) / (1 + 172 x 5.27 / (172 x 2.63)) = 1059.27 / 3.0038."""
    from splitplan.plan.refine import borrowing_screen_rps

    options = [PoolOption("prompt", "a", 2.63, COST["a"], 6.5), PoolOption("token", "a", 5.27, COST["a"], 6.5)]
    assert borrowing_screen_rps(options, (172, 29), 29 * 5.27) == pytest.approx(352.64, abs=0.01)
    # a prompt machine type with no token option: no modelled decode rate, the pool's own rate stays
    mixed_types = [PoolOption("prompt", "h", 5.78, COST["h"], 10.2), PoolOption("token", "a", 5.27, COST["a"], 6.5)]
    assert borrowing_screen_rps(mixed_types, (82, 28), 28 * 5.27) == 28 * 5.27
    # ... unless the space models it: 82 H100 decoding at 7.0 each when borrowed, r = (147.56 + 574) /
    # (1 + 574 / (82 x 5.78)) = 721.56 / 2.2111
    borrowed = {("h", 8): 7.0}
    assert borrowing_screen_rps(mixed_types, (82, 28), 28 * 5.27, borrowed) == pytest.approx(326.33, abs=0.01)
    assert borrowing_screen_rps(mixed_types, (82, 28), 28 * 5.27, {("h", 4): 7.0}) == 28 * 5.27  # other shape


def test_role_scales_starts_the_token_screen_where_borrowing_puts_it():
    from splitplan.plan.refine import borrowing_screen_rps, role_scales

    hints = {}

    def screen(problem, cluster, hint_rps):
        counts = {p.role: p.count for p in cluster.pools}
        role = "prompt" if counts["prompt"] == 30 else "token"  # the pool under test keeps its count
        hints[role] = hint_rps
        return fake_verify(problem, cluster, hint_rps)

    design = Design("Splitwise-AA", "splitwise", prompt=("a",), token=("a",))
    options = [PoolOption("prompt", "a", 2.0, COST["a"], 6.5), PoolOption("token", "a", 9.0, COST["a"], 6.5)]
    ev = Evaluator(_Problem(), DesignSpace("m", design, options, Limits(max_per_pool=500)), fake_verify,
                   WorkerPool(1), screen_fn=screen, test_fn=fake_test)
    role_scales(ev, options, (30, 6))
    assert hints["prompt"] == pytest.approx(60.0)  # the prompt pool's own modelled rate
    assert hints["token"] == pytest.approx(borrowing_screen_rps(options, (91, 6), 54.0))  # 91 = 3 x 30 + 1
    assert hints["token"] > 54.0
