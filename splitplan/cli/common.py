"""Options shared by several commands, and the console they print to."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from splitplan.catalog import Catalog, get_catalog

if TYPE_CHECKING:  # `catalog` and every --help import this module; the perf settings only a computing command
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
        click.option("--stack", "stack", default=None,
                     help="Serving stack: a bundled name (see 'splitplan catalog stacks') or a stack YAML."),
        click.option("--compat", type=click.Choice(["none", "splitwisesim"]), default=None,
                     help="Copy SplitwiseSim's modelling choices, for like-for-like comparison."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def quant_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--weights, --moe-weights and --kv-dtype: quantization of the dense weights, of the experts of an
    MoE model, and of the KV cache (the flags a "does not fit" error names, on every command that runs
    the model)."""
    fn = click.option("--kv-dtype", "kv_dtype", default=None,
                      help="KV-cache format: bf16 or fp8 (default: the stack's default for the weights).")(fn)
    fn = click.option("--moe-weights", "moe_weights", default=None,
                      help="Expert weight format of an MoE model (default: as --weights).")(fn)
    return click.option("--weights", default=None,
                        help="Weight format: bf16, fp8, fp8_block, nvfp4, mxfp4, int4_wo (default bf16).")(fn)


def perf_settings_from(perf_backend: str | None, profile_path: str | None, stack: str | None,
                       compat: str | None, base: PerfSettings | None = None, weights: str | None = None,
                       kv: str | None = None, moe_weights: str | None = None) -> PerfSettings:
    """Command-line flags override a scenario's settings (`base`), which override the defaults."""
    from splitplan.serving.stack import get_stack

    from splitplan.perf.base import PerfSettings

    base = base or PerfSettings()
    backend = perf_backend or ("profile" if profile_path and not base.profile_path else base.backend)
    stack_name = stack or base.stack
    chosen = get_stack(stack_name)  # an unknown stack is an error now, naming the close matches
    quant = base.quant
    if weights or kv or moe_weights:  # weights alone take the stack's KV default for them; kv alone keeps them
        quant = chosen.default_quant(weights or quant.weights.value, moe_weights or (None if weights else (
            quant.moe_weights.value if quant.moe_weights else None)), kv or (None if weights else quant.kv.value))
    return PerfSettings(
        backend=backend,
        profile_path=profile_path or base.profile_path,
        stack=stack_name,
        compat=(None if compat == "none" else compat) if compat is not None else base.compat,
        quant=quant,
    )


def load_catalog_from(catalog_files: tuple[str, ...]) -> Catalog:
    return get_catalog(catalog_files)


def pass_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a command body; errors are turned into one line by `main` (kept for readability)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--executor local|ray and --address: where simulations run (optimize, sweep, check, reproduce)."""
    options = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="Run simulations in local worker processes, or as Ray tasks across a cluster "
                          "(pip install 'splitplan[ray]'; results are identical)."),
        click.option("--address", default=None,
                     help="With --executor ray: the cluster to join ('auto', or ray://HOST:10001); "
                          "default: start Ray on this machine."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def executor_context(executor: str, address: str | None) -> Any:
    """The context in which every worker pool of the command uses the chosen executor."""
    from splitplan.errors import SplitplanError
    from splitplan.plan.parallel import ExecutorSpec, using_executor

    if address and executor != "ray":
        raise SplitplanError("needs --executor ray", source="command line", field="--address")
    return using_executor(ExecutorSpec(executor, address))
