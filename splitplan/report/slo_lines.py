"""What to draw in the latency CDFs: per-request values and the SLO limits that apply to them.

The paper's SLOs are slowdowns (latency / the same request's latency on an unloaded reference machine),
so a line at "6x" only means something on a CDF of per-request slowdowns. Those need each request's
reference latency: taken from requests.csv when the simulator wrote it, otherwise recomputed here from
the run's own settings (model, reference machine, performance backend) with the same functions the
simulator uses. Absolute SLOs are drawn on CDFs of the latency itself, in ms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from splitplan.report.columns import pick_column, pick_key
from splitplan.report.inputs import SimOutput

METRICS = (("ttft", "TTFT"), ("tbt", "TBT"), ("e2e", "E2E"))


def cdf_panels(sim: SimOutput) -> list[dict[str, Any]]:
    """Panels for plots.latency_cdfs: a slowdown panel per metric with slowdown SLOs (when references
    are known) and an absolute panel (ms) per metric otherwise or with absolute SLOs."""
    return cdf_panels_and_note(sim)[0]


def cdf_panels_and_note(sim: SimOutput) -> tuple[list[dict[str, Any]], str]:
    """The panels, and a note when slowdown CDFs had to be left out (references unknown or inconsistent)."""
    requests = sim.requests
    if requests.empty:
        return [], ""
    slos = parse_summary_slos(sim.summary.get("slo") or {})
    refs = None
    note = ""
    panels = []
    for metric, label in METRICS:
        column = pick_column(requests, (f"{metric}_s", metric))
        if column is None:
            continue
        values = _with_unfinished(requests, column, zero_if_nan=metric == "tbt")
        slowdown_limits = [s for s in slos if s["metric"] == metric and s["unit"] == "x"]
        absolute_limits = [s for s in slos if s["metric"] == metric and s["unit"] == "s"]
        if slowdown_limits:
            if refs is None and not note:
                refs = reference_frame(sim)
                if refs is None:
                    note = ("Slowdown CDFs left out: the unloaded reference latencies of this run could not be "
                            "rebuilt; the latencies are shown in ms.")
                elif not consistent(sim, refs, slos):
                    refs, note = None, ("Slowdown CDFs left out: reference latencies rebuilt from summary.json do "
                                        "not reproduce its SLO values (a custom profile or catalog?); the latencies "
                                        "are shown in ms.")
            if refs is not None and metric in refs:
                with np.errstate(divide="ignore", invalid="ignore"):
                    ratio = values / refs[metric]
                panels.append({"title": f"{label} slowdown vs unloaded", "values_s": ratio, "scale": 1.0,
                               "xlabel": "slowdown (×)", "limits": _lines(slowdown_limits, "×")})
        if absolute_limits or not slowdown_limits or refs is None or metric not in (refs or {}):
            panels.append({"title": label, "values_s": values, "scale": 1000.0, "xlabel": f"{label} (ms)",
                           "limits": _lines(absolute_limits, " ms")})
    return panels, note


def consistent(sim: SimOutput, refs: dict[str, np.ndarray], slos: list[dict[str, Any]], rel: float = 1e-3) -> bool:
    """Do the rebuilt references give back the simulator's own slowdown percentiles?"""
    from splitplan.slo import percentile

    summary_slo = sim.summary.get("slo") or {}
    for item in slos:
        if item["unit"] != "x" or item["metric"] not in refs:
            continue
        name = f"{item['metric']}_p{item['percentile']:g}"
        expected = (summary_slo.get(name) or {}).get("value")
        if not isinstance(expected, (int, float)):
            continue
        column = pick_column(sim.requests, (f"{item['metric']}_s",))
        values = _with_unfinished(sim.requests, column, zero_if_nan=item["metric"] == "tbt")
        with np.errstate(divide="ignore", invalid="ignore"):
            got = percentile(np.where(np.isinf(values), np.nan, values) / refs[item["metric"]], item["percentile"])
        if not np.isfinite(got) or abs(got - expected) > rel * max(abs(expected), 1e-9):
            return False
    return True


