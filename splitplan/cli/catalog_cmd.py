"""`splitplan catalog gpus|machines|models`: what the catalog holds, with sources."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.table import Table

from splitplan.cli.common import catalog_option, console, load_catalog_from

_COLUMNS = {
    "gpus": ("name", "bf16_tflops", "fp8_tflops", "hbm_gb", "hbm_gbps", "nvlink_gbps", "tdp_w", "idle_w"),
    "machines": ("name", "gpu", "gpus", "power_kw", "cost_usd_per_h", "nic_gbps", "power_cap_fraction", "idle_kw"),
    "models": ("name", "layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "gated_mlp", "dtype_bytes"),
}


def catalog_rows(catalog, kind: str) -> list[dict]:
    """Every entry of one section as a plain dict (aliases and sources included)."""
    table = {"gpus": catalog.gpus, "machines": catalog.machines, "models": catalog.models}[kind]
    rows = []
    for entry in table.values():
        row = dataclasses.asdict(entry)
        row["aliases"] = list(entry.aliases)
        row["sources"] = dict(entry.sources)
        if kind == "models":
            row["params_b"] = round(entry.params / 1e9, 3)
            row["kv_kib_per_token"] = round(entry.kv_bytes_per_token / 1024, 1)
        rows.append(row)
    return rows


@click.command("catalog")
@click.argument("kind", type=click.Choice(["gpus", "machines", "models"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with sources) instead of a table.")
@catalog_option
def catalog_command(kind: str, as_json: bool, catalog_files: tuple[str, ...]) -> None:
    """List the GPUs, machines or models splitplan knows, with their numbers.

    \b
    Examples:
      splitplan catalog machines
      splitplan catalog models --json
      splitplan catalog gpus --catalog my_gpus.yaml
    """
    rows = catalog_rows(load_catalog_from(catalog_files), kind)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    columns = _COLUMNS[kind] + (("params_b", "kv_kib_per_token") if kind == "models" else ()) + ("aliases",)
    table = Table(title=f"splitplan catalog: {kind}")
    for column in columns:
        table.add_column(column, justify="left" if column in ("name", "gpu", "aliases") else "right")
    for row in rows:
        table.add_row(*(", ".join(row[c]) if c == "aliases" else str(row[c]) for c in columns))
    console.print(table)
    console.print("Sources: splitplan catalog " + kind + " --json (field 'sources').", style="dim")
