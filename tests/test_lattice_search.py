"""lattice_max finds the edge of a monotone pass/fail from any start, in few tests near the answer."""

from __future__ import annotations

import pytest

from splitplan.sim.maxrate import lattice_max


def counting(edge: int):
    calls: list[int] = []

    def passes(k: int) -> bool:
        calls.append(k)
        return k <= edge

    return passes, calls


@pytest.mark.parametrize("edge", [-1, 0, 1, 5, 17, 60, 140, 400])
@pytest.mark.parametrize("start", [0, 3, 20, 64, 150])
@pytest.mark.parametrize("step", [1, 2, 4, 9])
def test_finds_the_edge_from_any_start(edge, start, step):
    passes, calls = counting(edge)
    assert lattice_max(passes, start, 0, step) == max(edge, -1)
    assert len(calls) == len(set(calls))  # never tests a rate twice


def test_a_start_near_the_answer_costs_few_tests():
    for edge in range(46, 54):  # within 4 steps of a start at 50 (one step of 4 brackets it)
        passes, calls = counting(edge)
        assert lattice_max(passes, 50, 0, 4) == edge
        assert len(calls) <= 4, (edge, calls)


def test_known_start_is_not_simulated_and_the_floor_is_respected():
    passes, calls = counting(30)
    assert lattice_max(passes, 25, 0, 4, start_passes=True) == 30
    assert 25 not in calls
    passes, calls = counting(-5)
    assert lattice_max(passes, 10, 3, 4) == 2  # floor - 1: nothing at or above the floor passes
    assert min(calls) == 3


def test_a_far_off_estimate_never_overshoots_by_more_than_the_largest_step():
    from splitplan.sim.maxrate import MAX_STEP_K

    passes, calls = counting(200)
    assert lattice_max(passes, 10, 0, 4) == 200
    assert max(calls) <= 200 + MAX_STEP_K  # no run at many times the answer's rate


def test_ci95_is_the_student_t_interval():
    from scipy import stats

    from splitplan.sim.maxrate import ci95

    values = [10.0, 12.5, 11.0, 9.5]
    half = stats.t.ppf(0.975, 3) * stats.tstd(values) / 2.0
    lo, hi = ci95(values)
    assert (lo, hi) == pytest.approx((sum(values) / 4 - half, sum(values) / 4 + half), rel=1e-12)
    assert ci95([3.0]) == (3.0, 3.0)
