"""Splitwise's split pools: prompt machines run FCFS prefill batches, token machines decode batches.

Prompt pool: whole prompts FCFS within the stack's `max_batched_tokens` and the instance's KV cache (a
batch's KV must fit until it is sent; a larger prompt runs alone);
the KV cache then moves to the request's token instance. Token pool: continuous decode batching up to
the stack's `max_seqs` sequences, each admitted only when its prompt plus whole output fits the KV cache
(reserved at admission, as SplitwiseSim does).
"""

from __future__ import annotations

from splitplan.sim.machines import SEG_PREFILL, take_prompts
from splitplan.sim.policies import BatchPolicy, register, scheduling


@register("prompt_pool")
class PromptPool(BatchPolicy):
    colocated = False

    def start(self, eng, inst) -> None:
        pq = inst.pq
        if not pq:
            eng.idle(inst)
            return
        if len(pq) == 1:  # most starts below saturation: take_prompts' first prompt always fits
            eng.begin_prompts(inst, [pq.popleft()], SEG_PREFILL)
            return
        batch, _ = take_prompts(inst, min(scheduling(inst).max_batched_tokens, inst.kv_cap), 1 << 30, eng.pr, None, None)
        if not batch:
            eng.idle(inst)
            return
        eng.begin_prompts(inst, batch, SEG_PREFILL)


@register("token_pool")
class TokenPool(BatchPolicy):
    colocated = False

    def start(self, eng, inst) -> None:
        if inst.wait or inst.blocked:  # most starts follow a finish with nobody waiting: nothing to admit
            eng.admit(inst, scheduling(inst).max_seqs)
        if inst.B:
            eng.decode_run(inst)
        else:
            eng.idle(inst)
