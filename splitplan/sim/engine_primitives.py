"""Engine primitives that policies call to begin an iteration, for admission and preemption, and the
recording of ITL samples and the pool timeline: mixed into `Engine` (engine.py), split out so that the
event loop's module stays one concept. They read and write the engine's per-request lists (`left`,
`ctx0`, ...) and push its events (kinds below)."""

from __future__ import annotations

import heapq

from splitplan.sim.machines import SEG_MIXED, SEG_PREFILL, Inst, latest_preemptible, leave_batch, prefill_duration_s

EV_SEG, EV_XFER, EV_KICK, EV_ARRIVE, EV_RETRY = 0, 1, 2, 3, 4  # event kinds of the engine's heap


class IterationPrimitives:
    """Begin a prefill, mixed or chunked iteration: its duration from the perf model, its end an event."""

    def begin_prompts(self, inst: Inst, batch: list[int], seg: int) -> None:
        """An iteration of whole prompts, with the running decode batch stepping once if `seg` is mixed."""
        now = self.now
        dur = prefill_duration_s(inst, batch, self.pr, inst.B, inst.S)
        for rid in batch:
            self.t_start[rid] = now
        inst.seg_chunks = [(rid, self.pr[rid]) for rid in batch]
        self._begin(inst, seg, dur, inst.B)

    def begin_chunks(self, inst: Inst, chunks: list[tuple[int, int]], with_decodes: bool) -> None:
        """An iteration of prompt chunks (request, new tokens), plus one step of the running decode batch
        when `with_decodes` (chunked prefill), else with the decodes paused (prefill-first)."""
        now = self.now
        pr_need, pr_done, t_start = self.pre_need, self.pre_done, self.t_start
        pairs = ppl = prefix = tokens = 0.0
        n_last = 0
        for rid, c in chunks:
            p = pr_done[rid]
            if p == 0 and t_start[rid] != t_start[rid]:  # NaN: its first chunk
                t_start[rid] = now
            q = c * p + 0.5 * c * c
            pairs += q
            ppl += q / (p + c)
            prefix += p
            tokens += c
            n_last += p + c >= pr_need[rid]
        b = inst.B if with_decodes else 0
        ms = inst.perf.chunk_ms(len(chunks), tokens, pairs, ppl, prefix, n_last, b, inst.S if b else 0)
        inst.seg_chunks = chunks
        self._begin(inst, SEG_MIXED if b else SEG_PREFILL, float(ms) / 1000.0, b,
                    (len(chunks), tokens, pairs, ppl, prefix, n_last))

    def _begin(self, inst: Inst, seg: int, dur: float, decode_b: int, shape: tuple | None = None) -> None:
        now = self.now
        inst.busy = True
        inst.seg = seg
        inst.seg_start = now
        inst.seg_dur = dur
        inst.seg_B = decode_b
        inst.ver += 1
        self.seq += 1
        heapq.heappush(self.heap, (now + dur, self.seq, EV_SEG, inst.id, inst.ver))
        if self.segments is not None:
            if shape is None:
                shape = (len(inst.seg_chunks), float(sum(c for _, c in inst.seg_chunks)),
                         float(sum(0.5 * c * c for _, c in inst.seg_chunks)),
                         float(sum(0.5 * c for _, c in inst.seg_chunks)), 0.0, len(inst.seg_chunks))
            self.segments.append((now, now + dur, inst.id, seg, decode_b, 1, inst.S if decode_b else 0, *shape))


class AdmissionPrimitives:
    """Decode-batch admission and the two preemptions (keep memory; recompute, vLLM's)."""

    def admit(self, inst: Inst, allowed: int) -> None:
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

    def preempt_keep(self, inst: Inst, count: int) -> None:
        """Prompts take the iteration's budget: the latest-arriving decodes sit out (memory kept)."""
        for rid in latest_preemptible(inst, count):
            self.left[rid] = self.fin_k[rid] - inst.k
            self.ctx0[rid] = leave_batch(inst, rid, self.ctx0, self.join_k)
            self.t_last[rid] = self.now
            inst.blocked.append(rid)

    def preempt_recompute(self, inst: Inst) -> bool:
        """The paged KV cache is full: the latest-arriving decode gives its blocks back and waits at the
        head of the queue to re-prefill its whole context (vLLM's preemption by recomputation). The victim
        is the request admitted last, as vLLM pops the end of its running queue."""
        heap, active, seqs = inst.adm_heap, inst.active, self.join_seq
        rid = -1
        while heap:
            neg, cand = heapq.heappop(heap)
            if cand in active and seqs[cand] == -neg:
                rid = cand
                break
        if rid < 0:
            return False
        self.left[rid] = self.fin_k[rid] - inst.k
        ctx = leave_batch(inst, rid, self.ctx0, self.join_k)
        inst.kv_used -= ctx - 1
        self.pre_need[rid] = ctx - 1
        self.pre_done[rid] = 0
        self.recompute[rid] = True
        self.t_last[rid] = self.now
        self.preemptions += 1
        inst.pq.appendleft(rid)
        return True


class Recording:
    """ITL step samples and the per-pool timeline."""

    def _record_steps(self, d0_s: float, dd_s: float, n: int, b: int) -> None:
        self.itl_d0.append(d0_s)
        self.itl_dd.append(dd_s)
        self.itl_n.append(n)
        self.itl_b.append(b)

    def _sample(self, t: float) -> None:
        self.in_system.append((t, self.arrived - self.completed - len(self.unservable)))
        for role in ("prompt", "token", "mixed"):
            pool = [inst for inst in self.insts if inst.role == role]
            if not pool:
                continue
            busy = sum(1 for inst in pool if inst.busy)
            batch = sum(inst.B for inst in pool) / len(pool)
            queued = sum(len(inst.pq) + len(inst.wait) + len(inst.blocked) for inst in pool) if self.ssim is None \
                else sum(self.ssim.queue_len(inst) for inst in pool)
            pending = sum(inst.sched_pending for inst in pool)
            self.timeline.append((t, role, busy, len(pool), batch, queued, pending))
