"""The discrete-event loop: arrivals, iterations, KV transfers, completions.

Events never grow with output tokens: a decode batch advances in one event to its next membership
change (a request finishes; a newcomer or a prompt pauses it at the next iteration boundary; the
paged KV cache fills), with the step times in closed form (machines.py). Arrivals come from the
sorted workload arrays (open loop) or from completions (closed loop: `clients` concurrent users, each
sending its next request when the last one finishes). Only iteration ends and transfer ends go through
the heap. What an instance runs next is decided by its batching policy (sim/policies/), through the
primitives below; per-request state lives in flat lists indexed by request id; pandas appears only
after the loop (result.py).
"""

from __future__ import annotations

import gc
import heapq
import math
from array import array

from splitplan.sim.config import SimConfig
from splitplan.sim.engine_primitives import EV_ARRIVE, EV_KICK, EV_RETRY, EV_SEG, EV_XFER, AdmissionPrimitives, \
    IterationPrimitives, Recording
from splitplan.sim.links import Links
from splitplan.sim.machines import SEG_DECODE, SEG_IDLE, Inst, leave_batch, next_step_end
from splitplan.sim.miss_watch import MissWatch, SloMissed
from splitplan.serving.stack import KvPolicy
from splitplan.sim.policies import make_policy
from splitplan.sim.policies import scheduling
from splitplan.sim.routers import PENDING, make_router

NAN = math.nan
INF = math.inf
ROLE_POLICIES = {"prompt": "prompt_pool", "token": "token_pool"}


