"""Ending a run as soon as one of its SLOs can no longer be met: the optimizer's pass/fail verdict, early.

The optimizer's searches only ask whether a run meets every SLO; most runs above a cluster's edge miss
one long before the end (a P99 over 48,000 requests is lost once 481 of them exceed the limit, whatever
the rest do). A watch counts, per request-level SLO, the requests whose latency is already known to
exceed its limit: TTFT when the first token is produced, TBT and E2E when the request completes. With
q the percentile and n the requests, numpy's linear percentile sits between the sorted values of rank
floor((n - 1) q / 100) and the next one, so once n - floor((n - 1) q / 100) values exceed the limit the
percentile does too: the verdict "missed" is then certain and the run can stop (`SloMissed`). The
latencies are computed with the same float operations as sim/metrics.py and slo.py, so the count is
exact, not an approximation. ITL SLOs (weighted per-token samples) and unfinished requests are not
counted early: a run that misses only through them runs to its end, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class SloMissed(Exception):  # noqa: N818 (a verdict, raised to leave the event loop)
    """Raised inside the event loop when an SLO is certain to be missed."""


@dataclass
class _Bound:
    """One SLO's limit on one metric and how many violators settle it."""

    name: str
    limit: float
    need: int
    count: int = 0


@dataclass
class _Group:
    """The SLOs of one metric that share a reference (slowdowns: the per-request unloaded latency;
    absolute limits: none), by increasing limit: a value within the first limit is within them all."""

    reference: list[float] | None
    bounds: list[_Bound]


def violators_needed(n: int, percentile: float) -> int:
    """Values above a limit that put numpy's linear `percentile` of n values above it, certainly."""
    return n - math.floor((n - 1) * percentile / 100.0)


class MissWatch:
    """Counts requests that already violate each request-level SLO of a run; see the module docstring."""

    def __init__(self, slos, refs, n: int, output_tokens: list[int], compat: bool):
        self.n = n
        self.out = output_tokens
        self.compat = compat
        self.reason = ""
        groups: dict[tuple[str, str], _Group] = {}
        for slo in slos:
            if slo.metric not in ("ttft", "tbt", "e2e"):
                continue
            key = (slo.metric, slo.kind)
            if key not in groups:
                reference = getattr(refs, f"{slo.metric}_s").tolist() if slo.kind == "slowdown" else None
                groups[key] = _Group(reference, [])
            groups[key].bounds.append(_Bound(slo.name, slo.limit, violators_needed(n, slo.percentile)))
        for group in groups.values():
            group.bounds.sort(key=lambda b: b.limit)
        self.ttft = [g for (metric, _), g in groups.items() if metric == "ttft"]
        self.tbt = [g for (metric, _), g in groups.items() if metric == "tbt"]
        self.e2e = [g for (metric, _), g in groups.items() if metric == "e2e"]

    @property
    def active(self) -> bool:
        return bool(self.ttft or self.tbt or self.e2e)

    def first_token(self, rid: int, ttft_s: float) -> None:
        """A request's first token, `ttft_s` after its arrival."""
        for group in self.ttft:
            self._check(group, rid, ttft_s)

    def completed(self, rid: int, ttft_s: float, e2e_s: float) -> None:
        """A request finished: its E2E latency and mean gap between tokens are known."""
        if self.tbt:
            out = self.out[rid]
            if self.compat:
                tbt_s = (e2e_s - ttft_s) / out
            else:
                tbt_s = 0.0 if out <= 1 else (e2e_s - ttft_s) / (out - 1)
            for group in self.tbt:
                self._check(group, rid, tbt_s)
        for group in self.e2e:
            self._check(group, rid, e2e_s)

    def _check(self, group: _Group, rid: int, value_s: float) -> None:
        value = value_s if group.reference is None else _ratio(value_s, group.reference[rid])
        for bound in group.bounds:
            if value <= bound.limit:  # within this limit, so within the larger ones after it
                return
            bound.count += 1  # NaN lands here too, as slo.percentile counts it as +inf
            if bound.count >= bound.need:
                self.reason = (f"{bound.name} missed for certain: {bound.count} of {self.n} requests over "
                               f"its limit")
                raise SloMissed(self.reason)


def _ratio(value: float, reference: float) -> float:
    """value / reference with numpy's float semantics (x/0 -> inf, 0/0 -> NaN), as slo.evaluate_slos."""
    if reference == 0.0:
        return math.nan if value == 0.0 or value != value else math.copysign(math.inf, value)
    return value / reference
