"""docs/reproduction.md rendering: claims, ratios, Fig. 12 verdict and rankings from study results.

Views are small hand-made plan views (the plan.json shape), so no simulation runs here.
"""

from __future__ import annotations

from pathlib import Path

from splitplan.catalog import get_catalog
from splitplan.check import load_check_spec
from splitplan.reproduction import CLAIMS, RANKINGS, departure_cause, perf_facts, ratio, render
SMALL = Path(__file__).resolve().parent.parent / "scenarios" / "splitwise" / "isopower-coding-small.yaml"


def design(tput=None, cost=None, power=None, prompt=0, token=0, mixed=0, status="feasible"):
    return {"status": status, "throughput_rps": tput, "cost_usd_per_h": cost, "power_kw": power,
            "prompt_machines": prompt, "token_machines": token, "mixed_machines": mixed,
            "machines": prompt + token + mixed}


def study(**designs):
    return {"designs": designs}


def views():
    iso = study(**{"Baseline-A100": design(40, 1091, 403, mixed=62), "Baseline-H100": design(50, 1520, 408, mixed=40),
                   "Splitwise-AA": design(70, 1091, 403, 58, 4), "Splitwise-HH": design(100, 1520, 408, 36, 4),
                   "Splitwise-HA": design(90, 1500, 405, 37, 5), "Splitwise-HHcap": design(45, 1520, 380, 30, 10)})
    return {
        ("isopower-coding", "default"): iso,
        ("isopower-coding", "analytic"): study(**{"Baseline-H100": design(40, 1520, 408, mixed=40),
                                                  "Splitwise-HH": design(60, 1520, 408, 30, 10)}),
        ("fig12-hh-coding-70rps", "default"): study(**{"Splitwise-HH": design(71, 1140, 306, 28, 2)}),
        ("fig12-hh-coding-70rps", "analytic"): study(**{"Splitwise-HH": design(70, 1520, 408, 20, 20)}),
        ("isothroughput-power-coding", "default"): study(**{"Baseline-H100": design(54, 1520, 408, mixed=40),
                                                            "Splitwise-HHcap": design(55, 1140, 306, 20, 10)}),
    }


def test_ratios_come_from_the_two_plans():
    v = views()
    assert ratio(v, "isopower-coding", "default", "Splitwise-HH", "Baseline-H100", "throughput") == 2.0
    assert ratio(v, "isopower-coding", "default", "Splitwise-AA", "Baseline-H100", "cost") == 1091 / 1520
    assert ratio(v, "isopower-coding", "analytic", "Splitwise-AA", "Baseline-H100", "throughput") is None
    assert ratio(v, "isocost-coding", "default", "Splitwise-AA", "Baseline-H100", "throughput") is None


def test_render_fig12_verdict_and_claims():
    text = render(views(), [], ["- a measured fact"])
    fig12 = text.split("## Fig. 12")[1].split("\n## ")[0]
    assert "| compat (SplitwiseSim profile) | 28 | 2 | 30 | 1140 | 71.0 | yes |" in fig12
    assert "| analytic (calibrated) | 20 | 20 | 40 | 1520 | 70.0 | no |" in fig12
    claims = text.split("## The paper's headline claims")[1].split("\n## ")[0]
    assert all(c.text in claims for c in CLAIMS)
    assert "| 2.00x, cost 1.00x |" in claims  # HH vs Baseline-H100 at iso-power, compat coding
    assert "- a measured fact" in text


def test_ranking_flags_departures():
    text = render(views(), [], [])
    rank = text.split("## Do the designs rank")[1].split("\n## ")[0]
    assert rank.count("| isopower |") + rank.count("| isocost |") == len(RANKINGS)
    row = next(line for line in rank.splitlines() if "Splitwise-HHcap > Baseline-H100" in line and "isopower" in line)
    assert "**no** (0.90x)" in row  # 45 vs 50 req/s: a departure, shown in bold
    assert "compat (SplitwiseSim profile), isopower coding: Splitwise-HH (100.0) > Splitwise-HA (90.0)" in rank
    why = rank.split("Why each departure happens:\n\n")[1].split("\n\n")[0].splitlines()
    assert len(why) == rank.count("**no**")  # every departure has its own explanation line
    assert why[0].startswith("- isopower Splitwise-HHcap > Baseline-H100, compat (SplitwiseSim profile) coding (0.90x): ")


def test_departure_causes_name_the_mechanism():
    assert departure_cause("isopower", "Splitwise-AA", "default", "conversation", 0.91).startswith(
        "cause 4: 408 kW holds 62 DGX-A100 here, the paper's 70 by GPU TDP (x 70/62 = 1.03x)")
    assert "causes 1-2" in departure_cause("isocost", "Splitwise-HHcap", "analytic", "conversation", 1.0)
    assert departure_cause("isocost", "Splitwise-HHcap", "analytic", "conversation", 1.0).startswith("a tie")
    assert departure_cause("isocost", "Splitwise-HH", "default", "coding", 0.9) == "see 'Why the numbers differ' below"


def test_render_is_deterministic_and_infeasible_is_shown():
    v = views()
    v[("isopower-coding", "default")]["designs"]["Splitwise-HA"] = design(status="infeasible")
    assert render(v, [], []) == render(v, [], [])
    v[("isopower-coding", "default")]["designs"]["Splitwise-HA"]["binding"] = "power budget binds"
    text = render(v, [], [])
    assert "| Splitwise-HA | infeasible | n/a | n/a |" in text
    assert "- Splitwise-HA, compat (SplitwiseSim profile): no plan; power budget binds" in text


def test_perf_facts_cover_both_modes():
    spec = load_check_spec(SMALL)
    facts = perf_facts(spec, get_catalog(), None)
    assert len(facts) == 2 and facts[0].startswith("- **compat") and facts[1].startswith("- **analytic")
    assert all("KV capacity" in f for f in facts)


def test_reproduce_makes_its_output_folders(tmp_path):
    """`make reproduce` on a fresh clone: --save-results out/... and --out into folders that do not exist yet
    (the results file used to fail after the studies had run, losing them and the page)."""
    from splitplan.reproduction import reproduce

    out, saved = tmp_path / "docs" / "page.md", tmp_path / "out" / "sub" / "results.json"
    reproduce([SMALL], out=out, save_results=saved, workers=1)
    assert out.read_text().startswith("#") and saved.read_text().lstrip().startswith("[")


def test_reproduce_refuses_an_unwritable_output_before_any_study(tmp_path, monkeypatch):
    import pytest

    from splitplan import reproduction
    from splitplan.errors import SplitplanError

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(reproduction, "run_check", lambda *a, **k: pytest.fail("studies ran"))
    with pytest.raises(SplitplanError, match="--save-results"):
        reproduction.reproduce([SMALL], save_results=blocker / "results.json")