class Engine(AdmissionPrimitives, IterationPrimitives, Recording):
    """One simulation run. Build with instances, run(), then read the recorded arrays."""

    def __init__(self, insts: list[Inst], design: str, arrival_s, prompt_tokens, output_tokens,
                 kv_bytes_per_token: float, links: Links, machines: list, config: SimConfig, compat: bool,
                 longest_unloaded_s: float = 0.0, record_itl: bool = True, clients: int = 0,
                 colocated_policy: str | None = None, record_segments: bool = False,
                 client_delay_s=None, watch: MissWatch | None = None):
        self.cfg = config
        self.watch = watch if watch is not None and watch.active else None  # stop once an SLO is lost
        self.stopped_early = ""  # why the run ended before its end (an SLO certain to be missed)
        self.compat = compat
        self.insts = insts
        self.machines = machines  # Machine object per physical machine index
        override = colocated_policy or config.colocated_policy
        # compat: SplitwiseSim batches every instance one way, whatever its pool (policies/splitwisesim.py)
        self.ssim = make_policy("splitwisesim") if compat and override in (None, "mixed") else None
        self.router = make_router(design, insts, config.prompt_overflow_tokens,
                                  None if compat else config.token_overflow_tokens, compat=self.ssim is not None)
        # the policy follows the instance's current role: a borrowed machine runs its co-located one
        self.policies = {role: make_policy(name) for role, name in ROLE_POLICIES.items()}
        self._colocated(override, compat)
        if self.ssim is not None:
            self.policies = dict.fromkeys(("prompt", "token"), self.ssim)
            for inst in insts:
                inst.colo = self.ssim
            self.router.queue_len = self.ssim.queue_len
        for inst in insts:
            self._role_changed(inst)
        self.router.on_role = self._role_changed
        self.links = links
        self.kvbpt = kv_bytes_per_token
        self.pr = prompt_tokens.tolist()
        self.out = output_tokens.tolist()
        n = len(self.pr)
        self.n = n
        self.clients = int(clients)
        self.heap: list = []
        self.seq = 0
        # closed loop: the first `clients` requests are sent at once, each later one when a client's
        # previous request finishes, plus that client's delay (HTTP, tokenizer); arrivals are heap events
        self.client_delay_s = [0.0] * n if client_delay_s is None else [float(x) for x in client_delay_s]
        if self.clients:
            self.arr = [INF] * n
            self.next_client = 0
            for _ in range(min(self.clients, n)):
                self.now = 0.0
                self._client_done()
            self.open_n = 0
        else:
            self.arr = arrival_s.tolist()
            self.next_client = n
            self.open_n = n
        if self.ssim is not None:
            # open-loop arrivals strictly increasing (ids then follow arrival order, none tie): numpy's
            # comparison of the array, not a Python pass over the list
            distinct = not self.clients and bool((arrival_s[1:] > arrival_s[:-1]).all())
            self.ssim.bind(n, insts, distinct)
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
        self.pre_need = list(self.pr)  # tokens to prefill in the current pass (prompt, or all after a recompute)
        self.pre_done = [0] * n
        self.recompute = [False] * n
        self.preemptions = 0
        self.jseq = 0
        self.join_seq = [0] * n  # order in which requests (re)joined a decode batch
        self.t_last = [0.0] * n  # when the request's previous token (or preemption) happened
        self.t_join0 = [NAN] * n  # when the request first joined a decode batch (disaggregated TTFT)
        self.unservable: list[int] = []
        self.max_cap = max(inst.kv_cap for inst in insts)
        self.now = 0.0
        self.completed = 0
        # ITL segments: first step seconds, per-step increment, steps, tokens per step
        self.itl_d0, self.itl_dd, self.itl_n, self.itl_b = array("d"), array("d"), array("q"), array("q")
        self.gap_s = array("d")  # waits between a token and the decode step that resumes the request
        self.record_itl = record_itl  # per-step samples cost time: kept only when an ITL SLO needs them
        self.segments = [] if record_segments else None  # (start, end, inst, kind, shape...) for calibration
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
        except SloMissed as miss:
            self.stopped_early = str(miss)
            self.end_s = self.now
            self.arrivals_processed = self.arrived
        finally:
            if enabled:
                gc.enable()

    def _limit_s(self) -> float:
        if self.clients:  # a closed loop always drains: nothing arrives that the clients did not wait for
            return INF
        arr, cfg = self.arr, self.cfg
        span = arr[-1] - arr[0] if self.n else 0.0
        return (arr[-1] if self.n else 0.0) + max(cfg.drain_min_s, cfg.drain_limit_factor * span,
                                                  cfg.drain_longest_factor * self.longest_unloaded_s)

    def _loop(self) -> None:
        arr, n, heap = self.arr, self.open_n, self.heap
        limit = self._limit_s()
        step = self.cfg.timeline_step_s
        next_sample = 0.0
        insts = self.insts
        heappop = heapq.heappop
        i = 0
        ta = arr[0] if n else INF  # the next open-loop arrival (those times never change)
        while True:
            te = heap[0][0] if heap else INF
            t = ta if ta <= te else te
            if t == INF or t > limit:
                break
            while t >= next_sample:
                self._sample(next_sample)
                next_sample += step
            self.now = t
            if ta <= te:
                self.arrived = i + 1
                self._arrive(i)
                i += 1
                ta = arr[i] if i < n else INF
                continue
            _, _, kind, a, b = heappop(heap)
            if kind == EV_SEG:
                inst = insts[a]
                if inst.ver == b:
                    self._end_segment(inst)
            elif kind == EV_XFER:
                if self.ssim is not None:
                    self.ssim.flow_landed(self, a)
                else:
                    self._decode_arrive(insts[self.t_inst[a]], a)
            elif kind == EV_RETRY:
                self.ssim.flow_retry(self, a)
            elif kind == EV_ARRIVE:
                self.arrived += 1
                self._arrive(a)
            else:
                inst = insts[a]
                inst.kick = False
                if not inst.busy:
                    inst.policy.start(self, inst)
        self.end_s = min(self.now, limit) if self.completed < self.n else self.now
        self.arrivals_processed = i if not self.clients else self.arrived

    def _schedule(self, t: float, kind: int, a: int, b: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    # ------------------------------------------------------------------------------------ requests
    def _arrive(self, rid: int) -> None:
        need = self.reserve[rid]
        if need > self.max_cap:
            self.unservable.append(rid)
            self._client_done()
            return
        p = self.pr[rid]
        p_inst, t_inst = self.router.route(p, need)
        self.p_inst[rid] = p_inst.id
        self.t_inst[rid] = t_inst.id
        if self.ssim is not None:
            self.ssim.arrive(self, rid, p_inst, t_inst)
            return
        p_inst.sched_pending += p
        t_inst.sched_pending += 1
        t_inst.sched_mem += need
        t_inst.sched_queue_tokens += self.out[rid] - 1
        p_inst.pq.append(rid)
        if not p_inst.busy:
            if not p_inst.kick:  # start once every arrival of this instant has been queued
                now, heap = self.now, self.heap
                if (self.arr[rid + 1] if rid + 1 < self.open_n else INF) > now and (not heap or heap[0][0] > now):
                    p_inst.policy.start(self, p_inst)  # nothing else happens at this instant: the kick's turn
                    return
                p_inst.kick = True
                self._schedule(now, EV_KICK, p_inst.id, 0)
        elif p_inst.seg == SEG_DECODE:
            self.pause(p_inst)

    def _client_done(self) -> None:
        """Closed loop: a client got its answer (or a refusal) and sends its next request."""
        rid = self.next_client
        if rid < self.n:
            t = self.now + self.client_delay_s[rid]
            self.arr[rid] = t
            self.next_client += 1
            self._schedule(t, EV_ARRIVE, rid, 0)

    def _decode_arrive(self, inst: Inst, rid: int) -> None:
        """The KV cache has arrived: the request waits for a slot in the token instance's batch."""
        inst.wait.append(rid)
        if not inst.busy:
            inst.policy.start(self, inst)
        elif inst.seg == SEG_DECODE and inst.kv_used + self.reserve[rid] <= inst.kv_cap:
            self.pause(inst)

    def _complete(self, inst: Inst, rid: int, held: int = 0) -> None:
        """`held`: KV tokens the request holds on a paged instance (released); reserved ones release
        the whole reservation."""
        self.t_done[rid] = self.now
        if self.watch is not None:
            a = self.arr[rid]
            self.watch.completed(rid, self.t_first[rid] - a, self.now - a)
        need = self.reserve[rid]
        inst.kv_used -= held if inst.paged else need
        inst.sched_mem -= need
        inst.sched_pending -= 1
        self.router.lowered(inst)
        inst.served += 1
        self.completed += 1
        if self.ssim is not None:
            self.ssim.decode_done(inst, rid)
        if self.clients:
            self._client_done()

    def _prompt_done(self, inst: Inst, rid: int, prefill_s: float) -> None:
        if self.ssim is not None:
            self.ssim.prompt_done(self, inst, rid)
            return
        now = self.now
        if self.recompute[rid]:  # a preempted request re-prefilled its context: one more token, then decode
            self.recompute[rid] = False
            self.left[rid] -= 1
            self.ctx0[rid] = self.pre_need[rid] + 1
            if self.left[rid] <= 0:
                self._complete(inst, rid, self.pre_need[rid])
                return
            self._join(inst, rid)
            return
        p = self.pr[rid]
        self.t_first[rid] = now
        self.t_last[rid] = now
        if self.watch is not None:
            self.watch.first_token(rid, now - self.arr[rid])
        inst.sched_pending -= p
        self.router.lowered(inst, PENDING)
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
            return
        self._complete(t_inst, rid, self.pr[rid])

    def _join(self, inst: Inst, rid: int) -> None:
        if self.record_itl:
            self.gap_s.append(self.now - self.t_last[rid])
        k = inst.k  # the request's context and finishing iteration (see machines.py's closed form)
        fin = self.fin_k[rid] = k + self.left[rid]
        self.join_k[rid] = k
        inst.active.add(rid)
        heapq.heappush(inst.fin_heap, (fin, rid))
        inst.B += 1
        inst.S += self.ctx0[rid]
        if self.t_join0[rid] != self.t_join0[rid]:  # NaN: its first join
            self.t_join0[rid] = self.now
        if inst.paged:
            self.jseq += 1
            self.join_seq[rid] = self.jseq
            heapq.heappush(inst.adm_heap, (-self.jseq, rid))

    join = _join

    def _finish_due(self, inst: Inst) -> None:
        heap, k, active, fin_k = inst.fin_heap, inst.k, inst.active, self.fin_k
        while heap and heap[0][0] <= k:
            f, rid = heapq.heappop(heap)
            if rid in active and fin_k[rid] == f:
                ctx = leave_batch(inst, rid, self.ctx0, self.join_k)
                self._complete(inst, rid, ctx - 1)

    def _colocated(self, override: str | None, compat: bool) -> None:
        """Each instance's co-located policy: the override, else SplitwiseSim's mixed under compat,
        else its stack's (after the deployment's settings); KV paged where the stack pages it."""
        made: dict[str, object] = {}
        for inst in self.insts:
            sched = scheduling(inst)
            name = override or ("mixed" if compat else sched.policy.value)
            if name not in made:
                made[name] = make_policy(name)
            inst.colo = made[name]
            inst.paged = inst.role == "mixed" and name != "mixed" and sched.kv_policy is KvPolicy.PAGED

    def colocated_policies(self) -> list[str]:
        """Names of the co-located policies the instances run (each once, in instance order)."""
        return list(dict.fromkeys(inst.colo.name for inst in self.insts))

    # ---------------------------------------------------------------------- primitives for policies
    def _start(self, inst: Inst) -> None:
        inst.policy.start(self, inst)

    def _role_changed(self, inst: Inst) -> None:
        """The policy follows the instance's current role: a borrowed machine runs its co-located one."""
        inst.policy = inst.colo if inst.role == "mixed" else self.policies[inst.role]

    def idle(self, inst: Inst) -> None:
        inst.busy = False
        inst.seg = SEG_IDLE
        # a borrowed machine goes home once nothing routed to it is outstanding (KV caches in flight too);
        # under compat SplitwiseSim's policy releases it itself, once nothing waits there
        if inst.role == "mixed" and inst.home != "mixed" and inst.sched_pending == 0 and self.ssim is None:
            self.router.release(inst)

    def decode_run(self, inst: Inst, max_steps: int = 0) -> None:
        """Run the decode batch up to its next finish (or `max_steps`) in one event (closed form)."""
        heap, active, fin_k = inst.fin_heap, inst.active, self.fin_k
        while True:
            f, rid = heap[0]
            if rid in active and fin_k[rid] == f:
                break
            heapq.heappop(heap)
        n = f - inst.k
        if 0 < max_steps < n:
            n = max_steps
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

    def pause(self, inst: Inst) -> None:
        """New work must join at the next iteration boundary: cut the running decode run there."""
        if inst.paused:
            return
        m, step_end_s = next_step_end(self.now - inst.seg_start, inst.seg_base, inst.seg_per, inst.seg_S0, inst.seg_B)
        if m + 1 >= inst.seg_n:
            return
        inst.seg_n = m + 1
        inst.paused = True
        inst.ver += 1
        self.seq += 1
        heapq.heappush(self.heap, (inst.seg_start + step_end_s, self.seq, EV_SEG, inst.id, inst.ver))

    def _end_segment(self, inst: Inst) -> None:
        now = self.now
        dur = now - inst.seg_start
        b = inst.seg_B
        used = inst.kv_used
        inst.kv_time += used * dur
        if used > inst.kv_peak:
            inst.kv_peak = used
        if inst.seg == SEG_DECODE:
            n = inst.seg_n
            if self.segments is not None:
                self.segments.append((inst.seg_start, now, inst.id, SEG_DECODE, b, n, inst.seg_S0, 0, 0.0, 0.0,
                                      0.0, 0.0, 0))
            if self.record_itl:
                self._record_steps((inst.seg_base + inst.seg_per * inst.seg_S0) / 1000.0, inst.seg_per * b / 1000.0, n, b)
            inst.busy_decode_s += dur
            inst.decode_tokens += n * b
            inst.batch_time += b * dur
            inst.k += n
            inst.S += b * n
            if inst.paged:
                inst.kv_used += b * n
            fin = inst.fin_heap
            if fin and fin[0][0] <= inst.k:  # a paused run ends with nobody finishing: skip the call
                self._finish_due(inst)
        else:
            chunks = inst.seg_chunks
            if b:
                if self.record_itl:
                    self._record_steps(dur, 0.0, 1, b)
                inst.busy_mixed_s += dur
                inst.decode_tokens += b
                inst.batch_time += b * dur
                inst.k += 1
                inst.S += b
                if inst.paged:
                    inst.kv_used += b
                self._finish_due(inst)
            else:
                inst.busy_prefill_s += dur
            inst.prefill_batches += 1
            pre_need, pre_done = self.pre_need, self.pre_done
            done = 0
            for rid, c in chunks:
                pre_done[rid] += c
                inst.prefill_tokens += c
                if pre_done[rid] >= pre_need[rid]:
                    done += 1
                    if rid in inst.prefilling:
                        inst.prefilling.remove(rid)
                    self._prompt_done(inst, rid, inst.seg_dur)
            inst.prefill_prompts += done
        inst.policy.start(self, inst)
