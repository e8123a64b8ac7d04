"""Report sections for an optimize output: the recommendation, why it won, Pareto frontiers, candidates.

The recommendation comes first because it is the question the planner asked; the per-design comparison
right after it is the evidence (same constraints, same SLOs, every design's best verified plan).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from splitplan.report import plots
from splitplan.report.best_sim import best_plan_simulation
from splitplan.report.columns import pick_column
from splitplan.report.inputs import PlanOutput
from splitplan.report.plan_view import PlanRow, PlanView, plan_view, pools_text
from splitplan.report.sim_sections import Section, sim_sections
from splitplan.report.tables import esc, fmt_margin, fmt_num, frame_table, key_values, slo_label, slo_order, table
from splitplan.plan.phases import is_split_kind

OBJECTIVES = {"max_throughput": "highest throughput", "min_cost": "lowest cost", "min_power": "lowest power"}


def plan_title(plan: dict[str, Any]) -> tuple[str, str]:
    view = plan_view(plan)
    name = f": {view.scenario_name}" if view.scenario_name else ""
    goal = OBJECTIVES.get(view.objective, view.objective or "plan")
    return f"splitplan capacity plan{name}", f"{view.model or 'model'} — objective: {goal}"


def plan_sections(data: PlanOutput, simulate_best: bool = True) -> list[Section]:
    """`simulate_best`: when the output holds no simulation of the best plan, re-run one (about a second)."""
    view = plan_view(data.plan)
    sections = [
        Section("recommendation", "Recommendation", status_note(data.plan) + recommendation_body(view)),
        Section("designs", "Per-design comparison", designs_body(view)),
        Section("pareto", "Pareto frontiers", pareto_body(data, view)),
        Section("candidates", "Verified candidates", candidates_body(data.candidates)),
    ]
    replay = best_plan_simulation(data) if (simulate_best or data.best_sim) and view.best else None
    if replay is not None and replay.sim is not None:
        best = sim_sections(replay.sim, prefix="best-", heading="Simulation of the recommended plan")
        note = f'<p class="note">{esc(replay.note)}</p>'
        sections += [Section(best[0].anchor, best[0].title, note + best[0].body), *best[1:]]
    elif view.best is not None:
        why = replay.note + " " if replay is not None else ""
        sections.append(Section("best-latency", "Latency and utilization of the recommended plan",
                                f'<p class="note">{esc(why)}This optimize output holds no saved simulation of the '
                                'best plan (a subfolder with summary.json, requests.csv, timeline.csv). To see '
                                'its latency CDFs and timelines, simulate the plan with <code>splitplan simulate '
                                '... --out DIR</code> and run <code>splitplan report DIR</code>.</p>'))
    sections.append(Section("scenario", "Scenario and constraints", scenario_body(data.plan, view)))
    return sections


STATUS_NOTES = {"time_limit": "The time limit stopped the search: every plan below is the best verified so far, "
                              "not necessarily the best there is.",
                "interrupted": "The run was interrupted: only the designs that finished are shown."}


def status_note(plan: dict[str, Any]) -> str:
    note = STATUS_NOTES.get(str(plan.get("status")))
    return f'<p class="verdict warn">{esc(note)}</p>' if note else ""


def split_text(row: PlanRow) -> str:
    """The answer to "split phases?", as the plan ran at its verified rate."""
    share = "" if row.mixed_request_share is None else f"{row.mixed_request_share:.0%}"
    if not is_split_kind(row.kind):
        return f"No, do not split: {pools_text(row.pools)} running both phases"
    if row.kind == "disaggregated":
        return f"Yes, split: {pools_text(row.pools)} (prefill and decode workers, roles fixed)"
    if row.is_split:
        return f"Yes, split: {pools_text(row.pools)}" + (f" ({share} of requests on mixed or borrowed machines)"
                                                         if share else "")
    return (f"Not in practice: designed as a split ({pools_text(row.pools)}), but {share} of requests ran "
            f"co-located on mixed or borrowed machines at the verified rate ({row.phases})")


def recommendation_body(view: PlanView) -> str:
    best = view.best
    if best is None:
        reason = view.binding or "no plan met the constraints and SLOs"
        return f'<p class="verdict bad">Infeasible: {esc(reason)}.</p>'
    sentence = (f"{best.name}: {pools_text(best.pools)} — max rate {fmt_num(best.throughput_rps, 1)} req/s with "
                f"every SLO met, for ${fmt_num(best.cost_usd_per_h, 0)}/h and {fmt_num(best.power_kw, 1)} kW.")
    pairs = [("design", f"{best.name} ({best.kind or 'design'})"), ("split phases?", split_text(best)),
             ("machines", f"{best.machine_count} ({pools_text(best.pools)})"),
             ("cost", f"${fmt_num(best.cost_usd_per_h, 1)}/h"), ("provisioned power", f"{fmt_num(best.power_kw, 1)} kW"),
             ("max_rate_rps (highest offered rate meeting every SLO on every seed)", throughput_text(best))]
    if best.per_seed_rps:
        pairs.append(("each seed's own max rate", ", ".join(fmt_num(v, 2) for v in best.per_seed_rps) + " req/s"))
    if best.model_error is not None:
        pairs.append(("capacity model vs simulation", f"{best.model_error:+.0%} (+ = the model was optimistic)"))
    parts = [f'<p class="verdict good">{esc(sentence)}</p>', key_values(pairs)]
    if best.slo_margins:
        ordered = sorted(best.slo_margins.items(), key=slo_order)
        tight = min(best.slo_margins, key=best.slo_margins.get)
        rows = [[slo_label(name), fmt_margin(margin)] for name, margin in ordered]
        classes = ["bad" if m < 0 else ("tight" if name == tight else "") for name, m in ordered]
        parts.append(table(["SLO", "headroom at the planned rate"], rows, numeric=[False, True], row_classes=classes,
                           caption=f"SLO margins, worst seed (tightest: {slo_label(tight)}); "
                                   "headroom = (limit - observed) / limit"))
    return "\n".join(parts)


def throughput_text(row: PlanRow) -> str:
    """The rate that held on every seed, then the seeds' mean max rate with its 95% CI when known."""
    if row.throughput_rps is None:
        return "—"
    # a rate is never negative: a t-interval over two or three spread-out seeds can reach below zero
    ci = f"95% CI {fmt_num(max(row.ci_rps[0], 0.0), 1)}–{fmt_num(row.ci_rps[1], 1)}" if row.ci_rps else ""
    mean = f"seed mean {fmt_num(row.mean_rps, 1)}" if row.mean_rps is not None else ""
    extra = ", ".join(part for part in (mean, ci) if part)
    return f"{fmt_num(row.throughput_rps, 1)} req/s" + (f" ({extra})" if extra else "")


