"""Stopping a run at its first certain SLO miss: the verdict is the full run's, and plans do not change."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from splitplan.catalog import get_catalog
from splitplan.cluster import splitwise_cluster
from splitplan.plan import verify
from splitplan.plan.problem import make_problem
from splitplan.scenario import load_scenario
from splitplan.sim import simulate
from splitplan.sim.miss_watch import violators_needed
from splitplan.slo import SLO, percentile
from splitplan.workload import load_trace, poisson_workload, resolve_trace_path

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40, 101, 1000])
@pytest.mark.parametrize("q", [50.0, 90.0, 99.0, 99.9, 12.5])
def test_that_many_violators_put_the_percentile_over_the_limit(n, q):
    """Any n values of which violators_needed(n, q) exceed the limit have their q-th percentile above it,
    whatever the others are; one violator fewer can leave it at or below the limit."""
    need = violators_needed(n, q)
    assert 1 <= need <= n
    rng = np.random.default_rng(n * 1000 + int(q * 10))
    limit = 1.0
    for _ in range(50):
        values = rng.uniform(0.0, limit, n)
        values[rng.choice(n, need, replace=False)] = limit + rng.exponential(1.0, need) + 1e-12
        assert percentile(values, q) > limit
        assert percentile(np.where(rng.random(n) < 0.5, values, np.nan), q) > limit or np.isnan(values).all()
    # the count is tight: with one violator fewer, the lower of the two order statistics the percentile
    # interpolates between is not a violator, so the verdict is not yet certain
    values = np.concatenate([np.zeros(n - need + 1), np.full(need - 1, limit + 1.0)])
    assert np.sort(values)[math.floor((n - 1) * q / 100.0)] <= limit


def _runs(rates, slos, stop):
    sizes = load_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv"))
    cluster = splitwise_cluster("llama2-70b", [("dgx-h100", 2)], [("dgx-a100", 2)])
    out = []
    for rate in rates:
        w = poisson_workload(sizes, rate, 40.0, seed=3)
        out.append(simulate(cluster, w, slos=slos, stop_at_miss=stop))
    return out


def test_the_verdict_is_the_full_runs_and_overloaded_runs_stop_early():
    slos = (SLO("ttft", 99, 6.0), SLO("tbt", 90, 1.5), SLO("e2e", 90, 30.0, "absolute"))
    rates = [2.0, 6.0, 10.0, 14.0, 20.0, 40.0]
    full = _runs(rates, slos, stop=False)
    early = _runs(rates, slos, stop=True)
    verdicts = [r.all_slos_met for r in full]
    assert any(verdicts) and not all(verdicts)  # the rates straddle the cluster's edge
    assert [r.all_slos_met for r in early] == verdicts
    stopped = [r for r in early if r.summary.get("stopped_early")]
    assert stopped, "an overloaded run should stop at its first certain miss"
    for r in stopped:
        assert not r.all_slos_met and "missed for certain" in r.summary["stopped_early"]
        assert r.summary["completed"] < r.summary["requests"] or r.summary["simulated_s"] < \
            next(f for f, e in zip(full, early) if e is r).summary["simulated_s"]
    for f, e in zip(full, early):  # a run that did not stop is the same run
        if not e.summary.get("stopped_early"):
            assert e.summary == f.summary


def test_unwatched_metrics_never_stop_a_run():
    slos = (SLO("itl", 99, 0.001, "absolute"),)  # ITL is not counted early: the run goes to its end
    (r,) = _runs([6.0], slos, stop=True)
    assert not r.summary.get("stopped_early") and not r.all_slos_met


def test_verification_is_the_same_with_and_without_early_stops(monkeypatch, tmp_path):
    """verify_cluster's rate, margins, shares and simulation count do not depend on the early stops."""
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    problem = make_problem(scenario, get_catalog())
    cluster = splitwise_cluster(scenario.model, [("dgx-h100", 2)], [("dgx-a100", 3)])
    with_stops = verify.verify_cluster(problem, cluster, hint_rps=5.0)
    real = verify.simulate

    def never_stop(*args, **kwargs):
        kwargs["stop_at_miss"] = False
        return real(*args, **kwargs)

    monkeypatch.setattr(verify, "simulate", never_stop)
    without = verify.verify_cluster(problem, cluster, hint_rps=5.0)
    assert with_stops == without
    assert with_stops.rate_rps > 0


def test_each_slo_counts_its_own_violators_and_the_first_settled_one_stops_the_run():
    from types import SimpleNamespace

    from splitplan.sim.miss_watch import MissWatch, SloMissed

    n = 40
    refs = SimpleNamespace(ttft_s=np.full(n, 2.0), tbt_s=np.full(n, 0.1), e2e_s=np.full(n, 10.0))
    slos = (SLO("ttft", 50, 2.0), SLO("ttft", 90, 3.0), SLO("ttft", 90, 2.0, "absolute"))
    watch = MissWatch(slos, refs, n, [2] * n, compat=False)
    assert violators_needed(n, 90) == 5 and violators_needed(n, 50) == 21
    watch.first_token(0, 4.5)  # 2.25x and over 2 s: the 2x slowdown and the absolute limit
    watch.first_token(1, 6.5)  # 3.25x: all three
    watch.first_token(2, float("nan"))  # NaN counts against every limit
    watch.first_token(3, 1.0)  # within all
    counts = {b.name: b.count for g in watch.ttft for b in g.bounds}
    assert counts == {"ttft_p50": 3, "ttft_p90": 2, "ttft_p90_abs": 3}
    watch.first_token(4, 3.0)  # 1.5x but over 2 s: the absolute limit's fourth violator
    with pytest.raises(SloMissed, match="ttft_p90_abs"):
        watch.first_token(5, 3.0)  # its fifth settles it; the slowdowns are still open


def test_a_failing_pass_fail_test_ends_early_with_the_full_runs_verdict(monkeypatch):
    """test_cluster (the search's one-simulation question) stops a failing run at its certain miss: the
    same verdict as the whole run, fewer requests simulated, and a miss that names the settled SLO."""
    scenario = load_scenario(ROOT / "scenarios" / "quickstart.yaml")
    problem = make_problem(scenario, get_catalog())
    cluster = splitwise_cluster(scenario.model, [("dgx-h100", 2)], [("dgx-a100", 3)])
    real, seen = verify.simulate, []

    def record(*args, **kwargs):
        r = real(*args, **kwargs)
        seen.append(r)
        return r

    monkeypatch.setattr(verify, "simulate", record)
    edge = verify.verify_cluster(problem, cluster, hint_rps=5.0).rate_rps
    assert edge > 0
    seen.clear()
    over = verify.test_cluster(problem, cluster, edge * verify.RATE_STEP ** 12)  # ~27% above the edge
    assert over.rate_rps == 0.0 and "missed for certain" in over.miss
    (r,) = seen
    assert r.summary.get("stopped_early") and r.summary["completed"] < r.summary["requests"]
    full = real(cluster, verify.workload_at(problem, edge * verify.RATE_STEP ** 12, scenario.seed_list()[0]),
                perf=problem.perf, catalog=problem.catalog, config=verify.sim_config(problem), slos=problem.slos)
    assert not full.all_slos_met
    assert verify.test_cluster(problem, cluster, edge).rate_rps == pytest.approx(edge)  # a pass runs whole
