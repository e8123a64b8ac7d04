"""Reports of splitplan outputs: one self-contained HTML page per optimize or simulate folder.

    from splitplan.report import build_report
    build_report("out/quickstart")            # writes out/quickstart/report.html
"""

from splitplan.report.html import build_report, render_report
from splitplan.report.inputs import PlanOutput, SimOutput, load_output
from splitplan.report.plots import plots_available

__all__ = ["build_report", "render_report", "load_output", "PlanOutput", "SimOutput", "plots_available"]
