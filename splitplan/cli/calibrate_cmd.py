"""`splitplan calibrate` and `predict`: fit the analytic model to a measured profile, and check a model
against one."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from splitplan.cli.common import catalog_option, console, load_catalog_from, perf_options, perf_settings_from
from splitplan.errors import SplitplanError
from splitplan.perf.calibrate import Errors, calibrate, flagged_lines, write_stack
from splitplan.perf.predict import predict_profile
from splitplan.perf.profile_io import read_profile


def _errors_table(title: str, errors: dict[tuple[str, str], Errors]) -> Table:
    table = Table(title=title)
    for column in ("hardware/gpu", "phase", "rows", "MAPE %", "P90 %", "max %"):
        table.add_column(column, justify="left" if column in ("hardware/gpu", "phase") else "right")
    for (name, phase), e in errors.items():
        table.add_row(name, phase, str(e.n), f"{e.mape:.2f}", f"{e.p90:.2f}", f"{e.max:.1f}")
    return table


@click.command("calibrate")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Stack YAML to write.")
@click.option("--gpu", "gpus", multiple=True, help="Fit only this GPU (repeatable; default: every GPU in the profile).")
@click.option("--name", default=None, help="Stack name recorded in provenance (default: the output file stem).")
@click.option("--base-stack", default="vllm-2023", show_default=True,
              help="Stack whose engine, versions and scheduling the fitted stack keeps.")
@click.option("--description", default=None, help="One line saying which engine and data the fit describes.")
@catalog_option
def calibrate_command(profile: str, out_path: str, gpus: tuple[str, ...], name: str | None, base_stack: str,
                      description: str | None, catalog_files: tuple[str, ...]) -> None:
    """Fit a stack's parameters, per GPU architecture, to a measured step-time profile.

    PROFILE is a SplitwiseSim perf_model.csv or a long-format CSV (model,gpu,tp,phase,batch_size,
    prompt_tokens,context_tokens,time_ms). Power-capped rows are left out (the cap is modelled);
    failed measurements (a batch faster than half of a smaller one) are flagged and skipped.

    \b
    Examples:
      splitplan calibrate profiles/measured/splitwisesim_perf_model.csv --out my-stack.yaml
      splitplan calibrate my_h100_runs.csv --gpu h100-80gb --name trtllm-2024 --out trtllm-h100.yaml
      splitplan perf --model llama2-70b --machine dgx-h100 --phase decode --stack my-stack.yaml
    """
    from splitplan.serving.stack import get_stack

    catalog = load_catalog_from(catalog_files)
    table = read_profile(profile)
    wanted = tuple(catalog.gpu(g).name for g in gpus)
    fits = calibrate(table, catalog, gpus=wanted)
    name = name or Path(out_path).stem
    write_stack(out_path, fits, catalog, base=get_stack(base_stack), name=name, source=Path(profile).name,
                description=description or f"{name}: fitted on {Path(profile).name}")
    errors = {(gpu, phase): e for gpu, fit in fits.items()
              for phase, e in (("prefill", fit.prefill), ("decode", fit.decode), ("request power", fit.power)) if e}
    console.print(_errors_table(f"calibration fit errors (in-sample), {name}", errors))
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
