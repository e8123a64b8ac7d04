"""What `splitplan simulate` does once its flags are parsed (simulate_cmd.py declares them).

Kept apart from the declaration so that `splitplan simulate --help` does not import the simulator,
numpy or the trace readers; this module is imported only when the command runs.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import click
from rich.table import Table

from splitplan.catalog import profiles_dir
from splitplan.cli.common import console, err_console, load_catalog_from, perf_settings_from
from splitplan.cluster import ClusterSpec, parse_pool_arg, pools_from_args
from splitplan.errors import SplitplanError
from splitplan.limits import MAX_DURATION_S, check_request_estimate
from splitplan.sim import SimConfig, find_max_rps, simulate
from splitplan.sim.result import SeedFolders, clean, summary_json
from splitplan.perf import build_perf_model
from splitplan.slo import (format_seconds, paper_slos, parse_slo, reference_latencies, reference_perf_model,
                           unmeetable_slos)
from splitplan.workload import Workload, load_trace, poisson_workload, replay_workload, resolve_trace_path

DEFAULT_DURATION_S = 120.0  # seconds of arrivals generated for --rate without --duration
DESIGN_ALIASES = {"colocated": "baseline", "disaggregated": "disagg"}  # scenario kinds -> cluster designs


def cluster_from_args(model: str, design: str | None, machines: tuple[str, ...], prompt: tuple[str, ...],
                      token: tuple[str, ...], mixed: tuple[str, ...], tp: int) -> ClusterSpec:
    """ClusterSpec from --machines / --prompt / --token / --mixed (each MACHINE:COUNT[:tpN][,...])."""
    def pools(role: str, args: tuple[str, ...], flag: str):
        out = []
        for arg in args:
            out += pools_from_args(role, parse_pool_arg(arg, field=flag), tp)
        return out

    design = DESIGN_ALIASES.get(design or "", design) or ("splitwise" if prompt or token else "baseline")
    if design == "baseline":
        if prompt or token:
            raise SplitplanError("--prompt/--token need --design splitwise or disagg", source="command line",
                                 field="--design")
        if not machines and not mixed:
            raise SplitplanError("a baseline cluster needs --machines MACHINE:COUNT", source="command line",
                                 field="--machines")
        spec = ClusterSpec(model, design, tuple(pools("mixed", machines + mixed, "--machines")))
    else:
        if machines:
            raise SplitplanError("--machines is for --design baseline; use --prompt and --token",
                                 source="command line", field="--machines")
        spec = ClusterSpec(model, design, tuple(pools("prompt", prompt, "--prompt") + pools("token", token, "--token")
                                                + pools("mixed", mixed, "--mixed")))
    return spec


def _check_flags(catalog, model: str, pool_flags: dict[str, tuple[str, ...]], rate: float | None,
                 duration: float | None) -> None:
    """Name the flag at fault: unknown model or machine names, a --rate or --duration that is not a finite
    number > 0, a duration past a simulated day, or a rate x duration of absurdly many requests."""
    lookups = [("--model", model, catalog.model)]
    for flag, args in pool_flags.items():
        for arg in args:
            items = parse_pool_arg(arg, field=flag)
            lookups += [(flag, item[0], catalog.machine) for item in (items if isinstance(items, list) else [items])]
    for flag, name, lookup in lookups:
        try:
            lookup(name)
        except SplitplanError as exc:
            raise SplitplanError(exc.problem, source="command line", field=flag) from None
    for flag, value in (("--rate", rate), ("--duration", duration)):
        if value is not None and not 0 < value < math.inf:  # NaN too
            raise SplitplanError(f"must be a finite number > 0, got {value:g}", source="command line", field=flag)
    if duration is not None and duration > MAX_DURATION_S:
        raise SplitplanError(f"must be <= {MAX_DURATION_S:,} s (one simulated day), got {duration:g}",
                             source="command line", field="--duration")
    if rate is not None:
        check_request_estimate(rate, DEFAULT_DURATION_S if duration is None else duration, "command line", "--rate")


ROLE_FLAGS = {"prompt": "--prompt", "token": "--token", "mixed": "--machines"}


def _check_fit(cluster: ClusterSpec, settings, catalog) -> None:
    """A pool whose shape cannot hold the model (in its weight format, after the engine's reserve) is
    the flag's fault, named before anything runs."""
    from splitplan.sim.api import pool_settings

    for pool in (p for p in cluster.pools if p.count > 0):
        try:
            build_perf_model(cluster.model, pool.machine, pool.tp, pool_settings(settings, pool), catalog)
        except SplitplanError as exc:
            if exc.source:  # a file's problem (a profile, a stack) names that file
                raise
            raise SplitplanError(exc.problem, source="command line", field=ROLE_FLAGS[pool.role]) from None


def _known_machine(catalog, name: str, flag: str) -> str:
    try:
        return catalog.machine(name).name
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source="command line", field=flag) from None