def designs_body(view: PlanView) -> str:
    designs = list(view.designs) or ([view.best] if view.best else [])
    if not designs:
        return '<p class="note">plan.json lists no designs.</p>'
    first = next((d for d in designs if d.feasible and d.throughput_rps), None)
    rows, classes = [], []
    for row in designs:
        ratio = (row.throughput_rps / first.throughput_rps
                 if first and row.throughput_rps and row.feasible else None)
        per_kusd = (1000.0 * row.throughput_rps / row.cost_usd_per_h
                    if row.throughput_rps and row.cost_usd_per_h else None)
        rows.append([row.name, phases_cell(row), pools_text(row.pools),
                     fmt_num(row.cost_usd_per_h, 0), fmt_num(row.power_kw, 1), throughput_text(row),
                     f"{ratio:.2f}×" if ratio else "—", fmt_num(per_kusd, 1),
                     "—" if row.model_error is None else f"{row.model_error:+.0%}",
                     row.status if row.feasible else f"{row.status}: {row.binding or ''}".strip(": ")])
        is_best = view.best is not None and row.name == view.best.name
        classes.append("best" if is_best else ("bad" if not row.feasible else ""))
    headers = ["design", "phases (as run)", "machines", "$/h", "kW", "max_rate_rps",
               f"vs {first.name if first else 'first'}", "req/s per $1000/h", "model error", "status"]
    parts = [table(headers, rows, numeric=[False, False, False, True, True, True, True, True, True, False],
                   row_classes=classes), why_text(view, designs)]
    feasible = [d for d in designs if d.feasible and d.throughput_rps]
    if len(feasible) > 1:
        png = plots.bars([d.name for d in feasible], [("max_rate_rps", [d.throughput_rps for d in feasible])],
                         "max_rate_rps (every SLO met)")
        if png:
            parts.append(plots.img_tag(png, "Throughput of each design's best plan"))
    return "\n".join(parts)


def phases_cell(row: PlanRow) -> str:
    if not is_split_kind(row.kind):
        return "not split"
    if row.mixed_request_share is None:
        return "split" if row.phases in (None, "split") else str(row.phases)
    return f"{row.phases or 'split'} ({row.mixed_request_share:.0%} co-located)"


