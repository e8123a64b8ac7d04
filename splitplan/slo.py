"""Latency SLOs: their forms, the unloaded reference latencies they are relative to, and evaluation.

The paper's SLOs (Table VI) are *slowdowns*: a request's latency divided by the same request's
latency on an unloaded reference machine (DGX-A100), at P50/P90/P99 over requests. Planners also
state absolute limits ("TBT P90 <= 200 ms"), so both kinds exist. Absolute limits are kept in seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from splitplan.errors import SplitplanError, nearest_names

METRICS = ("ttft", "tbt", "e2e", "itl")
KINDS = ("slowdown", "absolute")
_LABEL = {"ttft": "TTFT", "tbt": "TBT", "e2e": "E2E", "itl": "ITL"}
_LIMIT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(x|ms|s)\s*$")
_MAPPING_KEYS = ("metric", "percentile", "slowdown", "limit_ms", "limit_s")


@dataclass(frozen=True)
class SLO:
    """One latency objective: `percentile` of `metric` over requests must stay <= `limit`.

    kind "slowdown": limit is a multiple of the unloaded reference latency (>= 1).
    kind "absolute": limit in seconds. ITL (per-token gaps) only takes absolute limits: a single
    token has no unloaded reference of its own.
    """

    metric: str
    percentile: float
    limit: float
    kind: str = "slowdown"

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise SplitplanError(f"unknown metric '{self.metric}'" + nearest_names(str(self.metric), METRICS),
                                 field="metric")
        if self.kind not in KINDS:
            raise SplitplanError(f"unknown SLO kind '{self.kind}' (slowdown, absolute)", field="kind")
        if not _is_number(self.percentile) or not 0 < self.percentile < 100:
            raise SplitplanError(f"percentile must be strictly between 0 and 100, got {self.percentile!r}",
                                 field="percentile")
        if not _is_number(self.limit) or not math.isfinite(self.limit) or self.limit <= 0:
            raise SplitplanError(f"limit must be a positive number, got {self.limit!r}", field="limit")
        if self.kind == "slowdown" and self.limit < 1:
            raise SplitplanError(f"slowdown {self.limit:g}x: no machine meets a slowdown below 1x even unloaded",
                                 field="slowdown")
        if self.kind == "slowdown" and self.metric == "itl":
            raise SplitplanError("itl SLOs need an absolute limit (e.g. itl:p99:300ms)", field="metric")
        object.__setattr__(self, "percentile", float(self.percentile))
        object.__setattr__(self, "limit", float(self.limit))

    @property
    def name(self) -> str:
        """Stable key, e.g. 'ttft_p99' (absolute ones get an '_abs' suffix: both kinds may coexist)."""
        return f"{self.metric}_p{self.percentile:g}" + ("" if self.kind == "slowdown" else "_abs")

    @property
    def unit(self) -> str:
        return "x" if self.kind == "slowdown" else "s"

    def describe(self) -> str:
        """'TTFT P99 <= 6x unloaded' or 'TBT P90 <= 200 ms'."""
        head = f"{_LABEL[self.metric]} P{self.percentile:g} <="
        if self.kind == "slowdown":
            return f"{head} {self.limit:g}x unloaded"
        return f"{head} {format_seconds(self.limit)}"

    def to_text(self) -> str:
        """The CLI form that parse_slo reads back ('ttft:p99:6x', 'tbt:p90:200ms')."""
        limit = f"{self.limit:g}x" if self.kind == "slowdown" else f"{self.limit * 1000:g}ms"
        return f"{self.metric}:p{self.percentile:g}:{limit}"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def format_seconds(value_s: float) -> str:
    """Latencies read best in ms below a second."""
    if not math.isfinite(value_s):
        return "inf" if value_s > 0 else str(value_s)
    return f"{value_s * 1000:.4g} ms" if value_s < 1 else f"{value_s:.4g} s"


def paper_slos() -> tuple[SLO, ...]:
    """Splitwise Table VI: slowdown vs the same request on an unloaded DGX-A100; all nine must hold."""
    table = {"ttft": (2.0, 3.0, 6.0), "tbt": (1.25, 1.5, 5.0), "e2e": (1.25, 1.5, 5.0)}
    return tuple(SLO(metric, p, limit, "slowdown")
                 for metric, limits in table.items() for p, limit in zip((50, 90, 99), limits))


# --------------------------------------------------------------------------------------------- parsing

def _parse_percentile(text: object, source: str | None, field: str) -> float:
    raw = str(text).strip().lower()
    raw = raw[1:] if raw.startswith("p") else raw
    try:
        value = float(raw)
    except ValueError:
        raise SplitplanError(f"percentile '{text}' is not a number (e.g. p99 or 99)", source=source,
                             field=field) from None
    if not 0 < value < 100:
        raise SplitplanError(f"percentile {value:g} is outside (0, 100)", source=source, field=field)
    return value


def _build(metric: str, percentile: float, limit: float, kind: str, source: str | None, field: str) -> SLO:
    try:
        return SLO(metric, percentile, limit, kind)
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=source, field=field) from None


def parse_slo(text: str, source: str | None = "--slo") -> SLO:
    """CLI form METRIC:PERCENTILE:LIMIT, e.g. 'ttft:p99:6x', 'tbt:p90:200ms', 'itl:p99:0.3s'."""
    parts = [p.strip() for p in str(text).split(":")]
    if len(parts) != 3:
        raise SplitplanError(f"'{text}' is not METRIC:PERCENTILE:LIMIT (e.g. ttft:p99:6x, tbt:p90:200ms)",
                             source=source)
    metric = parts[0].lower()
    if metric not in METRICS:
        raise SplitplanError(f"unknown metric '{parts[0]}'" + nearest_names(metric, METRICS), source=source,
                             field=text)
    percentile = _parse_percentile(parts[1], source, text)
    match = _LIMIT_RE.match(parts[2].lower())
    if not match:
        raise SplitplanError(f"limit '{parts[2]}' needs a unit: 6x (slowdown), 200ms or 0.2s (absolute)",
                             source=source, field=text)
    number, unit = float(match.group(1)), match.group(2)
    if unit == "x":
        return _build(metric, percentile, number, "slowdown", source, text)
    return _build(metric, percentile, number / 1000 if unit == "ms" else number, "absolute", source, text)


def slo_from_mapping(item: dict, source: str | None, field: str) -> SLO:
    """YAML form {metric, percentile, slowdown | limit_ms | limit_s}."""
    for key in item:
        if key not in _MAPPING_KEYS:
            raise SplitplanError(f"unknown key '{key}'" + nearest_names(str(key), _MAPPING_KEYS), source=source,
                                 field=field)
    for key in ("metric", "percentile"):
        if key not in item:
            raise SplitplanError(f"missing '{key}'", source=source, field=field)
    limits = [key for key in ("slowdown", "limit_ms", "limit_s") if key in item]
    if len(limits) != 1:
        raise SplitplanError("give exactly one of slowdown, limit_ms, limit_s", source=source, field=field)
    metric = str(item["metric"]).strip().lower()
    if metric not in METRICS:
        raise SplitplanError(f"unknown metric '{item['metric']}'" + nearest_names(metric, METRICS),
                             source=source, field=f"{field}.metric")
    percentile = _parse_percentile(item["percentile"], source, f"{field}.percentile")
    key = limits[0]
    raw = item[key]
    if isinstance(raw, str) and key == "slowdown" and raw.strip().lower().endswith("x"):
        raw = raw.strip()[:-1]
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SplitplanError(f"'{raw}' is not a number", source=source, field=f"{field}.{key}") from None
    if key == "slowdown":
        return _build(metric, percentile, value, "slowdown", source, f"{field}.{key}")
    return _build(metric, percentile, value / 1000 if key == "limit_ms" else value, "absolute", source,
                  f"{field}.{key}")


def parse_slos(items: object, source: str | None = None) -> tuple[SLO, ...]:
    """Scenario `slos:`: the string "paper", or a list of mappings / CLI strings / "paper"."""
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise SplitplanError("slos must be \"paper\" or a non-empty list of {metric, percentile, "
                             "slowdown|limit_ms|limit_s}", source=source, field="slos")
    slos: list[SLO] = []
    for index, item in enumerate(items):
        field = f"slos[{index}]"
        if isinstance(item, SLO):
            slos.append(item)
        elif isinstance(item, str) and item.strip().lower() == "paper":
            slos.extend(paper_slos())
        elif isinstance(item, str):
            slos.append(parse_slo(item, source=f"{source}: {field}" if source else field))
        elif isinstance(item, dict):
            slos.append(slo_from_mapping(item, source, field))
        else:
            raise SplitplanError(f"expected a mapping or a string like ttft:p99:6x, got {item!r}", source=source,
                                 field=field)
    seen: set[str] = set()
    for slo in slos:
        if slo.name in seen:
            raise SplitplanError(f"{slo.name} is given twice", source=source, field="slos")
        seen.add(slo.name)
    return tuple(slos)


# ------------------------------------------------------------------------------- reference latencies

@dataclass(frozen=True)
class ReferenceLatencies:
    """Per-request latencies on an unloaded reference instance (seconds), aligned with the workload."""

    ttft_s: np.ndarray
    tbt_s: np.ndarray
    e2e_s: np.ndarray


def reference_latencies(prompt_tokens: Sequence[int] | np.ndarray, output_tokens: Sequence[int] | np.ndarray,
                        ref_perf, *, compat: bool = False) -> ReferenceLatencies:
    """Unloaded latencies of each request alone on `ref_perf` (a PerfModel), vectorized.

    TTFT_ref = one prefill of the prompt; TBT_ref = mean batch-1 decode step over contexts s..s+o-1
    (closed form from decode_coeffs). compat=True copies SplitwiseSim, whose baseline TBT is its
    token-time interpolator evaluated at the prompt size (decode_ms(s, 0)).
    E2E_ref = TTFT_ref + TBT_ref * (o - 1).
    """
    s = np.asarray(prompt_tokens, dtype=np.float64)
    o = np.asarray(output_tokens, dtype=np.float64)
    if s.shape != o.shape:
        raise ValueError("prompt_tokens and output_tokens must have the same shape")
    ttft_ms = np.asarray(ref_perf.prefill_ms(np.ones_like(s), s, s * s), dtype=np.float64)
    if compat:
        tbt_ms = np.asarray(ref_perf.decode_ms(s, np.zeros_like(s)), dtype=np.float64)
    else:
        base_ms, per_token_ms = ref_perf.decode_coeffs(1)
        tbt_ms = base_ms + per_token_ms * (s + (o - 1.0) / 2.0)
    ttft_ms, tbt_ms = np.broadcast_to(ttft_ms, s.shape), np.broadcast_to(tbt_ms, s.shape)
    return ReferenceLatencies(ttft_s=ttft_ms / 1000.0, tbt_s=tbt_ms / 1000.0,
                              e2e_s=(ttft_ms + tbt_ms * (o - 1.0)) / 1000.0)


# ---------------------------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class SLOResult:
    """How one SLO fared: the measured percentile, its limit, and the relative headroom."""

    slo: SLO
    value: float  # slowdown (x) or seconds, per `unit`
    limit: float
    met: bool
    margin: float  # (limit - value) / limit: > 0 headroom, < 0 violation; -inf when unfinished requests bind
    unit: str

    def describe(self) -> str:
        shown = f"{self.value:.3g}x" if self.unit == "x" else format_seconds(self.value)
        return f"{self.slo.describe()}: {shown} ({'met' if self.met else 'VIOLATED'}, margin {self.margin:+.1%})"


def percentile(values: np.ndarray, q: float, weights: np.ndarray | None = None) -> float:
    """numpy's default (linear) percentile, made safe for +inf (unfinished requests), with optional weights.

    Integer weights behave as if each value were repeated `weight` times; NaN counts as +inf.
    """
    values = np.asarray(values, dtype=np.float64)
    values = np.where(np.isnan(values), np.inf, values)
    if values.size == 0:
        return math.nan
    if weights is None:  # two order statistics: a partition, not a full sort (every simulation pays this)
        position = (values.size - 1) * q / 100.0
        low = math.floor(position)
        fraction = position - low
        high = min(low + 1, values.size - 1)
        part = np.partition(values, (low, high))
        a, b = part[low], part[high]
        if fraction == 0 or a == b:
            return float(a)
        return float(a + (b - a) * fraction)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    if weights is None:
        cumulative = np.arange(1, ordered.size + 1, dtype=np.float64)
    else:
        cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    total = cumulative[-1]
    if total <= 0:
        return math.nan
    position = (total - 1.0) * q / 100.0 if total >= 1 else 0.0
    low = math.floor(position)
    fraction = position - low
    at = np.searchsorted(cumulative, [low, low + 1], side="right")
    a = ordered[min(int(at[0]), ordered.size - 1)]
    b = ordered[min(int(at[1]), ordered.size - 1)]
    if fraction == 0 or a == b:
        return float(a)
    return float(a + (b - a) * fraction)  # b may be inf: the result is inf, as a violation should be


def evaluate_slos(slos: Iterable[SLO], *, ttft_s, tbt_s, e2e_s, refs: ReferenceLatencies | None,
                  itl_s=None, itl_weights=None) -> list[SLOResult]:
    """Check each SLO against per-request latencies (seconds; NaN = unfinished, counted as a violation).

    Slowdown SLOs use the percentile over requests of latency / reference (SplitwiseSim's
    *_slowdown columns); absolute ones the percentile of the latency. ITL uses the per-token samples
    `itl_s`, optionally weighted (e.g. iteration times weighted by the tokens they produced).
    Requests with a single output token have no gaps: pass their TBT as 0, not NaN.
    """
    latencies = {"ttft": ttft_s, "tbt": tbt_s, "e2e": e2e_s}
    results = []
    for slo in slos:
        if slo.metric == "itl":
            if itl_s is None:
                raise SplitplanError("itl SLOs need per-token samples (itl_s)", field=slo.name)
            value = percentile(itl_s, slo.percentile, itl_weights)
        else:
            measured = np.asarray(latencies[slo.metric], dtype=np.float64)
            if slo.kind == "slowdown":
                if refs is None:
                    raise SplitplanError("slowdown SLOs need reference latencies", field=slo.name)
                reference = np.asarray(getattr(refs, f"{slo.metric}_s"), dtype=np.float64)
                with np.errstate(divide="ignore", invalid="ignore"):
                    measured = measured / reference
            value = percentile(measured, slo.percentile)
        met = bool(value <= slo.limit)  # NaN (nothing measured) is not met
        margin = (slo.limit - value) / slo.limit if not math.isnan(value) else -math.inf
        results.append(SLOResult(slo, value, slo.limit, met, margin, slo.unit))
    return results


def unmeetable_slos(slos: Iterable[SLO], refs: ReferenceLatencies) -> list[str]:
    """Absolute SLOs that no request load can meet: the limit is below the *unloaded* percentile.

    Pass references computed on the fastest candidate instance: unmeetable there means unmeetable
    anywhere, so the optimizer can report infeasibility before searching. Slowdowns >= 1x are always
    met unloaded, so only absolute SLOs can appear here.
    """
    problems = []
    for slo in slos:
        if slo.kind != "absolute":
            continue
        if slo.metric == "itl":  # unloaded per-token gaps: each request's TBT, once per generated gap
            gaps = np.asarray(refs.tbt_s, dtype=np.float64)
            ttft, e2e = np.asarray(refs.ttft_s), np.asarray(refs.e2e_s)
            with np.errstate(divide="ignore", invalid="ignore"):  # o - 1 gaps per request
                weights = np.where(gaps > 0, np.rint((e2e - ttft) / gaps), 0.0)
            unloaded = percentile(gaps, slo.percentile, weights) if weights.sum() > 0 else math.nan
        else:
            unloaded = percentile(getattr(refs, f"{slo.metric}_s"), slo.percentile)
        if not math.isnan(unloaded) and unloaded > slo.limit:
            problems.append(f"{slo.describe()} cannot be met: even unloaded the P{slo.percentile:g} "
                            f"{_LABEL[slo.metric]} is {format_seconds(unloaded)}")
    return problems


REFERENCE_HINT = "reference_machine in a scenario, --reference-machine for simulate"


def reference_perf_model(model: str, machine: str, tp: int | None, settings, catalog, hint: str = REFERENCE_HINT):
    """The performance model of the SLO reference instance. A model the reference cannot hold (the
    default A100 and DeepSeek-R1 or Kimi) is refused naming the reference and how to choose another:
    slowdown SLOs divide by its unloaded latencies, so no run can be judged without it."""
    from splitplan.perf import build_perf_model

    try:
        return build_perf_model(model, machine, tp=tp, settings=settings, catalog=catalog)
    except SplitplanError as exc:
        if exc.source:  # a file's problem (a profile, a stack) names that file
            raise
        raise SplitplanError(f"{exc.problem}; {machine} is the SLO reference (slowdown SLOs are relative to its "
                             f"unloaded latencies): choose one that holds the model ({hint})",
                             field="reference_machine") from None
