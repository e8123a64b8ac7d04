"""Reports of splitplan outputs: one self-contained HTML page per optimize or simulate folder.

    from splitplan.report import build_report
    build_report("out/quickstart")            # writes out/quickstart/report.html

The names below load on first use: commands that only need one small part of this package (the trust
line that `optimize` prints) do not pay for pandas and the plotting stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"build_report": "html", "render_report": "html", "load_output": "inputs", "PlanOutput": "inputs",
            "SimOutput": "inputs", "plots_available": "plots"}
__all__ = ["build_report", "render_report", "load_output", "PlanOutput", "SimOutput", "plots_available"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'splitplan.report' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"splitplan.report.{module}"), name)
    globals()[name] = value
    return value