def _check_reference(cluster: ClusterSpec, settings, catalog, config: SimConfig, default: bool) -> None:
    """The SLO reference must hold the model, checked before any run (the default A100 cannot hold
    DeepSeek-R1 or Kimi); the suggestion names a machine of the cluster."""
    pool = next(p.machine for p in cluster.pools if p.count > 0)
    hint = f"e.g. --reference-machine {pool}" + (f"; {config.reference_machine} is the default" if default else "")
    try:
        reference_perf_model(cluster.model, config.reference_machine, config.reference_tp, settings, catalog, hint)
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source="command line", field="--reference-machine") from None


def _reject_unmeetable(slos: tuple, cluster: ClusterSpec, trace: str, settings, catalog) -> None:
    """An absolute SLO that every machine type of the cluster misses even unloaded is an input error,
    not a result to simulate."""
    absolute = tuple(s for s in slos if s.kind == "absolute")
    if not absolute:
        return
    sizes = load_trace(resolve_trace_path(trace))
    per_pool = []
    for pool in (p for p in cluster.pools if p.count > 0):
        perf = build_perf_model(cluster.model, pool.machine, pool.tp, settings, catalog)
        refs = reference_latencies(sizes.prompt_tokens, sizes.output_tokens, perf,
                                   compat=settings.compat == "splitwisesim")
        per_pool.append(set(unmeetable_slos(absolute, refs)))
    common = sorted(set.intersection(*per_pool)) if per_pool else []
    if common:
        raise SplitplanError(common[0], source="command line", field="--slo")


