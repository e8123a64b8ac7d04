"""A sweep's outputs: one row per (point, design), the frontier plot, and where splitting starts to pay.

Written without pandas (the csv module, fixed formatting) so the same points give the same bytes;
Parquet needs pyarrow and matplotlib draws the plot, both optional (`pip install pyarrow`,
`pip install 'splitplan[plot]'`): without them those files are skipped and the table is still written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from splitplan.apps.sweep import SweepResult, Vary
from splitplan.atomic_io import write_atomic
from splitplan.plan.phases import is_split_kind

FIXED_COLUMNS = ("design", "kind", "status", "recommended", "max_rate_rps", "max_rate_ci95_lo_rps",
                 "max_rate_ci95_hi_rps", "cost_usd_per_h", "power_kw", "machines", "prompt_machines",
                 "token_machines", "mixed_machines", "plan", "binding", "simulations")
OBJECTIVE_METRIC = {"max_throughput": "max_rate_rps", "min_cost": "cost_usd_per_h", "min_power": "power_kw"}


def table_rows(result: SweepResult) -> list[dict[str, Any]]:
    """One row per (point, design), points in grid order, designs in scenario order."""
    rows = []
    for index, point in enumerate(result.points):
        plan = point["plan"]
        best = (plan.get("best") or {}).get("design")
        sims: dict[str, int] = {}
        for c in plan.get("candidates", []):
            sims[c["design"]] = sims.get(c["design"], 0) + int(c.get("n_simulations") or 0)
        for name, d in plan["designs"].items():
            b = d.get("best") or {}
            ci = b.get("max_rate_ci95_rps") or [None, None]
            rows.append({"point": index, "key": point["key"], **point["params"], "design": name,
                         "kind": d["kind"], "status": d["status"], "recommended": name == best,
                         "max_rate_rps": d.get("max_rate_rps"), "max_rate_ci95_lo_rps": ci[0],
                         "max_rate_ci95_hi_rps": ci[1], "cost_usd_per_h": d.get("cost_usd_per_h"),
                         "power_kw": d.get("power_kw"), "machines": d.get("machines"),
                         "prompt_machines": d.get("prompt_machines"), "token_machines": d.get("token_machines"),
                         "mixed_machines": d.get("mixed_machines"), "plan": b.get("label", ""),
                         "binding": d.get("binding", ""), "simulations": sims.get(name, 0)})
    return rows


def columns_of(varies: Sequence[Vary]) -> list[str]:
    return ["point", "key", *(v.path for v in varies), *FIXED_COLUMNS]


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def split_pays(rows: list[dict[str, Any]], varies: Sequence[Vary], objective: str) -> list[dict[str, Any]]:
    """Along the first numeric vary (per combination of the others): the first value from which the best
    split design (splitwise, disaggregated) beats the best co-located one (baseline, colocated) on the
    objective and stays ahead to the end of the range."""
    axis = next((v for v in varies if all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                          for x in v.values)), None)
    if axis is None:
        return []
    metric = OBJECTIVE_METRIC[objective]
    sign = 1.0 if objective == "max_throughput" else -1.0
    others = [v.path for v in varies if v is not axis]
    groups: dict[tuple, dict[Any, dict[str, float | None]]] = {}
    for row in rows:
        group = groups.setdefault(tuple(row[p] for p in others), {})
        best = group.setdefault(row[axis.path], {"split": None, "together": None})
        side = "split" if is_split_kind(row["kind"]) else "together"
        value = row.get(metric) if row["status"] == "feasible" else None
        if value is not None and (best[side] is None or sign * value > sign * best[side]):
            best[side] = value
    out = []
    for group_key, by_x in groups.items():
        xs = sorted(by_x)
        ahead = [_ahead(by_x[x], sign) for x in xs]
        start = None
        for i in range(len(xs) - 1, -1, -1):
            if not ahead[i]:
                break
            start = xs[i]
        out.append({**dict(zip(others, group_key)), "field": axis.path, "splitting_pays_from": start,
                    "splitting_ahead_at": [x for x, a in zip(xs, ahead) if a]})
    return out


def _ahead(best: dict[str, float | None], sign: float) -> bool:
    split, base = best["split"], best["together"]
    if split is None:
        return False
    return base is None or sign * split > sign * base


def write_outputs(result: SweepResult, out_dir: str | Path, objective: str, plot: bool = True) -> list[str]:
    """sweep.csv (+ sweep.parquet with pyarrow), sweep.json, frontier.png (with matplotlib); their names."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(result)
    columns = columns_of(result.varies)
    written = ["sweep.csv"]
    write_atomic(out / "sweep.csv", csv_text(rows, columns))
    pays = split_pays(rows, result.varies, objective)
    meta = {"varies": [{"field": v.path, "values": list(v.values)} for v in result.varies],
            "objective": objective, "points": [{"key": p["key"], "params": p["params"]} for p in result.points],
            "splitting_pays": pays}
    write_atomic(out / "sweep.json", json.dumps(meta, indent=2) + "\n")
    written.append("sweep.json")
    if _write_parquet(rows, columns, out / "sweep.parquet"):
        written.append("sweep.parquet")
    if plot:
        png = frontier_png(rows, result.varies, objective, pays)
        if png is not None:
            write_atomic(out / "frontier.png", png)
            written.append("frontier.png")
    return written


def _write_parquet(rows: list[dict[str, Any]], columns: list[str], path: Path) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(path, sink.getvalue().to_pybytes())
    return True


def frontier_png(rows: list[dict[str, Any]], varies: Sequence[Vary], objective: str,
                 pays: list[dict[str, Any]]) -> bytes | None:
    """The objective against the first numeric vary, one line per design, one panel per combination of
    the other varies (at most 12); the value where splitting starts to pay as a dashed line."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    axis = next((v for v in varies if all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                          for x in v.values)), None)
    if axis is None:
        return None
    metric = OBJECTIVE_METRIC[objective]
    others = [v.path for v in varies if v is not axis]
    groups = list(dict.fromkeys(tuple(r[p] for p in others) for r in rows))[:12]
    ncols = min(3, len(groups))
    nrows = (len(groups) + ncols - 1) // ncols
    width_in, height_in = 5.0 * ncols, 3.6 * nrows
    fig = Figure(figsize=(width_in, height_in))
    fig.subplots_adjust(left=0.75 / width_in, right=1 - 0.15 / width_in, top=1 - 0.4 / height_in,
                        bottom=0.55 / height_in, wspace=0.3, hspace=0.45)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax, group in zip(axes.flat, groups):
        in_group = [r for r in rows if tuple(r[p] for p in others) == group]
        for design in dict.fromkeys(r["design"] for r in in_group):
            pts = sorted((r[axis.path], r[metric]) for r in in_group
                         if r["design"] == design and r["status"] == "feasible" and r[metric] is not None)
            kind = next(r["kind"] for r in in_group if r["design"] == design)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3,
                        linestyle="-" if is_split_kind(kind) else "--", label=design)
        pay = next((p for p in pays if tuple(p.get(o) for o in others) == group), None)
        title = ", ".join(f"{o}={g}" for o, g in zip(others, group))
        if pay and pay["splitting_pays_from"] is not None:
            ax.axvline(pay["splitting_pays_from"], color="grey", linestyle=":", linewidth=1)
            title += f"{'; ' if title else ''}splitting pays from {pay['splitting_pays_from']:g}"
        ax.set_xlabel(axis.path, fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(title or "frontier", fontsize=8)
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=6)
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    return buffer.getvalue()
