"""`splitplan optimize`: size every design of a scenario and recommend the best verified plan."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from splitplan.cli.common import (catalog_option, console, err_console, executor_context, executor_options,
                                  load_catalog_from, perf_options, perf_settings_from, quant_options)
from splitplan.errors import SplitplanError
from splitplan.limits import MAX_SEEDS, MAX_WORKERS
from splitplan.plan.phases import is_split_kind, phases_text

if TYPE_CHECKING:  # the planner (numpy, PuLP) loads when the command runs, not for `optimize --help`
    from rich.table import Table

    from splitplan.plan.result import PlanResult


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
@click.option("--time-limit", "time_limit_s", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="Stop searching after this long and report the best plan verified so far "
                                      "(status time_limit).")
@click.option("--sim-memo", "sim_memo", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Keep each simulation's verdict in DIR and read back the runs an earlier optimize already "
                   "made (same code, inputs, cluster, seed and rate): the same plan, repeats not simulated.")
@perf_options
@quant_options
@catalog_option
@executor_options
def optimize_command(scenario_path, out_dir, as_json, quiet, workers, objective, max_cost_usd_per_h, max_power_kw,
                     min_throughput_rps, seeds, method, time_limit_s, sim_memo, perf_backend, profile_path, stack,
                     compat, weights, moe_weights, kv_dtype, catalog_files, executor="local", address=None) -> int:
    """Optimize the cluster designs of a scenario file under its budgets and SLOs; every reported plan is
    confirmed by the simulator on several seeds. Exit status 1 when no plan meets the constraints; 130 on
    Ctrl-C (the designs already finished are kept in --out, status interrupted).

    \b
    Examples:
      splitplan optimize scenarios/quickstart.yaml
      splitplan optimize scenarios/quickstart.yaml --out out/quickstart --workers 2
      splitplan optimize scenarios/quickstart.yaml --objective min_cost --min-throughput-rps 30
      splitplan optimize scenarios/quickstart.yaml --time-limit 60 --out out/quick
      splitplan optimize scenarios/quickstart.yaml --max-cost-usd-per-h 500 --sim-memo out/sims
      splitplan optimize scenarios/examples/iso_power_coding.yaml --max-power-kw 204 --json
      splitplan optimize scenarios/quickstart.yaml --perf profile --compat splitwisesim --method both
    """
    from splitplan.cli.optimize_progress import OptimizeProgress
    from splitplan.plan.optimize import OptimizeInterrupted, optimize
    from splitplan.plan.problem import perf_settings_of
    from splitplan.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    if out_dir:  # an unwritable --out fails now, not after minutes of search
        check_writable_parent(out_dir)
    catalog = load_catalog_from(tuple(scenario.catalog_files) + tuple(catalog_files))
    settings = perf_settings_from(perf_backend, profile_path, stack, compat, base=perf_settings_of(scenario),
                                  weights=weights, moe_weights=moe_weights, kv=kv_dtype)
    show = not (quiet or as_json)
    display = OptimizeProgress(err_console, len(scenario.designs), enabled=show)
    try:
        with executor_context(executor, address), display:
            result = optimize(scenario, catalog=catalog, perf=settings, on_event=display, workers=workers,
                              objective=objective, max_cost_usd_per_h=max_cost_usd_per_h, max_power_kw=max_power_kw,
                              min_throughput_rps=min_throughput_rps, seeds=seeds, method=method,
                              time_limit_s=time_limit_s, sim_memo=sim_memo)
    except OptimizeInterrupted as stop:
        _keep_finished(stop.partial, out_dir, quiet)
        raise KeyboardInterrupt from None
    if out_dir:
        result.write(out_dir)
    if as_json:
        click.echo(result.to_json(), nl=False)
    elif not quiet:
        print_plan(result)
        if out_dir:
            console.print(f"wrote {out_dir}/plan.json, candidates.csv, pareto.csv; "
                          f"for an HTML report with plots: splitplan report {out_dir}")
    return 0 if result.best is not None else INFEASIBLE_EXIT_CODE


def _keep_finished(partial: PlanResult, out_dir: str | None, quiet: bool) -> None:
    """Ctrl-C: the designs that finished are written (atomically, status interrupted); none, nothing."""
    kept = [d.name for d in partial.designs if d.status != "interrupted"]
    if not out_dir or not kept:
        return
    partial.write(out_dir)
    if not quiet:
        err_console.print(f"interrupted: kept {len(kept)} finished design(s) ({', '.join(kept)}) in "
                          f"{out_dir}/plan.json (status interrupted)")


STATUS_WORDS = {"time_limit": "time limit reached: best plan verified so far",
                "interrupted": "interrupted: designs that finished only"}


def print_plan(result: PlanResult) -> None:
    """Trust line first; then the recommendation (what it is, split or not, its max rate), its SLO
    margins, and the per-design comparison that explains it."""
    from splitplan.report.trust_line import trust_line

    sc = result.scenario
    console.print(f"[bold]{sc.name}[/bold]: {sc.model}, objective {result.objective}, "
                  f"{len(sc.seed_list())} seeds x {sc.workload.duration_s:g} s per simulated run")
    level, line = trust_line(result.to_dict()["perf"]["provenance"], result.warnings)
    console.print(f"[{ {'good': 'green', 'warn': 'yellow', 'bad': 'red'}[level]}]{line}[/]", highlight=False)
    for line in result.warnings:
        console.print(f"[yellow]warning[/yellow]: {line}")
    if result.status in STATUS_WORDS:
        console.print(f"[bold yellow]{STATUS_WORDS[result.status]}[/bold yellow]")
    best = result.best
    if best is None:
        console.print(f"[bold red]infeasible[/bold red]: {result.binding}")
    else:
        v = best.verification
        console.print(f"[bold green]recommended[/bold green]: {best.design} -- {best.cluster.label()}")
        console.print(f"  {phases_text(best.kind, v.mixed_request_share, v.mixed_token_share)}; "
                      f"{best.machines()} machines, ${best.cost_usd_per_h:,.1f}/h, {best.power_kw:,.1f} kW; "
                      f"max_rate_rps [bold]{v.rate_rps:.2f}[/bold] (every SLO met on every seed; seeds' mean "
                      f"{v.mean_rps:.2f}, 95% CI {v.ci95_rps[0]:.2f}-{v.ci95_rps[1]:.2f}); limited by {result.binding}")
        if v.slo_margins:
            worst = sorted(v.slo_margins.items(), key=lambda kv: kv[1])[:3]
            console.print("  tightest SLO margins: " + ", ".join(f"{k} {m:+.0%}" for k, m in worst))
    console.print(_comparison_table(result))
    console.print(_model_errors(result))
    console.print(_why(result))


def _comparison_table(result: PlanResult) -> Table:
    from rich.table import Table

    table = Table(title="per-design optimum under the same constraints (ratios vs the first design)")
    for name in ("design", "plan", "phases", "max_rate_rps", "95% CI", "$/h", "kW", "x rate", "x cost", "x power",
                 "limited by"):
        table.add_column(name, justify="left" if name in ("design", "plan", "phases", "limited by") else "right")
    by_name = {d.name: d for d in result.designs}
    for row in result.comparisons:
        d = by_name[row["design"]]
        if d.best is None:
            table.add_row(row["design"], f"[red]{d.status}[/red]", "-", "-", "-", "-", "-", "-", "-", "-", d.binding)
            continue
        v = d.best.verification
        mark = "[bold]" if d.best is result.best else ""
        table.add_row(f"{mark}{row['design']}", d.best.cluster.label().split(": ", 1)[1], _phases_cell(d.best),
                      f"{v.rate_rps:.2f}", f"{v.ci95_rps[0]:.1f}-{v.ci95_rps[1]:.1f}", f"{d.best.cost_usd_per_h:,.1f}",
                      f"{d.best.power_kw:,.1f}", _ratio(row["max_rate_ratio"]), _ratio(row["cost_ratio"]),
                      _ratio(row["power_ratio"]), d.binding)
    return table


def _phases_cell(c) -> str:
    share = c.verification.mixed_request_share
    if not is_split_kind(c.kind) or share is None:
        return c.phases.value
    return f"{c.phases.value} ({share:.0%} of requests co-located)"


def _model_errors(result: PlanResult) -> str:
    """One line: the capacity model's error against the simulated max rate, per design."""
    parts = []
    for d in result.designs:
        errors = [e for e in (c.model_error for c in d.candidates) if e is not None]
        if errors:
            lo, hi = min(errors), max(errors)
            span = f"{lo:+.0%}" if len(errors) == 1 else f"{lo:+.0%} to {hi:+.0%}"
            parts.append(f"{d.name} {span} ({len(errors)} verified)")
    if not parts:
        return ""
    return "capacity model vs simulated max_rate_rps (+ = model optimistic): " + ", ".join(parts)


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _why_at_target(objective: str, best, other) -> str:
    """'A costs 21% less than B at the same target'; for a tie on the objective, what broke it."""
    attr, noun = ("cost_usd_per_h", "costs") if objective == "min_cost" else ("power_kw", "draws")
    gain = 1 - getattr(best, attr) / getattr(other, attr)
    if abs(gain) < 0.005:
        same = "costs the same as" if objective == "min_cost" else "draws the same power as"
        other_attr = "power_kw" if objective == "min_cost" else "cost_usd_per_h"
        if abs(getattr(best, other_attr) - getattr(other, other_attr)) > 1e-9:
            what = "power" if objective == "min_cost" else "cost"
            return f"{best.design} {same} {other.design} with less {what}"
        more = best.throughput_rps / other.throughput_rps - 1 if other.throughput_rps else 0.0
        return f"{best.design} {same} {other.design} and sustains {more:+.0%} req/s more (more headroom)"
    what = "less" if objective == "min_cost" else "less power"
    return f"{best.design} {noun} {gain:.0%} {what} than {other.design} at the same target"


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
            lines.append(f"{best.design} sustains {gain:+.0%} more req/s than {o.design} within the same budget")
        else:
            lines.append(_why_at_target(result.objective, best, o))
    lines += [f"{d.name} has no plan: {d.binding}" for d in result.designs if d.best is None]
    return "\n".join(f"why: {line}" for line in lines)
