"""docs/reproduction.md: the Splitwise paper's claims beside splitplan's answers, in both perf modes.

`reproduce()` runs every study of scenarios/splitwise (their expectations are checked on the way, as
`splitplan check --all` would) in SplitwiseSim-compatibility mode (its measured profile) and with the
calibrated analytic model, then renders one Markdown page. The page holds no timings or dates, so the
same code and data give the same bytes. Mapping a headline to a design comparison is our reading of
the paper ([I] in the text); the paper's figures are from its text (reference/splitwise.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitplan.atomic_io import prepare_output, write_atomic
from splitplan.catalog import Catalog, get_catalog
from splitplan.check import MODES, CheckReport, CheckSpec, PerfFlags, load_check_spec, mode_perf, run_check, settings_of
from splitplan.errors import SplitplanError
from splitplan.perf import build_perf_model
from splitplan.reproduction_facts import (FIG12_BAND, PAPER_FIG12, PageFacts, claim_gap, duration_words, num, page_facts,
                                          splitwise_saving)
from splitplan.reproduction_text import explanations, header
from splitplan.scenario import evaluate_expectations

MODE_LABEL = {"default": "compat (SplitwiseSim profile)", "analytic": "analytic (calibrated)"}
TRACES = ("coding", "conversation")
PAPER_DESIGNS = ("Baseline-A100", "Baseline-H100", "Splitwise-AA", "Splitwise-HH", "Splitwise-HA", "Splitwise-HHcap")


@dataclass(frozen=True)
class Claim:
    """One quantitative statement of the paper and how to compute its counterpart from our studies."""

    text: str  # the paper's words
    paper: float  # the paper's figure
    study: str  # scenario name prefix ("isopower", ...), completed with each trace
    design: str
    versus: str
    metric: str  # "throughput" | "cost" | "power" (ratio design / versus)
    also: str = ""  # the second ratio the claim states ("cost", "power") or ""
    also_paper: float | None = None
    mapping: str = ""  # [I] how we read the claim
    why: str = ""  # which of the numbered causes below explain a departure


CLAIMS = (
    Claim("up to 1.4x throughput at 20% lower cost", 1.4, "isopower", "Splitwise-AA", "Baseline-H100",
          "throughput", "cost", 0.80,
          "iso-power Splitwise-AA vs Baseline-H100 (the paper's premise [P]: A100s cost 20% less at equal power)",
          "cause 4: {a100_power} A100s, not {a100_tdp}; scaled by {a100_tdp}/{a100_power} both ratios grow {grow_pct}%"),
    Claim("2.35x throughput at the same cost and power", 2.35, "isopower", "Splitwise-HH", "Baseline-H100",
          "throughput", "cost", 1.0, "iso-power Splitwise-HH vs Baseline-H100 (as many machines, same cost)",
          "causes 1-3: the gain depends on how cheap decoding is in each model; {seeds_per_plan} per plan (7)"),
    Claim("1.76x throughput at 15% lower power and the same cost", 1.76, "isocost", "Splitwise-HHcap",
          "Baseline-H100", "throughput", "power", 0.85, "iso-cost Splitwise-HHcap vs Baseline-H100",
          "cause 1: plans need few token machines, so capping them saves little power"),
    Claim("iso-cost: Splitwise-AA 1.4x the throughput of Baseline-H100 (25% more power)", 1.4, "isocost",
          "Splitwise-AA", "Baseline-H100", "throughput", "power", 1.25, "as stated",
          "cause 4: machine kW ({a100_cost} x {a100_kw} vs {h100_power} x {h100_kw}) instead of GPU TDP; cause 1 for the "
          "larger gain"),
    Claim("iso-throughput: Splitwise-HHcap matches Baseline-H100 at 25% lower power", 0.75, "isothroughput-power",
          "Splitwise-HHcap", "Baseline-H100", "power", "", None, "power ratio of the min-power plans",
          "coding: outputs average {coding_osl} tokens, so the token pool is nearly free and the Splitwise designs "
          "save {coding_saving} (causes 1, 3); {conversation_gap}"),
    Claim("iso-throughput: Splitwise-AA matches Baseline-H100 at 25% lower cost", 0.75, "isothroughput-cost",
          "Splitwise-AA", "Baseline-H100", "cost", "", None, "cost ratio of the min-cost plans",
          "coding: as above; compat: {conversation_gap_compat}; analytic A100 token machines hold far fewer decodes "
          "(causes 1-2): Splitwise-AA's analytic conversation plan is {aa_conversation_pools}"),
)

# Rankings the paper's text states (or implies, [I]) for the throughput-optimized studies: (better, worse).
RANKINGS = (
    ("isopower", "Splitwise-AA", "Baseline-A100"), ("isopower", "Splitwise-HH", "Baseline-H100"),
    ("isopower", "Splitwise-AA", "Baseline-H100"), ("isopower", "Splitwise-HHcap", "Baseline-H100"),
    ("isocost", "Splitwise-AA", "Baseline-H100"), ("isocost", "Splitwise-HHcap", "Baseline-H100"),
    ("isocost", "Splitwise-AA", "Baseline-A100"),
)


@dataclass
class Reproduction:
    report: CheckReport
    markdown: str


Views = dict[tuple[str, str], dict[str, Any]]  # (scenario name, mode) -> plan view


def reproduce(paths: Sequence[str | Path] = ("scenarios/splitwise",), *, out: str | Path | None = None,
              catalog_files: tuple[str, ...] = (), flags: PerfFlags | None = None, workers: int | None = None,
              save_results: str | Path | None = None, on_start: Callable | None = None,
              on_done: Callable | None = None) -> Reproduction:
    """Run every study in both modes and render docs/reproduction.md (written to `out` if given).

    `save_results` keeps the raw plan views (JSON), so the page can be re-rendered by `render_saved`
    without simulating again. Their folders are made first: a path that cannot be written fails here,
    not after the studies ran."""
    for path, what in ((save_results, "--save-results"), (out, "--out")):
        prepare_output(path, what)
    report = run_check(paths, include_slow=True, modes=MODES, catalog_files=catalog_files, flags=flags,
                       workers=workers, on_start=on_start, on_done=on_done, require_expect=False,
                       slow_modes=None)
    records = [{"file": str(o.spec.path), "mode": o.mode, "view": o.view} for o in report.outcomes]
    if save_results is not None:
        write_atomic(Path(save_results), json.dumps(records, indent=1, sort_keys=True) + "\n")
    markdown = render_records(records, get_catalog(catalog_files), flags)
    _write(out, markdown)
    return Reproduction(report, markdown)


def render_saved(results: str | Path, *, out: str | Path | None = None, catalog_files: tuple[str, ...] = (),
                 flags: PerfFlags | None = None) -> str:
    """Re-render the page from results saved by `reproduce(save_results=...)`; expectations are re-evaluated."""
    try:
        records = json.loads(Path(results).read_text())
    except (OSError, ValueError) as exc:
        raise SplitplanError(f"cannot read saved results ({exc.__class__.__name__})", source=str(results)) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) and {"file", "mode", "view"} <= set(r)
                                                for r in records):
        raise SplitplanError("not a results file written by splitplan reproduce --save-results", source=str(results))
    markdown = render_records(records, get_catalog(catalog_files), flags)
    _write(out, markdown)
    return markdown


def render_records(records: list[dict[str, Any]], catalog: Catalog, flags: PerfFlags | None) -> str:
    """The page from (file, mode, view) records: expectations of each file evaluated against its view."""
    specs = {f: load_check_spec(f) for f in dict.fromkeys(r["file"] for r in records)}
    status, views = [], {}
    for r in records:
        spec = specs[r["file"]]
        mode = spec.mode(r["mode"])
        results = evaluate_expectations(r["view"], mode.expect if mode else ())
        status.append((Path(r["file"]).name, r["mode"], sum(x.passed for x in results), len(results)))
        views[(spec.scenario.name, r["mode"])] = r["view"]
    numbers = perf_numbers(next(iter(specs.values())), catalog, flags) if specs else {}
    return render(views, status, [format_perf(mode, n) for mode, n in numbers.items()],
                  page_facts(views, catalog, numbers))


def _write(out: str | Path | None, markdown: str) -> None:
    if out is not None:
        prepare_output(out, "--out")
        write_atomic(Path(out), markdown)


# ---------------------------------------------------------------- numbers out of the views
def design_row(views: Views, scenario: str, mode: str, design: str) -> dict[str, Any] | None:
    d = views.get((scenario, mode), {}).get("designs", {}).get(design)
    return d if d and d.get("status") == "feasible" else None


def ratio(views: Views, scenario: str, mode: str, a: str, b: str, metric: str) -> float | None:
    key = {"throughput": "throughput_rps", "cost": "cost_usd_per_h", "power": "power_kw"}[metric]
    ra, rb = design_row(views, scenario, mode, a), design_row(views, scenario, mode, b)
    if ra is None or rb is None or not rb.get(key):
        return None
    return ra[key] / rb[key]


def _x(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}x"


def _n(v: Any, fmt: str = ".1f") -> str:
    return "n/a" if v is None else format(v, fmt)


# ---------------------------------------------------------------- sections
def render(views: Views, status: Sequence[tuple[str, str, int, int]], facts: list[str],
           page: PageFacts | None = None) -> str:
    """The whole page; `status` rows are (file name, mode, expectations holding, expectations); `page`: the
    figures the prose cites (default: computed from the views, the catalog and the study files)."""
    page = page or page_facts(views, get_catalog())
    parts = [header(page), _checks_section(status), _fig12_section(views, page),
             _studies_section(views, "isopower", page), _studies_section(views, "isocost", page),
             _isothroughput_section(views), _ranking_section(views, page), _claims_section(views, page),
             _robustness_section(views, page), _why_section(facts, page)]
    return "\n".join(p.rstrip() + "\n" for p in parts if p)


def _checks_section(status: Sequence[tuple[str, str, int, int]]) -> str:
    lines = ["## Studies run", "", "Each study's pinned expectations (`splitplan check --all`) against this run. A study "
             "or mode missing from this table was not part of the run that generated the page; its cells read n/a.",
             "",
             "| scenario | mode | expectations holding | status |", "|---|---|---|---|"]
    for name, mode, ok, total in status:
        verdict = "pass" if ok == total else f"**{total - ok} outside tolerance**"
        lines.append(f"| `{name}` | {MODE_LABEL[mode]} | {ok}/{total} | {verdict} |")
    return "\n".join(lines)


def _fig12_section(views: Views, page: PageFacts) -> str:
    p, t = PAPER_FIG12["prompt"], PAPER_FIG12["token"]
    lines = [f"## Fig. 12: the cheapest Splitwise-HH cluster for coding at {num(page.fig12_rps)} req/s", "",
             f"The paper [P]: **{p} prompt + {t} token** DGX-H100 ({p + t} machines, "
             f"${num((p + t) * page.h100_usd, '.0f')}/h at the catalog's ${num(page.h100_usd)}/h).", "",
             f"| mode | prompt | token | machines | cost $/h | verified throughput req/s | within {FIG12_BAND} machines "
             f"of {p}+{t} |", "|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for mode in MODES:
        d = design_row(views, "fig12-hh-coding-70rps", mode, "Splitwise-HH")
        if d is None:
            lines.append(f"| {MODE_LABEL[mode]} | n/a | n/a | n/a | n/a | n/a | no |")
            why = _binding(views, "fig12-hh-coding-70rps", mode, "Splitwise-HH")
            notes.append(f"- {MODE_LABEL[mode]}: no plan; the optimizer says: {why}")
            continue
        near = abs(d["prompt_machines"] - p) <= FIG12_BAND and abs(d["token_machines"] - t) <= FIG12_BAND
        lines.append(f"| {MODE_LABEL[mode]} | {d['prompt_machines']} | {d['token_machines']} | {d['machines']} | "
                     f"{_n(d['cost_usd_per_h'], '.0f')} | {_n(d['throughput_rps'])} | {'yes' if near else 'no'} |")
    return "\n".join(lines + ([""] + notes if notes else []))


def _design_rows(views: Views, name: str, key: str, fmt: str, what: str) -> list[str]:
    """One table row per design: for each mode its cluster, the value at `key` and the ratio to Baseline-H100."""
    rows = []
    for design in _design_names(views, name):
        cells = [design]
        for mode in MODES:
            if (name, mode) not in views:
                cells += ["not run", "n/a", "n/a"]
                continue
            d = design_row(views, name, mode, design)
            cells += [_short(d), _n(d[key], fmt) if d else "n/a",
                      _x(ratio(views, name, mode, design, "Baseline-H100", what))]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _studies_section(views: Views, study: str, page: PageFacts) -> str:
    title = {"isopower": f"Iso-power ({num(page.power_kw)} kW = {num(page.h100_at_power)} DGX-H100), "
                         "throughput-optimized",
             "isocost": f"Iso-cost (${num(page.cost_usd_per_h)}/h = {num(page.h100_at_cost)} DGX-H100 = "
                        f"{num(page.a100_at_cost)} DGX-A100), throughput-optimized"}[study]
    lines = [f"## {title}", "",
             "Throughput = the highest Poisson rate at which every SLO holds "
             f"({duration_words(page.duration_s)} runs). Ratios are against Baseline-H100 of the same study and mode.",
             ""]
    for trace in TRACES:
        name = f"{study}-{trace}"
        lines += [f"### {trace} (`scenarios/splitwise/{name}.yaml`)", "",
                  "| design | compat: cluster | req/s | vs B-H100 | analytic: cluster | req/s | vs B-H100 |",
                  "|---|---|---|---|---|---|---|"]
        lines += _design_rows(views, name, "throughput_rps", ".1f", "throughput")
        lines += _infeasible_notes(views, name) + [""]
    return "\n".join(lines)


def _isothroughput_section(views: Views) -> str:
    lines = ["## Iso-throughput: cost- and power-optimized", "",
             "Target: the throughput of Baseline-H100's iso-power cluster, measured in the same mode (see each file). "
             "Ratios against Baseline-H100's plan.", ""]
    for what in ("cost", "power"):
        for trace in TRACES:
            name = f"isothroughput-{what}-{trace}"
            lines += [f"### min {what}, {trace} (`{name}.yaml`)", "",
                      f"| design | compat: cluster | {what} | vs B-H100 | analytic: cluster | {what} | vs B-H100 |",
                      "|---|---|---|---|---|---|---|"]
            key = "cost_usd_per_h" if what == "cost" else "power_kw"
            lines += _design_rows(views, name, key, ".0f", what)
            lines += _infeasible_notes(views, name) + [""]
    return "\n".join(lines)


def _ranking_section(views: Views, page: PageFacts) -> str:
    lines = ["## Do the designs rank as the paper says?", "",
             "Each row is an ordering the paper's text states or implies for the throughput-optimized studies; "
             "'yes' when splitplan's verified throughputs agree. Departures are in bold; 'Why the numbers differ' "
             "below gives their causes.", "",
             "| study | claim | " + " | ".join(f"{MODE_LABEL[m]} {t}" for m in MODES for t in TRACES) + " |",
             "|---|---|" + "---|" * (len(MODES) * len(TRACES))]
    departures = []
    for study, better, worse in RANKINGS:
        cells = []
        for mode in MODES:
            for trace in TRACES:
                r = ratio(views, f"{study}-{trace}", mode, better, worse, "throughput")
                cells.append("n/a" if r is None else f"{'yes' if r > 1 else '**no**'} ({r:.2f}x)")
                if r is not None and r <= 1:
                    departures.append(f"- {study} {better} > {worse}, {MODE_LABEL[mode]} {trace} ({r:.2f}x): "
                                      + departure_cause(study, better, mode, trace, r, page))
        lines.append(f"| {study} | {better} > {worse} | " + " | ".join(cells) + " |")
    if departures:
        lines += ["", "Why each departure happens:", "", *departures]
    for mode in MODES:
        for study in ("isopower", "isocost"):
            for trace in TRACES:
                order = _order(views, f"{study}-{trace}", mode)
                if order:
                    lines.append("")
                    lines.append(f"- {MODE_LABEL[mode]}, {study} {trace}: " + " > ".join(order))
    return "\n".join(lines)


def departure_cause(study: str, better: str, mode: str, trace: str, r: float, page: PageFacts | None = None) -> str:
    """The numbered causes (see 'Why the numbers differ') behind one ranking that does not hold, in a sentence."""
    page = page or page_facts({}, get_catalog())
    parts = []
    if abs(r - 1) < 0.005:
        parts.append(f"a tie: both plans sustain the same rate on the {num(page.lattice_pct, '.3g')}% rate lattice")
    a100, tdp = page.a100_at_power, page.a100_by_tdp
    if study == "isopower" and better.endswith("-AA") and a100 and tdp:
        parts.append(f"cause 4: {num(page.power_kw)} kW holds {a100} DGX-A100 here, the paper's {tdp} by GPU TDP "
                     f"(x {tdp}/{a100} = {r * tdp / a100:.2f}x)")
    if mode == "analytic" and trace == "conversation":
        growth, osl = page.growth("analytic"), page.mean_output_tokens.get("conversation")
        parts.append("causes 1-2: the analytic decode step grows with the batch"
                     + (f" ({growth:.2f}x at 64)" if growth else "") + " and a DGX holds fewer KV tokens, so "
                     "conversation's long outputs" + (f" ({osl:.0f} tokens on average)" if osl else "")
                     + " need a large token pool; splitting then mostly moves machines between pools")
    return "; ".join(parts) or "see 'Why the numbers differ' below"


def claim_why(c: Claim, views: Views, page: PageFacts) -> str:
    """The claim's 'departures' cell, its figures computed from the views and facts."""
    a100, tdp = page.a100_at_power, page.a100_by_tdp
    aa = design_row(views, "isothroughput-cost-conversation", "analytic", "Splitwise-AA")
    values = {
        "a100_power": num(a100), "a100_tdp": num(tdp), "a100_cost": num(page.a100_at_cost),
        "a100_kw": num(page.a100_kw), "h100_power": num(page.h100_at_power), "h100_kw": num(page.h100_kw),
        "grow_pct": num((tdp / a100 - 1) * 100 if a100 and tdp else None, ".0f"),
        "coding_osl": num(page.mean_output_tokens.get("coding"), ".0f"),
        "coding_saving": splitwise_saving(views, f"{c.study}-coding", c.metric, MODES),
        "conversation_gap": (gap + " across modes" if (gap := claim_gap(views, c, "conversation", MODES))
                             else "conversation: not run"),
        "conversation_gap_compat": claim_gap(views, c, "conversation", ("default",)) or "conversation not run",
        "seeds_per_plan": "one seed" if page.seeds == 1 else f"{num(page.seeds)} seeds",
        "aa_conversation_pools": (f"{aa['prompt_machines']} prompt + {aa['token_machines']} token machines" if aa
                                  else "not available"),
    }
    return c.why.format(**values)


