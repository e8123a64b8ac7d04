"""Options shared by several commands, and the console they print to."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from splitplan.catalog import Catalog, get_catalog
from splitplan.perf.base import PerfSettings

console = Console(highlight=False)
if not console.is_terminal:  # files and pipes get full-width tables, not 80-column truncation
    console.width = 160
err_console = Console(stderr=True, highlight=False)


def catalog_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--catalog FILE (repeatable): YAML with extra or overriding gpus/machines/models."""
    return click.option(
        "--catalog",
        "catalog_files",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Extra catalog YAML (top-level lists gpus, machines, models); repeatable, later files win.",
    )(fn)


def perf_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Performance-backend flags shared by perf, simulate and optimize."""
    options = [
        click.option("--perf", "perf_backend", type=click.Choice(["analytic", "profile"]), default=None,
                     help="Performance backend: calibrated analytic model (default) or a measured profile table."),
        click.option("--profile", "profile_path", type=click.Path(dir_okay=False), default=None,
                     help="Measured profile CSV for --perf profile (SplitwiseSim perf_model.csv or long format)."),
        click.option("--calibration", "calibration_paths", multiple=True, type=click.Path(dir_okay=False),
                     help="Calibration YAML for the analytic model (default: the bundled calibrations)."),
        click.option("--compat", type=click.Choice(["none", "splitwisesim"]), default=None,
                     help="Copy SplitwiseSim's modelling choices, for like-for-like comparison."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def perf_settings_from(perf_backend: str | None, profile_path: str | None, calibration_paths: tuple[str, ...],
                       compat: str | None, base: PerfSettings | None = None) -> PerfSettings:
    """Command-line flags override a scenario's settings (`base`), which override the defaults."""
    base = base or PerfSettings()
    backend = perf_backend or ("profile" if profile_path and not base.profile_path else base.backend)
    return PerfSettings(
        backend=backend,
        profile_path=profile_path or base.profile_path,
        calibration_paths=tuple(calibration_paths) or base.calibration_paths,
        compat=(None if compat == "none" else compat) if compat is not None else base.compat,
        dtype=base.dtype,
    )


def load_catalog_from(catalog_files: tuple[str, ...]) -> Catalog:
    return get_catalog(catalog_files)


def pass_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a command body; errors are turned into one line by `main` (kept for readability)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper
