"""Whether a plan's phases actually run split: what a design's kind says is not what its traffic does.

A Splitwise design sends a request to the mixed pool (a provisioned mixed machine, or one borrowed from
a pool) when its prompt or token pool is overloaded; a plan whose requests mostly take that path is a
co-located cluster with extra routing, and calling it a split would mislead a purchase. The share is
measured by the simulator at the plan's verified rate (worst seed).
"""

from __future__ import annotations

from enum import Enum

from splitplan.scenario_designs import SPLIT_KINDS

SPLIT_MAX_SHARE = 0.10  # below this share of requests on mixed/borrowed machines a plan counts as split
COLOCATED_MIN_SHARE = 0.50  # from this share on, the plan mostly runs co-located


class Phases(str, Enum):
    SPLIT = "split"
    PARTLY = "partly co-located"
    COLOCATED = "co-located"


def is_split_kind(kind: str) -> bool:
    """Designed with separate prompt and token pools (splitwise, disaggregated)."""
    return kind in SPLIT_KINDS


def phases_of(kind: str, mixed_request_share: float | None) -> Phases:
    """Co-located designs are co-located by design; a split design by the share of its requests run
    co-located (unknown share: as designed; a disaggregated design has no co-located path)."""
    if not is_split_kind(kind):
        return Phases.COLOCATED
    if mixed_request_share is None or mixed_request_share < SPLIT_MAX_SHARE:
        return Phases.SPLIT
    return Phases.PARTLY if mixed_request_share < COLOCATED_MIN_SHARE else Phases.COLOCATED


def phases_text(kind: str, mixed_request_share: float | None, mixed_token_share: float | None = None) -> str:
    """One phrase for tables and the recommendation: what runs where, with the measured share."""
    phases = phases_of(kind, mixed_request_share)
    if not is_split_kind(kind):
        return "not split (every machine runs both phases)"
    if kind == "disaggregated":
        return "split prefill/decode workers (roles fixed: nothing runs co-located)"
    if mixed_request_share is None:
        return "split prompt/token pools (co-located share not measured)"
    share = f"{mixed_request_share:.0%} of requests"
    if mixed_token_share is not None:
        share += f", {mixed_token_share:.0%} of tokens"
    if phases is Phases.SPLIT:
        return f"split prompt/token pools ({share} on mixed or borrowed machines)"
    if phases is Phases.PARTLY:
        return f"partly co-located: {share} ran on mixed or borrowed machines"
    return f"not split in practice: {share} ran co-located on mixed or borrowed machines"
