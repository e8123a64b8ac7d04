"""`splitplan perf`, `calibrate` and `predict`: query, fit and check the performance model."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from splitplan.cli.common import (catalog_option, console, load_catalog_from, perf_options, perf_settings_from,
                                  quant_options)
from splitplan.errors import SplitplanError
from splitplan.perf.calibrate import Errors, calibrate, flagged_lines, write_stack
from splitplan.perf.predict import predict_profile
from splitplan.perf.profile_io import read_profile
from splitplan.perf.query import perf_query


def _errors_table(title: str, errors: dict[tuple[str, str], Errors]) -> Table:
    table = Table(title=title)
    for column in ("hardware/gpu", "phase", "rows", "MAPE %", "median %", "P90 %", "max %"):
        table.add_column(column, justify="left" if column in ("hardware/gpu", "phase") else "right")
    for (name, phase), e in errors.items():
        table.add_row(name, phase, str(e.n), f"{e.mape:.2f}", f"{e.median:.2f}", f"{e.p90:.2f}", f"{e.max:.1f}")
    return table


@click.command("calibrate")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Stack YAML to write.")
@click.option("--gpu", "gpus", multiple=True, help="Fit only this GPU (repeatable; default: every GPU in the profile).")
@click.option("--name", default=None, help="Stack name recorded in provenance (default: the output file stem).")
@click.option("--base-stack", default="vllm-2023", show_default=True,
              help="Stack whose engine, versions and scheduling the fitted stack keeps.")
@click.option("--description", default=None, help="One line saying which engine and data the fit describes.")
@click.option("--cv", "with_cv", is_flag=True,
              help="Also cross-validate (whole-configuration groups, leave one TP out, leave one model out) "
                   "and record the held-out errors in the stack file (tens of seconds).")
@catalog_option
def calibrate_command(profile: str, out_path: str, gpus: tuple[str, ...], name: str | None, base_stack: str,
                      description: str | None, with_cv: bool, catalog_files: tuple[str, ...]) -> None:
    """Fit a stack's parameters, per GPU architecture, to a measured step-time profile.

    PROFILE is a SplitwiseSim perf_model.csv or a long-format CSV (model,gpu,tp,phase,batch_size,
    prompt_tokens,context_tokens,time_ms). Power-capped rows are left out (the cap is modelled);
    failed measurements (a batch faster than half of a smaller one) are flagged and skipped. A fitted
    parameter that ends at a bound of its physical range is reported.

    \b
    Examples:
      splitplan calibrate profiles/measured/splitwisesim_perf_model.csv --out my-stack.yaml --cv
      splitplan calibrate my_h100_runs.csv --gpu h100-80gb --name trtllm-2024 --out trtllm-h100.yaml
      splitplan perf --model llama2-70b --machine dgx-h100 --phase decode --stack my-stack.yaml
    """
    from splitplan.perf.profile_cv import SCHEME_TITLES, SCHEMES, cross_validate, validation_summary
    from splitplan.perf.profile_rows import fit_rows
    from splitplan.serving.stack import get_stack

    catalog = load_catalog_from(catalog_files)
    table = read_profile(profile)
    wanted = tuple(catalog.gpu(g).name for g in gpus)
    rows = fit_rows(table, catalog)
    if wanted:
        rows = rows[rows["gpu"].isin(wanted)].reset_index(drop=True)
    fits = calibrate(table, catalog, gpus=wanted, rows=rows)
    validations = [cross_validate(rows, catalog, scheme) for scheme in SCHEMES] if with_cv else []
    name = name or Path(out_path).stem
    write_stack(out_path, fits, catalog, base=get_stack(base_stack), name=name, source=Path(profile).name,
                description=description or f"{name}: fitted on {Path(profile).name}", rows=rows,
                validation=validation_summary(validations))
    errors = {(gpu, phase): e for gpu, fit in fits.items()
              for phase, e in (("prefill", fit.prefill), ("decode", fit.decode), ("request power", fit.power)) if e}
    console.print(_errors_table(f"calibration fit errors (in-sample), {name}", errors))
    for result in validations:
        held = {key: e for key, e in result.errors().items()}
        if held:  # a scheme with one value (one model, one TP) has no folds
            console.print(_errors_table(f"held-out errors, {SCHEME_TITLES[result.scheme]}", held))
    for gpu, fit in fits.items():
        for note in fit.at_bound:
            console.print(f"{gpu}: {note} (the data wanted a value the physics does not allow)")
    skipped = flagged_lines(table, catalog)
    if skipped:
        console.print(f"skipped {len(skipped)} failed measurement line(s) (a batch faster than half of a smaller one): "
                      f"lines {', '.join(map(str, skipped[:12]))}{' ...' if len(skipped) > 12 else ''}")
    console.print(f"wrote {out_path}")


@click.command("predict")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="CSV to write: input rows plus predictions.")
@perf_options
@catalog_option
def predict_command(profile: str, out_path: str, perf_backend: str | None, profile_path: str | None,
                    stack: str | None, compat: str | None, catalog_files: tuple[str, ...]) -> None:
    """Predict every row of a measured profile and report the errors per (hardware, phase).

    Adds predicted_prompt_ms and predicted_token_ms (SplitwiseSim format) or predicted_ms (long
    format) to each input row. By default the analytic model with the bundled calibrations is used.

    \b
    Examples:
      splitplan predict profiles/measured/splitwisesim_perf_model.csv --out pred.csv
      splitplan predict runs.csv --stack my-stack.yaml --out pred.csv
      splitplan predict runs.csv --perf profile --profile other_runs.csv --out pred.csv
    """
    catalog = load_catalog_from(catalog_files)
    settings = perf_settings_from(perf_backend, profile_path, stack, compat)
    table = read_profile(profile)
    out, summary = predict_profile(table, catalog, settings)
    try:
        out.to_csv(out_path, index=False)
    except OSError as exc:
        raise SplitplanError(f"cannot write ({exc.__class__.__name__})", source=out_path) from None
    console.print(_errors_table(f"prediction errors on {Path(profile).name}", summary.errors))
    for key in sorted(set(summary.provenance.values())):
        console.print(f"model: {key}", style="dim")
    console.print(f"wrote {out_path} ({len(out)} rows)")


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
                 stack: str | None, compat: str | None, weights: str | None, kv_dtype: str | None,
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
    catalog = load_catalog_from(catalog_files)
    settings = perf_settings_from(perf_backend, profile_path, stack, compat, weights=weights, kv=kv_dtype)
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


COMMANDS = [perf_command, calibrate_command, predict_command]
