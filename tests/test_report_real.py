"""Reports of real `splitplan simulate` / `splitplan optimize` outputs (small runs, a few seconds)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from splitplan.cli.main import cli
from splitplan.report import build_report, load_output, plots_available
from splitplan.report.slo_lines import cdf_panels
from splitplan.slo import percentile

SIM_ARGS = ["simulate", "--model", "llama2-70b", "--prompt", "dgx-h100:2", "--token", "dgx-a100:2",
            "--trace", "rr_conv_80_2min.csv", "--rate", "6", "--duration", "30", "--quiet"]


def run_cli(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "run"
    run_cli(SIM_ARGS + ["--out", str(out)])
    return out


def test_report_of_a_real_simulation(sim_dir):
    html = build_report(sim_dir).read_text()
    sections = set(re.findall(r'<section id="([^"]+)"', html))
    assert sections >= {"summary", "latency", "utilization", "machines", "settings"}
    assert "Splitwise: prompt 2 x dgx-h100 + token 2 x dgx-a100" in html
    for slo in ("TTFT P99", "TBT P50", "E2E P90"):
        assert f"<td>{slo}</td>" in html
    if plots_available():
        assert html.count('src="data:image/png;base64,') == 2


@pytest.mark.parametrize("compat", [False, True])
def test_slowdown_cdfs_reproduce_the_simulators_slo_values(tmp_path, compat):
    """The report recomputes each request's unloaded reference latency to draw slowdown CDFs; its
    percentiles must be the very values the simulator judged the SLOs on."""
    out = tmp_path / "run"
    extra = ["--perf", "profile", "--profile", "splitwisesim_perf_model.csv", "--compat", "splitwisesim"] if compat else []
    run_cli(SIM_ARGS + extra + ["--out", str(out)])
    sim = load_output(out)
    panels = {p["title"].split()[0].lower(): p for p in cdf_panels(sim) if p["scale"] == 1.0}
    assert set(panels) == {"ttft", "tbt", "e2e"}
    for name, item in sim.summary["slo"].items():
        metric, pct = name.split("_")[0], float(name.split("_")[1][1:])
        mine = percentile(np.where(np.isinf(panels[metric]["values_s"]), np.nan, panels[metric]["values_s"]), pct)
        assert mine == pytest.approx(item["value"], rel=1e-6), name


TINY_SCENARIO = """\
name: tiny
model: llama2-70b
workload: {trace: rr_conv_80_2min.csv, generator: poisson, duration_s: 10, seed: 0}
slos: paper
designs:
  - {name: Baseline-H100, kind: baseline, machines: [dgx-h100]}
  - {name: Splitwise-HA, kind: splitwise, prompt: [dgx-h100], token: [dgx-a100]}
constraints: {cost_usd_per_h: 120}
objective: max_throughput
search: {method: ilp, seeds: 1, verify_top: 1, local_radius: 0}
"""


@pytest.fixture(scope="module")
def opt_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("opt")
    (folder / "tiny.yaml").write_text(TINY_SCENARIO)
    run_cli(["optimize", str(folder / "tiny.yaml"), "--out", str(folder / "out"), "--quiet"])
    return folder / "out"


def test_report_of_a_real_optimization(opt_dir):
    import json

    plan = json.loads((opt_dir / "plan.json").read_text())
    html = build_report(opt_dir).read_text()
    sections = set(re.findall(r'<section id="([^"]+)"', html))
    assert sections >= {"recommendation", "designs", "pareto", "candidates", "scenario", "best-summary",
                        "best-latency", "best-utilization"}
    best = plan["best"]
    pools = " + ".join(f"{p['role']} {p['count']} × {p['machine']}" if p["role"] != "mixed"
                       else f"{p['count']} × {p['machine']}" for p in best["pools"])
    assert pools in html and best["design"] in html
    lo, hi = best["max_rate_ci95_rps"]
    assert (f"{best['max_rate_rps']:,.1f} req/s (seed mean {best['max_rate_mean_rps']:,.1f}, "
            f"95% CI {max(lo, 0):,.1f}–{hi:,.1f})") in html
    # the trust line comes before the recommendation
    assert 0 < html.index('id="trust"') < html.index('id="recommendation"')
    for design in plan["designs"]:
        assert f"<td>{design}</td>" in html
    assert "re-ran its verification" in html  # the optimizer saves no simulation of the best plan
    if plots_available():  # bars, 2 Pareto frontiers, latency CDFs, timeline
        assert html.count('src="data:image/png;base64,') == 5


def test_report_can_skip_the_best_plan_simulation(opt_dir, tmp_path):
    html = build_report(opt_dir, tmp_path / "r.html", simulate_best=False).read_text()
    assert "holds no saved simulation" in html and "best-summary" not in html


def test_slowdown_cdfs_are_dropped_when_references_do_not_reproduce_the_summary(sim_dir, tmp_path):
    """If the references rebuilt from summary.json disagree with its SLO values (e.g. a custom profile
    the summary does not name), the report shows ms CDFs and says why, rather than wrong slowdowns."""
    import json
    import shutil

    from splitplan.report.slo_lines import cdf_panels_and_note

    copy = tmp_path / "run"
    shutil.copytree(sim_dir, copy)
    summary = json.loads((copy / "summary.json").read_text())
    summary["slo"]["ttft_p99"]["value"] *= 1.5
    (copy / "summary.json").write_text(json.dumps(summary))
    panels, note = cdf_panels_and_note(load_output(copy))
    assert "do not reproduce its SLO values" in note
    assert [p["scale"] for p in panels] == [1000.0, 1000.0, 1000.0]
    assert not cdf_panels_and_note(load_output(sim_dir))[1]
