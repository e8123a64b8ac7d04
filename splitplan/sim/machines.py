"""Per-instance state and the closed-form arithmetic of decode runs (sim/policies/ forms the batches).

Decode batches are kept in closed form so that events do not grow with output tokens: an instance
counts its decode iterations in `k`; a request in the batch finishes at iteration `fin_k` (a heap gives
the next one), and the batch's summed context `S` grows by `B` per iteration, so with
(base, per) = decode_coeffs(B) step m of a run costs base + per * (S + m * B) and n steps cost
n * base + per * (n * S + B * n * (n - 1) / 2).
"""

from __future__ import annotations

import heapq
import math
from collections import deque

SEG_IDLE, SEG_PREFILL, SEG_MIXED, SEG_DECODE = 0, 1, 2, 3
BATCH_CACHE_ENTRIES = 200_000  # bound on cached multi-prompt / mixed iteration parts per perf model


class Inst:
    """One model instance (tp GPUs of a machine) and its queues; plain slots for a fast hot path."""

    __slots__ = (
        "id", "home", "role", "machine", "machine_idx", "perf", "kv_cap", "kv_used", "coeffs", "prefill_cache",
        "paged", "colo", "policy", "sched", "adm_heap", "kick", "prefilling", "seg_chunks", "kv_peak", "kv_time",
        "pq", "sched_pending", "sched_mem", "sched_queue_tokens", "wait", "blocked", "active", "fin_heap",
        "k", "B", "S", "busy", "ver", "seg", "seg_start", "seg_n", "seg_base", "seg_per",
        "seg_S0", "seg_B", "seg_dur", "seg_prompts", "paused", "busy_prefill_s", "busy_decode_s", "busy_mixed_s",
        "decode_tokens", "batch_time", "prefill_batches", "prefill_prompts", "prefill_tokens", "served",
    )

    def __init__(self, idx: int, home: str, machine: str, machine_idx: int, perf, kv_cap: int,
                 coeffs: dict | None = None, prefill_cache: dict | None = None):
        self.id = idx
        self.home = home  # provisioned role
        self.role = home  # current role: a borrowed machine runs "mixed"
        self.machine = machine
        self.machine_idx = machine_idx  # which physical machine (its NIC), for link contention
        self.perf = perf
        self.kv_cap = kv_cap
        self.kv_used = 0  # KV tokens reserved by admitted requests
        # caches shared by instances of one perf model (pure functions of their arguments)
        self.coeffs: dict[int, tuple[float, float]] = {} if coeffs is None else coeffs
        self.prefill_cache: dict[int, float] = {} if prefill_cache is None else prefill_cache
        self.paged = False  # KV allocated as tokens are computed (else reserved whole at admission)
        self.colo = None  # the co-located batching policy it runs when its role is mixed (the engine sets it)
        self.policy = None  # the policy of its current role (the engine keeps it in step with `role`)
        self.sched = getattr(perf, "scheduling", None)  # its stack's batch limits (policies.scheduling)
        self.adm_heap: list[tuple[int, int]] = []  # (-join sequence, request): latest admitted first (paged victims)
        self.kick = False  # a start is scheduled at the current time (arrivals at one instant batch together)
        self.prefilling: list[int] = []  # admitted prompts part-way through a chunked prefill, FCFS
        self.seg_chunks: list[tuple[int, int]] = []  # (request, new tokens) of the running iteration
        self.kv_peak = 0  # most KV tokens in use at once
        self.kv_time = 0.0  # integral of KV tokens in use over time (token-seconds)
        self.pq: deque[int] = deque()  # prompts waiting, FCFS
        self.sched_pending = 0  # router's pending-token count (JSQ key)
        self.sched_mem = 0  # router's reserved KV tokens (token-machine key)
        self.sched_queue_tokens = 0  # tokens still to generate by requests assigned here but not yet batched
        self.wait: deque[int] = deque()  # decodes waiting for admission (memory / batch slots)
        self.blocked: deque[int] = deque()  # decodes preempted by prompts (keep their memory)
        self.active: set[int] = set()
        self.fin_heap: list[tuple[int, int]] = []
        self.k = 0
        self.B = 0
        self.S = 0
        self.busy = False
        self.ver = 0
        self.seg = SEG_IDLE
        self.seg_start = 0.0
        self.seg_n = 0
        self.seg_base = 0.0
        self.seg_per = 0.0
        self.seg_S0 = 0
        self.seg_B = 0
        self.seg_dur = 0.0
        self.seg_prompts: list[int] = []
        self.paused = False
        self.busy_prefill_s = 0.0
        self.busy_decode_s = 0.0
        self.busy_mixed_s = 0.0
        self.decode_tokens = 0
        self.batch_time = 0.0  # integral of decode batch size over decode/mixed time
        self.prefill_batches = 0
        self.prefill_prompts = 0
        self.prefill_tokens = 0
        self.served = 0

    def coeffs_ms(self, batch: int) -> tuple[float, float]:
        """decode_coeffs(batch), cached (the perf model is a pure function of the batch size)."""
        c = self.coeffs.get(batch)
        if c is None:
            base, per = self.perf.decode_coeffs(batch)
            c = self.coeffs[batch] = (float(base), float(per))
        return c


