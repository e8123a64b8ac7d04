"""`splitplan benchmark`: the closed-loop serving benchmark (vllm bench serve, InferenceX, aiperf), simulated."""

from __future__ import annotations

import json

import click

from splitplan.cli.common import catalog_option, console, load_catalog_from
from splitplan.cli.result_options import given_fields, result_options
from splitplan.errors import SplitplanError


def _protocol(stack, num_prompts: int | None, range_ratio: float | None, warmup: int | None,
              client_delay_ms: float | None, seed: int):
    """The client flags given, on top of the client the stack was calibrated with."""
    from splitplan.apps.benchmark import calibrated_protocol

    return calibrated_protocol(stack, num_prompts=num_prompts, range_ratio=range_ratio, warmup=warmup,
                               client_delay_ms=client_delay_ms, seed=seed)


@click.command("benchmark")
@click.option("--model", help="Model name or Hugging Face id (see splitplan catalog models).")
@click.option("--machine", help="Machine or GPU name (dgx-h100, h100, H200, b200).")
@click.option("--stack", default=None,
              help="Serving stack: bundled name (vllm, sglang, trtllm, ...) or stack YAML (default: the newest vllm stack).")
@click.option("--weights", default=None, help="Weight format: bf16, fp8, fp8_block, nvfp4, mxfp4, int4_wo.")
@click.option("--moe-weights", default=None, help="Expert weight format (default: as --weights).")
@click.option("--kv-dtype", default=None, help="KV-cache format: bf16 or fp8 (default: the stack's for the weights).")
@click.option("--tp", type=int, default=None, help="Tensor-parallel degree (default: all of the machine's GPUs).")
@click.option("--ep", type=int, default=1, show_default=True,
              help="Expert parallelism inside the instance: routed experts over ep groups of its GPUs (divides --tp).")
@click.option("--attention-dp", "attention_dp", type=int, default=1, show_default=True,
              help="Attention data parallelism inside the instance: groups of tp/dp GPUs with their own sequences.")
@click.option("--isl", type=int, default=None, help="Input tokens per request.")
@click.option("--osl", type=int, default=None, help="Output tokens per request (generated exactly, no early stop).")
@click.option("--concurrency", type=int, default=None, help="Concurrent clients (closed loop).")
@click.option("--num-prompts", type=int, default=None,
              help="Requests in the run (default: the stack's calibrated client, else 10 x concurrency).")
@click.option("--range-ratio", type=float, default=None,
              help="Lengths uniform in [ratio x L, L]; 1 = exact, the clients then run in lockstep waves "
                   "(default: the client the stack was calibrated with; InferenceX's uses 0.8).")
@click.option("--warmup", type=int, default=None,
              help="Requests left out of the means; -1 = the first wave (default: the stack's calibrated "
                   "client, InferenceX's measures every request).")
@click.option("--client-delay-ms", type=float, default=None,
              help="Mean delay before a client's next request reaches the engine (default: the stack's "
                   "calibrated client, else 0).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of request lengths and delays.")
@click.option("--prefill-workers", type=int, default=None,
              help="Disaggregated: prefill workers (with --prefill-tp, --decode-workers, --decode-tp).")
@click.option("--prefill-tp", type=int, default=None, help="Disaggregated: GPUs per prefill worker.")
@click.option("--decode-workers", type=int, default=None, help="Disaggregated: decode workers.")
@click.option("--decode-tp", type=int, default=None, help="Disaggregated: GPUs per decode worker.")
@click.option("--prefill-ep", type=int, default=1, show_default=True,
              help="Disaggregated: expert parallelism inside a prefill worker (divides --prefill-tp).")
@click.option("--prefill-attention-dp", "prefill_dp", type=int, default=1, show_default=True,
              help="Disaggregated: attention data parallelism inside a prefill worker.")
@click.option("--decode-ep", type=int, default=1, show_default=True,
              help="Disaggregated: expert parallelism inside a decode worker (divides --decode-tp).")
@click.option("--decode-attention-dp", "decode_dp", type=int, default=1, show_default=True,
              help="Disaggregated: attention data parallelism inside a decode worker.")
