"""The numbers docs/reproduction.md states in prose, computed from what the page is rendered from.

The generator's text used to carry figures typed in by hand (budgets, machine counts, trace means, the
batch-64 decode growth, the rate resolution); they went stale whenever a study or the model changed.
Here each one is computed from the results (the plan views: scenario budgets, runs, seeds), the
catalog (machine kW and $/h, GPU TDP), the traces and the performance models, or from the code that
decides it (the optimizer's rate lattice). What cannot be computed is left out of the sentence rather
than guessed. Only the paper's own figures stay literal, and they are marked as the paper's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from splitplan.catalog import Catalog

PAPER_FIG12 = {"prompt": 27, "token": 3}  # [P] Fig. 12: the cheapest Splitwise-HH cluster at 70 req/s
FIG12_BAND = 3  # machines either way that still count as the paper's answer
TRACE_FILES = {"coding": "AzureLLMInferenceTrace_code.csv", "conversation": "AzureLLMInferenceTrace_conv.csv"}


@dataclass(frozen=True)
class PageFacts:
    """Figures the page's prose cites; None where the run that made the page cannot say."""

    lattice_pct: float
    power_kw: float | None
    cost_usd_per_h: float | None
    h100_kw: float
    a100_kw: float
    h100_usd: float
    a100_usd: float
    capped_power_share: float  # capped DGX-H100 kW / DGX-H100 kW
    gpu_tdp_w: tuple[float, float]  # (H100, A100)
    model: str | None
    tp: int | None
    duration_s: float | None
    seeds: int | None
    fig12_rps: float | None
    mean_output_tokens: dict[str, float] = field(default_factory=dict)
    perf: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> perf_numbers()

    @property
    def h100_at_power(self) -> int | None:
        return None if self.power_kw is None else int(math.floor(self.power_kw / self.h100_kw + 1e-9))

    @property
    def a100_at_power(self) -> int | None:
        return None if self.power_kw is None else int(math.floor(self.power_kw / self.a100_kw + 1e-9))

    @property
    def a100_by_tdp(self) -> int | None:
        """The paper's count: as many A100s as the H100s' GPU TDP allows."""
        h = self.h100_at_power
        return None if h is None else round(h * self.gpu_tdp_w[0] / self.gpu_tdp_w[1])

    @property
    def a100_at_cost(self) -> int | None:
        return None if self.cost_usd_per_h is None else int(math.floor(self.cost_usd_per_h / self.a100_usd + 1e-9))

    @property
    def h100_at_cost(self) -> int | None:
        return None if self.cost_usd_per_h is None else int(math.floor(self.cost_usd_per_h / self.h100_usd + 1e-9))

    def fewer_a100_pct(self) -> float | None:
        a, p = self.a100_at_power, self.a100_by_tdp
        return None if a is None or not p else (1 - a / p) * 100

    def growth(self, mode: str) -> float | None:
        return (self.perf.get(mode) or {}).get("decode_growth_64")


def _view_scenario(views: dict, prefix: str) -> dict[str, Any]:
    for (name, _mode), view in sorted(views.items()):
        if name.startswith(prefix) and isinstance(view.get("scenario"), dict):
            return view["scenario"]
    return {}


def _file_scenario(name: str) -> dict[str, Any]:
    """A study's scenario as plan.json echoes it, from the bundled file (views made by hand lack it)."""
    from splitplan.plan.result import scenario_echo
    from splitplan.resources import scenarios_dir
    from splitplan.scenario import load_scenario

    path = scenarios_dir() / "splitwise" / f"{name}.yaml"
    try:
        return scenario_echo(load_scenario(path))
    except Exception:  # noqa: BLE001 - a missing or changed study file only leaves its figure out
        return {}


def _scenario(views: dict, name: str) -> dict[str, Any]:
    return _view_scenario(views, name) or _file_scenario(name)


def mean_output_tokens(trace_file: str) -> float | None:
    from splitplan.workload import load_trace, resolve_trace_path

    try:
        return float(load_trace(resolve_trace_path(trace_file)).output_tokens.mean())
    except Exception:  # noqa: BLE001
        return None


def page_facts(views: dict, catalog: Catalog, perf: dict[str, dict[str, float]] | None = None) -> PageFacts:
    from splitplan.plan.verify import RATE_STEP

    power = _scenario(views, "isopower-coding")
    cost = _scenario(views, "isocost-coding")
    fig12 = _scenario(views, "fig12-hh-coding-70rps")
    any_study = power or cost or fig12
    m = catalog.machine
    h100, a100 = catalog.gpu_of(m("dgx-h100")), catalog.gpu_of(m("dgx-a100"))
    designs = any_study.get("designs") or [{}]
    traces = {}
    for trace, default in TRACE_FILES.items():
        echo = _scenario(views, f"isopower-{trace}")
        traces[trace] = mean_output_tokens((echo.get("workload") or {}).get("trace") or default)
    return PageFacts(
        lattice_pct=(RATE_STEP - 1) * 100,
        power_kw=(power.get("constraints") or {}).get("power_kw"),
        cost_usd_per_h=(cost.get("constraints") or {}).get("cost_usd_per_h"),
        h100_kw=m("dgx-h100").power_kw, a100_kw=m("dgx-a100").power_kw,
        h100_usd=m("dgx-h100").cost_usd_per_h, a100_usd=m("dgx-a100").cost_usd_per_h,
        capped_power_share=m("dgx-h100-pcap").power_kw / m("dgx-h100").power_kw,
        gpu_tdp_w=(h100.tdp_w, a100.tdp_w),
        model=any_study.get("model"), tp=designs[0].get("tp"),
        duration_s=(any_study.get("workload") or {}).get("duration_s"),
        seeds=(any_study.get("search") or {}).get("seeds"),
        fig12_rps=(fig12.get("constraints") or {}).get("min_throughput_rps"),
        mean_output_tokens={k: v for k, v in traces.items() if v is not None},
        perf=dict(perf or {}),
    )


def num(v: float | None, fmt: str = "g", none: str = "n/a") -> str:
    return none if v is None else format(v, fmt)


def duration_words(seconds: float | None) -> str:
    if seconds is None:
        return "fixed-length"
    return f"{seconds / 60:g}-minute" if seconds % 60 == 0 else f"{seconds:g}-second"


def claim_gap(views: dict, claim, trace: str, modes) -> str:
    """'within A-B points of the paper' for one trace, from the claim's ratios in each mode."""
    from splitplan.reproduction import ratio

    gaps = [abs(r - claim.paper) * 100 for mode in modes
            if (r := ratio(views, f"{claim.study}-{trace}", mode, claim.design, claim.versus, claim.metric)) is not None]
    if not gaps:
        return ""
    lo, hi = min(gaps), max(gaps)
    span = f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}"
    return f"{trace} is within {span} points of the paper"


def splitwise_saving(views: dict, study: str, metric: str, modes) -> str:
    """'every Splitwise design saves about X%' against Baseline-H100, from the plans."""
    from splitplan.reproduction import ratio

    savings = [(1 - r) * 100 for mode in modes for (name, m), view in views.items() if name == study and m == mode
               for d in (view.get("designs") or {}) if d.startswith("Splitwise-")
               if (r := ratio(views, study, mode, d, "Baseline-H100", metric)) is not None]
    return f"about {sum(savings) / len(savings):.0f}%" if savings else "its share"
