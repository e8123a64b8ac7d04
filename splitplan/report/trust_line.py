"""The trust line: what the numbers rest on, in one sentence, before any recommendation.

Every rate comes from a simulation whose iteration times come from a serving stack's performance
model. Whether that model was calibrated on the GPU's architecture, extrapolated from another one, or
runs on uncalibrated defaults decides how far a planner can take the answer; the line says it per
machine, from the provenance strings the models write ("stack vllm (vllm 0.6 - 0.8): calibrated on
hopper (...); kernels: ..."). Optimize reports and `splitplan optimize` open with it; simulate reports too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import Enum
from typing import Any

_HEAD = re.compile(r"^stack (?P<stack>\S+) \((?P<engine>[^)]*)\): (?P<status>[^;(]*)")


class Trust(str, Enum):
    CALIBRATED = "calibrated"
    EXTRAPOLATED = "extrapolated"
    UNCALIBRATED = "uncalibrated"
    PROFILE = "profile"  # a measured table, interpolated


def machine_of(key: str) -> str:
    """'dgx-h100/tp8/vllm' -> 'dgx-h100/tp8' (the stack is named in the line itself)."""
    parts = str(key).split("/")
    return "/".join(parts[:2]) if len(parts) > 1 else parts[0]


def classify(provenance: str) -> tuple[Trust, str]:
    """(trust level, 'stack vllm (vllm 0.6 - 0.8): calibrated on hopper') of one provenance string."""
    text = str(provenance)
    if text.startswith("profile table"):
        return Trust.PROFILE, text
    match = _HEAD.match(text)
    head = f"stack {match['stack']} ({match['engine']}): {match['status'].strip()}" if match else text.split(";")[0]
    if "uncalibrated" in text:
        return Trust.UNCALIBRATED, head
    if "extrapolated" in text:
        return Trust.EXTRAPOLATED, head
    return Trust.CALIBRATED, head


def trust_line(provenance: Mapping[str, Any] | None, warnings: list[str] | tuple[str, ...] = ()) -> tuple[str, str]:
    """(css class good|warn|bad, sentence): per stack status, the machines it covers; then warnings."""
    if not isinstance(provenance, Mapping) or not provenance:
        return "warn", "Trust: the output records no performance-model provenance; treat its rates as unverified."
    groups: dict[tuple[Trust, str], list[str]] = {}
    for key, text in sorted(provenance.items()):
        level, head = classify(text)
        groups.setdefault((level, head), []).append(machine_of(key))
    parts = [f"{head} for {', '.join(dict.fromkeys(machines))}" for (_, head), machines in groups.items()]
    levels = {level for level, _ in groups}
    if Trust.UNCALIBRATED in levels:
        css, verdict = "bad", "not calibrated on measurements: rates are datasheet-level estimates, calibrate before buying"
    elif Trust.EXTRAPOLATED in levels:
        css, verdict = "warn", "partly extrapolated to architectures the stack was not fitted on"
    else:
        css, verdict = "good", "every machine's model is calibrated on its architecture (or measured)"
    extra = [w for w in warnings if "not calibrated" not in w and "extrapolated" not in w]
    tail = (" Also: " + "; ".join(extra) + ".") if extra else ""
    return css, f"Trust: {verdict}. " + "; ".join(parts) + "." + tail
