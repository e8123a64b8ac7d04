"""HTML tables and number formatting for the report (no styling here: the page's CSS does that).

Kept free of matplotlib so the tables render on an install without the `plot` extra.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd


def esc(value: Any) -> str:
    """Text safe to put in HTML (user-supplied names end up in the report)."""
    return html.escape(str(value), quote=True)


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return False


def fmt_num(value: Any, digits: int = 1) -> str:
    """A number with thousands separators and fixed decimals; '—' for missing values."""
    if is_missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if float(value).is_integer() and digits == 0:
            return f"{int(value):,}"
        return f"{value:,.{digits}f}"
    return str(value)


def fmt_ms(seconds: Any) -> str:
    """Seconds shown in milliseconds (latencies are easier to compare in ms)."""
    if is_missing(seconds) or not isinstance(seconds, (int, float)):
        return "—"
    ms = 1000.0 * seconds
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:,.1f} ms"


def fmt_pct(fraction: Any, digits: int = 0) -> str:
    if is_missing(fraction) or not isinstance(fraction, (int, float)):
        return "—"
    return f"{100.0 * fraction:.{digits}f}%"


def fmt_yes_no(flag: Any, yes: str = "met", no: str = "MISSED") -> str:
    if is_missing(flag):
        return "—"
    return yes if bool(flag) else no


_NUM = ' class="num"'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[bool] | None = None,
          row_classes: Sequence[str] | None = None, caption: str | None = None, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (for cells the report built as HTML itself)."""
    numeric = list(numeric) if numeric is not None else [False] * len(headers)
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(
        f'<th{_NUM if numeric[i] else ""}>{esc(h)}</th>' for i, h in enumerate(headers)) + "</tr></thead>")
    out.append("<tbody>")
    for index, row in enumerate(rows):
        cls = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        cells = []
        for i, cell in enumerate(row):
            text = str(cell) if raw else esc(cell)
            cells.append(f'<td{_NUM if i < len(numeric) and numeric[i] else ""}>{text}</td>')
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """A two-column definition table (label, value) for headline figures."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def frame_table(frame: pd.DataFrame, *, max_rows: int = 200, digits: int = 3) -> str:
    """A whole DataFrame as a table (for the collapsible raw-data sections), truncated to `max_rows`."""
    if frame.empty:
        return "<p class=\"note\">(empty)</p>"
    shown = frame.head(max_rows)
    numeric = [pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])
               for c in shown.columns]
    rows = []
    for record in shown.itertuples(index=False):
        rows.append([_cell(v, digits) for v in record])
    note = (f'<p class="note">Showing {max_rows:,} of {len(frame):,} rows.</p>' if len(frame) > max_rows else "")
    return table([str(c) for c in shown.columns], rows, numeric=numeric) + note


def _cell(value: Any, digits: int) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{int(value)}"
    return str(value)


def slo_rows(slo: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    """Rows (SLO, observed, limit, margin, verdict) and row classes for a summary's `slo` mapping."""
    rows, classes = [], []
    for name, item in sorted(slo.items(), key=slo_order):
        if not isinstance(item, dict):
            continue
        unit = item.get("unit") or ""
        rows.append([slo_label(name), _with_unit(item.get("value"), unit), _with_unit(item.get("limit"), unit),
                     fmt_margin(item.get("margin")),
                     fmt_yes_no(item.get("met"))])
        classes.append("" if item.get("met") else "bad")
    return rows, classes


def slo_label(name: str) -> str:
    """'ttft_p99' -> 'TTFT P99'; 'tbt_p90_abs' -> 'TBT P90 (absolute)'."""
    parts = name.split("_")
    if len(parts) < 2:
        return name
    suffix = " (absolute)" if parts[-1] == "abs" else ""
    return f"{parts[0].upper()} {parts[1].upper()}{suffix}"


_METRIC_ORDER = {"ttft": 0, "tbt": 1, "e2e": 2, "itl": 3}


def slo_order(pair: tuple[str, Any]) -> tuple[int, float, str]:
    """TTFT, TBT, E2E, ITL; then by percentile (names look like 'ttft_p99' or 'tbt_p90_abs')."""
    parts = pair[0].split("_")
    try:
        percentile = float(parts[1][1:]) if len(parts) > 1 and parts[1].startswith("p") else 0.0
    except ValueError:
        percentile = 0.0
    return _METRIC_ORDER.get(parts[0], 9), percentile, pair[0]


def fmt_margin(margin: Any) -> str:
    """SLO margin = (limit - value) / limit: +40% is headroom, -10% a violation by a tenth of the limit."""
    if is_missing(margin) or not isinstance(margin, (int, float)):
        return "—"
    if math.isinf(margin):
        return "unfinished requests" if margin < 0 else "∞"
    return f"{100.0 * margin:+.1f}%"


def _with_unit(value: Any, unit: str) -> str:
    if is_missing(value):
        return "—"
    if unit == "s":
        return fmt_ms(value)
    if unit in ("x", "slowdown", "×"):
        return f"{value:.2f}×"
    return f"{fmt_num(value, 3)} {unit}".strip()


def uncalibrated_warning(provenance: Any) -> str:
    """A warning paragraph naming the machines whose performance model runs on datasheet defaults."""
    if not isinstance(provenance, dict):
        return ""
    names = sorted(str(machine) for machine, text in provenance.items() if "uncalibrated" in str(text))
    if not names:
        return ""
    return (f'<p class="verdict warn">Uncalibrated performance model ({esc(", ".join(names))}): iteration times '
            "come from datasheet numbers with default software efficiencies, not measurements. Calibrate before "
            "comparing with calibrated machines (docs/calibration.md).</p>")
