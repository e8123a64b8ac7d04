"""`splitplan catalog gpus|machines|models`: what the catalog holds, with sources."""

from __future__ import annotations

import dataclasses
import json

import click

from splitplan.cli.common import catalog_option, console, load_catalog_from

_COLUMNS = {
    "gpus": ("name", "arch", "bf16_tflops", "fp8_tflops", "fp4_tflops", "hbm_gb", "hbm_gbps", "nvlink_gbps", "tdp_w",
             "idle_w"),
    "machines": ("name", "gpu", "gpus", "power_kw", "cost_usd_per_h", "nic_gbps", "power_cap_fraction", "idle_kw"),
    "models": ("name", "layers", "hidden", "heads", "kv_heads", "head_dim", "ffn", "vocab", "attn", "moe", "params_b",
               "active_params_b", "kv_kib_per_token"),
}
_LEFT = ("name", "gpu", "arch", "attn", "moe", "aliases")


def attention_summary(model) -> str:
    """Attention kind in a few characters: 'gqa'; 'mla 512+64' (latent + RoPE key cached per token);
    ' swa128/18' = a 128-token sliding window on 18 layers; ' sinks' = attention sinks."""
    text = f"mla {model.kv_lora_rank}+{model.qk_rope_head_dim}" if model.is_mla else model.attention
    if model.sliding_layers:
        text += f" swa{model.sliding_window}/{model.sliding_layers}"
    return text + (" sinks" if model.attention_sinks else "")


def moe_summary(model) -> str:
    """'-' for a dense model, else 'experts/top-k', '+N' shared experts, 'dN' leading dense layers."""
    if not model.is_moe:
        return "-"
    text = f"{model.experts}/{model.experts_per_token}"
    if model.shared_experts:
        text += f"+{model.shared_experts}"
    return text + (f" d{model.dense_layers}" if model.dense_layers else "")


def _two_line(header: str) -> str:
    """A long snake_case header broken at its most central underscore, so the model table fits 160 columns."""
    cuts = [i for i, ch in enumerate(header) if ch == "_"]
    if not cuts:
        return header
    cut = min(cuts, key=lambda i: abs(2 * i - len(header)))
    return header[:cut] + "\n" + header[cut + 1:]


def _aliases_cell(aliases: list[str]) -> str:
    """Short aliases in full; Hugging Face ids (owner/name) only counted, the JSON lists them."""
    short = [a for a in aliases if "/" not in a]
    hf = len(aliases) - len(short)
    return ", ".join(short + ([f"+{hf} HF id{'s' if hf > 1 else ''}"] if hf else []))


def catalog_rows(catalog, kind: str) -> list[dict]:
    """Every entry of one section as a plain dict (aliases and sources included)."""
    table = {"gpus": catalog.gpus, "machines": catalog.machines, "models": catalog.models}[kind]
    rows = []
    for entry in table.values():
        row = dataclasses.asdict(entry)
        row["aliases"] = list(entry.aliases)
        row["sources"] = dict(entry.sources)
        if kind == "models":
            row["attn"] = attention_summary(entry)
            row["moe"] = moe_summary(entry)
            row["params_b"] = round(entry.params / 1e9, 3)
            row["active_params_b"] = round(entry.active_params / 1e9, 3)
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
    from rich.table import Table
    from rich.text import Text

    columns = _COLUMNS[kind] + ("aliases",)
    table = Table(title=f"splitplan catalog: {kind}")
    cells = [[_aliases_cell(row[c]) if c == "aliases" else str(row[c]) for c in columns] for row in rows]
    for i, column in enumerate(columns):
        widest = max([len(r[i]) for r in cells], default=0)
        header = _two_line(column) if kind == "models" and len(column) > widest + 1 else column
        # values do not wrap; the aliases column wraps first when the table is too wide
        table.add_column(header, justify="left" if column in _LEFT else "right", no_wrap=column != "aliases")
    for row_cells in cells:  # plain Text: names are shown as written (no markup or emoji codes to parse)
        table.add_row(*map(Text, row_cells))
    console.print(table)
    console.print("Sources: splitplan catalog " + kind + " --json (field 'sources').", style="dim")