def _with_unfinished(requests: pd.DataFrame, column: str, zero_if_nan: bool = False) -> np.ndarray:
    """Latencies with unfinished requests as +inf: they count, and never meet a limit.

    A completed one-token request has no time between tokens (NaN TBT): it counts as 0, as the
    simulator's SLO evaluation does."""
    values = requests[column].astype(float).to_numpy(copy=True)
    done = pick_column(requests, ("completed", "finished"))
    if done is not None:
        completed = requests[done].astype(bool).to_numpy()
        if zero_if_nan:
            values[completed & np.isnan(values)] = 0.0
        values[~completed] = np.inf
    return np.where(np.isnan(values), np.inf, values)


def _lines(limits: list[dict[str, Any]], unit: str) -> list[tuple[str, float, float]]:
    out = []
    for item in sorted(limits, key=lambda s: s["percentile"]):
        shown = f"{item['limit']:g}×" if unit == "×" else f"{item['limit'] * 1000:g} ms"
        out.append((f"P{item['percentile']:g} ≤ {shown}", item["limit"], item["percentile"]))
    return out


def parse_summary_slos(slo: dict[str, Any]) -> list[dict[str, Any]]:
    """SLO names in summary.json ('ttft_p99', 'tbt_p90_abs') back into metric, percentile, limit, unit."""
    parsed = []
    for name, item in slo.items():
        if not isinstance(item, dict) or not isinstance(item.get("limit"), (int, float)):
            continue
        parts = name.split("_")
        if len(parts) < 2 or not parts[1].startswith("p"):
            continue
        try:
            percentile = float(parts[1][1:])
        except ValueError:
            continue
        unit = item.get("unit") or ("s" if name.endswith("_abs") else "x")
        parsed.append({"metric": parts[0], "percentile": percentile, "limit": float(item["limit"]), "unit": unit})
    return parsed


def reference_frame(sim: SimOutput) -> dict[str, np.ndarray] | None:
    """Per-request unloaded latencies {metric: seconds}, from requests.csv or recomputed; None if unknown."""
    requests = sim.requests
    found = {}
    for metric, _ in METRICS:
        ref = pick_column(requests, (f"{metric}_ref_s", f"ref_{metric}_s"))
        slowdown = pick_column(requests, (f"{metric}_slowdown",))
        latency = pick_column(requests, (f"{metric}_s",))
        if ref:
            found[metric] = requests[ref].astype(float).to_numpy()
        elif slowdown and latency:
            with np.errstate(divide="ignore", invalid="ignore"):
                found[metric] = requests[latency].astype(float).to_numpy() / requests[slowdown].astype(float).to_numpy()
    if len(found) == len(METRICS):
        return found
    return recompute_references(sim)


def recompute_references(sim: SimOutput) -> dict[str, np.ndarray] | None:
    """Reference latencies from the run's settings, exactly as the simulator evaluates its SLOs."""
    requests, summary = sim.requests, sim.summary
    prompt = pick_column(requests, ("prompt_tokens", "prompt_size"))
    output = pick_column(requests, ("output_tokens", "token_size"))
    model = pick_key(summary, "cluster.model")
    machine = pick_key(summary, "config.reference_machine", default="dgx-a100")
    if prompt is None or output is None or not model:
        return None
    try:
        from splitplan.perf import build_perf_model
        from splitplan.perf.base import PerfSettings
        from splitplan.slo import reference_latencies

        perf = summary.get("perf") or {}
        compat = pick_key(perf, "compat")
        settings = PerfSettings(backend=pick_key(perf, "backend", default="analytic"),
                                profile_path=pick_key(perf, "profile_path", "profile"),
                                compat=compat if compat not in ("none", "") else None)
        machine = pick_key(perf, "reference_machine", default=machine)
        ref_perf = build_perf_model(model, machine, settings=settings)
        refs = reference_latencies(requests[prompt].to_numpy(), requests[output].to_numpy(), ref_perf,
                                   compat=compat == "splitwisesim")
    except Exception:  # noqa: BLE001 - a report of an old or foreign output must still render its tables
        return None
    return {"ttft": refs.ttft_s, "tbt": refs.tbt_s, "e2e": refs.e2e_s}
