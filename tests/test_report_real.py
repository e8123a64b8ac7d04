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
