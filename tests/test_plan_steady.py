"""Each design's plan is run once more for longer when the scenario's runs are short: a rate that only
holds while the cluster is still filling is named in the plan's warnings, and the claim is true."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from splitplan.catalog import get_catalog
from splitplan.plan.optimize import optimize
from splitplan.plan.problem import make_problem
from splitplan.plan.steady import STEADY_MIN_S, steady_duration_s, steady_run
from splitplan.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def _quickstart(duration_s: float):
    sc = load_scenario(ROOT / "scenarios" / "quickstart.yaml").with_overrides(seeds=1)
    return replace(sc, workload=replace(sc.workload, duration_s=duration_s))


def test_only_runs_shorter_than_two_minutes_get_a_longer_run():
    catalog = get_catalog()
    assert steady_duration_s(make_problem(_quickstart(120.0), catalog)) is None
    assert steady_duration_s(make_problem(_quickstart(40.0), catalog)) == STEADY_MIN_S == 120.0
    assert steady_duration_s(make_problem(_quickstart(60.0), catalog)) == 180.0


def test_forty_second_runs_are_flagged_where_a_two_minute_run_refutes_them():
    """The quick-start on 40-s runs (what it shipped with before 2026-12-02): its plans' rates do not
    hold in a 120-s run; each flagged design's claim is re-simulated here and holds."""
    scenario = _quickstart(40.0)
    plan = optimize(scenario)
    flagged = [w for w in plan.warnings if "holds in 40-s runs but not in a 120-s run" in w]
    assert flagged, plan.warnings
    problem = make_problem(scenario, get_catalog())
    for design in plan.designs:
        named = [w for w in flagged if w.startswith(f"{design.name}: ")]
        if design.best is None:
            continue
        passed, miss = steady_run(problem, design.best.cluster, design.best.throughput_rps, 120.0)
        assert bool(named) == (not passed), (design.name, miss, named)
        if named:
            assert miss in named[0] and "workload.duration_s 120" in named[0]
    # the bundled quick-start runs 120 s: nothing to flag, and no longer run is made
    assert not [w for w in optimize(_quickstart(120.0)).warnings if "-s run at that rate" in w]


def test_a_search_cut_short_says_its_plans_were_not_run_longer():
    plan = optimize(_quickstart(40.0), time_limit_s=0.5)
    assert plan.status == "time_limit"
    assert any(w.startswith("the plans were not run for 120 s (the time limit ended the search)")
               for w in plan.warnings), plan.warnings
