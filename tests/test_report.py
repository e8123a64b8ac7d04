"""`splitplan report`: sections, embedded images, tables, the no-matplotlib fallback, bad folders.

Most tests build output folders in the simulator's and optimizer's documented formats (so they run in
milliseconds); tests/test_report_real.py runs the real commands once and reports their output.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from splitplan.cli.main import cli
from splitplan.errors import SplitplanError
from splitplan.report import build_report, load_output, plots_available
from splitplan.report.inputs import PlanOutput, SimOutput
from splitplan.report.tables import slo_label

SIM_SECTIONS = ("summary", "latency", "utilization", "machines", "settings")
PLAN_SECTIONS = ("recommendation", "designs", "pareto", "candidates", "scenario")


def write_sim_output(folder: Path, n: int = 300, seed: int = 0, saturated: bool = False) -> Path:
    """A simulate output folder in the simulator's documented format (summary.json + three CSVs)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrival = np.sort(rng.uniform(0, 60, n))
    prompt, output = rng.integers(100, 3000, n), rng.integers(2, 400, n)
    ttft = 0.05 + prompt * 4e-5 + rng.exponential(0.02, n)
    tbt = 0.03 + rng.exponential(0.005, n)
    e2e = ttft + tbt * (output - 1)
    pd.DataFrame({"request_id": np.arange(n), "arrival_s": arrival, "prompt_tokens": prompt, "output_tokens": output,
                  "ttft_s": ttft, "tbt_s": tbt, "e2e_s": e2e, "queue_s": rng.exponential(0.01, n),
                  "transfer_s": np.full(n, 0.006), "prompt_instance": rng.integers(0, 4, n),
                  "token_instance": 4 + rng.integers(0, 4, n), "completed": True}).to_csv(folder / "requests.csv",
                                                                                          index=False)
    pd.DataFrame({"instance": range(8), "pool": ["prompt"] * 4 + ["token"] * 4,
                  "machine": ["dgx-h100"] * 4 + ["dgx-a100"] * 4, "busy_s": rng.uniform(10, 50, 8),
                  "utilization": rng.uniform(0.2, 0.9, 8), "mean_batch_size": rng.uniform(1, 40, 8),
                  "tokens": rng.integers(1000, 9000, 8), "energy_j": rng.uniform(1e5, 5e5, 8),
                  "mean_power_w": rng.uniform(2000, 6000, 8)}).to_csv(folder / "machines.csv", index=False)
    times = np.arange(0, 60, 1.0)
    timeline = pd.concat([pd.DataFrame({"time_s": times, "pool": pool, "busy_instances": rng.integers(0, 5, 60),
                                        "mean_decode_batch": rng.uniform(0, 30, 60),
                                        "queued_requests": rng.integers(0, 9, 60),
                                        "pending_tokens": rng.integers(0, 9000, 60)}) for pool in ("prompt", "token")])
    timeline.sort_values(["time_s", "pool"]).to_csv(folder / "timeline.csv", index=False)
    stats = {key: None if saturated else {"p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90)),
                                          "p99": float(np.percentile(v, 99)), "mean": float(v.mean())}
             for key, v in (("ttft_s", ttft), ("tbt_s", tbt), ("e2e_s", e2e))}
    slo = {"ttft_p99_abs": {"value": float(np.percentile(ttft, 99)), "limit": 0.5, "unit": "s"},
           "tbt_p90_abs": {"value": float(np.percentile(tbt, 90)), "limit": 0.04, "unit": "s"},
           "e2e_p50": {"value": 1.1, "limit": 1.25, "unit": "x"}}
    for item in slo.values():
        item["met"] = item["value"] <= item["limit"]
        item["margin"] = (item["limit"] - item["value"]) / item["limit"]
    summary = {"schema_version": 1, "requests": n, "completed": n, "unfinished": 0, **stats,
               "queue_s": stats["ttft_s"], "transfer_s": stats["ttft_s"], "throughput_rps": n / 60 * 0.98,
               "arrival_rps": n / 60, "saturated": saturated,
               "saturation_reason": "queue grows without bound" if saturated else None, "slo": slo,
               "all_slos_met": all(i["met"] for i in slo.values()) and not saturated,
               "cluster": {"model": "llama2-70b", "design": "splitwise",
                           "pools": [{"role": "prompt", "machine": "dgx-h100", "count": 4, "tp": 8},
                                     {"role": "token", "machine": "dgx-a100", "count": 4, "tp": 8}],
                           "label": "Splitwise: prompt 4 x dgx-h100 + token 4 x dgx-a100"},
               "cost_usd_per_h": 222.4, "power_kw": 66.8, "energy_kwh": 0.7, "mean_power_kw": 42.0,
               "perf": {"backend": "analytic", "compat": None, "provenance": {"dgx-h100": "calibrated"}},
               "config": {"reference_machine": "dgx-a100", "timeline_step_s": 1.0},
               "mixed_pool": {"requests": 0, "borrowed_machines": 0}}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return folder


