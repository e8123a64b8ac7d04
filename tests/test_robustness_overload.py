"""Overload: the simulator says when a cluster cannot keep up (and withholds percentiles), and the
optimizer never reports a saturated or out-of-memory plan."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from splitplan.catalog import default_catalog
from splitplan.cli.main import main
from splitplan.cluster import baseline_cluster, splitwise_cluster
from splitplan.plan.optimize import optimize
from splitplan.plan.problem import make_problem
from splitplan.plan.verify import sim_config, workload_at
from splitplan.scenario import load_scenario
from splitplan.sim import simulate
from splitplan.sim.config import SimConfig
from splitplan.workload import Workload, load_trace, poisson_workload, resolve_trace_path

MODEL = "llama2-70b"
PERCENTILE_KEYS = ("ttft_s", "tbt_s", "e2e_s", "queue_s", "transfer_s")
FAST_DRAIN = SimConfig(drain_min_s=5.0, drain_limit_factor=0.2)


@pytest.fixture(scope="module")
def conv() -> Workload:
    return load_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv"))


def assert_withheld(summary: dict) -> None:
    """A saturated run presents no latency percentile as valid and meets no SLO."""
    assert summary["saturated"] is True and summary["saturation_reason"]
    assert summary["all_slos_met"] is False
    for key in PERCENTILE_KEYS:
        assert all(v is None for v in summary[key].values()), key


@pytest.mark.parametrize("rate_rps, saturated", [(1.0, False), (60.0, True)])
def test_rate_past_capacity_is_flagged(conv: Workload, rate_rps: float, saturated: bool) -> None:
    """One dgx-a100 serves ~1 req/s of conversation comfortably and falls over at 60 req/s."""
    r = simulate(baseline_cluster(MODEL, [("dgx-a100", 1)]), poisson_workload(conv, rate_rps, 30.0, seed=3),
                 config=FAST_DRAIN)
    assert r.saturated is saturated
    if saturated:
        assert_withheld(r.summary)
    else:
        assert r.summary["ttft_s"]["p99"] is not None and r.summary["unfinished"] == 0


def test_token_pool_bottleneck_alone_is_saturation(conv: Workload) -> None:
    """Ample prompt machines cannot hide a token pool that is far too small."""
    w = poisson_workload(conv, 40.0, 30.0, seed=0)
    r = simulate(splitwise_cluster(MODEL, [("dgx-h100", 6)], [("dgx-a100", 1)]), w, config=FAST_DRAIN)
    assert_withheld(r.summary)


def test_queue_growth_without_unfinished_work_is_saturation(conv: Workload) -> None:
    """With an unbounded drain every request eventually finishes, but a queue that keeps growing over
    the trace still means the offered rate is unsustainable."""
    w = poisson_workload(conv, 8.0, 60.0, seed=0)
    r = simulate(baseline_cluster(MODEL, [("dgx-a100", 1)]), w, config=SimConfig(drain_min_s=1e6))
    assert r.summary["unfinished"] == 0
    assert_withheld(r.summary)
    assert "grows without bound" in r.summary["saturation_reason"]


def test_request_that_no_instance_can_hold_is_never_served(conv: Workload) -> None:
    base = poisson_workload(conv, 2.0, 20.0, seed=0)
    prompt = base.prompt_tokens.copy()
    prompt[len(prompt) // 2] = 3_000_000  # > the KV capacity of a dgx-h100 instance (~1.4M tokens)
    r = simulate(baseline_cluster(MODEL, [("dgx-h100", 2)]), Workload(base.arrival_s, prompt, base.output_tokens))
    assert_withheld(r.summary)
    assert "KV cache" in r.summary["saturation_reason"]
    assert not r.requests.completed.iloc[len(prompt) // 2]


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_cli_saturated_run_shows_no_percentiles(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["simulate", "--model", MODEL, "--machines", "dgx-a100:1", "--trace", "AzureLLMInferenceTrace_conv.csv",
            "--rate", "40", "--duration", "15", "--seed", "1"]
    code, out, _ = _run_cli(argv + ["--json"], capsys)
    assert code == 0
    assert_withheld(json.loads(out))
    code, out, _ = _run_cli(argv + ["--out", str(tmp_path / "o")], capsys)
    assert "SATURATED" in out and "percentiles withheld" in out
    assert "P99" not in out.split("SLOs")[0]  # no latency table before the SLO table
    assert_withheld(json.loads((tmp_path / "o" / "summary.json").read_text()))


TINY = {
    "name": "tiny-overload",
    "model": MODEL,
    "workload": {"trace": "AzureLLMInferenceTrace_conv.csv", "generator": "poisson", "duration_s": 10, "seed": 0},
    "slos": "paper",
    # l40s-x8 at tp 2 holds 96 GB: Llama2-70B's 138 GB of weights do not fit (an out-of-memory option)
    "designs": [{"name": "Baseline", "kind": "baseline", "machines": ["dgx-h100", "l40s-x8"], "tp": 2}],
    "constraints": {"cost_usd_per_h": 120},
    "objective": "max_throughput",
    "search": {"seeds": 2, "verify_top": 1, "local_radius": 0, "workers": 1},
}


def test_optimizer_reports_only_verified_unsaturated_plans_that_fit(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    scenario = load_scenario(path)
    result = optimize(scenario)
    assert result.feasible and result.best is not None
    best = result.best
    assert not best.verification.saturated and best.throughput_rps > 0 and best.within_budget
    for c in result.all_candidates():  # out-of-memory machines never enter any candidate
        assert all(p.machine != "l40s-x8" or p.count == 0 for p in c.cluster.pools), c.cluster.label()
        if c.verified:
            assert not c.verification.saturated and c.throughput_rps > 0
    # Independent check: at the reported rate every seed's simulation is unsaturated and meets every SLO.
    problem = make_problem(scenario, default_catalog(), None, None)
    for seed in scenario.seed_list():
        r = simulate(best.cluster, workload_at(problem, best.throughput_rps, seed), perf=problem.perf,
                     catalog=problem.catalog, config=sim_config(problem), slos=problem.slos)
        assert not r.saturated and r.all_slos_met, (seed, r.summary["saturation_reason"])
    plan = json.loads(result.to_json())
    assert plan["best"]["saturated"] is False and plan["best"]["verified"] is True
    assert not any(c["verified"] and c["saturated"] for c in plan["candidates"])
    assert math.isfinite(plan["best"]["max_rate_rps"])  # the verified rate (plan.json schema 2 vocabulary)