def run_time_s(n: int, base_ms: float, per_ms: float, s0: int, b: int) -> float:
    """Seconds for n decode steps starting at summed context s0 with batch b (closed form)."""
    return (n * base_ms + per_ms * (n * s0 + b * n * (n - 1) / 2.0)) / 1000.0


def steps_done(elapsed_s: float, base_ms: float, per_ms: float, s0: int, b: int) -> int:
    """How many whole decode steps fit in `elapsed_s` (inverse of run_time_s)."""
    return next_step_end(elapsed_s, base_ms, per_ms, s0, b)[0]


def next_step_end(elapsed_s: float, base_ms: float, per_ms: float, s0: int, b: int) -> tuple[int, float]:
    """(m, t): m whole decode steps fit in `elapsed_s` and step m + 1 ends at t = run_time_s(m + 1).
    Both at once because a run cut at its next iteration boundary needs both (every arrival that cuts
    a decode run comes here)."""
    t_ms = elapsed_s * 1000.0
    a = per_ms * b / 2.0
    lin = base_ms + per_ms * s0 - a
    if a <= 0.0:
        m = int(t_ms // lin) if lin > 0 else 0
    else:
        m = int((-lin + math.sqrt(lin * lin + 4 * a * t_ms)) / (2 * a))
    # run_time_s inlined: the same arithmetic
    while m > 0 and (m * base_ms + per_ms * (m * s0 + b * m * (m - 1) / 2.0)) / 1000.0 > elapsed_s + 1e-12:
        m -= 1
    while True:
        t = ((m + 1) * base_ms + per_ms * ((m + 1) * s0 + b * (m + 1) * m / 2.0)) / 1000.0
        if t > elapsed_s:
            return m, t
        m += 1


def take_prompts(inst: Inst, budget: int, max_batch: int, prompt_tokens: list[int],
                 reserve: list[int] | None, token_inst: list[int] | None,
                 start_tokens: int = 0, start_count: int = 0) -> tuple[list[int], int]:
    """FCFS prompts within a token budget (the first always fits) and, if `reserve` given, KV memory
    (reserved here only for requests that will also decode on this instance).

    `start_tokens`/`start_count`: what the batch already holds (decodes that may not be preempted)."""
    pq = inst.pq
    batch: list[int] = []
    tokens = 0
    while pq and len(batch) + start_count < max_batch:
        rid = pq[0]
        p = prompt_tokens[rid]
        if (batch or start_count) and start_tokens + tokens + p > budget:
            break
        if reserve is not None:
            need = reserve[rid] if token_inst[rid] == inst.id else 0
            if inst.kv_used + need > inst.kv_cap:
                break
            inst.kv_used += need
        pq.popleft()
        batch.append(rid)
        tokens += p
    return batch, tokens


def prefill_duration_s(inst: Inst, batch: list[int], prompt_tokens: list[int], decode_b: int, decode_s: int) -> float:
    """One prefill (decode_b == 0) or mixed iteration, seconds. Single-prompt prefills are cached by
    prompt size (the common case below saturation; sizes repeat across a trace); other iterations, where
    the perf model can split off the decodes' summed context (prompt_iteration_parts), by their shape."""
    n = len(batch)
    if n == 1 and not decode_b:
        p = prompt_tokens[batch[0]]
        cache = inst.prefill_cache
        t = cache.get(p)
        if t is None:
            t = cache[p] = float(inst.perf.prefill_ms(1, p, p * p)) / 1000.0
        return t
    total = 0
    sq = 0
    for rid in batch:
        p = prompt_tokens[rid]
        total += p
        sq += p * p
    parts_of = getattr(inst.perf, "prompt_iteration_parts", None)
    if parts_of is not None:  # batches repeat (same sizes, same decode count): all but the context cached
        cache = inst.prefill_cache
        key = (n, total, sq, decode_b)
        parts = cache.get(key)
        if parts is None:
            parts = parts_of(n, total, sq, decode_b)
            if len(cache) < BATCH_CACHE_ENTRIES:
                cache[key] = parts
        head, per_context, window, host = parts
        return (head + per_context * float(decode_s if decode_b else 0.0) + window + host) / 1000.0
    if decode_b:
        return float(inst.perf.mixed_ms(n, total, sq, decode_b, decode_s)) / 1000.0
    return float(inst.perf.prefill_ms(n, total, sq)) / 1000.0


def leave_batch(inst: Inst, rid: int, ctx0: list[int], join_k: list[int]) -> int:
    """Remove a request from the batch (lazy heap deletion); returns its current context."""
    inst.active.discard(rid)
    ctx = ctx0[rid] + inst.k - join_k[rid]
    inst.B -= 1
    inst.S -= ctx
    return ctx


def latest_preemptible(inst: Inst, count: int) -> list[int]:
    """The `count` latest-arriving requests in the decode batch, latest first (request ids follow
    arrival order). A scan when preemption happens, rather than a heap kept up at every join: joins
    happen at every request, preemptions only under the mixed policy's prompt pressure."""
    return heapq.nlargest(count, inst.active)