def candidate(design: str, kind: str, pools: list[tuple[str, str, int]], cost: float, power: float, rate: float,
              mean: float, ci: list[float], per_seed: list[float], margins: dict[str, float]) -> dict:
    """One verified candidate as plan.json holds it (splitplan/plan/schema.py CANDIDATE)."""
    counts = {role: sum(n for r, _, n in pools if r == role) for role in ("prompt", "token", "mixed")}
    label = ("Baseline: " if kind == "baseline" else "Splitwise: ") + " + ".join(
        f"{'' if r == 'mixed' else r + ' '}{n} x {m}" for r, m, n in pools)
    return {"design": design, "kind": kind, "label": label,
            "pools": [{"role": r, "machine": m, "count": n, "tp": 8} for r, m, n in pools],
            "machines": sum(counts.values()), "prompt_machines": counts["prompt"], "token_machines": counts["token"],
            "mixed_machines": counts["mixed"], "cost_usd_per_h": cost, "power_kw": power, "max_rate_rps": rate,
            "max_rate_mean_rps": mean, "max_rate_ci95_rps": ci, "per_seed_max_rate_rps": per_seed,
            "slo_margins": margins, "saturated": False, "phases": "split" if kind == "splitwise" else "co-located",
            "mixed_request_share": 0.02 if kind == "splitwise" else 0.0, "mixed_token_share": 0.01 if kind == "splitwise"
            else 0.0, "model_rate_rps": rate * 1.1, "model_error": 0.1, "within_budget": True, "verified": True,
            "source": "ilp", "n_simulations": 12, "miss": None, "perf_provenance": {m: "calibrated" for _, m, _ in pools}}


def write_plan_output(folder: Path, with_sim: bool = True) -> Path:
    """An optimize output folder (plan.json, candidates.csv, pareto.csv), optionally with best/ simulated."""
    folder.mkdir(parents=True, exist_ok=True)
    base = candidate("Baseline-H100", "baseline", [("mixed", "dgx-h100", 8)], 304.0, 81.6, 9.8, 10.0, [9.5, 10.5],
                     [9.8, 10.2], {"ttft_p99": 0.05, "tbt_p50": 0.02})
    split = candidate("Splitwise-HA", "splitwise", [("prompt", "dgx-h100", 4), ("token", "dgx-a100", 4)], 222.4, 66.8,
                      12.3, 12.5, [12.0, 13.0], [12.3, 12.7], {"ttft_p99": 0.12, "tbt_p50": 0.3})

    def design(kind, best, binding):
        shortcuts = {k: (best[k] if best else None) for k in ("max_rate_rps", "cost_usd_per_h", "power_kw", "machines",
                                                               "prompt_machines", "token_machines", "mixed_machines",
                                                               "phases")}
        return {"kind": kind, "status": "feasible" if best else "infeasible", "binding": binding, **shortcuts,
                "best": best, "capacity_model": [],
                "model_error": {"candidates": 1 if best else 0, "median": None, "min": None, "max": None}}

    plan = {"schema_version": 2, "objective": "max_throughput", "method": "ilp", "status": "feasible",
            "binding": "cost budget $320/h (plan $222.4/h)", "warnings": [],
            "scenario": {"name": "fixture", "model": "llama2-70b", "workload": {}, "slos": ["ttft:p99:6x"],
                         "reference_machine": "dgx-a100", "designs": [], "constraints": {"cost_usd_per_h": 320},
                         "objective": "max_throughput", "search": {}, "perf": {}},
            "best": split,
            "designs": {"Baseline-H100": design("baseline", base, "cost budget $320/h (plan $304.0/h)"),
                        "Splitwise-HA": design("splitwise", split, "cost budget $320/h (plan $222.4/h)"),
                        "Splitwise-HHcap": design("splitwise", None, "cost budget 300 $/h")},
            "comparisons": [], "candidates": [base, split], "pareto": {"cost": [], "power": []},
            "perf": {"backend": "analytic", "compat": None, "provenance": {}}}
    (folder / "plan.json").write_text(json.dumps(plan, indent=2))
    rows = [{"design": d, "cost_usd_per_h": c, "power_kw": p, "max_rate_rps": t, "verified": True}
            for d, c, p, t in (("Baseline-H100", 228, 61.2, 7.4), ("Baseline-H100", 304, 81.6, 9.8),
                               ("Splitwise-HA", 166.6, 50.5, 9.0), ("Splitwise-HA", 222.4, 66.8, 12.3))]
    pd.DataFrame(rows).to_csv(folder / "candidates.csv", index=False)
    pareto = [{"axis": axis, **{k: v for k, v in row.items() if k != "verified"}} for axis in ("cost", "power")
              for row in (rows[2], rows[3])]
    pd.DataFrame(pareto).to_csv(folder / "pareto.csv", index=False)
    if with_sim:
        write_sim_output(folder / "best")
    return folder


