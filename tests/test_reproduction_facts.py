"""docs/reproduction.md's prose states no number of its own: render the page from fake results and facts,
and every figure the text cites moves with them (budgets, machine counts, runs, seeds, trace means, the
batch-64 decode growth, the rate lattice)."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from test_reproduction import design, study, views  # noqa: E402

from splitplan.catalog import get_catalog  # noqa: E402
from splitplan.reproduction import departure_cause, render  # noqa: E402
from splitplan.reproduction_facts import page_facts  # noqa: E402


def fake_views():
    v = views()
    echo = {"model": "llama2-70b", "designs": [{"tp": 4}], "workload": {"duration_s": 60, "trace": "AzureLLMInferenceTrace_code.csv"},
            "search": {"seeds": 3}}
    v[("isopower-coding", "default")]["scenario"] = echo | {"constraints": {"power_kw": 204.0}}
    v[("isocost-coding", "default")] = study(**{"Baseline-H100": design(50, 760, 204, mixed=20)}) | {
        "scenario": echo | {"constraints": {"cost_usd_per_h": 760.0}}}
    v[("fig12-hh-coding-70rps", "default")]["scenario"] = echo | {"constraints": {"min_throughput_rps": 33.0}}
    return v


def prose(text: str) -> str:
    """The page without its tables (the prose is what must not carry typed-in numbers)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("|"))


def test_prose_numbers_follow_the_results():
    v = fake_views()
    perf = {"analytic": {"decode_growth_64": 3.5}, "default": {"cap_prefill": 1.7, "cap_decode": 1.1}}
    page = page_facts(v, get_catalog(), perf)
    text = prose(render(v, [], [], page))
    # iso-power 204 kW: 20 DGX-H100 (10.2 kW), 31 DGX-A100 (6.5 kW), 35 by GPU TDP (20 x 700 / 400)
    assert "iso-power 204 kW = 20 DGX-H100 x 10.2 kW" in text and "**31** DGX-A100, not the paper's 35" in text
    assert "iso-cost $760/h = 20 x $38/h (43 DGX-A100 at $17.6/h)" in text
    assert "Model llama2-70b at TP 4" in text and "1-minute runs, 3 seeds per" in text
    assert "coding at 33 req/s" in text and "grows 3.50x from batch 1 to 64" in text
    assert "1.70x prompt time, 1.10x token time" in text
    for stale in ("408", "62 DGX-A100", "2.16x", "211 tokens", "1 req/s or 1%", "2-minute", "at TP 8"):
        assert stale not in text, stale


def test_lattice_and_trace_means_come_from_code_and_data(monkeypatch):
    import splitplan.plan.verify as verify

    v = fake_views()
    base = page_facts(v, get_catalog())
    assert base.lattice_pct == (verify.RATE_STEP - 1) * 100
    monkeypatch.setattr(verify, "RATE_STEP", 1.05)
    page = page_facts(v, get_catalog(), {"analytic": {"decode_growth_64": 3.5}})
    assert abs(page.lattice_pct - 5.0) < 1e-9
    assert "lattice (5% steps)" in prose(render(v, [], [], page))
    conv = page.mean_output_tokens["conversation"]
    cause = departure_cause("isocost", "Splitwise-HHcap", "analytic", "conversation", 0.9, page)
    assert f"({conv:.0f} tokens on average)" in cause and "(3.50x at 64)" in cause
    tie = departure_cause("isocost", "Splitwise-HH", "default", "coding", 1.0, page)
    assert tie.startswith("a tie: both plans sustain the same rate on the 5% rate lattice")
    unknown = departure_cause("isocost", "Splitwise-HHcap", "analytic", "conversation", 0.9,
                              replace(page, perf={}, mean_output_tokens={}))
    assert not re.search(r"\d", unknown.split(":", 1)[1].replace("1-2", "")), unknown  # no figure it cannot compute


def test_claim_departures_are_computed():
    v = fake_views()
    text = render(v, [], [], page_facts(v, get_catalog()))
    claims = text.split("## The paper's headline claims")[1].split("\n## ")[0]
    assert "cause 4: 31 A100s, not 35; scaled by 35/31 both ratios grow 13%" in claims
    assert "machine kW (43 x 6.5 vs 20 x 10.2)" in claims
    assert "3 seeds per plan" in claims
