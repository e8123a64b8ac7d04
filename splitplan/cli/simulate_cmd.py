"""`splitplan simulate`: run the cluster simulator on a trace, or search the max sustainable rate.

This module only declares the command (its flags and help); the work is in simulate_run.py, imported
when the command runs, so `splitplan simulate --help` starts without the simulator or numpy.
"""

from __future__ import annotations

import click

from splitplan.cli.common import catalog_option, perf_options, quant_options
from splitplan.limits import MAX_SEEDS


@click.command("simulate")
@click.option("--model", default=None, help="Model name (see `splitplan catalog models`); required unless --scenario.")
@click.option("--design", type=click.Choice(["baseline", "colocated", "splitwise", "disagg", "disaggregated"]),
              default=None, help="Cluster design: baseline/colocated (one pool running both phases), splitwise "
                                 "(prompt and token pools that overflow into mixed or borrowed machines), disagg "
                                 "(prefill and decode workers with fixed roles). Default: splitwise when "
                                 "--prompt/--token are given.")
@click.option("--machines", multiple=True, help="Baseline machines MACHINE:COUNT[:tpN][,...]; repeatable.")
@click.option("--prompt", multiple=True, help="Splitwise prompt pool MACHINE:COUNT[:tpN][,...].")
@click.option("--token", multiple=True, help="Splitwise token pool MACHINE:COUNT[:tpN][,...].")
@click.option("--mixed", multiple=True, help="Provisioned mixed (overflow) pool MACHINE:COUNT[:tpN].")
@click.option("--tp", type=int, default=8, show_default=True, help="Tensor parallelism of each instance.")
@click.option("--trace", default=None, help="Trace CSV (Azure 2023, SplitwiseSim or plain); bundled names work.")
@click.option("--scenario", "scenario_path", type=click.Path(dir_okay=False), default=None,
              help="Take model, trace, duration, SLOs, reference machine and perf settings from a scenario file; "
                   "flags given here win.")
@click.option("--rate", type=float, default=None, help="Poisson arrivals at this rate (sizes drawn from the trace).")
@click.option("--duration", type=float, default=None, help="Seconds of arrivals (default 120 with --rate).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the generated workload.")
@click.option("--seeds", type=click.IntRange(min=1, max=MAX_SEEDS), default=1, show_default=True,
              help="Repeat over this many seeds (seed, seed+1, ...).")
@click.option("--replay", is_flag=True, help="With --rate: replay the trace's real arrivals time-compressed.")
@click.option("--reference-machine", "reference_machine", default=None,
              help="Machine whose unloaded latencies slowdown SLOs (2x, 5x) are relative to, all its GPUs "
                   "(default: the scenario's, else dgx-a100).")
@click.option("--slo", "slo_texts", multiple=True, help="SLO like ttft:p99:6x or tbt:p90:200ms (default: the paper's nine).")
@click.option("--transfer", type=click.Choice(["layerwise", "serialized"]), default=None,
              help="KV-cache transfer mode (default: the scenario's serving.transfer, else layerwise; compat mode "
                   "always uses SplitwiseSim's serialized 200 GiB/s).")
@click.option("--batching", type=click.Choice(["chunked", "mixed", "prefill_first", "inflight"]), default=None,
              help="Batching policy of machines running both phases (default: the stack's; mixed under compat).")
@click.option("--max-batched-tokens", type=click.IntRange(min=16, max=1 << 20), default=None,
              help="Iteration token budget over the stack's (vLLM --max-num-batched-tokens).")
@click.option("--max-seqs", type=click.IntRange(min=1, max=1 << 16), default=None,
              help="Running sequences per instance over the stack's (vLLM --max-num-seqs).")
@click.option("--find-max-rps", is_flag=True, help="Bisect for the highest rate meeting every SLO unsaturated.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write summary.json, requests.csv, machines.csv, timeline.csv here.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON to stdout.")
@click.option("--quiet", is_flag=True, help="Print nothing but errors (and --json output).")
@perf_options
@quant_options
@catalog_option
def simulate_command(model, design, machines, prompt, token, mixed, tp, trace, scenario_path, rate, duration, seed,
                     seeds, replay, reference_machine, slo_texts, transfer, batching, max_batched_tokens, max_seqs,
                     find_max_rps, out_dir, as_json, quiet, perf_backend, profile_path, stack, compat, weights, moe_weights, kv_dtype,
                     catalog_files) -> None:
    """Simulate a baseline or Splitwise cluster serving a trace: latency percentiles, SLOs, saturation,
    throughput, cost and power.

    \b
    Examples:
      splitplan simulate --model llama2-70b --design splitwise --prompt dgx-h100:25 --token dgx-a100:26 \\
          --trace rr_conv_80_2min.csv --out out/
      splitplan simulate --model llama2-70b --design baseline --machines dgx-h100:40 --trace rr_code_80_2min.csv
      splitplan simulate --model llama2-70b --machines dgx-h100:40 --trace rr_conv_80_2min.csv \\
          --perf profile --profile splitwisesim_perf_model.csv --compat splitwisesim
      splitplan simulate --model llama2-70b --prompt dgx-h100:25 --token dgx-a100:26 \\
          --trace AzureLLMInferenceTrace_conv.csv --rate 80 --duration 600 --seed 0
      splitplan simulate --model llama2-70b --prompt dgx-h100:25 --token dgx-a100:26 \\
          --trace AzureLLMInferenceTrace_conv.csv --find-max-rps --seeds 3
      splitplan simulate --scenario scenarios/quickstart.yaml --prompt dgx-h100:4 --token dgx-a100:14 --rate 40
      splitplan simulate --model deepseek-r1 --machines dgx-h200:2 --weights fp8_block \\
          --trace AzureLLMInferenceTrace_conv.csv --rate 2
    """
    from splitplan.cli.simulate_run import run_simulate

    run_simulate(model=model, design=design, machines=machines, prompt=prompt, token=token, mixed=mixed,
                 tp=tp, trace=trace, scenario_path=scenario_path, rate=rate, duration=duration, seed=seed,
                 seeds=seeds, replay=replay, reference_machine=reference_machine, slo_texts=slo_texts,
                 transfer=transfer, batching=batching,
                 max_batched_tokens=max_batched_tokens, max_seqs=max_seqs, find_max_rps=find_max_rps,
                 out_dir=out_dir, as_json=as_json, quiet=quiet, perf_backend=perf_backend,
                 profile_path=profile_path, stack=stack, compat=compat, catalog_files=catalog_files,
                 quant={"weights": weights, "moe_weights": moe_weights, "kv": kv_dtype})
