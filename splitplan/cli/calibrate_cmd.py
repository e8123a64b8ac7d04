"""`splitplan calibrate` and `predict`: fit the analytic model to a measured profile, and check a model
against one."""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import click

from splitplan.cli.common import catalog_option, console, load_catalog_from, perf_options, perf_settings_from
from splitplan.cli.result_options import given_fields, result_options
from splitplan.errors import SplitplanError

if TYPE_CHECKING:  # the fitting code (numpy, scipy, pandas) loads when a command runs, not for --help
    from rich.table import Table

    from splitplan.perf.calibrate import Errors


def _errors_table(title: str, errors: dict[tuple[str, str], Errors]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for column in ("hardware/gpu", "phase", "rows", "MAPE %", "median %", "P90 %", "max %"):
        table.add_column(column, justify="left" if column in ("hardware/gpu", "phase") else "right")
    for (name, phase), e in errors.items():
        table.add_row(name, phase, str(e.n), f"{e.mape:.2f}", f"{e.median:.2f}", f"{e.p90:.2f}", f"{e.max:.1f}")
    return table


@click.command("calibrate")
@click.argument("profile", type=click.Path(dir_okay=False), required=False)
@click.option("--serving", "serving_rows", type=click.Path(), default=None,
              help="Fit serving stacks on measured end-to-end benchmarks instead: the measured-serving CSV, or "
                   "vllm bench serve JSON / AIPerf / GenAI-Perf exports (a file, folder or glob).")
@click.option("--engine", "engines", multiple=True, help="--serving: fit only this engine (repeatable).")
@click.option("--no-cv", is_flag=True, help="--serving: skip the grouped cross-validation (faster).")
@click.option("--joint", is_flag=True,
              help="--serving: fit dense and MoE rows together (default: the dense rows fix every dense parameter, "
                   "the MoE rows then fit the grouped-GEMM ones).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="Stack YAML to write.")
@click.option("--gpu", "gpus", multiple=True, help="Fit only this GPU (repeatable; default: every GPU in the profile).")
@click.option("--name", default=None, help="Stack name recorded in provenance (default: the output file stem).")
@click.option("--base-stack", default=None,
              help="Stack whose engine, versions and scheduling the fitted stack keeps (profile: vllm-2023; "
                   "--serving: the bundled stack of each engine).")
@click.option("--description", default=None, help="One line saying which engine and data the fit describes.")
@click.option("--cv", "with_cv", is_flag=True,
              help="Profile: also cross-validate (whole-configuration groups, leave one TP out, leave one model out) "
                   "and record the held-out errors in the stack file (tens of seconds).")
@result_options(skip=("gpu", "engine"))
@catalog_option
def calibrate_command(profile: str | None, serving_rows: str | None, engines: tuple[str, ...], no_cv: bool,
                      joint: bool, out_path: str, gpus: tuple[str, ...], name: str | None, base_stack: str | None,
                      description: str | None, with_cv: bool, catalog_files: tuple[str, ...],
                      **result_fields) -> None:
    """Fit a stack's parameters, per GPU architecture, to a measured step-time profile.

    With --serving ROWS.csv instead: fit one stack per engine on measured end-to-end serving
    benchmarks (closed-loop TTFT and TPOT per model, engine, quantization, parallelism, lengths and
    concurrency: the columns of profiles/measured/serving/h100.csv). Each row is simulated as the
    benchmark it describes; the fit and a grouped cross-validation (whole configurations, one TP,
    one (isl, osl), one model held out at a time) follow, and the stacks are written to --out. An
    engine with dense and MoE rows is fitted in two stages: the dense rows fit every dense
    parameter, then the MoE rows the grouped-GEMM ones, so MoE rows leave dense predictions as
    they were (--joint: one fit of everything on all rows).

    PROFILE is a SplitwiseSim perf_model.csv or a long-format CSV (model,gpu,tp,phase,batch_size,
    prompt_tokens,context_tokens,time_ms). Power-capped rows are left out (the cap is modelled);
    failed measurements (a batch faster than half of a smaller one) are flagged and skipped. A fitted
    parameter that ends at a bound of its physical range is reported.

    \b
    Examples:
      splitplan calibrate profiles/measured/splitwisesim_perf_model.csv --out my-stack.yaml --cv
      splitplan calibrate my_h100_runs.csv --gpu h100-80gb --name trtllm-2024 --out trtllm-h100.yaml
      splitplan perf --model llama2-70b --machine dgx-h100 --phase decode --stack my-stack.yaml
      splitplan calibrate --serving profiles/measured/serving/h100.csv --engine sglang --out my-sglang.yaml
      splitplan benchmark --rows my_runs.csv --stack my-sglang.yaml --out predicted.csv
    """
    from splitplan.atomic_io import prepare_output
    from splitplan.serving.stack import get_stack

    catalog = load_catalog_from(catalog_files)
    if not serving_rows and not profile:
        raise SplitplanError("give a step-time PROFILE, or --serving ROWS.csv", field="profile")
    prepare_output(out_path, "--out")  # the fit takes minutes: a bad path fails now
    if serving_rows:
        given = given_fields(result_fields) | ({"gpu": gpus[0]} if len(gpus) == 1 else {})
        _calibrate_serving(serving_rows, engines, base_stack, no_cv, out_path, catalog, given, joint)
        return
    base_stack = base_stack or "vllm-2023"
    from splitplan.perf.calibrate import calibrate, flagged_lines, write_stack
    from splitplan.perf.profile_cv import SCHEME_TITLES, SCHEMES, cross_validate, validation_summary
    from splitplan.perf.profile_io import read_profile
    from splitplan.perf.profile_rows import fit_rows

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
    format) to each input row. By default the analytic model with the default stack (vllm-2023) is used.

    \b
    Examples:
      splitplan predict profiles/measured/splitwisesim_perf_model.csv --out pred.csv
      splitplan predict runs.csv --stack my-stack.yaml --out pred.csv
      splitplan predict runs.csv --perf profile --profile other_runs.csv --out pred.csv
    """
    from splitplan.atomic_io import prepare_output
    from splitplan.perf.predict import predict_profile
    from splitplan.perf.profile_io import read_profile

    catalog = load_catalog_from(catalog_files)
    settings = perf_settings_from(perf_backend, profile_path, stack, compat)
    table = read_profile(profile)
    prepare_output(out_path, "--out")
    out, summary = predict_profile(table, catalog, settings)
    try:
        out.to_csv(out_path, index=False)
    except OSError as exc:
        raise SplitplanError(f"cannot write ({exc.__class__.__name__})", source=out_path) from None
    console.print(_errors_table(f"prediction errors on {Path(profile).name}", summary.errors))
    for key in sorted(set(summary.provenance.values())):
        console.print(f"model: {key}", style="dim")
    console.print(f"wrote {out_path} ({len(out)} rows)")


def _calibrate_serving(rows_path: str, engines: tuple[str, ...], base_stack: str | None, no_cv: bool,
                       out_path: str, catalog, given: dict, joint: bool = False) -> None:
    """One stack per engine of the rows (or the --engine ones), written to one file."""
    from splitplan.apps.benchmark_rows import read_rows
    from splitplan.apps.calibrate_serving import base_header, calibrate_engine, write_stacks
    from splitplan.apps.serving_results import read_results
    from splitplan.serving.stack import get_stack
    from rich.table import Table

    if len(engines) == 1:
        given.setdefault("engine", engines[0])
    frame = read_results(rows_path, **given) if given else read_rows(rows_path)
    if "engine" not in frame.columns:
        raise SplitplanError("missing column 'engine'", source=rows_path, field="engine")
    present = sorted({e.strip().lower() for e in frame["engine"].astype(str) if e.strip()})
    wanted = [e.lower() for e in engines] or present
    missing = [e for e in wanted if e not in present]
    if missing:
        raise SplitplanError(f"no rows for engine '{missing[0]}' (the file has {', '.join(present)})",
                             source=rows_path, field="engine")
    base = get_stack(base_stack) if base_stack else None
    cals = []
    for engine in wanted:
        stack = base if base is not None and base.engine == engine else None
        try:
            cals.append(calibrate_engine(frame, catalog, engine, base_stack=stack, cv=not no_cv, staged=not joint))
        except SplitplanError as exc:
            if engines:
                raise
            console.print(f"skipped {engine}: {exc.problem}", style="yellow")
    if not cals:
        raise SplitplanError("no engine had enough modelable rows to fit", source=rows_path)
    write_stacks(out_path, cals, source=Path(rows_path).name, header=base_header(cals[0].stack) if len(cals) == 1 else
                 f"# Serving stacks fitted by `splitplan calibrate --serving {Path(rows_path).name}`.\n")
    table = Table(title=f"serving calibration on {Path(rows_path).name} (errors in %: MAPE / median)")
    for column in ("engine", "protocol", "rows", "grouping", "TTFT", "TPOT"):
        table.add_column(column)
    for cal in cals:
        for key, errs in [("in-sample", cal.in_sample), *cal.cv.items()]:
            t, p = errs["ttft"], errs["tpot"]
            table.add_row(cal.engine, cal.protocol, str(t["rows"]), key, f"{t['mape']:.1f} / {t['median']:.1f}",
                          f"{p['mape']:.1f} / {p['median']:.1f}")
        if cal.at_bound:
            console.print(f"{cal.engine}: fitted at a bound of their physical range: {', '.join(cal.at_bound)}",
                          style="yellow")
    console.print(table)
    console.print(f"wrote {out_path}")