def with_scheduling(settings, **values):
    """Perf settings with the flags' scheduling overrides on top of the scenario's (None: keep)."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return settings
    return replace(settings, scheduling=tuple(sorted((dict(settings.scheduling) | given).items())))


def resolve_profile(path: str | None) -> str | None:
    """A profile name not found in the CWD falls back to the bundled profiles/measured/ copy."""
    if path is None or Path(path).exists():
        return path
    bundled = profiles_dir() / "measured" / Path(path).name
    return str(bundled) if bundled.exists() else path


def workload_from_args(trace: str, rate: float | None, duration: float | None, seed: int, replay: bool) -> Workload:
    base = load_trace(resolve_trace_path(trace))
    if rate is None:
        if replay or duration is None:
            return base
        keep = base.arrival_s < duration
        return Workload(base.arrival_s[keep], base.prompt_tokens[keep], base.output_tokens[keep], base.name)
    if replay:
        return replay_workload(base, rate_rps=rate, duration_s=duration)
    return poisson_workload(base, rate, DEFAULT_DURATION_S if duration is None else duration, seed)


def run_simulate(model, design, machines, prompt, token, mixed, tp, trace, scenario_path, rate, duration, seed,
                 seeds, replay, reference_machine, slo_texts, transfer, batching, max_batched_tokens, max_seqs,
                 find_max_rps, out_dir, as_json, quiet, perf_backend, profile_path, stack, compat, catalog_files,
                     quant: dict[str, str | None] | None = None) -> None:
    """The command's work: flags checked, cluster built, each seed simulated and printed. `quant`: the
    --weights, --moe-weights and --kv-dtype flags (perf_settings_from's names)."""
    base_perf, reference, reference_tp = None, SimConfig().reference_machine, None
    if scenario_path:  # the scenario supplies what the flags leave out
        from splitplan.scenario import load_scenario  # (a scenario's parsing is only this branch's cost)

        inputs = load_scenario(scenario_path).simulation_inputs()
        transfer = transfer or inputs["transfer"]
        model, trace = model or inputs["model"], trace or inputs["trace"]
        duration = duration if duration is not None else inputs["duration_s"]
        slo_texts = slo_texts or tuple(slo.to_text() for slo in inputs["slos"])
        base_perf, reference, reference_tp = inputs["perf"], inputs["reference_machine"], inputs["reference_tp"]
        catalog_files = tuple(inputs["catalog_files"]) + tuple(catalog_files)
    for flag, value in (("--model", model), ("--trace", trace)):
        if value is None:
            raise SplitplanError("required (or give --scenario)", source="command line", field=flag)
    catalog = load_catalog_from(catalog_files)
    _check_flags(catalog, model, {"--machines": machines, "--prompt": prompt, "--token": token, "--mixed": mixed},
                 rate, duration)
    cluster = cluster_from_args(model, design, machines, prompt, token, mixed, tp).validate(catalog, "command line")
    settings = perf_settings_from(perf_backend, resolve_profile(profile_path), stack, compat, base=base_perf,
                                  **(quant or {}))
    settings = with_scheduling(settings, max_batched_tokens=max_batched_tokens, max_seqs=max_seqs)
    slos = tuple(parse_slo(text) for text in slo_texts) or paper_slos()
    if reference_machine:
        reference, reference_tp = _known_machine(catalog, reference_machine, "--reference-machine"), None
    config = SimConfig(transfer=transfer or "layerwise", reference_machine=catalog.machine(reference).name,
                       reference_tp=reference_tp, colocated_policy=batching)
    if seeds > 1 and rate is None and not find_max_rps:
        raise SplitplanError("--seeds needs --rate: a trace replayed as is is the same for every seed",
                             source="command line", field="--seeds")
    _check_fit(cluster, settings, catalog)
    _check_reference(cluster, settings, catalog, config, default=not (reference_machine or scenario_path))
    _reject_unmeetable(slos, cluster, trace, settings, catalog)
    if find_max_rps:
        _max_rps(cluster, trace, duration, seed, seeds, settings, catalog, config, slos, as_json, quiet)
        return
    summaries = []
    with SeedFolders(out_dir) if out_dir and seeds > 1 else nullcontext() as folders:
        for s in range(seed, seed + seeds):
            workload = workload_from_args(trace, rate, duration, s, replay)
            result = simulate(cluster, workload, perf=settings, catalog=catalog, config=config, slos=slos)
            summaries.append(result.summary)
            if folders is not None:
                folders.write(f"seed_{s}", result)
            elif out_dir:
                result.write(out_dir)
            if not quiet and not as_json:
                _print_summary(result.summary, result.slo_results, seed=s if (seeds > 1 or rate) else None)
        if folders is not None:
            folders.publish()  # all seeds at once: an interrupted run leaves none of them
    if as_json:
        click.echo(summary_json(summaries[0]) if seeds == 1 else json.dumps(clean(summaries), sort_keys=True, indent=2) + "\n",
                   nl=False)


def _max_rps(cluster, trace, duration, seed, seeds, settings, catalog, config, slos, as_json, quiet) -> None:
    from rich.progress import BarColumn, Progress, TextColumn  # (only --max-rps shows a bar)

    sizes = load_trace(resolve_trace_path(trace))
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} sims"),
                  console=err_console, disable=quiet or as_json, transient=True) as bar:
        task = bar.add_task("bisecting max rate", total=None)

        def progress(s: int, rate: float, ok: bool) -> None:
            bar.update(task, advance=1, description=f"seed {s}: {rate:.2f} req/s {'pass' if ok else 'fail'}")

        result = find_max_rps(cluster, sizes, duration_s=DEFAULT_DURATION_S if duration is None else duration,
                              seeds=range(seed, seed + seeds),
                              perf=settings, catalog=catalog, config=config, slos=slos, progress=progress)
    if as_json:
        click.echo(json.dumps(clean(max_rate_view(result.to_dict())), sort_keys=True, indent=2))
    elif not quiet:
        console.print(f"[bold]{cluster.label()}[/bold]")
        console.print(f"max_rate_rps (every SLO met on every seed): [bold]{result.max_rps:.2f}[/bold] "
                      f"(per seed {', '.join(f'{r:.2f}' for r in result.per_seed_rps)}; mean {result.mean_rps:.2f}, "
                      f"95% CI {result.ci95_rps[0]:.2f}-{result.ci95_rps[1]:.2f}; {result.simulations} simulations)")


