"""SplitwiseSim's mixed batching: whole prompts preempt running decodes (the paper's baseline).

Order of one iteration, as SplitwiseSim forms it: decodes passed over `max_preemptions` times first,
then prompts FCFS within the token budget (the stack's max_batched_tokens, max_seqs requests) (reserving their whole KV), then the other preempted
decodes, the running batch and new decodes; running decodes beyond the budget sit out (latest arrival
first), keeping their memory.
"""

from __future__ import annotations

from splitplan.sim.machines import SEG_MIXED, take_prompts
from splitplan.sim.policies import BatchPolicy, register, scheduling


@register("mixed")
class Mixed(BatchPolicy):
    def start(self, eng, inst) -> None:
        sched = scheduling(inst)
        budget, max_batch, maxp = sched.max_batched_tokens, sched.max_seqs, eng.cfg.max_preemptions
        npre, blocked = eng.npre, inst.blocked
        starving = [rid for rid in blocked if npre[rid] >= maxp] if blocked else []
        batch, tokens = take_prompts(inst, budget, max_batch, eng.pr, eng.reserve, eng.t_inst,
                                     len(starving), len(starving))
        slots = max(min(max_batch - len(batch), budget - tokens), len(starving)) if batch else max_batch
        if starving:
            keep = [rid for rid in blocked if npre[rid] < maxp]
            blocked.clear()
            blocked.extend(starving)
            blocked.extend(keep)
        while blocked and inst.B < slots:
            eng.join(inst, blocked.popleft())
        if inst.B > slots:
            eng.preempt_keep(inst, inst.B - slots)
        else:
            eng.admit(inst, slots)
        for rid in blocked:  # passed over once more
            npre[rid] += 1
        if batch:
            eng.begin_prompts(inst, batch, SEG_MIXED)
        elif inst.B:
            eng.decode_run(inst)
        else:
            eng.idle(inst)
