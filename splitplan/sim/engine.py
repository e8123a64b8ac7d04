"""The discrete-event loop: arrivals, batch iterations, KV transfers, completions.

Events never grow with output tokens: a decode batch advances in one event to its next membership
change (a request finishes; a newcomer or a prompt pauses it at the next iteration boundary), with the
step times in closed form (machines.py). Arrivals are read straight from the sorted workload arrays;
only iteration ends and transfer ends go through the heap. Per-request state lives in flat lists
indexed by request id; pandas appears only after the loop (result.py).
"""

from __future__ import annotations

import gc
import heapq
import math
from array import array

from splitplan.sim.config import SimConfig
from splitplan.sim.links import Links
from splitplan.sim.machines import (SEG_DECODE, SEG_IDLE, SEG_MIXED, SEG_PREFILL, Inst, join_batch,
                                    latest_preemptible, leave_batch, prefill_duration_s, run_time_s,
                                    steps_done, take_prompts)
from splitplan.sim.scheduler import Router

EV_SEG, EV_XFER = 0, 1
NAN = math.nan
INF = math.inf


class Engine:
    """One simulation run. Build with instances, run(), then read the recorded arrays."""

    def __init__(self, insts: list[Inst], design: str, arrival_s, prompt_tokens, output_tokens,
                 kv_bytes_per_token: float, links: Links, machines: list, config: SimConfig, compat: bool,
                 longest_unloaded_s: float = 0.0, record_itl: bool = True):
        self.cfg = config
        self.compat = compat
        self.insts = insts
        self.machines = machines  # Machine object per physical machine index
        self.router = Router(insts, design, config.prompt_overflow_tokens,
                             None if compat else config.token_overflow_tokens)
        self.links = links
        self.kvbpt = kv_bytes_per_token
        self.arr = arrival_s.tolist()
        self.pr = prompt_tokens.tolist()
        self.out = output_tokens.tolist()
        n = len(self.arr)
        self.n = n
        self.reserve = [p + o for p, o in zip(self.pr, self.out)]
        self.t_start = [NAN] * n  # first iteration that holds the prompt
        self.t_first = [NAN] * n
        self.t_done = [NAN] * n
        self.xfer_s = [0.0] * n
        self.p_inst = [-1] * n
        self.t_inst = [-1] * n
        self.ctx0 = [0] * n
        self.join_k = [0] * n
        self.fin_k = [0] * n
        self.left = [0] * n
        self.npre = [0] * n
        self.t_last = [0.0] * n  # when the request's previous token (or preemption) happened
        self.unservable: list[int] = []
        self.max_cap = max(inst.kv_cap for inst in insts)
        self.heap: list = []
        self.seq = 0
        self.now = 0.0
        self.completed = 0
        # ITL segments: first step seconds, per-step increment, steps, tokens per step
        self.itl_d0, self.itl_dd, self.itl_n, self.itl_b = array("d"), array("d"), array("q"), array("q")
        self.gap_s = array("d")  # waits between a token and the decode step that resumes the request
        self.record_itl = record_itl  # per-step samples cost time: kept only when an ITL SLO needs them
        self.timeline: list[tuple] = []
        self.end_s = 0.0
        self.longest_unloaded_s = longest_unloaded_s
        self.arrived = 0
        self.in_system: list[tuple[float, int]] = []  # (time, requests arrived and not finished)

    # ----------------------------------------------------------------------------------- main loop
    def run(self) -> None:
        """Process events to the end (or the drain limit). The cyclic GC is paused meanwhile: the loop
        allocates millions of short-lived tuples but no cycles, and collections would rescan every
        long-lived per-request list each time."""
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._loop()
        finally:
            if enabled:
                gc.enable()

    def _loop(self) -> None:
        arr, n, heap = self.arr, self.n, self.heap
        span = arr[-1] - arr[0] if n else 0.0
        cfg = self.cfg
        limit = (arr[-1] if n else 0.0) + max(cfg.drain_min_s, cfg.drain_limit_factor * span,
                                              cfg.drain_longest_factor * self.longest_unloaded_s)
        step = self.cfg.timeline_step_s
        next_sample = 0.0
        insts = self.insts
        heappop = heapq.heappop
        i = 0
        while True:
            ta = arr[i] if i < n else INF
            te = heap[0][0] if heap else INF
            t = ta if ta <= te else te
            if t == INF or t > limit:
                break
            while t >= next_sample:
                self._sample(next_sample)
                next_sample += step
            self.now = t
            if ta <= te:
                self._arrive(i)
                i += 1
                self.arrived = i
                continue
            _, _, kind, a, b = heappop(heap)
            if kind == EV_SEG:
                inst = insts[a]
                if inst.ver == b:
                    self._end_segment(inst)
            else:
                self._decode_arrive(insts[self.t_inst[a]], a)
        self.end_s = min(self.now, limit) if self.completed < n else self.now
        self.arrivals_processed = i

    def _schedule(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    # ------------------------------------------------------------------------------------ requests
    def _arrive(self, rid: int) -> None:
        need = self.reserve[rid]
        if need > self.max_cap:
            self.unservable.append(rid)
            return
        p = self.pr[rid]
        p_inst, t_inst = self.router.route(p, need)
        self.p_inst[rid] = p_inst.id
        self.t_inst[rid] = t_inst.id
        p_inst.sched_pending += p
        t_inst.sched_pending += 1
        t_inst.sched_mem += need
        t_inst.sched_queue_tokens += self.out[rid] - 1
        p_inst.pq.append(rid)
        if not p_inst.busy:
            self._start(p_inst)
        elif p_inst.seg == SEG_DECODE:
            self._pause(p_inst)

    def _decode_arrive(self, inst: Inst, rid: int) -> None:
        """The KV cache has arrived: the request waits for a slot in the token instance's batch."""
        inst.wait.append(rid)
        if not inst.busy:
            self._start(inst)
        elif inst.seg == SEG_DECODE and inst.kv_used + self.reserve[rid] <= inst.kv_cap:
            self._pause(inst)

    def _complete(self, inst: Inst, rid: int) -> None:
        self.t_done[rid] = self.now
        need = self.reserve[rid]
        inst.kv_used -= need
        inst.sched_mem -= need
        inst.sched_pending -= 1
        inst.served += 1
        self.completed += 1

    def _prompt_done(self, inst: Inst, rid: int, prefill_s: float) -> None:
        now = self.now
        p = self.pr[rid]
        self.t_first[rid] = now
        self.t_last[rid] = now
        inst.sched_pending -= p
        t_inst = self.insts[self.t_inst[rid]]
        remaining = self.out[rid] - 1
        if remaining <= 0:
            self._complete_remote(t_inst, inst, rid)
            return
        self.left[rid] = remaining
        self.ctx0[rid] = p + 1
        if t_inst is inst:
            inst.sched_queue_tokens -= remaining
            self._join(inst, rid)
            return
        src, dst = self.machines[inst.machine_idx], self.machines[t_inst.machine_idx]
        end = self.links.start(now, p * self.kvbpt, p, prefill_s, src, inst.machine_idx, dst, t_inst.machine_idx)
        self.xfer_s[rid] = end - now
        if end <= now:
            self._decode_arrive(t_inst, rid)
        else:
            self._schedule(end, EV_XFER, rid, 0)

    def _complete_remote(self, t_inst: Inst, p_inst: Inst, rid: int) -> None:
        """A one-token request finishes with its prompt; the token instance's reservation is released."""
        if t_inst is not p_inst:
            t_inst.kv_used += self.reserve[rid]  # never admitted there: balance _complete's release
        self._complete(t_inst, rid)

    def _join(self, inst: Inst, rid: int) -> None:
        if self.record_itl:
            self.gap_s.append(self.now - self.t_last[rid])
        join_batch(inst, rid, self.left[rid], self.ctx0[rid], self.ctx0, self.join_k, self.fin_k)

    def _finish_due(self, inst: Inst) -> None:
        heap, k, active, fin_k = inst.fin_heap, inst.k, inst.active, self.fin_k
        while heap and heap[0][0] <= k:
            f, rid = heapq.heappop(heap)
            if rid in active and fin_k[rid] == f:
                leave_batch(inst, rid, self.ctx0, self.join_k)
                self._complete(inst, rid)

    # ---------------------------------------------------------------------------------- iterations
    def _start(self, inst: Inst) -> None:
        role = inst.role
        if role == "prompt":
            self._start_prompt(inst)
        elif role == "token":
            self._admit(inst, self.cfg.token_max_batch)
            if inst.B:
                self._decode_run(inst)
            else:
                self._idle(inst)
        else:
            self._start_mixed(inst)

    def _idle(self, inst: Inst) -> None:
        inst.busy = False
        inst.seg = SEG_IDLE
        # a borrowed machine goes home once nothing routed to it is outstanding (KV caches in flight too)
        if inst.role == "mixed" and inst.home != "mixed" and inst.sched_pending == 0:
            self.router.release(inst)

    def _start_prompt(self, inst: Inst) -> None:
        if not inst.pq:
            self._idle(inst)
            return
        batch, _ = take_prompts(inst, self.cfg.prompt_batch_tokens, 1 << 30, self.pr, None, None)
        if not batch:
            self._idle(inst)
            return
        self._begin_prefill(inst, batch, SEG_PREFILL)

    def _begin_prefill(self, inst: Inst, batch: list[int], seg: int) -> None:
        now = self.now
        dur = prefill_duration_s(inst, batch, self.pr, inst.B, inst.S)
        t_start = self.t_start
        for rid in batch:
            t_start[rid] = now
        inst.busy = True
        inst.seg = seg
        inst.seg_prompts = batch
        inst.seg_start = now
        inst.seg_dur = dur
        inst.seg_B = inst.B
        inst.ver += 1
        self.seq += 1
        heapq.heappush(self.heap, (now + dur, self.seq, EV_SEG, inst.id, inst.ver))

    def _admit(self, inst: Inst, allowed: int) -> None:
        """Fill the decode batch up to `allowed`: preempted requests first, then new ones FCFS by memory."""
        blocked, wait = inst.blocked, inst.wait
        while inst.B < allowed and blocked:
            self._join(inst, blocked.popleft())
        reserve = self.reserve
        while inst.B < allowed and wait:
            rid = wait[0]
            need = reserve[rid]
            if inst.kv_used + need > inst.kv_cap:
                break
            wait.popleft()
            inst.kv_used += need
            inst.sched_queue_tokens -= self.left[rid]
            self._join(inst, rid)

    def _start_mixed(self, inst: Inst) -> None:
        """Mixed batching, SplitwiseSim's order: decodes passed over `max_preemptions` times first, then
        prompts FCFS within the token budget, then the other preempted decodes, the running batch and
        new decodes; running decodes beyond the budget are preempted (latest arrival first)."""
        cfg = self.cfg
        budget, max_batch, maxp = cfg.mixed_batch_tokens, cfg.mixed_max_batch, cfg.max_preemptions
        npre, blocked = self.npre, inst.blocked
        starving = [rid for rid in blocked if npre[rid] >= maxp] if blocked else []
        batch, tokens = take_prompts(inst, budget, max_batch, self.pr, self.reserve, self.t_inst,
                                     len(starving), len(starving))
        slots = max(min(max_batch - len(batch), budget - tokens), len(starving)) if batch else max_batch
        if starving:
            keep = [rid for rid in blocked if npre[rid] < maxp]
            blocked.clear()
            blocked.extend(starving)
            blocked.extend(keep)
        while blocked and inst.B < slots:
            self._join(inst, blocked.popleft())
        if inst.B > slots:
            self._preempt(inst, inst.B - slots)
        else:
            self._admit(inst, slots)
        for rid in blocked:  # passed over once more
            npre[rid] += 1
        if batch:
            self._begin_prefill(inst, batch, SEG_MIXED)
        elif inst.B:
            self._decode_run(inst)
        else:
            self._idle(inst)

    def _preempt(self, inst: Inst, count: int) -> None:
        """Prompts take the iteration's budget: the latest-arriving decodes sit out (memory kept)."""
        for _ in range(count):
            rid = latest_preemptible(inst)
            if rid < 0:
                return
            self.left[rid] = self.fin_k[rid] - inst.k
            self.ctx0[rid] = leave_batch(inst, rid, self.ctx0, self.join_k)
            self.t_last[rid] = self.now
            inst.blocked.append(rid)

    def _decode_run(self, inst: Inst) -> None:
        """Run the decode batch up to its next finish in one event (closed form; hot path, inlined)."""
        heap, active, fin_k = inst.fin_heap, inst.active, self.fin_k
        while True:
            f, rid = heap[0]
            if rid in active and fin_k[rid] == f:
                break
            heapq.heappop(heap)
        n = f - inst.k
        b, s0 = inst.B, inst.S
        coeffs = inst.coeffs.get(b)
        base, per = coeffs if coeffs is not None else inst.coeffs_ms(b)
        now = self.now
        inst.busy = True
        inst.seg = SEG_DECODE
        inst.seg_start = now
        inst.seg_n = n
        inst.seg_base = base
        inst.seg_per = per
        inst.seg_S0 = s0
        inst.seg_B = b
        inst.paused = False
        inst.ver += 1
        self.seq += 1
        end = now + (n * base + per * (n * s0 + b * n * (n - 1) / 2.0)) / 1000.0  # run_time_s, inlined
        heapq.heappush(self.heap, (end, self.seq, EV_SEG, inst.id, inst.ver))

    def _pause(self, inst: Inst) -> None:
        """New work must join at the next iteration boundary: cut the running decode run there."""
        if inst.paused:
            return
        m = steps_done(self.now - inst.seg_start, inst.seg_base, inst.seg_per, inst.seg_S0, inst.seg_B)
        if m + 1 >= inst.seg_n:
            return
        inst.seg_n = m + 1
        inst.paused = True
        inst.ver += 1
        end = inst.seg_start + run_time_s(m + 1, inst.seg_base, inst.seg_per, inst.seg_S0, inst.seg_B)
        self._schedule(end, EV_SEG, inst.id, inst.ver)

    def _end_segment(self, inst: Inst) -> None:
        now = self.now
        dur = now - inst.seg_start
        b = inst.seg_B
        if inst.seg == SEG_DECODE:
            n = inst.seg_n
            if self.record_itl:
                self._record_steps((inst.seg_base + inst.seg_per * inst.seg_S0) / 1000.0, inst.seg_per * b / 1000.0, n, b)
            inst.busy_decode_s += dur
            inst.decode_tokens += n * b
            inst.batch_time += b * dur
            inst.k += n
            inst.S += b * n
            self._finish_due(inst)
        else:
            batch = inst.seg_prompts
            if b:
                if self.record_itl:
                    self._record_steps(dur, 0.0, 1, b)
                inst.busy_mixed_s += dur
                inst.decode_tokens += b
                inst.batch_time += b * dur
                inst.k += 1
                inst.S += b
                self._finish_due(inst)
            else:
                inst.busy_prefill_s += dur
            inst.prefill_batches += 1
            inst.prefill_prompts += len(batch)
            pr = self.pr
            for rid in batch:
                inst.prefill_tokens += pr[rid]
                self._prompt_done(inst, rid, inst.seg_dur)
        self._start(inst)

    def _record_steps(self, d0_s: float, dd_s: float, n: int, b: int) -> None:
        self.itl_d0.append(d0_s)
        self.itl_dd.append(dd_s)
        self.itl_n.append(n)
        self.itl_b.append(b)

    # ------------------------------------------------------------------------------------ timeline
    def _sample(self, t: float) -> None:
        self.in_system.append((t, self.arrived - self.completed - len(self.unservable)))
        for role in ("prompt", "token", "mixed"):
            pool = [inst for inst in self.insts if inst.role == role]
            if not pool:
                continue
            busy = sum(1 for inst in pool if inst.busy)
            batch = sum(inst.B for inst in pool) / len(pool)
            queued = sum(len(inst.pq) + len(inst.wait) + len(inst.blocked) for inst in pool)
            pending = sum(inst.sched_pending for inst in pool)
            self.timeline.append((t, role, busy, len(pool), batch, queued, pending))
