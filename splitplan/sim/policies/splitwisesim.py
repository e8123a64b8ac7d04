"""SplitwiseSim's instance batching, as its `SplitwiseInstance` runs it (compat mode, every pool).

Under `--compat splitwisesim` every instance batches this one way whatever its pool: SplitwiseSim gives
prompt, token and mixed machines the same instance class, and only routing tells them apart. A
machine therefore keeps serving what was already routed to it when it changes pool, and a prompt
machine that the fallback sends whole requests to batches them as any other.

State per instance, as SplitwiseSim keeps it (a task is 2 * request for a prompt, 2 * request + 1 for
the decode):
- pending: tasks waiting, inserted (bisect, right) by (times passed over, request arrival) as those
  stood at insertion; the counts grow later without reordering, as SplitwiseSim's do.
- prompts: waiting prompts in arrival order; blocked: decodes preempted by prompts (memory kept), in
  preemption order; batch: the running tasks in the order they joined; requests: the requests with a
  task here, by arrival, and each one's tasks.

One iteration (`start`): decodes and prompts passed over `max_preemptions` times first (the head of
`pending` while its counts reach the limit), then waiting prompts FCFS, then blocked decodes, then
the running batch in join order, then any other task by request arrival, each list stopping at the
first task that would pass the token budget (prompt tokens, one per decode) or the memory; what of
the running batch is left out is preempted (from the tail of its join order). Then every waiting
request's first task counts one more pass. Memory is SplitwiseSim's: a prompt holds prompt + 1
tokens from its iteration until its KV transfer has landed (the transfer itself waits, retrying every
second, while the destination is full), a decode adds its output - 1 tokens when it first runs.
An instance with nothing left here goes back to its home pool (the router's `release`).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from itertools import pairwise

from splitplan.sim.engine_primitives import EV_RETRY, EV_XFER
from splitplan.sim.machines import SEG_MIXED, SEG_PREFILL, leave_batch
from splitplan.sim.policies import BatchPolicy, register, scheduling
from splitplan.sim.routers import MEMORY, PENDING

QUEUED, RUNNING, BLOCKED = 1, 2, 3
TRANSFER_RETRY_S = 1.0  # SplitwiseSim's link retry delay while the destination's memory is full


class _State:
    __slots__ = ("batch", "batch_tokens", "blocked", "n_prompts", "pending", "prompts", "requests", "tasks")

    def __init__(self) -> None:
        self.pending: list[int] = []
        self.prompts: list[int] = []
        self.blocked: list[int] = []
        self.batch: dict[int, None] = {}  # an ordered set: join order, O(1) removal
        self.requests: list[int] = []
        self.tasks: dict[int, list[int]] = {}
        self.batch_tokens = 0
        self.n_prompts = 0  # prompts in the running batch


@register("splitwisesim")
class SplitwiseSim(BatchPolicy):
    """One policy object per engine; it keeps each instance's SplitwiseSim queues."""

    def __init__(self) -> None:
        self.states: list[_State] = []  # by instance id
        self.passes: list[int] = []  # per task: iterations it waited through (SplitwiseSim num_preemptions)
        self.tstate: list[int] = []  # per task: 0 none, QUEUED, RUNNING, BLOCKED
        self.distinct = False  # open-loop arrivals strictly increasing (bind)

    def bind(self, n: int, insts, distinct_arrivals: bool) -> None:
        """Size the per-task lists for `n` requests and make each instance's queues. `distinct_arrivals`:
        an open loop whose arrival times strictly increase, so that request ids follow arrival order and
        none tie: the per-instance lists kept in arrival order are then in id order (sorted and searched
        in C)."""
        self.passes = [0] * (2 * n)
        self.distinct = distinct_arrivals
        self.tstate = [0] * (2 * n)
        self.states = [_State() for _ in range(max((inst.id for inst in insts), default=-1) + 1)]

    def state(self, inst) -> _State:
        return self.states[inst.id]

    def queue_len(self, inst) -> int:
        return len(self.states[inst.id].pending)

    # ------------------------------------------------------------------------------ task arrival
    def task_arrival(self, eng, inst, task: int) -> None:
        """A prompt (at routing) or a decode (co-located at routing, else when its KV cache lands)."""
        st = self.states[inst.id]
        rid = task >> 1
        arr, passes = eng.arr, self.passes
        tasks = st.tasks.get(rid)
        if tasks is None:
            requests = st.requests
            if not requests or arr[requests[-1]] <= arr[rid]:  # sorted by arrival: insort lands last
                requests.append(rid)
            elif self.distinct:  # by id is by arrival
                insort(requests, rid)
            else:
                insort(requests, rid, key=arr.__getitem__)
            st.tasks[rid] = [task]
        else:
            tasks.append(task)
        if st.pending:
            insort(st.pending, task, key=lambda t: (passes[t], arr[t >> 1]))
        else:
            st.pending.append(task)
        is_prompt = not task & 1
        if is_prompt:
            st.prompts.append(rid)
        self.tstate[task] = QUEUED
        batch = st.batch
        if not batch:
            if inst.kv_used + self._memory(eng, task) > inst.kv_cap:
                return
            self.start(eng, inst)
            return
        sched = scheduling(inst)
        size = eng.pr[rid] if is_prompt else 1
        fits = len(batch) < sched.max_seqs and st.batch_tokens + size <= sched.max_batched_tokens
        # a prompt may also displace decodes when the batch's prompt tokens leave it room
        if fits or (is_prompt and st.n_prompts < len(batch)
                    and st.batch_tokens - (len(batch) - st.n_prompts) + size <= sched.max_batched_tokens):
            self._pause(eng, inst, st)

    def flow_done(self, eng, inst) -> None:
        """A KV transfer out of `inst` landed (its memory is freed): SplitwiseSim wakes the source."""
        st = self.states[inst.id]
        if not st.pending:
            return
        if not st.batch:
            if inst.kv_used + self._memory(eng, st.pending[0]) > inst.kv_cap:
                return
            self.start(eng, inst)
        elif len(st.batch) < scheduling(inst).max_seqs and st.batch_tokens < scheduling(inst).max_batched_tokens:
            self._pause(eng, inst, st)

    @staticmethod
    def _memory(eng, task: int) -> int:
        rid = task >> 1
        return eng.out[rid] - 1 if task & 1 else eng.pr[rid] + 1

    @staticmethod
    def _pause(eng, inst, st: _State) -> None:
        if st.n_prompts == 0 and inst.busy:
            eng.pause(inst)

    # ------------------------------------------------------------------------------- iteration
    def start(self, eng, inst) -> None:
        st = self.states[inst.id]
        batch, pending = st.batch, st.pending
        if not pending:  # nothing waits: the running decodes go on as they are (SplitwiseSim's lists agree)
            st.batch_tokens = len(batch)
            st.n_prompts = 0
            if batch:
                eng.decode_run(inst)
            else:
                self._idle(eng, inst, st)
            return
        if self._admit_decodes(eng, inst, st):
            prompts: list[int] = []  # no prompt joined
        else:
            new_batch, st.batch_tokens = self._select(eng, inst, st)
            self._apply(eng, inst, st, new_batch)
            prompts = [task >> 1 for task in batch if not task & 1]
        tasks, passes = st.tasks, self.passes
        for task in pending:  # every waiting request's first task is passed over once more
            if tasks[task >> 1][0] == task:
                passes[task] += 1
        st.n_prompts = len(prompts)
        if prompts:
            eng.begin_prompts(inst, prompts, SEG_MIXED if inst.B else SEG_PREFILL)
        elif batch:
            eng.decode_run(inst)
        else:
            self._idle(eng, inst, st)

    @staticmethod
    def _idle(eng, inst, st: _State) -> None:
        eng.idle(inst)
        if not st.requests:  # nothing left here: a borrowed machine goes home (notify_free_instance)
            eng.router.release(inst)

    def _admit_decodes(self, eng, inst, st: _State) -> bool:
        """The usual decode-side case in O(waiting): only new decodes wait (no prompt, nothing preempted,
        none passed over `max_preemptions` times) and the running batch stays whole. SplitwiseSim's
        `select_batch` then keeps the batch and adds waiting decodes by request arrival up to the first
        that does not fit. False: not this case (the caller runs the general selection)."""
        cfg = eng.cfg
        pending, batch, passes = st.pending, st.batch, self.passes
        if st.prompts or st.blocked or passes[pending[0]] >= cfg.max_preemptions:
            return False
        sched = scheduling(inst)
        max_batch, budget = sched.max_seqs, sched.max_batched_tokens
        if len(batch) > min(max_batch, max(budget, 1)):
            return False
        arr = eng.arr
        if len(pending) > 1:
            if self.distinct:  # only decode tasks wait here: by id is by arrival, without ties
                order = sorted(pending)
            else:
                order = sorted(pending, key=lambda t: arr[t >> 1])
                for a, b in pairwise(order):
                    if arr[a >> 1] == arr[b >> 1]:  # the request list's tie order decides: general path
                        return False
        else:
            order = pending
        out, cap = eng.out, inst.kv_cap
        tokens, memory = len(batch), inst.kv_used
        added = []
        for task in order:
            if len(batch) + len(added) == max_batch or (tokens and tokens + 1 > budget):
                break
            need = out[task >> 1] - 1
            if memory + need > cap:
                break
            added.append(task)
            memory += need
            tokens += 1
        st.batch_tokens = tokens
        tstate = self.tstate
        for task in added:
            pending.remove(task)
            inst.kv_used += out[task >> 1] - 1
            tstate[task] = RUNNING
            eng.join(inst, task >> 1)
            batch[task] = None
        return True

    def _apply(self, eng, inst, st: _State, new_batch: list[int]) -> None:
        """Preempt what of the running batch was left out (in join order), then add the newcomers."""
        batch, pending, passes, tstate = st.batch, st.pending, self.passes, self.tstate
        arr = eng.arr
        kept = 0
        for task in new_batch:
            if task in batch:
                kept += 1
        if kept < len(batch):
            chosen = set(new_batch)
            for task in [task for task in batch if task not in chosen]:
                self._leave(eng, inst, task >> 1)  # preempted: sits out, memory kept
                tstate[task] = BLOCKED
                del batch[task]
                insort(pending, task, key=lambda t: (passes[t], arr[t >> 1]))
                st.blocked.append(task >> 1)
        pr, out = eng.pr, eng.out
        for task in new_batch:
            if task in batch:
                continue
            pending.remove(task)
            rid = task >> 1
            if task & 1:
                if tstate[task] == BLOCKED:
                    st.blocked.remove(rid)
                else:
                    inst.kv_used += out[rid] - 1
                eng.join(inst, rid)
            else:
                st.prompts.remove(rid)
                inst.kv_used += pr[rid] + 1
            tstate[task] = RUNNING
            batch[task] = None

    @staticmethod
    def _leave(eng, inst, rid: int) -> None:
        eng.left[rid] = eng.fin_k[rid] - inst.k
        eng.ctx0[rid] = leave_batch(inst, rid, eng.ctx0, eng.join_k)
        eng.t_last[rid] = eng.now

    def decode_done(self, inst, rid: int) -> None:
        if 2 * rid + 1 in self.states[inst.id].batch:  # (a one-token request never had a decode task)
            self.task_done(inst, 2 * rid + 1)

    def task_done(self, inst, task: int) -> None:
        """A task finished its last iteration here: it leaves the batch and the instance's requests."""
        st = self.states[inst.id]
        del st.batch[task]
        rid = task >> 1
        left = st.tasks[rid]
        left.remove(task)
        if not left:
            del st.tasks[rid]
            requests = st.requests
            if self.distinct:  # kept in arrival order, so in id order: found by bisection
                del requests[bisect_left(requests, rid)]
            else:
                requests.remove(rid)

    def _select(self, eng, inst, st: _State) -> tuple[list[int], int]:
        cfg = eng.cfg
        sched = scheduling(inst)
        max_batch, budget, limit = sched.max_seqs, sched.max_batched_tokens, cfg.max_preemptions
        pr, out, passes, tstate = eng.pr, eng.out, self.passes, self.tstate
        cap = inst.kv_cap
        memory = inst.kv_used
        new: list[int] = []
        taken: set[int] = set()
        tokens = 0
        for task in st.pending:  # passed over too many times: first, whatever they are
            if passes[task] < limit:
                break
            if len(new) == max_batch:
                break
            rid = task >> 1
            size = 1 if task & 1 else pr[rid]
            if new and tokens + size > budget:
                break
            if rid in taken:
                continue
            if tstate[task] == BLOCKED:
                new.append(task)
                taken.add(rid)
                tokens += size
                continue
            need = out[rid] - 1 if task & 1 else pr[rid] + 1
            if memory + need <= cap:
                new.append(task)
                taken.add(rid)
                memory += need
                tokens += size
        for rid in st.prompts:
            if len(new) == max_batch:
                break
            size = pr[rid]
            if new and tokens + size > budget:
                break
            if rid in taken:
                continue
            if memory + size + 1 > cap:
                break
            new.append(2 * rid)
            taken.add(rid)
            memory += size + 1
            tokens += size
        for group in (st.blocked, None):
            for rid in (group if group is not None else [t >> 1 for t in st.batch]):
                if len(new) == max_batch:
                    break
                if new and tokens + 1 > budget:
                    break
                if rid in taken:
                    continue
                new.append(2 * rid + 1)
                taken.add(rid)
                tokens += 1
        tasks = st.tasks
        for rid in st.requests:
            if len(new) == max_batch:
                break
            if rid in taken:
                continue
            task = tasks[rid][0]
            size = 1 if task & 1 else pr[rid]
            if new and tokens + size > budget:
                break
            if tstate[task] == BLOCKED:
                new.append(task)
                taken.add(rid)
                tokens += size
                continue
            need = out[rid] - 1 if task & 1 else pr[rid] + 1
            if memory + need > cap:
                break
            new.append(task)
            taken.add(rid)
            memory += need
            tokens += size
        return new, tokens

    # ------------------------------------------------------- routing, prompt ends, KV transfers
    def arrive(self, eng, rid: int, p_inst, t_inst) -> None:
        """SplitwiseSim's scheduler bookkeeping for a routed request, then its tasks arrive."""
        p, need = eng.pr[rid], eng.reserve[rid]
        p_inst.sched_pending += p
        t_inst.sched_pending += 1
        if p_inst is t_inst:
            p_inst.sched_mem += need
        else:  # the prompt machine holds the prompt's KV until it has moved
            p_inst.sched_mem += p + 1
            t_inst.sched_mem += need
        self.task_arrival(eng, p_inst, 2 * rid)
        if p_inst is t_inst and eng.out[rid] > 1:
            self.task_arrival(eng, t_inst, 2 * rid + 1)

    def prompt_done(self, eng, inst, rid: int) -> None:
        self.task_done(inst, 2 * rid)
        p = eng.pr[rid]
        now = eng.now
        eng.t_first[rid] = now
        eng.t_last[rid] = now
        if eng.watch is not None:
            eng.watch.first_token(rid, now - eng.arr[rid])
        inst.sched_pending -= p
        eng.router.lowered(inst, PENDING)
        t_inst = eng.insts[eng.t_inst[rid]]
        remaining = eng.out[rid] - 1
        eng.left[rid] = remaining
        eng.ctx0[rid] = p + 1
        if remaining <= 0:  # one output token: done with the prompt (SplitwiseSim would run an empty decode)
            if t_inst is not inst:
                inst.kv_used -= p + 1
                inst.sched_mem -= p + 1
                eng.router.lowered(inst, MEMORY)
                t_inst.kv_used += eng.reserve[rid]
            eng._complete(t_inst, rid)
            return
        if t_inst is not inst:  # else its decode already waits here
            self.flow_retry(eng, rid)

    def flow_retry(self, eng, rid: int) -> None:
        """The KV transfer starts once the destination has room for the prompt's cache (else again in 1 s)."""
        dst = eng.insts[eng.t_inst[rid]]
        p = eng.pr[rid]
        if dst.kv_used + p + 1 > dst.kv_cap:
            eng._schedule(eng.now + TRANSFER_RETRY_S, EV_RETRY, rid, 0)
            return
        dst.kv_used += p + 1
        src = eng.insts[eng.p_inst[rid]]
        end = eng.links.start(eng.now, p * eng.kvbpt, p, 0.0, eng.machines[src.machine_idx], src.machine_idx,
                              eng.machines[dst.machine_idx], dst.machine_idx)
        eng._schedule(end, EV_XFER, rid, 0)

    def flow_landed(self, eng, rid: int) -> None:
        src, dst = eng.insts[eng.p_inst[rid]], eng.insts[eng.t_inst[rid]]
        p = eng.pr[rid]
        src.kv_used -= p + 1
        src.sched_mem -= p + 1
        eng.router.lowered(src, MEMORY)
        eng.xfer_s[rid] = eng.now - eng.t_first[rid]
        self.task_arrival(eng, dst, 2 * rid + 1)
        self.flow_done(eng, src)
