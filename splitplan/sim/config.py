"""Simulator knobs. Every default follows the Splitwise paper / SplitwiseSim unless noted."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from splitplan.errors import SplitplanError

TRANSFER_MODES = ("layerwise", "serialized")


@dataclass(frozen=True)
class SimConfig:
    """Scheduler, batching, transfer and saturation settings of one simulation.

    Batch sizes are not here: every policy reads them from the instance's serving stack (its
    Scheduling, after a scenario's `serving:` overrides), the same object the capacity model reads.
    A prompt machine batches whole prompts FCFS within `max_batched_tokens` (a larger prompt runs
    alone), a token machine decodes up to `max_seqs` requests, a mixed iteration holds both within
    those two (vllm-2023, the default stack: 2048 and 512, SplitwiseSim's values).
    max_preemptions: a decode preempted this many times by prompts is never preempted again.
    prompt_overflow_tokens: a prompt machine whose queue is non-empty and whose pending prompt tokens
        would exceed this overflows new prompts to the mixed pool.
    token_overflow_tokens: (default mode) a token machine whose assigned-but-not-yet-batched requests
        still have more than this many tokens to generate overflows to the mixed pool; KV memory full
        always overflows (the only test SplitwiseSim applies). Default None: off, memory only. The
        requests it counts are assigned at arrival, so it also counted every prompt still queued or
        prefilling for that machine: at 2048 it tripped at about seven 300-token answers in flight and
        sent most traffic of healthy split plans through borrowed machines (Llama-3.1-70B chat, 3 prompt
        + 1 token H100: 83% of requests co-located with it, 0% without, with more SLO headroom).
    transfer: KV transfer, "layerwise" (overlapped with prefill; the paper's choice) or "serialized";
        prompts under `layerwise_min_prompt_tokens` always use serialized, as the paper does.
    compat_transfer_gibps: SplitwiseSim's fixed KV transfer bandwidth (GiB/s) used under compat.
    reference_machine, reference_tp: the instance (machine, GPUs; default all of them) whose unloaded
        latencies define the SLO slowdowns; it runs the simulation's serving stack.
    drain_limit_factor, drain_min_s, drain_longest_factor: after the last arrival keep simulating for
        max(drain_min_s, drain_limit_factor x trace span, drain_longest_factor x the longest request's
        unloaded latency on the slowest instance); work left then means the cluster is saturated.
    saturation_queue_s: backlog trend test: saturated when requests arriving in the last quarter of the
        trace queue longer than this on average and more than twice as long as those of the second
        quarter (queues that grow without bound).
    saturation_growth, saturation_min_requests: backlog trend test: saturated when the requests in
        the system (queued or in a batch) grow over the second half of the arrivals, by linear fit, by
        more than this fraction of their mean and more than this many requests (decode batches that
        keep growing are a backlog too: every step slows).
    saturation_noise_z: the growth must also exceed this many x sqrt(mean level): the number of
        requests in a stable system fluctuates by about sqrt(level) (Poisson), so on short (30-40 s)
        runs a fixed fraction alone flags noise as saturation at low load (Splitwise-HH 36+4, coding:
        "saturated" at 48.5 req/s, passing at 80-140), making pass/fail non-monotone in the rate. A
        real backlog grows far beyond it (one A100 token machine at 40 req/s: +306 on a level of 737,
        11 sigma). The optimizer uses these same defaults, so `simulate` and `optimize` agree.
    timeline_step_s: sampling period of the timeline table (reports).
    colocated_policy: batching policy of every instance serving both phases (sim/policies), over
        the one its stack names: "mixed" (SplitwiseSim's, the paper's baseline), "chunked" (vLLM v1),
        "prefill_first" (SGLang), "inflight" (TensorRT-LLM). None: each instance's stack decides
        (SplitwiseSim's mixed under compat).
    """

    max_preemptions: int = 4
    prompt_overflow_tokens: int = 8192
    token_overflow_tokens: int | None = None
    transfer: str = "layerwise"
    layerwise_min_prompt_tokens: int = 512
    compat_transfer_gibps: float = 200.0
    reference_machine: str = "dgx-a100"
    reference_tp: int | None = None  # None: all of the reference machine's GPUs
    drain_limit_factor: float = 1.0
    drain_min_s: float = 60.0
    drain_longest_factor: float = 3.0
    saturation_queue_s: float = 2.0
    saturation_growth: float = 0.25
    saturation_min_requests: int = 20
    saturation_noise_z: float = 6.0
    timeline_step_s: float = 1.0
    colocated_policy: str | None = None

    def __post_init__(self) -> None:
        if self.transfer not in TRANSFER_MODES:
            raise SplitplanError(f"transfer must be one of {', '.join(TRANSFER_MODES)}, got '{self.transfer}'",
                                 source="sim config", field="transfer")
        if self.timeline_step_s <= 0 or self.drain_limit_factor < 0:
            raise SplitplanError("timeline_step_s must be > 0 and drain_limit_factor >= 0", source="sim config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
