"""`splitplan benchmark`: the closed-loop serving benchmark, simulated.

What InferenceX, `vllm bench serve --max-concurrency` and aiperf measure: C concurrent clients, each
sending a request of ISL random tokens that generates exactly OSL tokens (no early stop), the next one
the moment one finishes. Here one instance of the model on the machine's GPUs runs it in splitplan's
simulator with the stack's batching policy, token budget, sequence limit and KV-cache policy: when the
cache is full requests wait (or decodes are preempted and recomputed, on a paged stack), which is what
makes measured TTFT jump from tenths of a second to tens of seconds at high concurrency.

Reported as the clients see it: TTFT (engine time plus the stack's per-request `api_ms`), TPOT =
(E2E - TTFT) / (OSL - 1), ITL, output tokens/s per GPU and per user, the KV cache in use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError
from splitplan.perf.base import PerfSettings
from splitplan.perf.build import build_perf_model
from splitplan.serving.kernels import gpu_arch
from splitplan.serving.quant import Quant
from splitplan.serving.stack import Stack, get_stack

MAX_REQUESTS = 200_000  # a benchmark of more requests is a typo, not a measurement
MAX_CONCURRENCY = 100_000


@dataclass(frozen=True)
class Protocol:
    """How the client behaves. The field defaults are a fixed-length sweep (10 x C prompts, exact
    lengths, the first wave left out); a benchmark given no protocol runs the client its stack was
    calibrated with (`calibrated_protocol`), so that one configuration and `--rows` agree."""

    num_prompts: int = 0  # 0: 10 x concurrency (InferenceX), at least 2 x concurrency
    range_ratio: float = 1.0  # input/output lengths uniform in [ratio x L, L] (InferenceX uses 0.8); 1 = exact
    warmup: int = -1  # requests excluded from the means, from the start; -1: the first wave (concurrency)
    seed: int = 0
    client_delay_ms: float = 0.0  # mean delay between a client's answer and its next request reaching the
    # engine (HTTP, tokenizer, client event loop); each delay uniform in [0, 2 x mean]

    def prompts(self, concurrency: int) -> int:
        return self.num_prompts or max(10 * concurrency, 2 * concurrency)

    def warmup_requests(self, concurrency: int) -> int:
        return concurrency if self.warmup < 0 else self.warmup

    def describe(self, concurrency: int) -> str:
        """One line for a reader: how many prompts, which lengths, which are measured."""
        n = self.prompts(concurrency)
        lengths = "exact lengths" if self.range_ratio >= 1 else f"lengths uniform in [{self.range_ratio:g} L, L]"
        warm = self.warmup_requests(concurrency)
        measured = "every request measured" if warm == 0 else f"the first {warm:,} left out"
        delay = f", client delay {self.client_delay_ms:g} ms" if self.client_delay_ms > 0 else ""
        return f"{n:,} prompts, {lengths}, {measured}{delay}"

    def to_dict(self) -> dict[str, float]:
        return {"num_prompts": self.num_prompts, "range_ratio": self.range_ratio, "warmup": self.warmup,
                "client_delay_ms": self.client_delay_ms, "seed": self.seed}


# The measured-serving rows were run by InferenceX's client: 10 x C prompts, lengths uniform in
# [0.8 L, L] (RANDOM_RANGE_RATIO 0.8), every request in the means.
INFERENCEX = Protocol(num_prompts=0, range_ratio=0.8, warmup=0)


def calibrated_protocol(stack: Stack, **given: float) -> Protocol:
    """The client `stack` was calibrated with (its `fitted.protocol`; InferenceX's when it records none),
    with the `given` fields (num_prompts, range_ratio, warmup, client_delay_ms, seed) on top.

    The calibration chose that client because it predicted held-out rows best; a prediction under
    another client answers another question (exact lengths keep the clients in lockstep waves, which
    multiplies TTFT at moderate concurrency), so a benchmark follows it unless told otherwise."""
    base = dict(stack.fitted.protocol) or {"range_ratio": INFERENCEX.range_ratio, "warmup": INFERENCEX.warmup}
    merged = {**base, **{k: v for k, v in given.items() if v is not None}}
    return Protocol(num_prompts=int(merged.get("num_prompts", 0)), range_ratio=float(merged.get("range_ratio", 1.0)),
                    warmup=int(merged.get("warmup", 0)), client_delay_ms=float(merged.get("client_delay_ms", 0.0)),
                    seed=int(merged.get("seed", 0)))


@dataclass(frozen=True)
class Disagg:
    """Disaggregated serving: prefill workers and decode workers of their own shapes (TP degree, and
    within it expert parallelism `ep` and attention data parallelism `dp`, as for one instance)."""

    prefill_workers: int
    prefill_tp: int
    decode_workers: int
    decode_tp: int
    prefill_ep: int = 1
    prefill_dp: int = 1
    decode_ep: int = 1
    decode_dp: int = 1

    def validate(self) -> None:
        for name in ("prefill_workers", "prefill_tp", "decode_workers", "decode_tp", "prefill_ep", "prefill_dp",
                     "decode_ep", "decode_dp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SplitplanError(f"must be a whole number >= 1, got {value!r}", field=name)
        for role in ("prefill", "decode"):
            tp = getattr(self, f"{role}_tp")
            for kind in ("ep", "dp"):
                if tp % getattr(self, f"{role}_{kind}"):
                    raise SplitplanError(f"{role}_{kind} {getattr(self, f'{role}_{kind}')} must divide {role}_tp {tp} "
                                         "(it splits the worker's GPUs)", field=f"{role}_{kind}")
        if self.prefill_workers + self.decode_workers > MAX_WORKERS:
            raise SplitplanError(f"{self.prefill_workers + self.decode_workers} workers is more than a benchmark "
                                 f"instance set splitplan simulates ({MAX_WORKERS})", field="prefill_workers")

    def label(self) -> str:
        def shape(role: str) -> str:
            extra = "".join(f" {k}{v}" for k in ("ep", "dp") if (v := getattr(self, f"{role}_{k}")) > 1)
            return f"tp{getattr(self, f'{role}_tp')}{extra}"

        return f"{self.prefill_workers} x prefill {shape('prefill')} + {self.decode_workers} x decode {shape('decode')}"


MAX_WORKERS = 4096


@dataclass(frozen=True)
class BenchmarkConfig:
    model: str
    machine: str
    isl: int
    osl: int
    concurrency: int
    stack: str | Stack | None = None  # None: the newest calibrated vLLM stack (benchmark_stack)
    quant: Quant | None = None  # None: BF16 weights and the stack's KV default
    tp: int | None = None  # None: all of the machine's GPUs
    protocol: Protocol | None = None  # None: the client the stack was calibrated with (calibrated_protocol)
    ep: int = 1  # expert parallelism: routed experts split over ep groups of the instance's GPUs
    dp: int = 1  # attention data parallelism: dp groups of tp/dp GPUs, each with its own sequences
    disagg: Disagg | None = None  # separate prefill and decode workers (then `tp`, `ep` and `dp` are unused)

    def with_protocol(self, stack: Stack) -> BenchmarkConfig:
        """This configuration with its protocol settled: as given, else `stack`'s calibrated client."""
        return self if self.protocol is not None else replace(self, protocol=calibrated_protocol(stack))

    def validate(self) -> None:
        for name in ("isl", "osl", "concurrency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SplitplanError(f"must be a whole number >= 1, got {value!r}", field=name)
        if self.concurrency > MAX_CONCURRENCY:
            raise SplitplanError(f"{self.concurrency:,} clients is more than splitplan simulates "
                                 f"({MAX_CONCURRENCY:,})", field="concurrency")
        p = self.protocol or Protocol()
        if not 0 < p.range_ratio <= 1:
            raise SplitplanError(f"must be in (0, 1], got {p.range_ratio}", field="range_ratio")
        n = p.prompts(self.concurrency)
        if n > MAX_REQUESTS:
            raise SplitplanError(f"{n:,} requests is more than a benchmark needs ({MAX_REQUESTS:,})",
                                 field="num_prompts")
        if p.warmup_requests(self.concurrency) >= n:
            raise SplitplanError(f"warm-up of {p.warmup_requests(self.concurrency)} leaves none of the {n} requests "
                                 "to measure", field="warmup")
        if self.disagg is not None:
            self.disagg.validate()


def request_sizes(config: BenchmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """(prompt, output) tokens of every request, drawn with the protocol's seed."""
    p = config.protocol
    n = p.prompts(config.concurrency)
    if p.range_ratio >= 1:
        return np.full(n, config.isl, dtype=np.int64), np.full(n, config.osl, dtype=np.int64)
    rng = np.random.default_rng(p.seed)
    lo_in, lo_out = max(int(config.isl * p.range_ratio), 1), max(int(config.osl * p.range_ratio), 1)
    return (rng.integers(lo_in, config.isl + 1, size=n, dtype=np.int64),
            rng.integers(lo_out, config.osl + 1, size=n, dtype=np.int64))


def client_delays_s(config: BenchmarkConfig, n: int) -> np.ndarray | None:
    """Per-request client delays in seconds (None: none), from the protocol's seed."""
    mean = config.protocol.client_delay_ms
    if mean <= 0:
        return None
    rng = np.random.default_rng(config.protocol.seed + 7919)
    return rng.uniform(0.0, 2.0 * mean / 1000.0, size=n)


def _stats(values_ms: np.ndarray) -> dict[str, float | None]:
    values_ms = values_ms[np.isfinite(values_ms)]
    if values_ms.size == 0:
        return {"mean": None, "median": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(values_ms, [50, 90, 99])
    return {"mean": float(values_ms.mean()), "median": float(p50), "p90": float(p90), "p99": float(p99)}


def extrapolation_notes(config: BenchmarkConfig, stack: Stack, perf) -> list[str]:
    """Where this prediction leaves what the stack was fitted on (empty: inside)."""
    notes = []
    arch = gpu_arch(perf.instance.gpu)
    if not stack.calibrated:
        notes.append(f"stack {stack.name} is not calibrated (defaults)")
    elif arch not in stack.fitted.archs:
        notes.append(f"stack {stack.name} was fitted on {', '.join(stack.fitted.archs)}, not {arch or 'this GPU'}")
    checks = {"isl": config.isl, "osl": config.osl, "concurrency": config.concurrency, "tp": perf.instance.tp}
    for key, value in checks.items():
        lo_hi = stack.fitted.ranges.get(key)
        if lo_hi and not lo_hi[0] <= value <= lo_hi[1]:
            notes.append(f"{key} {value:g} outside the fitted {lo_hi[0]:g}-{lo_hi[1]:g}")
    return notes


def run_benchmark(config: BenchmarkConfig, catalog: Catalog, *, record_segments: bool = False) -> dict[str, Any]:
    """Simulate the closed-loop benchmark of `config`; a JSON-ready dict of what a client measures."""
    from splitplan.sim.api import run_closed_loop

    stack = benchmark_stack(config.stack)
    config = config.with_protocol(stack)
    config.validate()
    quant = config.quant or stack.default_quant(None, None, None)
    if config.disagg is not None:
        return _run_disagg(config, stack, quant, catalog) | {"client": client_info(config, stack)}
    perf = build_perf_model(config.model, config.machine, config.tp, PerfSettings(stack=stack.name, quant=quant),
                            catalog, stack=stack, ep=config.ep, dp=config.dp)
    prompt, output = request_sizes(config)
    if int(prompt.max() + output.max()) > perf.kv_capacity_tokens():
        raise SplitplanError(f"one request of {int(prompt.max() + output.max()):,} tokens does not fit the "
                             f"{perf.kv_capacity_tokens():,}-token KV cache of {perf.instance.label}", field="isl")
    eng = run_closed_loop(perf, prompt, output, config.concurrency, policy=stack.scheduling.policy.value,
                          catalog=catalog, record_segments=record_segments,
                          client_delay_s=client_delays_s(config, len(prompt)))
    result = summarize(eng, perf, config, prompt, output)
    result["stack"] = stack.name
    result["provenance"] = perf.provenance
    result["extrapolated"] = extrapolation_notes(config, stack, perf)
    result["client"] = client_info(config, stack)
    if record_segments:
        result["_engine"] = eng
    return result


DEFAULT_ENGINE = "vllm"


def benchmark_stack(stack: str | Stack | None) -> Stack:
    """The stack a benchmark runs: as named, else the newest calibrated stack of DEFAULT_ENGINE. Not the
    planner's default (the 2023 vLLM of the paper's reproduction): a benchmark asks how a current engine
    serves, as `--rows` answers for a row that names no version."""
    if stack is not None:
        return get_stack(stack)
    from splitplan.serving.stack import closest_stack

    return closest_stack(DEFAULT_ENGINE, "")[0]


def client_info(config: BenchmarkConfig, stack: Stack) -> dict[str, Any]:
    """The client a result was simulated with, and whether it is the one the stack was calibrated with
    (predictions under another client are not what the stack's accuracy figures describe)."""
    p = config.protocol or Protocol()
    calibrated = p == calibrated_protocol(stack, seed=p.seed)
    return p.to_dict() | {"description": p.describe(config.concurrency), "calibrated": calibrated}


def _run_disagg(config: BenchmarkConfig, stack: Stack, quant: Quant, catalog: Catalog) -> dict[str, Any]:
    """The closed-loop benchmark on separate prefill and decode workers (apps docstring; sim/api.py)."""
    from splitplan.sim.api import run_closed_loop_disagg

    d = config.disagg
    settings = PerfSettings(stack=stack.name, quant=quant)
    prefill = build_perf_model(config.model, config.machine, d.prefill_tp, settings, catalog, stack=stack,
                               ep=d.prefill_ep, dp=d.prefill_dp)
    decode = build_perf_model(config.model, config.machine, d.decode_tp, settings, catalog, stack=stack,
                              ep=d.decode_ep, dp=d.decode_dp)
    prompt, output = request_sizes(config)
    need = int(prompt.max() + output.max())
    if need > decode.kv_capacity_tokens():
        raise SplitplanError(f"one request of {need:,} tokens does not fit the {decode.kv_capacity_tokens():,}-token "
                             f"KV cache of a decode worker ({decode.instance.label})", field="isl")
    eng = run_closed_loop_disagg(prefill, decode, d.prefill_workers, d.decode_workers, prompt, output,
                                 config.concurrency, catalog=catalog, client_delay_s=client_delays_s(config, len(prompt)))
    gpus = d.prefill_workers * d.prefill_tp + d.decode_workers * d.decode_tp
    result = summarize(eng, decode, config, prompt, output, gpus=gpus, first_token="decode")
    result |= {"tp": None, "disagg": d.label(), "policy": "disaggregated prefill/decode", "stack": stack.name,
               "provenance": decode.provenance,
               "extrapolated": extrapolation_notes(config, stack, decode) + [
                   n for n in extrapolation_notes(config, stack, prefill) if not n.startswith("stack")]}
    return result


def measured_mask(n: int, warmup: int) -> np.ndarray:
    mask = np.ones(n, dtype=bool)
    mask[:warmup] = False
    return mask


def summarize(eng, perf, config: BenchmarkConfig, prompt: np.ndarray, output: np.ndarray, *, gpus: int | None = None,
              first_token: str = "prefill") -> dict[str, Any]:
    """Client-side metrics of a run. `first_token` "decode": the client sees its first token when the
    decode worker starts the request (disaggregated serving returns tokens from there)."""
    inst = perf.instance
    gpus = gpus or inst.tp
    arrival = np.asarray(eng.arr, dtype=np.float64)
    first = np.asarray(eng.t_join0 if first_token == "decode" else eng.t_first, dtype=np.float64)
    first = np.where(np.isnan(first), np.asarray(eng.t_done, dtype=np.float64), first)
    done = np.asarray(eng.t_done, dtype=np.float64)
    keep = measured_mask(len(prompt), config.protocol.warmup_requests(config.concurrency))
    api_ms = float(getattr(perf, "api_ms", 0.0))
    ttft_ms = (first - arrival)[keep] * 1e3 + api_ms
    gaps = np.maximum(output - 1, 1).astype(np.float64)[keep]
    tpot_ms = np.where(output[keep] > 1, (done - first)[keep] * 1e3 / gaps, np.nan)
    e2e_ms = (done - arrival)[keep] * 1e3 + api_ms
    span_s = float(np.nanmax(done[keep]) - np.nanmin(arrival[keep]))
    tokens = float(output[keep].sum())
    itl_ms = _itl_ms(eng)
    decoders = [i for i in eng.insts if i.home != "prompt"]
    total_s = max(eng.end_s, 1e-12)
    cap = max(sum(i.kv_cap for i in decoders), 1)
    kv_time = sum(i.kv_time for i in decoders)
    mean_tpot = _stats(tpot_ms)["mean"]
    return {
        "model": inst.model.name, "machine": inst.machine.name, "gpu": inst.gpu.name, "tp": inst.tp,
        "ep": inst.ep, "dp": inst.dp,
        "quant": inst.quant.to_dict(), "policy": eng.insts[0].colo.name,
        "isl": config.isl, "osl": config.osl, "concurrency": config.concurrency,
        "requests": int(len(prompt)), "measured_requests": int(keep.sum()),
        "ttft_ms": _stats(ttft_ms), "tpot_ms": _stats(tpot_ms), "itl_ms": itl_ms, "e2e_ms": _stats(e2e_ms),
        "output_tokens_per_s": tokens / span_s if span_s > 0 else None,
        "output_tokens_per_s_per_gpu": tokens / span_s / gpus if span_s > 0 else None,
        "output_tokens_per_s_per_user": 1000.0 / mean_tpot if mean_tpot else None,
        "kv_cache": {"capacity_tokens": int(cap), "peak_tokens": int(max(i.kv_peak for i in decoders)),
                     "mean_tokens": kv_time / total_s, "mean_fraction": kv_time / total_s / cap,
                     "policy": "paged" if decoders[0].paged else "reserve"},
        "preemptions": int(eng.preemptions),
        "simulated_s": total_s,
    }


def _itl_ms(eng) -> dict[str, float | None]:
    from splitplan.sim.metrics import itl_samples

    values, weights = itl_samples(eng)
    if values.size == 0:
        return {"mean": None, "median": None, "p90": None, "p99": None}
    order = np.argsort(values)
    v, w = values[order] * 1e3, weights[order]
    cum = np.cumsum(w) / w.sum()
    pick = lambda q: float(v[min(np.searchsorted(cum, q), v.size - 1)])  # noqa: E731
    return {"mean": float(np.sum(v * w) / w.sum()), "median": pick(0.5), "p90": pick(0.9), "p99": pick(0.99)}
