"""`splitplan check` (scenario files as regression tests) and `splitplan reproduce` (docs/reproduction.md)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from typing import TYPE_CHECKING

import click

from splitplan.check_spec import MODES, CheckReport, CheckSpec, ModeOutcome, PerfFlags
from splitplan.cli.common import catalog_option, console, err_console, executor_context, executor_options, perf_options
from splitplan.limits import MAX_WORKERS
from splitplan.scenario import ExpectationResult

if TYPE_CHECKING:  # the runner (the optimizer, numpy, PuLP) loads when a check runs, not for --help
    from rich.table import Table


def _flags(perf_backend: str | None, profile_path: str | None, stack: str | None,
           compat: str | None) -> PerfFlags:
    return PerfFlags(perf_backend, profile_path, stack, compat)


def _fmt(x: object) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return "-" if x is None else str(x)


def _tolerance(r: ExpectationResult) -> str:
    e = r.expectation
    if e.value is None:
        return f"[{_fmt(e.min)}, {_fmt(e.max)}]"
    parts = ([f"±{e.rel_tol:.0%}"] if e.rel_tol else []) + ([f"±{_fmt(e.abs_tol)}"] if e.abs_tol else [])
    return " or ".join(parts) or "exact"


def _moved(r: ExpectationResult) -> bool:
    """Failed, or away from the pinned value by more than its 4-digit rounding."""
    from splitplan.check import _same

    e = r.expectation
    return not r.passed or (e.value is not None and not _same(r.actual, e.value))


def results_table(outcomes: Sequence[ModeOutcome], show_all: bool) -> Table:
    """One row per expectation that moved (all rows with show_all): what changed, by how much, and verdict."""
    from rich.table import Table

    table = Table(title="splitplan check", title_justify="left")
    for col in ("scenario", "mode", "path", "expected", "got", "tolerance", "status"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        for r in o.results:
            if not (show_all or _moved(r)):
                continue
            e = r.expectation
            expected = _fmt(e.value) if e.value is not None else "range"
            status = "[green]ok[/]" if r.passed else "[bold red]FAIL[/]"
            table.add_row(o.spec.path.stem, o.mode, e.path, expected, _fmt(r.actual), _tolerance(r), status)
    return table


def _progress(spec: CheckSpec, mode: str) -> None:
    err_console.print(f"[dim]running {spec.path} ({mode}) ...[/]")


def _done(outcome: ModeOutcome) -> None:
    bad = len(outcome.failed)
    verdict = "[green]ok[/]" if not bad else f"[bold red]{bad} failed[/]"
    err_console.print(f"  {outcome.spec.path.name} ({outcome.mode}): {len(outcome.results) - bad}/"
                      f"{len(outcome.results)} {verdict} in {outcome.elapsed_s:.0f} s")


def _summary(report: CheckReport, elapsed_s: float, quiet: bool) -> None:
    ok, total = report.n_checks()
    if report.skipped_slow:
        console.print(f"skipped {len(report.skipped_slow)} slow scenario(s) (run them with --all)")
    for mode in sorted({m for _, m in report.skipped_modes}):
        n = sum(1 for _, m in report.skipped_modes if m == mode)
        console.print(f"not run: the {mode} expectations of {n} slow scenario(s) (--all --mode {mode}, "
                      f"or splitplan reproduce)")
    colour = "green" if report.passed else "bold red"
    console.print(f"[{colour}]{ok}/{total} expectations hold[/] in {len(report.outcomes)} run(s), "
                  f"{elapsed_s:.0f} s")


def _update(outcomes: Sequence[ModeOutcome]) -> None:
    """Write measured values into each file's expect: entries (the intended-change path)."""
    from splitplan.check import update_file

    by_file: dict[Path, list[ModeOutcome]] = {}
    for o in outcomes:
        by_file.setdefault(o.spec.path, []).append(o)
    changed = sum(update_file(path, outs) for path, outs in by_file.items())
    console.print(f"updated {changed} expectation value(s) in {len(by_file)} file(s)")


@click.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--all", "include_slow", is_flag=True, help="Also run scenarios marked check: {slow: true}.")
@click.option("--update", is_flag=True, help="Write the measured values into the files' expect: entries.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(MODES),
              help="Run only this mode (default: every mode with expectations); repeatable.")
@click.option("--show-all", is_flag=True, help="List every expectation, not only those that moved.")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=None,
              help="Parallel simulation processes (default min(2, cpus)).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@catalog_option
