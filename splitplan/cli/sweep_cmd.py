"""`splitplan sweep`: one scenario optimized over a grid of varied fields, into one resumable table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from splitplan.cli.common import console, err_console, executor_context, executor_options
from splitplan.limits import MAX_SEEDS, MAX_WORKERS

if TYPE_CHECKING:
    from rich.table import Table


@click.command("sweep")
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(dir_okay=False))
@click.option("--vary", "vary_texts", multiple=True, required=True,
              help="FIELD=START:STOP:COUNT (evenly spaced, ends included) or FIELD=A,B,...; a dotted field of "
                   "the scenario file; repeatable (every combination is optimized).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default out/sweep-NAME); run again with the same folder to resume.")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=None,
              help="Parallel optimizations (default min(2, cpus); with Ray: the cluster's CPUs).")
@click.option("--seeds", type=click.IntRange(min=1, max=MAX_SEEDS), default=None,
              help="Simulated seeds per candidate (overrides the scenario's).")
@click.option("--no-plot", is_flag=True, help="Skip frontier.png.")
@click.option("--quiet", is_flag=True, help="No table or progress bar (errors only).")
@executor_options
def sweep_command(scenario_path, vary_texts, out_dir, workers, seeds, no_plot, quiet, executor, address) -> None:
    """Optimize a scenario at every combination of varied fields and write one table of the answers, with
    the frontier plot; an interrupted sweep resumes where it stopped.

    \b
    Writes OUT/sweep.csv (one row per point and design), sweep.parquet (if pyarrow is installed),
    sweep.json (the grid and where splitting starts to pay), frontier.png (with the plot extra) and
    points/KEY.json (each point's plan.json, saved as it finishes).

    \b
    Examples:
      splitplan sweep scenarios/quickstart.yaml --vary constraints.cost_usd_per_h=200:2000:10
      splitplan sweep scenarios/quickstart.yaml --vary constraints.cost_usd_per_h=200:800:4 \\
          --vary model=llama2-70b,llama3.1-70b --out out/budgets
      splitplan sweep scenarios/quickstart.yaml --vary constraints.cost_usd_per_h=200:2000:10 \\
          --executor ray --address auto
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from splitplan.apps.sweep import BaseScenario, Vary, sweep
    from splitplan.apps.sweep_table import split_pays, table_rows, write_outputs

    varies = [Vary.parse(text) for text in vary_texts]
    base = BaseScenario.load(scenario_path)
    name = str(base.data.get("name") or Path(base.source).stem)
    out = Path(out_dir or f"out/sweep-{name}")
    objective = str(base.data.get("objective") or "max_throughput")
    with executor_context(executor, address), Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("points"),
            TimeElapsedColumn(), console=err_console, disable=quiet, transient=True) as bar:
        task = bar.add_task(f"sweeping {name}", total=0)
        result = sweep(scenario_path, varies, out, workers=workers, seeds=seeds,
                       on_total=lambda n: bar.update(task, total=n), on_point=lambda _: bar.advance(task))
    written = write_outputs(result, out, objective, plot=not no_plot)
    if quiet:
        return
    rows = table_rows(result)
    console.print(_table(rows, varies, objective))
    for pay in split_pays(rows, varies, objective):
        where = ", ".join(f"{k}={v}" for k, v in pay.items() if k not in ("field", "splitting_pays_from",
                                                                            "splitting_ahead_at"))
        start = pay["splitting_pays_from"]
        console.print(f"splitting pays{' at ' + where if where else ''}: "
                      + (f"from {pay['field']} = {start:g}" if start is not None else
                         f"not from any {pay['field']} onwards"))
    reused = f" ({result.reused} of {len(result.points)} points from an earlier run)" if result.reused else ""
    console.print(f"wrote {out}/{', '.join(written)}{reused}")


def _table(rows: list[dict], varies: list, objective: str) -> Table:
    from rich.table import Table

    from splitplan.apps.sweep_table import OBJECTIVE_METRIC

    metric = OBJECTIVE_METRIC[objective]
    designs = list(dict.fromkeys(r["design"] for r in rows))
    table = Table(title=f"{metric} per design (* recommended)", show_edge=False)
    for v in varies:
        table.add_column(v.path)
    for d in designs:
        table.add_column(d, justify="right")
    for point in dict.fromkeys(r["point"] for r in rows):
        in_point = {r["design"]: r for r in rows if r["point"] == point}
        first = next(iter(in_point.values()))
        cells = []
        for d in designs:
            r = in_point.get(d)
            value = None if r is None or r["status"] != "feasible" else r[metric]
            cells.append("-" if value is None else f"{value:,.2f}{'*' if r['recommended'] else ''}")
        table.add_row(*(str(first[v.path]) for v in varies), *cells)
    return table