def test_plan_fixture_follows_the_optimizers_schema(tmp_path):
    from splitplan.plan.schema import check_plan

    plan = json.loads((write_plan_output(tmp_path / "opt", with_sim=False) / "plan.json").read_text())
    assert check_plan(plan) == []


def section_ids(html: str) -> set[str]:
    return set(re.findall(r'<section id="([^"]+)"', html))


def assert_self_contained(html: str) -> None:
    """Nothing in the page reaches outside the file."""
    assert "<script" not in html
    assert "<link" not in html
    assert not re.search(r'(src|href)="(?!#|data:)', html), "external reference in report"
    assert "@import" not in html and "url(" not in html


@pytest.mark.skipif(not plots_available(), reason="matplotlib (the plot extra) is not installed")
def test_simulate_report_has_every_section_and_plot(tmp_path):
    out = write_sim_output(tmp_path / "sim")
    path = build_report(out)
    html = path.read_text()
    assert path == out / "report.html"
    assert section_ids(html) >= set(SIM_SECTIONS)
    assert html.count('src="data:image/png;base64,') == 2  # latency CDFs, timeline
    assert "<td>TTFT P99 (absolute)</td>" in html and "Splitwise: prompt 4 x dgx-h100 + token 4 x dgx-a100" in html
    summary = json.loads((out / "summary.json").read_text())
    missed = [slo_label(name) for name, item in summary["slo"].items() if not item["met"]]
    assert missed and f"{len(missed)} of 3 SLOs missed: {', '.join(missed)}" in html
    assert_self_contained(html)


@pytest.mark.skipif(not plots_available(), reason="matplotlib (the plot extra) is not installed")
def test_optimize_report_has_recommendation_comparison_pareto_and_best_simulation(tmp_path):
    out = write_plan_output(tmp_path / "opt")
    html = build_report(out, tmp_path / "r.html").read_text()
    ids = section_ids(html)
    assert ids >= set(PLAN_SECTIONS) | {f"best-{s}" for s in SIM_SECTIONS}
    # recommendation: design, split, machines, cost, power, throughput with CI, SLO margins
    assert "Yes, split: prompt 4 × dgx-h100 + token 4 × dgx-a100" in html
    assert "12.3 req/s (seed mean 12.5, 95% CI 12.0–13.0)" in html and "$222/h" in html and "66.8 kW" in html
    assert "+12.0%" in html  # ttft_p99 margin
    # comparison: ratio vs the first design, and the infeasible design with its binding constraint
    assert "1.26×" in html and "cost budget 300 $/h" in html  # 12.3 / 9.8 req/s
    # bars, two Pareto plots, CDF, timeline
    assert html.count('src="data:image/png;base64,') == 5
    assert_self_contained(html)