@perf_options
@executor_options
def check_command(paths: tuple[str, ...], include_slow: bool, update: bool, modes: tuple[str, ...], show_all: bool,
                  workers: int | None, quiet: bool, catalog_files: tuple[str, ...], perf_backend: str | None,
                  profile_path: str | None, stack: str | None, compat: str | None, executor: str = "local",
                  address: str | None = None) -> int:
    """Re-run scenario files that have an expect: block and compare with their expectations.

    PATHS are scenario files or folders (searched recursively; default scenarios/). Scenarios marked
    `check: {slow: true}` run only with --all. A scenario's `check: analytic:` section adds a second run
    with the calibrated analytic model and its own expectations (for slow scenarios only with
    --mode analytic, or in `splitplan reproduce`). Perf flags override every run, so a perturbed
    --profile or --stack shows what it moves. Exit 1 when an expectation leaves its tolerance, 0
    when all hold, 2 on bad input.

    \b
    Examples:
      splitplan check                                   # fast scenarios (what CI runs)
      splitplan check scenarios/ --all                  # the paper's studies too (make check-all)
      splitplan check scenarios/ --all --mode analytic  # their analytic side runs
      splitplan check scenarios/splitwise/fig12-hh-coding-70rps.yaml --all --show-all
      splitplan check scenarios/ --stack my-h100.yaml --mode analytic
      splitplan check scenarios/ --all --update         # accept the new numbers
    """
    from splitplan.check import run_check

    t0 = time.perf_counter()
    with executor_context(executor, address):
        report = run_check(paths or ("scenarios",), include_slow=include_slow, modes=modes or MODES,
                           slow_modes=modes or ("default",), catalog_files=catalog_files, workers=workers,
                           flags=_flags(perf_backend, profile_path, stack, compat),
                           on_start=None if quiet else _progress, on_done=None if quiet else _done)
    console.print(results_table(report.outcomes, show_all))
    _summary(report, time.perf_counter() - t0, quiet)
    if update:
        _update(report.outcomes)
        return 0
    return 0 if report.passed else 1


@click.command("reproduce")
@click.option("--out", default="docs/reproduction.md", show_default=True, type=click.Path(dir_okay=False),
              help="Markdown file to write.")
@click.option("--scenarios", "paths", multiple=True, default=("scenarios/splitwise",), show_default=True,
              help="Study files or folders; repeatable.")
@click.option("--save-results", type=click.Path(dir_okay=False), default=None,
              help="Also keep the raw results (JSON) to re-render the page later without simulating.")
@click.option("--from-results", type=click.Path(dir_okay=False), default=None,
              help="Render from results saved by --save-results instead of running the studies.")
@click.option("--update", is_flag=True, help="Also write the measured values into the files' expect: entries.")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=None,
              help="Parallel simulation processes (default min(2, cpus)).")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@catalog_option
@perf_options
@executor_options
def reproduce_command(out: str, paths: tuple[str, ...], save_results: str | None, from_results: str | None,
                      update: bool, workers: int | None, quiet: bool, catalog_files: tuple[str, ...],
                      perf_backend: str | None, profile_path: str | None, stack: str | None,
                      compat: str | None, executor: str = "local", address: str | None = None) -> int:
    """Reproduce the Splitwise paper's design study and write docs/reproduction.md.

    Runs every study of scenarios/splitwise (slow ones included) in SplitwiseSim-compatibility mode and
    with the calibrated analytic model, checks their expectations on the way, and writes each claim of
    the paper beside both answers, with the differences explained. Exit 1 if an expectation moved.

    \b
    Examples:
      splitplan reproduce --out docs/reproduction.md --save-results out/repro.json
      splitplan reproduce --from-results out/repro.json --out docs/reproduction.md   # no simulation
      splitplan reproduce --scenarios scenarios/splitwise/isopower-coding.yaml --out out/repro.md
    """
    from splitplan.reproduction import render_saved, reproduce

    flags = _flags(perf_backend, profile_path, stack, compat)
    if from_results:
        render_saved(from_results, out=out, catalog_files=catalog_files, flags=flags)
        console.print(f"wrote {out} from {from_results}")
        return 0
    t0 = time.perf_counter()
    with executor_context(executor, address):
        result = reproduce(paths, out=out, catalog_files=catalog_files, workers=workers, flags=flags,
                           save_results=save_results, on_start=None if quiet else _progress,
                           on_done=None if quiet else _done)
    console.print(results_table(result.report.outcomes, False))
    _summary(result.report, time.perf_counter() - t0, quiet)
    console.print(f"wrote {out}")
    if update:
        _update(result.report.outcomes)
        return 0
    return 0 if result.report.passed else 1
