"""Report sections for one simulation: headline, latencies vs SLOs, utilization and batching over time.

Used for a `simulate` output and, inside an `optimize` report, for the saved simulation of the best plan.
Each function returns an HTML fragment; `plots` returning None means matplotlib is absent, and the
section keeps its tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from splitplan.report import plots
from splitplan.report.columns import pick_column, pick_key
from splitplan.report.inputs import SimOutput
from splitplan.report.slo_lines import cdf_panels_and_note
from splitplan.report.tables import (esc, fmt_ms, fmt_num, fmt_pct, frame_table, key_values, slo_label,
                                     slo_rows, table, uncalibrated_warning)

LATENCY_ROWS = (("TTFT", "ttft_s"), ("TBT", "tbt_s"), ("E2E", "e2e_s"), ("ITL", "itl_s"), ("queueing", "queue_s"),
                ("KV transfer", "transfer_s"))


@dataclass(frozen=True)
class Section:
    """One titled part of the page; `anchor` is its HTML id (the table of contents links to it)."""

    anchor: str
    title: str
    body: str


def sim_sections(sim: SimOutput, *, prefix: str = "", heading: str = "") -> list[Section]:
    """All sections of a simulation, anchors prefixed (an optimize report may hold one of these)."""
    return [
        Section(f"{prefix}summary", heading or "Simulation summary", summary_body(sim.summary)),
        Section(f"{prefix}latency", "Latency and SLOs", latency_body(sim)),
        Section(f"{prefix}utilization", "Pool utilization and batch sizes over time", timeline_body(sim)),
        Section(f"{prefix}machines", "Machines", machines_body(sim.machines)),
        Section(f"{prefix}settings", "Run settings", settings_body(sim.summary)),
    ]


def cluster_label(summary: dict[str, Any]) -> str:
    cluster = summary.get("cluster") or {}
    label = pick_key(cluster, "label")
    if label:
        return str(label)
    pools = cluster.get("pools") or []
    parts = [f"{p.get('role', '?')} {p.get('count', '?')} x {p.get('machine', '?')}" for p in pools]
    return f"{cluster.get('design', 'cluster')}: " + " + ".join(parts)


def verdict(summary: dict[str, Any]) -> tuple[str, str]:
    """(css class, sentence): the one line a planner reads first."""
    if summary.get("saturated"):
        reason = summary.get("saturation_reason") or "queues grow without bound"
        return "bad", f"Saturated: {reason}. Latency percentiles of a saturated run are not reported."
    slo = summary.get("slo") or {}
    missed = [name for name, item in slo.items() if isinstance(item, dict) and not item.get("met")]
    if summary.get("all_slos_met") or (slo and not missed):
        tight = _tightest(slo)
        extra = f" Tightest: {slo_label(tight[0])} with {fmt_pct(tight[1], 1)} headroom." if tight else ""
        return "good", f"All {len(slo)} SLOs met.{extra}"
    if missed:
        return "bad", f"{len(missed)} of {len(slo)} SLOs missed: {', '.join(map(slo_label, missed))}."
    return "", "No SLOs were evaluated."


def _tightest(slo: dict[str, Any]) -> tuple[str, float] | None:
    margins = [(name, item["margin"]) for name, item in slo.items()
               if isinstance(item, dict) and isinstance(item.get("margin"), (int, float))]
    return min(margins, key=lambda pair: pair[1]) if margins else None


def summary_body(summary: dict[str, Any]) -> str:
    css, sentence = verdict(summary)
    completed, total = summary.get("completed"), summary.get("requests")
    pairs = [
        ("cluster", cluster_label(summary)),
        ("model", pick_key(summary, "cluster.model", default="—")),
        ("machines", fmt_num(_machine_count(summary), 0)),
        ("offered_rps (arrival rate of the run)", f"{fmt_num(_first(summary, 'offered_rps', 'arrival_rps'), 2)} req/s"),
        ("completed_rps (offered requests that finished)", f"{fmt_num(_completed_rps(summary), 2)} req/s"),
        ("requests", f"{fmt_num(completed, 0)} of {fmt_num(total, 0)} completed"
                     + (f", {fmt_num(summary.get('unfinished'), 0)} unfinished" if summary.get("unfinished") else "")),
        ("cost", f"${fmt_num(summary.get('cost_usd_per_h'), 1)}/h"),
        ("provisioned power", f"{fmt_num(summary.get('power_kw'), 1)} kW"),
        ("mean power drawn", f"{fmt_num(summary.get('mean_power_kw'), 1)} kW"),
        ("energy", f"{fmt_num(summary.get('energy_kwh'), 2)} kWh"),
    ]
    mixed = summary.get("mixed_pool")
    if isinstance(mixed, dict) and mixed:
        pairs.append(("co-located (mixed pool, borrowed machines)", ", ".join(
            f"{k}: {(fmt_pct(v) if k.endswith('share') else fmt_num(v, 0)) if isinstance(v, (int, float)) else v}"
            for k, v in mixed.items())))
    warning = uncalibrated_warning(pick_key(summary, "perf.provenance"))
    return f'<p class="verdict {css}">{esc(sentence)}</p>' + warning + key_values(pairs)


def _first(summary: dict[str, Any], name: str, old_name: str) -> Any:
    """A schema-2 summary key, or its name in an older summary.json."""
    return summary.get(name) if name in summary else summary.get(old_name)


def _completed_rps(summary: dict[str, Any]) -> float | None:
    """completed_rps; older summaries have only the windowed throughput, which is not the same number."""
    if "completed_rps" in summary:
        return summary["completed_rps"]
    offered, done, total = summary.get("arrival_rps"), summary.get("completed"), summary.get("requests")
    if isinstance(offered, (int, float)) and isinstance(done, int) and isinstance(total, int) and total:
        return offered * done / total
    return None


def _machine_count(summary: dict[str, Any]) -> int | None:
    pools = pick_key(summary, "cluster.pools", default=[])
    counts = [p.get("count") for p in pools if isinstance(p, dict) and isinstance(p.get("count"), int)]
    return sum(counts) if counts else None


def latency_body(sim: SimOutput) -> str:
    summary = sim.summary
    rows = []
    for label, key in LATENCY_ROWS:
        stats = summary.get(key)
        if isinstance(stats, dict):
            rows.append([label] + [fmt_ms(stats.get(q)) for q in ("p50", "p90", "p99", "mean")])
        elif key in summary and stats is None:
            rows.append([label, "—", "—", "—", "—"])
    parts = []
    if summary.get("saturated"):
        parts.append('<p class="note">The run saturated: percentiles are withheld (they would describe a '
                     'queue that never drains).</p>')
    if rows:
        parts.append(table(["metric", "P50", "P90", "P99", "mean"], rows, numeric=[False, True, True, True, True]))
    slo = summary.get("slo") or {}
    if slo:
        srows, classes = slo_rows(slo)
        parts.append(table(["SLO", "observed", "limit", "headroom", "verdict"], srows,
                           numeric=[False, True, True, True, False], row_classes=classes,
                           caption="SLOs: headroom is how far below its limit each observed value is"
                           + (" (a saturated run: indicative only)" if summary.get("saturated") else "")))
    panels, note = cdf_panels_and_note(sim)
    if note:
        parts.append(f'<p class="note">{esc(note)}</p>')
    if panels:
        png = plots.latency_cdfs(panels)
        if png is None:
            parts.append(f'<p class="note">{esc(plots.PLOT_EXTRA_HINT)}</p>')
        else:
            parts.append(plots.img_tag(png, "Latency CDFs (TTFT, TBT, E2E) with SLO limits"))
            parts.append('<p class="note">Dashed lines: SLO limits; a limit at percentile p holds when the curve '
                         'reaches p (the dot) left of its line.</p>')
    elif sim.requests.empty:
        parts.append('<p class="note">No requests.csv: no latency distribution to plot.</p>')
    return "\n".join(parts)


def timeline_body(sim: SimOutput) -> str:
    frame = sim.timeline
    if frame.empty:
        return '<p class="note">No timeline.csv in this output.</p>'
    time_col = pick_column(frame, ("time_s", "t_s", "time"), ("time",))
    pool_col = pick_column(frame, ("pool", "role", "pool_role"))
    if time_col is None:
        return '<p class="note">timeline.csv has no time column.</p>' + frame_table(frame.head(50))
    frame = _with_utilization(frame, pool_col, sim.machines)
    wanted = (("utilization", "busy fraction"), ("busy_instances", "busy instances"),
              ("mean_decode_batch", "mean decode batch"), ("queued_requests", "queued requests"),
              ("pending_tokens", "pending tokens"))
    series = []
    for name, label in wanted:
        column = pick_column(frame, (name,), tuple(name.split("_")))
        if column and pd.api.types.is_numeric_dtype(frame[column]) and not any(c == column for c, _ in series):
            series.append((column, label))
    if series and series[0][1] == "busy fraction":  # busy instances say the same thing again
        series = [item for item in series if item[1] != "busy instances"]
    parts = [_timeline_stats(frame, pool_col, series)]
    if series:
        png = plots.timeline(frame, time_col=time_col, group_col=pool_col, series=series[:4])
        if png is None:
            parts.append(f'<p class="note">{esc(plots.PLOT_EXTRA_HINT)}</p>')
        else:
            parts.append(plots.img_tag(png, "Pool utilization, batch sizes and queues over time"))
    return "\n".join(parts)


def _with_utilization(frame: pd.DataFrame, pool_col: str | None, machines: pd.DataFrame) -> pd.DataFrame:
    """Busy fraction per pool: busy instances / instances in the pool (from timeline or machines.csv)."""
    if pick_column(frame, ("utilization",)) or pool_col is None:
        return frame
    busy = pick_column(frame, ("busy_instances", "busy"), ("busy",))
    if busy is None:
        return frame
    sizes_col = pick_column(frame, ("instances", "pool_instances"))
    if sizes_col is not None:
        sizes = frame[sizes_col].astype(float)
    else:
        role = pick_column(machines, ("pool", "role", "pool_role"))
        if machines.empty or role is None:
            return frame
        per_pool = machines.groupby(machines[role].astype(str)).size()
        sizes = frame[pool_col].astype(str).map(per_pool).astype(float)
    frame = frame.copy()
    frame["utilization"] = frame[busy] / sizes.replace(0, np.nan)
    return frame


def _timeline_stats(frame: pd.DataFrame, pool_col: str | None, series: list[tuple[str, str]]) -> str:
    """Mean and peak of each series per pool: the numbers behind the plot, readable without it."""
    if not series:
        return frame_table(frame.head(50))
    groups = sorted(frame[pool_col].astype(str).unique()) if pool_col else ["all"]
    rows = []
    for group in groups:
        part = frame if pool_col is None else frame[frame[pool_col].astype(str) == group]
        for column, label in series:
            values = part[column].astype(float)
            fmt = (lambda v: fmt_pct(v, 0)) if label == "busy fraction" else (lambda v: fmt_num(v, 1))
            rows.append([group, label, fmt(values.mean()), fmt(values.quantile(0.9)), fmt(values.max())])
    return table(["pool", "series", "mean", "P90", "peak"], rows, numeric=[False, False, True, True, True])


def machines_body(machines: pd.DataFrame) -> str:
    """Per pool and machine type: instances, utilization, batch size, energy; every instance below."""
    if machines.empty:
        return '<p class="note">No machines.csv in this output.</p>'
    role = pick_column(machines, ("pool", "role", "pool_role"))
    kind = pick_column(machines, ("machine", "machine_type", "type"), ("machine",))
    keys = [c for c in (role, kind) if c]
    metrics = [(pick_column(machines, ("utilization",)), "mean utilization", "pct"),
               (pick_column(machines, ("mean_batch_size",), ("batch",)), "mean batch size", "num"),
               (pick_column(machines, ("tokens",)), "tokens", "sum"),
               (pick_column(machines, ("energy_j",), ("energy",)), "energy (kWh)", "kwh"),
               (pick_column(machines, ("mean_power_w",), ("power",)), "mean power (kW)", "kw")]
    metrics = [m for m in metrics if m[0]]
    rows = []
    grouped = machines.groupby(keys, sort=True) if keys else [(("all",), machines)]
    for key, part in grouped:
        key = key if isinstance(key, tuple) else (key,)
        row = [*map(str, key), fmt_num(len(part), 0)]
        for column, _, how in metrics:
            values = part[column].astype(float)
            row.append({"pct": lambda: fmt_pct(values.mean(), 0), "num": lambda: fmt_num(values.mean(), 1),
                        "sum": lambda: fmt_num(values.sum(), 0), "kwh": lambda: fmt_num(values.sum() / 3.6e6, 2),
                        "kw": lambda: fmt_num(values.sum() / 1000.0, 1)}[how]())
        rows.append(row)
    headers = [*(keys or ["group"]), "instances", *(label for _, label, _ in metrics)]
    numeric = [False] * len(keys or [1]) + [True] * (1 + len(metrics))
    return (table(headers, rows, numeric=numeric)
            + f"<details><summary>Every instance ({len(machines):,})</summary>{frame_table(machines)}</details>")


def settings_body(summary: dict[str, Any]) -> str:
    """Performance backend and provenance, simulator knobs: what a reviewer needs to trust the numbers."""
    perf = summary.get("perf") or {}
    pairs = [("performance backend", pick_key(perf, "backend", default="—")),
             ("compat", pick_key(perf, "compat", default="none")),
             ("schema version", summary.get("schema_version", "—"))]
    provenance = perf.get("provenance") if isinstance(perf, dict) else None
    if isinstance(provenance, dict):
        pairs += [(f"provenance: {machine}", text) for machine, text in provenance.items()]
    elif provenance:
        pairs.append(("provenance", provenance))
    config = summary.get("config")
    extra = ""
    if config:
        extra = ("<details><summary>Simulator settings</summary><pre>"
                 + esc(json.dumps(config, indent=2, sort_keys=True)) + "</pre></details>")
    return key_values(pairs) + extra