def why_text(view: PlanView, designs: list[PlanRow]) -> str:
    """One sentence per alternative: what the recommended plan gains over it."""
    best = view.best
    if best is None:
        return ""
    lines = []
    for other in designs:
        if other.name == best.name:
            continue
        if not other.feasible:
            lines.append(f"{other.name}: no plan met the constraints ({other.binding or other.status}).")
            continue
        facts = []
        if best.throughput_rps and other.throughput_rps:
            facts.append(f"{best.throughput_rps / other.throughput_rps:.2f}× its max rate")
        if best.cost_usd_per_h and other.cost_usd_per_h:
            facts.append(f"{_relative(best.cost_usd_per_h, other.cost_usd_per_h)} cost")
        if best.power_kw and other.power_kw:
            facts.append(f"{_relative(best.power_kw, other.power_kw)} power")
        lines.append(f"vs {other.name} ({pools_text(other.pools)}): " + ", ".join(facts) + ".")
    if not lines:
        return ""
    goal = OBJECTIVES.get(view.objective, "the objective")
    items = "".join(f"<li>{esc(line)}</li>" for line in lines)
    return f"<p>Why {esc(best.name)} ({esc(goal)} within the constraints):</p><ul>{items}</ul>"


def _relative(mine: float, theirs: float) -> str:
    change = mine / theirs - 1.0
    if abs(change) < 0.005:
        return "the same"
    return f"{abs(change) * 100:.0f}% {'more' if change > 0 else 'less'}"


def pareto_body(data: PlanOutput, view: PlanView) -> str:
    candidates, frontier = data.candidates, data.pareto
    points = candidates if not candidates.empty else frontier
    y = pick_column(points, ("max_rate_rps", "throughput_rps", "rate_rps", "throughput"), ("throughput",))
    if points.empty or y is None:
        return '<p class="note">No candidates.csv / pareto.csv with a throughput column in this output.</p>'
    group = pick_column(points, ("design", "name", "design_name"))
    status = pick_column(points, ("feasible", "meets_slos", "verified"))
    if status is not None and pd.api.types.is_bool_dtype(points[status]):
        points = points[points[status]]
    parts = []
    axes = (("cost", ("cost_usd_per_h", "cost"), "cost ($/h)", view.best and view.best.cost_usd_per_h),
            ("power", ("power_kw", "power"), "provisioned power (kW)", view.best and view.best.power_kw))
    for axis, x_names, label, best_x in axes:
        x = pick_column(points, x_names)
        if x is None:
            continue
        front = _frontier_for(frontier, x, axis)
        best = (best_x, view.best.throughput_rps) if view.best and best_x and view.best.throughput_rps else None
        png = plots.pareto(points, front, x=x, y=y, group=group, xlabel=label,
                           ylabel="max_rate_rps (every SLO met)", best=best)
        if png is None:
            parts.append(f'<p class="note">{esc(plots.PLOT_EXTRA_HINT)}</p>')
            break
        parts.append(f"<h3>Max rate vs {esc(label)}</h3>" + plots.img_tag(png, f"Pareto frontier: {label}"))
    if not frontier.empty:
        parts.append("<h3>Frontier points</h3>" + frame_table(frontier, max_rows=60))
    return "\n".join(parts) or '<p class="note">No cost or power column to plot against.</p>'


def _frontier_for(frontier: pd.DataFrame, x: str, axis: str) -> pd.DataFrame:
    """pareto.csv may hold both frontiers, told apart by a column naming the axis."""
    if frontier.empty or x not in frontier:
        return pd.DataFrame()
    which = pick_column(frontier, ("frontier", "axis", "kind", "pareto"))
    if which is not None and not pd.api.types.is_numeric_dtype(frontier[which]):
        part = frontier[frontier[which].astype(str) == axis]
        if not part.empty:
            return part
    return frontier


def candidates_body(candidates: pd.DataFrame) -> str:
    if candidates.empty:
        return '<p class="note">No candidates.csv in this output.</p>'
    return (f"<p>{len(candidates):,} candidate plans were simulated; every row below is a simulator result, not a "
            f"model estimate (model_error = the capacity model's rate / the simulated max_rate_rps - 1; "
            f"source screen = a one-seed pass/fail test, never a plan).</p><details><summary>All candidates</summary>{frame_table(candidates, max_rows=300)}"
            "</details>")


def scenario_body(plan: dict[str, Any], view: PlanView) -> str:
    pairs = [(name, value) for name, value in sorted(view.constraints.items()) if value is not None]
    pairs = pairs or [("constraints", "none given")]
    scenario = plan.get("scenario")
    echo = ""
    if scenario:
        echo = ("<details><summary>Scenario as the optimizer read it</summary><pre>"
                + esc(json.dumps(scenario, indent=2, sort_keys=True, default=str)) + "</pre></details>")
    return key_values(pairs) + echo
