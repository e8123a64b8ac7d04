"""`splitplan trace generate|stats`: make workloads at a chosen rate, and check what a trace holds."""

from __future__ import annotations

import json
import math

import click

from splitplan.cli.common import console

# splitplan.workload's GENERATORS and ARRIVAL_PROCESSES, spelled out so that `trace generate --help` does
# not import numpy (tests/test_startup.py checks the two agree)
GENERATOR_CHOICES = ("poisson", "replay", "synthetic", "trace")
ARRIVAL_CHOICES = ("poisson", "uniform", "gamma")


@click.group("trace")
def trace_group() -> None:
    """Generate workloads from traces or distributions, and summarise trace files.

    \b
    Examples:
      splitplan trace generate --from AzureLLMInferenceTrace_conv.csv --rate 80 --duration 120 --out conv80.csv
      splitplan trace stats AzureLLMInferenceTrace_code.csv
    """


@trace_group.command("generate")
@click.option("--from", "source", metavar="TRACE", default=None,
              help="Source trace (path, or a bundled name such as AzureLLMInferenceTrace_conv.csv).")
@click.option("--generator", type=click.Choice(GENERATOR_CHOICES), default=None,
              help="poisson: resample sizes, Poisson arrivals (default with --from); replay: the trace's own "
                   "bursty arrivals, time-compressed; synthetic: --prompt/--output distributions; trace: as is.")
@click.option("--replay", is_flag=True, help="Shorthand for --generator replay.")
@click.option("--rate", "rate_rps", type=float, default=None, help="Mean request rate (requests/s).")
@click.option("--duration", "duration_s", type=float, default=None, help="Length of the workload (s).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same file).")
@click.option("--time-scale", type=float, default=None,
              help="Replay only: multiply trace time by this instead of giving --rate (0.1 = 10x the rate).")
@click.option("--start", "start_s", type=float, default=0.0, show_default=True,
              help="Replay only: start this many seconds into the trace.")
@click.option("--prompt", "prompt_dist", default=None, metavar="DIST",
              help="Synthetic prompt sizes: fixed:N, uniform:LO,HI, normal:MEAN,STD, lognormal:MEAN,STD.")
@click.option("--output", "output_dist", default=None, metavar="DIST", help="Synthetic output sizes (as --prompt).")
@click.option("--arrivals", type=click.Choice(ARRIVAL_CHOICES), default="poisson", show_default=True,
              help="Synthetic arrival process.")
@click.option("--cv", type=float, default=1.0, show_default=True, help="Inter-arrival CV for --arrivals gamma.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--format", "fmt", type=click.Choice(["plain", "splitwisesim"]), default="plain", show_default=True,
              help="plain: arrival_s,prompt_tokens,output_tokens; splitwisesim: SplitwiseSim's trace format.")
def generate_command(source: str | None, generator: str | None, replay: bool, rate_rps: float | None,
                     duration_s: float | None, seed: int, time_scale: float | None, start_s: float,
                     prompt_dist: str | None, output_dist: str | None, arrivals: str, cv: float, out_path: str,
                     fmt: str) -> None:
    """Write a workload: sizes from a trace at a chosen rate, a compressed replay, or synthetic.

    \b
    Examples:
      splitplan trace generate --from AzureLLMInferenceTrace_conv.csv --rate 80 --duration 120 --seed 0 --out T.csv
      splitplan trace generate --from AzureLLMInferenceTrace_code.csv --replay --rate 50 --duration 60 --out B.csv
      splitplan trace generate --prompt lognormal:1000,800 --output fixed:200 --rate 20 --duration 60 \\
          --arrivals gamma --cv 3 --out S.csv --format splitwisesim
    """
    from splitplan.workload import SizeDist, WorkloadSpec, build_workload
    from splitplan.workload_io import workload_stats, write_trace

    if replay:
        generator = "replay"
    if generator is None:
        generator = "poisson" if source else "synthetic"
    spec = WorkloadSpec(
        trace=source, generator=generator, rate_rps=rate_rps, duration_s=duration_s, seed=seed, start_s=start_s,
        time_scale=time_scale,
        prompt=SizeDist.parse(prompt_dist, source="--prompt") if prompt_dist else None,
        output=SizeDist.parse(output_dist, source="--output") if output_dist else None,
        arrivals=arrivals, cv=cv,
    )
    workload = build_workload(spec)
    write_trace(workload, out_path, fmt=fmt)
    stats = workload_stats(workload)
    console.print(f"wrote {out_path}: {stats['requests']} requests over {stats['span_s']:.1f} s "
                  f"({stats['rate_rps']:.2f} req/s, inter-arrival CV {stats['interarrival_cv']:.2f}), "
                  f"prompt mean {stats.get('prompt_mean', 0):.0f}, output mean {stats.get('output_mean', 0):.0f} tokens")


_ROWS = (
    ("requests", "requests", "{:d}"), ("span_s", "span (s)", "{:.1f}"), ("rate_rps", "mean rate (req/s)", "{:.2f}"),
    ("interarrival_cv", "inter-arrival CV", "{:.2f}"),
    ("prompt_p50", "prompt P50", "{:.0f}"), ("prompt_mean", "prompt mean", "{:.0f}"),
    ("prompt_p90", "prompt P90", "{:.0f}"), ("prompt_p99", "prompt P99", "{:.0f}"), ("prompt_max", "prompt max", "{:d}"),
    ("output_p50", "output P50", "{:.0f}"), ("output_mean", "output mean", "{:.0f}"),
    ("output_p90", "output P90", "{:.0f}"), ("output_p99", "output P99", "{:.0f}"), ("output_max", "output max", "{:d}"),
    ("total_prompt_tokens", "total prompt tokens", "{:d}"), ("total_output_tokens", "total output tokens", "{:d}"),
)


def _cell(value: object, fmt: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "-"
    return fmt.format(value)


@trace_group.command("stats")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats_command(files: tuple[str, ...], as_json: bool) -> None:
    """Summarise traces: request count, rate, burstiness, prompt/output token percentiles.

    Any accepted format (Azure, SplitwiseSim, plain); bundled trace names work from any directory.

    \b
    Examples:
      splitplan trace stats AzureLLMInferenceTrace_conv.csv AzureLLMInferenceTrace_code.csv
      splitplan trace stats T.csv --json
    """
    from rich.table import Table

    from splitplan.workload import load_trace, resolve_trace_path
    from splitplan.workload_io import workload_stats

    summaries = [workload_stats(load_trace(resolve_trace_path(f))) for f in files]
    if as_json:
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in s.items()}
                 for s in summaries]
        click.echo(json.dumps(clean if len(clean) > 1 else clean[0], indent=2))
        return
    table = Table(title="splitplan trace stats")
    table.add_column("")
    for summary in summaries:
        table.add_column(str(summary["name"]), justify="right")
    for key, label, fmt in _ROWS:
        table.add_row(label, *(_cell(s.get(key, math.nan), fmt) for s in summaries))
    console.print(table)
