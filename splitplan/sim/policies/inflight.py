"""In-flight batching without chunked prefill (TensorRT-LLM's default): every running decode plus whole
prompts FCFS that fit the iteration's `max_batched_tokens` (max_num_tokens).

A prompt is never split: one that does not fit what the decodes leave waits; one longer than the whole
budget runs only in an iteration of its own. Memory is reserved at admission for the prompt and the
whole output (GUARANTEED_NO_EVICT), or allocated as it is used on a paged instance.
"""

from __future__ import annotations

from splitplan.sim.policies import BatchPolicy, register
from splitplan.sim.policies import scheduling
from splitplan.sim.policies.chunked import decode_or_idle, make_room_for_decodes


@register("inflight")
class Inflight(BatchPolicy):
    def start(self, eng, inst) -> None:
        sched = scheduling(inst)
        make_room_for_decodes(eng, inst)
        budget = sched.max_batched_tokens - inst.B
        slots = sched.max_seqs - inst.B
        batch: list[tuple[int, int]] = []
        pq, need = inst.pq, eng.pre_need
        while pq and slots > 0:
            rid = pq[0]
            p = need[rid]
            if p > budget and (batch or inst.B):
                break
            cost = p if inst.paged else eng.reserve[rid]
            if inst.kv_used + cost > inst.kv_cap:
                break
            inst.kv_used += cost
            pq.popleft()
            inst.prefilling.append(rid)
            batch.append((rid, p))
            budget -= p
            slots -= 1
        if batch:
            eng.begin_chunks(inst, batch, with_decodes=True)
        else:
            decode_or_idle(eng, inst)
