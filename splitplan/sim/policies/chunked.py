"""Chunked prefill (Sarathi-Serve; the default of vLLM v1): decodes first, prompt chunks in what is left.

Each iteration holds one token of every running decode and then prompt chunks up to the stack's
`max_batched_tokens`: first the prompts already part-way through their prefill, then new ones FCFS, a
long prompt spread over several iterations. Memory follows the instance's KV policy: paged (vLLM)
allocates a chunk's tokens when it is scheduled and one token per decode step, and when a step no
longer fits, preempts the latest-arriving decode, which frees its blocks and later re-prefills its
whole context (recomputation); reserve (TensorRT-LLM's GUARANTEED_NO_EVICT) admits a request only
when its prompt plus whole output fits, and never preempts.
"""

from __future__ import annotations

from splitplan.sim.policies import BatchPolicy, register, scheduling

WATERMARK = 0.01  # vLLM keeps 1% of the KV blocks free when admitting new requests


def make_room_for_decodes(eng, inst) -> bool:
    """Paged KV: preempt until one step of every running decode fits, the request admitted last first:
    prompts part-way through their prefill (they lose their chunks), then decodes (recomputed later).
    True when something was preempted: vLLM admits no waiting request in such a step."""
    preempted = False
    if inst.paged:
        while inst.B and inst.kv_used + inst.B > inst.kv_cap:
            if not (release_latest_prefill(eng, inst) or eng.preempt_recompute(inst)):
                break
            preempted = True
    return preempted


def release_latest_prefill(eng, inst) -> bool:
    """The prompt admitted last, part-way through its prefill, gives its blocks back and waits again."""
    if not (inst.paged and inst.prefilling):
        return False
    rid = inst.prefilling.pop()
    inst.kv_used -= eng.pre_done[rid]
    eng.pre_done[rid] = 0
    inst.pq.appendleft(rid)
    eng.preemptions += 1
    return True


def collect_chunks(eng, inst, budget: int, slots: int, admit: bool = True) -> list[tuple[int, int]]:
    """Prompt chunks within `budget` tokens and `slots` new sequences: part-way prompts, then new ones."""
    chunks: list[tuple[int, int]] = []
    need, done = eng.pre_need, eng.pre_done
    for rid in list(inst.prefilling):
        if budget <= 0:
            break
        c = min(need[rid] - done[rid], budget)
        if inst.paged:
            if inst.kv_used + c > inst.kv_cap:  # no blocks for its next chunk: the latest prompt yields
                release_latest_prefill(eng, inst)
                break
            inst.kv_used += c
        chunks.append((rid, c))
        budget -= c
    pq = inst.pq
    watermark = int(WATERMARK * inst.kv_cap) if inst.paged else 0
    while admit and pq and budget > 0 and slots > 0:
        rid = pq[0]
        if inst.paged:
            c = min(need[rid], budget)
            if inst.kv_used + c > inst.kv_cap - watermark:
                break
            inst.kv_used += c
        else:
            if inst.kv_used + eng.reserve[rid] > inst.kv_cap:
                break
            inst.kv_used += eng.reserve[rid]
            c = min(need[rid], budget)
        pq.popleft()
        inst.prefilling.append(rid)
        chunks.append((rid, c))
        budget -= c
        slots -= 1
    return chunks


def release_a_prefill(eng, inst) -> bool:
    """Paged KV full of part-way prompts and nothing decoding: the latest gives its blocks back."""
    return not inst.B and release_latest_prefill(eng, inst)


def decode_or_idle(eng, inst) -> None:
    if inst.B:
        steps = (inst.kv_cap - inst.kv_used) // inst.B if inst.paged else 0
        eng.decode_run(inst, max_steps=max(steps, 1) if inst.paged else 0)
    else:
        eng.idle(inst)


@register("chunked")
class Chunked(BatchPolicy):
    def start(self, eng, inst) -> None:
        sched = scheduling(inst)
        preempted = make_room_for_decodes(eng, inst)
        budget = sched.max_batched_tokens - inst.B
        slots = sched.max_seqs - inst.B - len(inst.prefilling)
        chunks = collect_chunks(eng, inst, budget, slots, admit=not preempted)
        if not chunks and release_a_prefill(eng, inst):
            chunks = collect_chunks(eng, inst, budget, slots + 1)
        if chunks:
            eng.begin_chunks(inst, chunks, with_decodes=True)
        else:
            decode_or_idle(eng, inst)
