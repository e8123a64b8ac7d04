"""`splitplan optimize`: size every design of a scenario and recommend the best verified plan."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from splitplan.cli.common import (catalog_option, console, err_console, executor_context, executor_options,
                                  load_catalog_from, perf_options, perf_settings_from)
from splitplan.errors import SplitplanError
from splitplan.limits import MAX_SEEDS, MAX_WORKERS
from splitplan.plan.optimize import ProgressHooks, optimize
from splitplan.plan.problem import perf_settings_of
from splitplan.plan.result import PlanResult
from splitplan.scenario import load_scenario


def check_writable_parent(out_dir: str) -> None:
    """The folder that will hold --out exists (created if needed) and is writable."""
    parent = Path(out_dir).expanduser().resolve().parent
    parent.mkdir(parents=True, exist_ok=True)  # OSError -> one line via main
    if not os.access(parent, os.W_OK):
        raise SplitplanError("folder is not writable", source=str(parent), field="--out")

INFEASIBLE_EXIT_CODE = 1


@click.command("optimize")
@click.argument("scenario_path", metavar="SCENARIO", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write plan.json, candidates.csv and pareto.csv here (atomically).")
@click.option("--json", "as_json", is_flag=True, help="Print plan.json to stdout instead of tables.")
@click.option("--quiet", is_flag=True, help="No tables or progress bar (errors and --json output only).")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=None,
              help="Parallel simulation processes (default: scenario, else min(2, cpus)).")
@click.option("--objective", type=click.Choice(["max_throughput", "min_cost", "min_power"]), default=None,
              help="Override the scenario's objective.")
@click.option("--max-cost-usd-per-h", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Cost budget in US$ per hour (overrides constraints.cost_usd_per_h).")
@click.option("--max-power-kw", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Power budget in kW (overrides constraints.power_kw).")
@click.option("--min-throughput-rps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Throughput target in requests/s (for min_cost / min_power).")
@click.option("--seeds", type=click.IntRange(min=1, max=MAX_SEEDS), default=None, help="Simulated seeds per candidate.")
@click.option("--method", type=click.Choice(["ilp", "grid", "both"]), default=None,
              help="ilp: capacity model + ILP + simulated local search; grid: simulate every plan; both.")
@perf_options
@catalog_option
@executor_options
def optimize_command(scenario_path, out_dir, as_json, quiet, workers, objective, max_cost_usd_per_h, max_power_kw,
                     min_throughput_rps, seeds, method, perf_backend, profile_path, stack, compat,
                     catalog_files, executor="local", address=None) -> int:
    """Optimize the cluster designs of a scenario file under its budgets and SLOs; every reported plan is
    confirmed by the simulator on several seeds. Exit status 1 when no plan meets the constraints.

    \b
    Examples:
      splitplan optimize scenarios/quickstart.yaml
      splitplan optimize scenarios/quickstart.yaml --out out/quickstart --workers 2
      splitplan optimize scenarios/quickstart.yaml --objective min_cost --min-throughput-rps 30
      splitplan optimize scenarios/examples/iso_power_coding.yaml --max-power-kw 204 --json
      splitplan optimize scenarios/quickstart.yaml --perf profile --compat splitwisesim --method both
    """
    scenario = load_scenario(scenario_path)
    if out_dir:  # an unwritable --out fails now, not after minutes of search
        check_writable_parent(out_dir)
    catalog = load_catalog_from(tuple(scenario.catalog_files) + tuple(catalog_files))
    settings = perf_settings_from(perf_backend, profile_path, stack, compat, base=perf_settings_of(scenario))
    show = not (quiet or as_json)
    with executor_context(executor, address), Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(), console=err_console, disable=not show, transient=True) as bar:
        task = bar.add_task("optimizing", total=0, unit="candidates")
        hooks = ProgressHooks(add=lambda n: bar.update(task, total=(bar.tasks[0].total or 0) + n),
                              advance=lambda: bar.advance(task),
                              stage=lambda text: bar.update(task, description=text),
                              unit=lambda word: bar.update(task, unit=word))
        result = optimize(scenario, catalog=catalog, perf=settings, progress=hooks, workers=workers,
                          objective=objective, max_cost_usd_per_h=max_cost_usd_per_h, max_power_kw=max_power_kw,
                          min_throughput_rps=min_throughput_rps, seeds=seeds, method=method)
    if out_dir:
        result.write(out_dir)
    if as_json:
        click.echo(result.to_json(), nl=False)
    elif not quiet:
        print_plan(result)
        if out_dir:
            console.print(f"wrote {out_dir}/plan.json, candidates.csv, pareto.csv; "
                          f"for an HTML report with plots: splitplan report {out_dir}")
    return 0 if result.feasible else INFEASIBLE_EXIT_CODE


def print_plan(result: PlanResult) -> None:
    """The recommendation, its SLO margins, and the per-design comparison that explains it."""
    sc = result.scenario
    console.print(f"[bold]{sc.name}[/bold]: {sc.model}, objective {result.objective}, "
                  f"{len(sc.seed_list())} seeds x {sc.workload.duration_s:g} s per simulated run")
    best = result.best
    if best is None:
        console.print(f"[bold red]infeasible[/bold red]: {result.binding}")
    else:
        v = best.verification
        split = "split prompt/token pools (Splitwise)" if best.kind == "splitwise" else "no split (baseline)"
        console.print(f"[bold green]recommended[/bold green]: {best.design} -- {best.cluster.label()}")
        console.print(f"  {split}; {best.machines()} machines, ${best.cost_usd_per_h:,.1f}/h, {best.power_kw:,.1f} kW; "
                      f"throughput [bold]{v.rate_rps:.2f} req/s[/bold] (mean {v.mean_rps:.2f}, 95% CI "
                      f"{v.ci95_rps[0]:.2f}-{v.ci95_rps[1]:.2f} over seeds); limited by {result.binding}")
        if v.slo_margins:
            worst = sorted(v.slo_margins.items(), key=lambda kv: kv[1])[:3]
            console.print("  tightest SLO margins: " + ", ".join(f"{k} {m:+.0%}" for k, m in worst))
    console.print(_comparison_table(result))
    console.print(_why(result))


def _comparison_table(result: PlanResult) -> Table:
    table = Table(title="per-design optimum under the same constraints (ratios vs the first design)")
    for name in ("design", "plan", "req/s", "95% CI", "$/h", "kW", "x req/s", "x cost", "x power", "limited by"):
        table.add_column(name, justify="left" if name in ("design", "plan", "limited by") else "right")
    by_name = {d.name: d for d in result.designs}
    for row in result.comparisons:
        d = by_name[row["design"]]
        if d.best is None:
            table.add_row(row["design"], "[red]infeasible[/red]", "-", "-", "-", "-", "-", "-", "-", d.binding)
            continue
        v = d.best.verification
        mark = "[bold]" if d.best is result.best else ""
        table.add_row(f"{mark}{row['design']}", d.best.cluster.label().split(": ", 1)[1], f"{v.rate_rps:.2f}",
                      f"{v.ci95_rps[0]:.1f}-{v.ci95_rps[1]:.1f}", f"{d.best.cost_usd_per_h:,.1f}",
                      f"{d.best.power_kw:,.1f}", _ratio(row["throughput_ratio"]), _ratio(row["cost_ratio"]),
                      _ratio(row["power_ratio"]), d.binding)
    return table


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _why(result: PlanResult) -> str:
    """One sentence per alternative: how the recommendation beats it on the objective."""
    best = result.best
    if best is None:
        return ""
    lines = []
    for d in result.designs:
        if d.best is None or d.best is best:
            continue
        o = d.best
        if result.objective == "max_throughput":
            gain = best.throughput_rps / o.throughput_rps - 1 if o.throughput_rps else float("inf")
            lines.append(f"{best.design} serves {gain:+.0%} more req/s than {o.design} within the same budget")
        elif result.objective == "min_cost":
            gain = 1 - best.cost_usd_per_h / o.cost_usd_per_h
            lines.append(f"{best.design} costs {gain:.0%} less than {o.design} at the same target")
        else:
            gain = 1 - best.power_kw / o.power_kw
            lines.append(f"{best.design} draws {gain:.0%} less power than {o.design} at the same target")
    lines += [f"{d.name} has no plan: {d.binding}" for d in result.designs if d.best is None]
    return "\n".join(f"why: {line}" for line in lines)
