"""`splitplan perf`: one iteration's predicted time, throughput, KV cache and power.

The profile-fitting commands (`calibrate`, `predict`) live in calibrate_cmd.py: they need pandas and
scipy.optimize, which a query on the default analytic model does not.
"""

from __future__ import annotations

import json

import click

from splitplan.cli.common import (catalog_option, console, load_catalog_from, perf_options, perf_settings_from,
                                  quant_options)


@click.command("perf")
@click.option("--model", required=True, help="Model name (see splitplan catalog models).")
@click.option("--machine", required=True, help="Machine name (see splitplan catalog machines).")
@click.option("--tp", type=int, default=None, help="Tensor-parallel degree (GPUs per instance; default: all of the machine's).")
@click.option("--phase", type=click.Choice(["prefill", "decode", "mixed"]), default="prefill", show_default=True)
@click.option("--batch", type=int, default=1, show_default=True, help="Prompts (prefill) or decoding sequences.")
@click.option("--prompt-tokens", type=int, default=1024, show_default=True, help="Tokens per prompt.")
@click.option("--context-tokens", type=int, default=1024, show_default=True, help="Context per decoding sequence.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@perf_options
@quant_options
@catalog_option
def perf_command(model: str, machine: str, tp: int | None, phase: str, batch: int, prompt_tokens: int,
                 context_tokens: int, as_json: bool, perf_backend: str | None, profile_path: str | None,
                 stack: str | None, compat: str | None, weights: str | None, moe_weights: str | None,
                 kv_dtype: str | None,
                 catalog_files: tuple[str, ...]) -> None:
    """Predict one iteration: its time, throughput, KV cache and power.

    mixed = one prompt of --prompt-tokens alongside --batch decoding sequences. The provenance line
    names the serving stack and says whether it is calibrated on this GPU's architecture or
    extrapolated; --stack spec gives what the hardware allows with no host overhead.

    \b
    Examples:
      splitplan perf --model llama2-70b --machine dgx-h100 --phase prefill --prompt-tokens 1500
      splitplan perf --model llama2-70b --machine dgx-a100 --phase decode --batch 32 --json
      splitplan perf --model llama2-70b --machine dgx-h100 --tp 4 --perf profile --compat splitwisesim
      splitplan perf --model llama3.1-70b --machine dgx-h200 --phase decode --batch 128 --weights fp8
    """
    from rich.table import Table

    from splitplan.perf.query import perf_query

    catalog = load_catalog_from(catalog_files)
    settings = perf_settings_from(perf_backend, profile_path, stack, compat, weights=weights, kv=kv_dtype,
                                  moe_weights=moe_weights)
    result = perf_query(model, machine, tp, phase, batch, prompt_tokens, context_tokens, settings, catalog)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table(title=f"{result['model']} on {result['machine']} tp={result['tp']}: {phase}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:,.4g}" if isinstance(value, float) else str(value))
    console.print(table)
