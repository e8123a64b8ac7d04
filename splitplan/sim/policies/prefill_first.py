"""Prefill-first batching (SGLang's default scheduler, mixed chunks off): waiting prompts run as
prefill-only iterations, the running decode batch paused, before decoding resumes.

A prefill iteration takes prompt chunks up to the stack's `max_batched_tokens` (SGLang's
`chunked_prefill_size`): the prompt being chunked first, then new ones FCFS while memory allows. Because
every arrival stalls all decodes for a prefill, requests that arrive together stay together: the
closed-loop benchmark's waves (TTFT that grows with concurrency) come from this, not from a fudge.
"""

from __future__ import annotations

from splitplan.sim.policies import BatchPolicy, register, scheduling
from splitplan.sim.policies.chunked import collect_chunks, decode_or_idle, make_room_for_decodes, release_a_prefill


@register("prefill_first")
class PrefillFirst(BatchPolicy):
    def start(self, eng, inst) -> None:
        sched = scheduling(inst)
        preempted = make_room_for_decodes(eng, inst)
        slots = sched.max_seqs - inst.B - len(inst.prefilling)
        chunks = collect_chunks(eng, inst, sched.max_batched_tokens, slots, admit=not preempted)
        if not chunks and release_a_prefill(eng, inst):
            chunks = collect_chunks(eng, inst, sched.max_batched_tokens, slots + 1)
        if chunks:
            eng.begin_chunks(inst, chunks, with_decodes=False)
        else:
            decode_or_idle(eng, inst)
