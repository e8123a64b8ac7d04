"""The report's figures, as base64 PNG data for <img> tags (the page must open without a network).

matplotlib is the optional `plot` extra: it is imported lazily, through its object-oriented API (no
pyplot, so no global state and no GUI backend), and every function returns None when it is absent so
the report falls back to tables. PNGs carry no timestamp or version metadata: the same output folder
gives a byte-identical report.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

PLOT_EXTRA_HINT = "Plots need the optional matplotlib extra: pip install 'splitplan[plot]'."
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _figure_class() -> Any | None:
    """matplotlib's Figure, or None when the extra is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def plots_available() -> bool:
    return _figure_class() is not None


def _png_base64(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _new_figure(width_in: float, height_in: float, ncols: int = 1, nrows: int = 1,
                margins: dict[str, float] | None = None) -> tuple[Any, Any] | None:
    """A figure with fixed margins: matplotlib's automatic layouts draw every figure twice (slow)."""
    figure_class = _figure_class()
    if figure_class is None:
        return None
    fig = figure_class(figsize=(width_in, height_in))
    fig.subplots_adjust(**{"left": 0.1, "right": 0.97, "top": 0.9, "bottom": 0.15, "wspace": 0.3, "hspace": 0.35,
                           **(margins or {})})
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def latency_cdfs(panels: Sequence[dict[str, Any]]) -> str | None:
    """One empirical CDF per panel, in ms, with the panel's SLO limits as vertical lines.

    Each panel: {"title", "values_s" (array), "limits": [(label, limit_s, percentile)], "xlabel"}.
    A limit at percentile p is met when the curve crosses p/100 left of the line.
    """
    made = _new_figure(4.2 * len(panels), 3.4, ncols=len(panels), margins={"left": 0.06, "right": 0.98, "wspace": 0.28,
                                                                            "top": 0.9, "bottom": 0.15})
    if made is None:
        return None
    fig, axes = made
    for ax, panel in zip(axes[0], panels):
        values = np.sort(np.asarray(panel["values_s"], dtype=float))
        total = values.size  # unfinished requests (NaN/inf) count: the curve then never reaches 1
        values = values[np.isfinite(values)]
        scale = panel.get("scale", 1000.0)
        if values.size:
            fraction = np.arange(1, values.size + 1) / total
            ax.step(values * scale, fraction, where="post", color=_COLORS[0], linewidth=1.6, label="requests")
        for i, (label, limit, percentile) in enumerate(panel.get("limits", ())):
            color = _COLORS[(i + 1) % len(_COLORS)]
            ax.axvline(limit * scale, color=color, linestyle="--", linewidth=1.1, label=label)
            if percentile is not None:
                ax.plot([limit * scale], [percentile / 100.0], marker="o", color=color, markersize=4)
        ax.set_title(panel["title"])
        ax.set_xlabel(panel.get("xlabel", "ms"))
        ax.set_ylabel("fraction of requests")
        ax.set_ylim(0, 1.02)
        if values.size and values.max() / max(values.min(), 1e-9) > 50:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    return _png_base64(fig)


def timeline(frame: pd.DataFrame, *, time_col: str, group_col: str | None,
             series: Sequence[tuple[str, str]]) -> str | None:
    """Stacked panels over time, one line per pool: `series` is [(column, axis label)]."""
    made = _new_figure(9.0, 2.2 * len(series), nrows=len(series), margins={"left": 0.09, "right": 0.98, "top": 0.97,
                                                                           "bottom": 0.35 / len(series), "hspace": 0.3})
    if made is None:
        return None
    fig, axes = made
    groups = sorted(frame[group_col].astype(str).unique()) if group_col else [None]
    for ax, (column, label) in zip(axes[:, 0], series):
        for i, group in enumerate(groups):
            part = frame if group is None else frame[frame[group_col].astype(str) == group]
            ax.plot(part[time_col], part[column], color=_COLORS[i % len(_COLORS)], linewidth=1.3,
                    label=group or column, drawstyle="steps-post")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if group_col:
            ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    return _png_base64(fig)


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")


def pareto(points: pd.DataFrame, frontier: pd.DataFrame, *, x: str, y: str, group: str | None,
           xlabel: str, ylabel: str, best: tuple[float, float] | None = None) -> str | None:
    """Verified candidates as dots (colour and shape by design), the Pareto frontier as a thin grey
    step line drawn behind them, the plan as a star.

    The frontier used to be a black line with square markers over the dots: it hid the colours of
    the designs on it (7 designs in the legend, 3 colours visible). Drawn underneath, thin and
    without markers, every design keeps its colour; the chart is sized for the page width."""
    made = _new_figure(10.0, 4.8, margins={"left": 0.08, "right": 0.78, "top": 0.95, "bottom": 0.12})
    if made is None:
        return None
    fig, axes = made
    ax = axes[0, 0]
    if not frontier.empty and x in frontier and y in frontier:
        line = frontier.sort_values(x)
        ax.step(line[x], line[y], where="post", color="#6e7781", linewidth=1.0, linestyle="--", zorder=1,
                label="Pareto frontier")
    groups = list(dict.fromkeys(points[group].astype(str))) if group and group in points else [None]
    for i, name in enumerate(groups):
        part = points if name is None else points[points[group].astype(str) == name]
        ax.scatter(part[x], part[y], s=42, alpha=0.85, color=_COLORS[i % len(_COLORS)],
                   marker=_MARKERS[i % len(_MARKERS)], edgecolor="white", linewidth=0.6, zorder=3,
                   label=name or "candidates")
    if best is not None:
        ax.scatter([best[0]], [best[1]], marker="*", s=260, facecolor="none", edgecolor="black", linewidth=1.4,
                   zorder=5, label="recommended plan")
    ax.set_xlabel(xlabel, fontsize=10)
    ax.set_ylabel(ylabel, fontsize=10)
    ax.tick_params(labelsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png_base64(fig)


def bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]], ylabel: str) -> str | None:
    """Grouped bars, e.g. throughput of each design at the same budget."""
    made = _new_figure(max(4.5, 1.3 * len(labels) + 2), 3.4, margins={"left": 0.14, "right": 0.97, "top": 0.95,
                                                                      "bottom": 0.3})
    if made is None:
        return None
    fig, axes = made
    ax = axes[0, 0]
    positions = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series):
        ax.bar(positions + i * width - 0.4 + width / 2, values, width, label=name, color=_COLORS[i % len(_COLORS)])
    ax.set_xticks(positions, labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if len(series) > 1:
        ax.legend(fontsize=7)
    return _png_base64(fig)


def img_tag(png_base64: str, alt: str) -> str:
    """An <img> holding its PNG inline (data URI), so the file is self-contained."""
    from splitplan.report.tables import esc

    return f'<img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{png_base64}">'