def max_rate_view(found: dict) -> dict:
    """find_max_rps's result in the optimizer's vocabulary (max_rate_rps, per_seed_max_rate_rps, ...)."""
    names = {"max_rps": "max_rate_rps", "per_seed_rps": "per_seed_max_rate_rps", "mean_rps": "max_rate_mean_rps",
             "ci95_rps": "max_rate_ci95_rps"}
    return {names.get(k, k): v for k, v in found.items()}


def _print_summary(summary: dict, slo_results: list, seed: int | None) -> None:
    head = summary["cluster"]["label"] + (f"  (seed {seed})" if seed is not None else "")
    console.print(f"[bold]{head}[/bold]  workload {summary['workload']}: {summary['requests']} requests, "
                  f"{summary['offered_rps'] or 0:.2f} req/s offered")
    if summary["saturated"]:
        console.print(f"[red bold]SATURATED[/red bold]: {summary['saturation_reason']} "
                      f"(percentiles withheld; {summary['unfinished']} unfinished)")
    else:
        table = Table(title="latency", show_edge=False)
        for col in ("metric", "p50", "p90", "p99", "mean"):
            table.add_column(col, justify="right" if col != "metric" else "left")
        for key in ("ttft_s", "tbt_s", "e2e_s", "queue_s", "transfer_s"):
            row = summary[key]
            table.add_row(key[:-2].upper(), *(format_seconds(row[q]) for q in ("p50", "p90", "p99", "mean")))
        console.print(table)
    slo_table = Table(title="SLOs", show_edge=False)
    for col in ("SLO", "value", "limit", "margin", "met"):
        slo_table.add_column(col)
    for r in slo_results:
        value = f"{r.value:.3g}x" if r.unit == "x" else format_seconds(r.value)
        limit = f"{r.limit:g}x" if r.unit == "x" else format_seconds(r.limit)
        slo_table.add_row(r.slo.describe(), value, limit, f"{r.margin:+.1%}", "yes" if r.met else "[red]NO[/red]")
    console.print(slo_table)
    mixed = summary["mixed_pool"]
    console.print(f"offered_rps {_rps(summary['offered_rps'])}; completed_rps {_rps(summary['completed_rps'])} "
                  f"({summary['completed']} of {summary['requests']} requests); all SLOs met: "
                  f"{'yes' if summary['all_slos_met'] else 'no'}; cost ${summary['cost_usd_per_h']:.1f}/h; "
                  f"provisioned power {summary['power_kw']:.1f} kW; mean power {summary['mean_power_kw']:.1f} kW; "
                  f"energy {summary['energy_kwh']:.2f} kWh; co-located (mixed pool): {mixed['requests']} requests "
                  f"({mixed['request_share']:.0%}), {mixed['token_share']:.0%} of tokens, "
                  f"{mixed['borrowed_machines']} borrows")


def _rps(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"