def test_report_without_matplotlib_keeps_tables(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert not plots_available()
    html = build_report(write_plan_output(tmp_path / "opt")).read_text()
    assert "data:image/png" not in html
    assert "pip install &#x27;splitplan[plot]&#x27;" in html
    assert section_ids(html) >= set(PLAN_SECTIONS)
    assert "<table" in html and "Splitwise-HA" in html and "12.3 req/s (seed mean 12.5, 95% CI 12.0–13.0)" in html


def test_report_is_byte_identical_for_the_same_folder(tmp_path):
    out = write_sim_output(tmp_path / "sim")
    first = build_report(out, tmp_path / "a.html").read_bytes()
    second = build_report(out, tmp_path / "b.html").read_bytes()
    assert first == second


def test_saturated_run_withholds_percentiles(tmp_path):
    html = build_report(write_sim_output(tmp_path / "sim", saturated=True)).read_text()
    assert "Saturated: queue grows without bound" in html
    assert "percentiles are withheld" in html


def test_plan_without_saved_simulation_says_how_to_get_one(tmp_path):
    html = build_report(write_plan_output(tmp_path / "opt", with_sim=False)).read_text()
    assert "holds no saved simulation" in html and "best-latency" in section_ids(html)


def test_infeasible_plan_names_the_binding_constraint(tmp_path):
    out = tmp_path / "opt"
    out.mkdir()
    (out / "plan.json").write_text(json.dumps({"status": "infeasible", "best": None, "designs": {},
                                               "binding": "power budget 10 kW is below one machine"}))
    (out / "candidates.csv").write_text("\n")  # what the optimizer writes when nothing was feasible
    html = build_report(out).read_text()
    assert "Infeasible: power budget 10 kW is below one machine" in html


def test_load_output_detects_the_kind(tmp_path):
    assert isinstance(load_output(write_sim_output(tmp_path / "s")), SimOutput)
    plan = load_output(write_plan_output(tmp_path / "p"))
    assert isinstance(plan, PlanOutput) and isinstance(plan.best_sim, SimOutput)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "no such directory"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "not a splitplan output"),
    (lambda p: (p / "file.txt").write_text("x") and p / "file.txt", "not a directory"),
    (lambda p: (p / "bad").mkdir() or (p / "bad" / "summary.json").write_text("{oops") and p / "bad",
     "malformed JSON at line 1"),
    (lambda p: (p / "list").mkdir() or (p / "list" / "plan.json").write_text("[1]") and p / "list",
     "expected a JSON object"),
    (lambda p: write_sim_output(p / "seeds" / "seed_0", n=50) and write_sim_output(p / "seeds" / "seed_1", n=50)
     and p / "seeds", r"holds 2 simulations \(seed_0, seed_1\): report one of them"),
])
def test_bad_folders_are_one_line_errors(tmp_path, make, message):
    folder = make(tmp_path)
    with pytest.raises(SplitplanError, match=message) as info:
        build_report(folder)
    assert "\n" not in str(info.value) and str(folder) in str(info.value)


def test_cli_report_bad_dir_exits_2_with_one_line(tmp_path):
    from splitplan.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["report", str(tmp_path / "nope")])
    assert info.value.code == 2


def test_cli_report_writes_the_file(tmp_path):
    out = write_sim_output(tmp_path / "sim")
    result = CliRunner().invoke(cli, ["report", str(out), "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.html").read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "x.html").stat().st_mode & 0o044  # readable by others (mkstemp files are private)
    assert "report:" in result.output


def test_report_html_is_well_formed(tmp_path):
    """Every opened tag is closed in order (a stray cell would shift a whole table in some browsers)."""
    from html.parser import HTMLParser

    class Checker(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.errors = [], []

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta", "img", "br"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            if self.stack and self.stack[-1] == tag:
                self.stack.pop()
            else:
                self.errors.append((tag, self.stack[-3:]))

    checker = Checker()
    checker.feed(build_report(write_plan_output(tmp_path / "opt"), simulate_best=False).read_text())
    assert checker.errors == [] and checker.stack == []


def test_throughput_text_never_shows_a_negative_rate():
    from splitplan.report.plan_sections import throughput_text
    from splitplan.report.plan_view import plan_row

    row = plan_row({"design": "d", "throughput_rps": 47.5, "throughput_mean_rps": 69.5,
                    "throughput_ci95_rps": [-209.1, 348.0], "per_seed_rps": [91.4, 47.5]})
    assert throughput_text(row) == "47.5 req/s (seed mean 69.5, 95% CI 0.0–348.0)"


def test_uncalibrated_machines_are_flagged(tmp_path):
    out = write_sim_output(tmp_path / "sim")
    summary = json.loads((out / "summary.json").read_text())
    assert "Uncalibrated performance model" not in build_report(out).read_text()
    summary["perf"]["provenance"]["hgx-h20/tp8"] = "spec defaults (uncalibrated)"
    (out / "summary.json").write_text(json.dumps(summary))
    assert "Uncalibrated performance model (hgx-h20/tp8)" in build_report(out, simulate_best=False).read_text()
