"""`splitplan report DIR`: a self-contained HTML report of an optimize or simulate output."""

from __future__ import annotations

import click

from splitplan.cli.common import console


@click.command("report")
@click.argument("out_dir", metavar="DIR", type=click.Path())
@click.option("--out", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the HTML (default: DIR/report.html).")
@click.option("--no-simulate", "no_simulate", is_flag=True,
              help="Optimize outputs: do not re-simulate the best plan when the output saved no simulation of it.")
def report_command(out_dir: str, html_path: str | None, no_simulate: bool) -> None:
    """HTML report of an optimize or simulate output.

    Turns the output folder DIR into ONE self-contained HTML page. The page holds the recommendation and per-design comparison (optimize), the Pareto frontiers,
    latency CDFs against the SLO limits, and pool utilization and batch sizes over time (for an
    optimize output, of the recommended plan: re-simulated at its verified rate unless the output
    saved a simulation, or --no-simulate). It embeds
    its figures, so it opens anywhere without a network. Plots need the matplotlib extra
    (pip install 'splitplan[plot]'); without it the report keeps its tables.

    \b
    Examples:
      splitplan optimize scenarios/quickstart.yaml --out out/quickstart
      splitplan report out/quickstart
      splitplan report out/sim --out sim-report.html
    """
    from splitplan.report import build_report, plots_available

    path = build_report(out_dir, html_path, simulate_best=not no_simulate)
    console.print(f"report: {path}" + ("" if plots_available() else "  (tables only: pip install 'splitplan[plot]' for plots)"))