def _claims_section(views: Views, page: PageFacts) -> str:
    lines = [claims_section_intro(), "",
             "| paper | reading [I] | paper figure | compat coding | compat conversation | analytic coding | "
             "analytic conversation | departures |", "|---|---|---|---|---|---|---|---|"]
    for c in CLAIMS:
        paper = _x(c.paper) + (f", {c.also} {_x(c.also_paper)}" if c.also else "")
        cells = []
        for mode in MODES:
            for trace in TRACES:
                name = f"{c.study}-{trace}"
                main = ratio(views, name, mode, c.design, c.versus, c.metric)
                extra = ratio(views, name, mode, c.design, c.versus, c.also) if c.also else None
                cells.append(_x(main) + (f", {c.also} {_x(extra)}" if c.also else ""))
        lines.append(f"| {c.text} | {c.mapping} | {paper} | " + " | ".join(cells) + f" | {claim_why(c, views, page)} |")
    return "\n".join(lines)


def _robustness_section(views: Views, page: PageFacts) -> str:
    studies = sorted({(name, model) for (name, mode), view in views.items()
                      for model in (view.get("robustness") or {})})
    if not studies:
        return ""
    others = ", ".join(dict.fromkeys(model for _, model in studies))
    built = page.model or "the studies' model"
    lines = [f"## Robustness: {others} on the clusters built for {built}", "",
             f"Each design's iso-power cluster (sized for {built} in that mode) re-measured serving the other "
             "model, as the paper's robustness section does. Ratios against Baseline-H100's cluster.", ""]
    for name, model in studies:
        lines += [f"### {model}, clusters of `{name}.yaml`", "",
                  "| design | compat req/s | vs B-H100 | analytic req/s | vs B-H100 |", "|---|---|---|---|---|"]
        for design in _design_names(views, name):
            cells = [design]
            for mode in MODES:
                rows = (views.get((name, mode), {}).get("robustness") or {}).get(model, {})
                r, ref = rows.get(design) or {}, (rows.get("Baseline-H100") or {}).get("throughput_rps")
                t = r.get("throughput_rps")
                cells += [_n(t), _x(t / ref if t is not None and ref else None)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _why_section(facts: list[str], page: PageFacts) -> str:
    model = f"{page.model}, TP {page.tp}" if page.model and page.tp else "the studies' model"
    return "\n".join(["## Why the numbers differ", "", "Measured properties of the two performance models "
                      f"({model}), computed when this page was generated:", "", *facts, "", explanations(page)])


def _binding(views: Views, name: str, mode: str, design: str) -> str:
    d = views.get((name, mode), {}).get("designs", {}).get(design) or {}
    return d.get("binding") or "no result"


def _infeasible_notes(views: Views, name: str) -> list[str]:
    """Why a design has no plan, in the optimizer's words (kept visible, never dropped)."""
    notes = [f"- {design}, {MODE_LABEL[mode]}: no plan; {_binding(views, name, mode, design)}"
             for mode in MODES for design in _design_names(views, name)
             if (name, mode) in views and design_row(views, name, mode, design) is None]
    return [""] + notes if notes else []


def _design_names(views: Views, name: str) -> list[str]:
    """Designs of a study in the paper's order (saved results may have sorted keys)."""
    names: dict[str, None] = {}
    for mode in MODES:
        names.update(dict.fromkeys(views.get((name, mode), {}).get("designs") or {}))
    return sorted(names, key=lambda n: (PAPER_DESIGNS.index(n) if n in PAPER_DESIGNS else len(PAPER_DESIGNS), n))


def _order(views: Views, name: str, mode: str) -> list[str]:
    rows = [(d, design_row(views, name, mode, d)) for d in _design_names(views, name)]
    rows = [(d, r["throughput_rps"]) for d, r in rows if r]
    return [f"{d} ({t:.1f})" for d, t in sorted(rows, key=lambda x: -x[1])]


def _short(d: dict[str, Any] | None) -> str:
    if d is None:
        return "infeasible"
    if d["mixed_machines"] and not d["prompt_machines"]:
        return f"{d['mixed_machines']} mixed"
    return f"{d['prompt_machines']}P + {d['token_machines']}T"


# ---------------------------------------------------------------- perf-model facts behind the differences
def perf_numbers(spec: CheckSpec, catalog: Catalog, flags: PerfFlags | None) -> dict[str, dict[str, float]]:
    """Per mode: decode growth with batch, H100/A100 prefill and decode ratios, cap effects, KV capacity."""
    out = {}
    model, tp = spec.scenario.model, max(spec.scenario.designs[0].tp)  # the study's model and (largest) TP
    for mode in MODES:
        if spec.mode(mode) is None:
            continue
        s = settings_of(mode_perf(spec, mode, flags))
        a100, h100, cap = (build_perf_model(model, m, tp, s, catalog)
                           for m in ("dgx-a100", "dgx-h100", "dgx-h100-pcap"))
        ctx = 2048
        out[mode] = {
            "decode_growth_64": float(h100.decode_ms(64, 64 * ctx)) / float(h100.decode_ms(1, ctx)),
            "prefill_a100_h100": float(a100.prefill_ms(1, ctx, ctx * ctx)) / float(h100.prefill_ms(1, ctx, ctx * ctx)),
            "decode_a100_h100": float(a100.decode_ms(32, 32 * ctx)) / float(h100.decode_ms(32, 32 * ctx)),
            "cap_prefill": float(cap.prefill_ms(1, ctx, ctx * ctx)) / float(h100.prefill_ms(1, ctx, ctx * ctx)),
            "cap_decode": float(cap.decode_ms(32, 32 * ctx)) / float(h100.decode_ms(32, 32 * ctx)),
            "kv_tokens_h100": float(h100.kv_capacity_tokens()),
        }
    return out


def format_perf(mode: str, n: dict[str, float]) -> str:
    return (f"- **{MODE_LABEL[mode]}**: H100 decode step at batch 64 vs batch 1 (2048-token contexts): "
            f"{n['decode_growth_64']:.2f}x; prefill of 2048 tokens A100/H100: {n['prefill_a100_h100']:.2f}x; decode "
            f"batch 32 A100/H100: {n['decode_a100_h100']:.2f}x; capped/uncapped H100 prefill {n['cap_prefill']:.2f}x, "
            f"decode {n['cap_decode']:.2f}x; KV capacity per DGX-H100 {int(n['kv_tokens_h100']):,} tokens.")


def perf_facts(spec: CheckSpec, catalog: Catalog, flags: PerfFlags | None) -> list[str]:
    """The perf numbers of each mode, one Markdown line each."""
    return [format_perf(mode, n) for mode, n in perf_numbers(spec, catalog, flags).items()]


def claims_section_intro() -> str:
    return ("## The paper's headline claims\n\nEach claim beside the same comparison in splitplan's studies "
            "(ratio of the design to the one it is compared with; cost and power ratios are of the two plans). "
            "The paper's figures are 'up to' values over its traces.")