@click.option("--rows", "rows_path", type=click.Path(), default=None,
              help="Predict every row of a measured-serving CSV instead (needs --out).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="CSV to write for --rows.")
@click.option("--workers", type=int, default=None, help="Parallel processes for --rows (default min(2, cpus)).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@result_options(skip=("model", "weights", "tp", "isl", "osl", "concurrency"))
@catalog_option
def benchmark_command(model, machine, stack, weights, moe_weights, kv_dtype, tp, ep, attention_dp, isl, osl,
                      concurrency, num_prompts,
                      range_ratio, warmup, client_delay_ms, seed, prefill_workers, prefill_tp, decode_workers,
                      decode_tp, prefill_ep, prefill_dp, decode_ep, decode_dp, rows_path, out_path, workers, as_json,
                      catalog_files, **result_fields) -> None:
    """Simulate the closed-loop benchmark: C clients, each sending ISL tokens and receiving exactly
    OSL tokens, the next request as soon as one finishes.

    One instance of the model on the machine's GPUs runs with the stack's batching policy, token
    budget, sequence limit and KV-cache policy; a full cache makes requests wait (or, on a paged
    stack, preempts and recomputes), as real engines do. Prints mean, median, P90 and P99 of TTFT,
    TPOT (= (E2E - TTFT) / (OSL - 1)) and ITL, output tokens/s per GPU and per user, the KV cache in
    use, and the stack with its provenance; says so when the prediction leaves what the stack was
    fitted on. With --prefill-workers/--prefill-tp/--decode-workers/--decode-tp the requests run on
    separate prefill and decode workers (disaggregated serving) and the KV cache moves between them.

    With --rows, every row of a measured-serving table (the columns of
    profiles/measured/serving/h100.csv; or `vllm bench serve` JSON, AIPerf / GenAI-Perf exports, a
    folder or glob of them, with --gpu, --engine, --model, --tp, ... for what they do not record) is predicted on the closest shipped stack for its
    engine and version, and written to --out with predicted_ttft_ms, predicted_tpot_ms,
    predicted_output_tokens_per_s_per_gpu, stack and status (ok, or refused: reason). Measured
    ttft_ms/tpot_ms, when present, are never used for the prediction; the errors per group are printed.

    \b
    Examples:
      splitplan benchmark --model llama3.1-70b --machine h100 --stack vllm --weights fp8 --tp 4 --isl 1024 --osl 1024 --concurrency 32
      splitplan benchmark --model meta-llama/Llama-3.1-70B --machine H200 --weights fp8 --tp 2 --isl 8192 --osl 1024 --concurrency 64 --json
      splitplan benchmark --model qwen3-32b --machine h100 --weights fp8 --isl 4000 --osl 1000 --concurrency 64 --prefill-workers 8 --prefill-tp 1 --decode-workers 2 --decode-tp 4
      splitplan benchmark --rows my_runs.csv --out predicted.csv
    """
    catalog = load_catalog_from(catalog_files)
    if rows_path:
        if not out_path:
            raise SplitplanError("--rows needs --out PRED.csv", field="--out")
        from splitplan.atomic_io import prepare_output

        prepare_output(out_path, "--out")
        given = given_fields(result_fields)
        given |= {k: v for k, v in (("model", model), ("weights", weights), ("tp", tp), ("isl", isl), ("osl", osl),
                                    ("concurrency", concurrency)) if v is not None}
        _rows(rows_path, out_path, catalog, stack, workers, as_json, given)
        return
    missing = [f"--{n}" for n, v in (("model", model), ("machine", machine), ("isl", isl), ("osl", osl),
                                     ("concurrency", concurrency)) if v is None]
    if missing:
        raise SplitplanError(f"missing {', '.join(missing)} (or give --rows CSV)", field=missing[0])
    from splitplan.apps.benchmark import BenchmarkConfig, Disagg, benchmark_stack, run_benchmark
    from splitplan.apps.benchmark_rows import machine_for

    chosen = benchmark_stack(stack)
    protocol = _protocol(chosen, num_prompts, range_ratio, warmup, client_delay_ms, seed)
    quant = chosen.default_quant(weights, moe_weights, kv_dtype)
    shape = {"prefill_workers": prefill_workers, "prefill_tp": prefill_tp, "decode_workers": decode_workers,
             "decode_tp": decode_tp}
    disagg = None
    if any(v is not None for v in shape.values()):
        missing = [f"--{k.replace('_', '-')}" for k, v in shape.items() if v is None]
        if missing:
            raise SplitplanError(f"disaggregated serving also needs {', '.join(missing)}", field=missing[0])
        disagg = Disagg(**shape, prefill_ep=prefill_ep, prefill_dp=prefill_dp, decode_ep=decode_ep,
                        decode_dp=decode_dp)
    mach = machine_for(catalog, machine, max(prefill_tp or 1, decode_tp or 1, tp or 1))
    config = BenchmarkConfig(model=catalog.model(model).name, machine=mach.name, isl=isl, osl=osl,
                             concurrency=concurrency, stack=chosen, quant=quant, tp=tp, protocol=protocol,
                             ep=ep, dp=attention_dp, disagg=disagg)
    result = run_benchmark(config, catalog)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    _print_result(result)


def _print_result(r: dict) -> None:
    from rich.table import Table

    shape = r.get("disagg") or f"tp={r['tp']}"
    title = (f"{r['model']} on {r['machine']} {shape} ({r['quant']['weights']}, kv {r['quant']['kv']}): "
             f"{r['isl']}/{r['osl']} tokens, {r['concurrency']} clients, {r['policy']} batching")
    table = Table(title=title)
    for column in ("metric (ms)", "mean", "median", "P90", "P99"):
        table.add_column(column, justify="left" if column.startswith("metric") else "right")
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        s = r[key]
        table.add_row(key[:-3].upper(), *(f"{s[k]:,.2f}" if s[k] is not None else "-"
                                          for k in ("mean", "median", "p90", "p99")))
    console.print(table)
    kv = r["kv_cache"]
    console.print(f"output tokens/s: {r['output_tokens_per_s']:,.0f} ({r['output_tokens_per_s_per_gpu']:,.0f} per GPU, "
                  f"{r['output_tokens_per_s_per_user']:,.1f} per user); {r['measured_requests']} of "
                  f"{r['requests']} requests measured")
    console.print(f"KV cache ({kv['policy']}): {kv['capacity_tokens']:,} tokens; in use {kv['mean_fraction'] * 100:.0f}% "
                  f"on average, peak {kv['peak_tokens']:,}; {r['preemptions']} preemption(s)")
    client = r["client"]
    console.print(f"client: {client['description']}"
                  + (f" (the client stack {r['stack']} was calibrated with)" if client["calibrated"] else
                     f" (not the client stack {r['stack']} was calibrated with: its accuracy figures do not cover it)"))
    console.print(f"stack: {r['provenance']}", style="dim")
    for note in r["extrapolated"]:
        console.print(f"extrapolated: {note}", style="yellow")


def _rows(rows_path: str, out_path: str, catalog, stack: str | None, workers: int | None, as_json: bool,
          given: dict) -> None:
    from splitplan.apps.benchmark_rows import error_table, predict_rows, read_rows
    from splitplan.apps.serving_results import read_results

    frame = read_results(rows_path, **given) if given else read_rows(rows_path)
    out = predict_rows(frame, catalog, stack=stack, workers=workers)
    try:
        out.to_csv(out_path, index=False)
    except OSError as exc:
        raise SplitplanError(f"cannot write ({exc.__class__.__name__})", source=out_path) from None
    status = out["status"].astype(str)
    ok = int(status.str.startswith("ok").sum())
    errors = error_table(out)
    if as_json:
        click.echo(json.dumps({"rows": len(out), "predicted": ok, "refused": len(out) - ok,
                               "errors": errors.to_dict("records")}, indent=2))
        return
    console.print(f"predicted {ok} of {len(out)} rows; refused {len(out) - ok} (status column says why); wrote {out_path}")
    reasons = status[~status.str.startswith("ok")].value_counts()
    for reason, count in reasons.items():
        console.print(f"  {count} x {reason}", style="dim")
    if not errors.empty:
        from rich.table import Table

        table = Table(title="prediction error against the measured columns (%, mean absolute / median)")
        for column in errors.columns:
            table.add_column(str(column), justify="left" if errors[column].dtype == object else "right")
        for record in errors.itertuples(index=False):
            table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in record))
        console.print(table)
