"""Routers: which prompt and token instance serve a request, chosen by name from a registry.

"baseline": one pool, join-the-shortest-queue on pending work. "splitwise": the paper's §4.2 policy,
below. "disagg": separate prefill and decode workers as disaggregated engines run them (NVIDIA Dynamo,
SGLang PD, vLLM's disaggregated prefill): the least-loaded prefill worker and the decode worker with
the least reserved KV, and no borrowing, because a worker's role is fixed at launch.

The Splitwise policy:

Both are chosen at arrival. Prompt instances: join-the-shortest-queue on pending prompt tokens; a
prompt instance whose queue is non-empty and whose pending tokens would exceed
`prompt_overflow_tokens` counts as overloaded. Token instances: the one with the least reserved KV
memory; overloaded when the request's KV would not fit (and, outside compat mode, when requests
assigned to it but not yet in its batch still have more than `token_overflow_tokens` tokens to
generate: the batch-size limit binds long before memory with GQA models). Overloaded pools overflow into the
mixed pool; with no mixed machine available one is borrowed from the other pool (it runs mixed
batching and returns home when it drains). If still nothing fits, the request runs entirely on the
least-loaded instance of any pool (SplitwiseSim's fallback).
"""

from __future__ import annotations

import heapq
from itertools import count
from operator import attrgetter

from splitplan.sim.machines import Inst

_pending = attrgetter("sched_pending")
_memory = attrgetter("sched_mem")
PENDING, MEMORY = 0, 1  # the two load keys, as _PoolIndex heap numbers
_KEYS = ("sched_pending", "sched_mem")
HEAP_MIN_INSTANCES = 64  # below this a plain min() over the pool is faster; results are the same


class _PoolIndex:
    """`min(pool, key=...)` for one pool list in O(log n) instead of a scan per arrival.

    A lazy heap per key holds (key, stamp, instance id); an entry counts while its instance is still in
    the pool under that stamp and still has that key. Instances leave a pool by `remove` and join by
    `append`, so list order is stamp order and the smallest (key, stamp) is the first minimum in list
    order: what `min()` returns. Keys that rise are refreshed when their entry reaches the top; a key
    that falls must be announced (`Router.lowered`), which pushes a fresh entry."""

    __slots__ = ("by_id", "heaps", "pool", "stamps")

    def __init__(self, pool: list[Inst], stamps: count, by_id: dict[int, Inst]):
        self.pool = pool
        self.by_id = by_id
        self.stamps: dict[int, int] = {inst.id: next(stamps) for inst in pool}
        self.heaps: tuple[list, list] = ([], [])
        self._rebuild(PENDING)
        self._rebuild(MEMORY)

    def _rebuild(self, k: int) -> None:
        attr, stamps = _KEYS[k], self.stamps
        heap = [(getattr(inst, attr), stamps[inst.id], inst.id) for inst in self.pool]
        heapq.heapify(heap)
        self.heaps[k][:] = heap

    def add(self, inst: Inst, stamp: int) -> None:
        self.stamps[inst.id] = stamp
        self.push(inst)

    def push(self, inst: Inst, key: int | None = None) -> None:
        """A fresh entry for `key` (None: both keys) of `inst`, whose key fell."""
        stamp = self.stamps.get(inst.id)
        if stamp is None:
            return
        limit = 4 * len(self.pool) + 64  # stale entries pile up past this: start afresh
        if key != MEMORY:
            heap = self.heaps[PENDING]
            heapq.heappush(heap, (inst.sched_pending, stamp, inst.id))
            if len(heap) > limit:
                self._rebuild(PENDING)
        if key != PENDING:
            heap = self.heaps[MEMORY]
            heapq.heappush(heap, (inst.sched_mem, stamp, inst.id))
            if len(heap) > limit:
                self._rebuild(MEMORY)

    def best(self, k: int) -> Inst | None:
        heap, attr, stamps, by_id = self.heaps[k], _KEYS[k], self.stamps, self.by_id
        while heap:
            key, stamp, iid = heap[0]
            if stamps.get(iid) != stamp:  # left the pool (or left and came back under a new stamp)
                heapq.heappop(heap)
                continue
            inst = by_id[iid]
            current = getattr(inst, attr)
            if current == key:
                return inst
            if current > key:
                heapq.heapreplace(heap, (current, stamp, iid))
            else:  # fell since: a fresher entry was pushed when it fell
                heapq.heappop(heap)
        return None


class Router:
    """The Splitwise mixed-pool routing (and the state every router keeps)."""

    name = "splitwise"

    __slots__ = ("prompt", "token", "mixed", "all", "prompt_limit", "token_wait_limit",
                 "borrows", "borrowed_now", "max_borrowed", "mixed_requests", "mixed_tokens", "compat", "queue_len",
                 "_index", "_stamps", "on_role")

    def __init__(self, insts: list[Inst], prompt_overflow_tokens: int, token_overflow_tokens: int | None,
                 compat: bool = False):
        self.all = list(insts)
        self.prompt = [i for i in insts if i.home == "prompt"]
        self.token = [i for i in insts if i.home == "token"]
        self.mixed = [i for i in insts if i.home == "mixed"]
        self.prompt_limit = prompt_overflow_tokens
        self.token_wait_limit = token_overflow_tokens
        self.borrows = 0
        self.borrowed_now = 0
        self.max_borrowed = 0
        self.mixed_requests = 0
        self.mixed_tokens = 0  # prompt + output tokens of the requests counted in mixed_requests
        self.compat = compat  # SplitwiseSim's own tests and fallback (see route)
        self.queue_len = None  # compat: tasks waiting on an instance (SplitwiseSim's pending queue)
        self.on_role = None  # called with an instance whose role changed (the engine switches its policy)
        # large clusters: per-pool heaps instead of scanning every instance per arrival (same choices)
        self._index: dict[int, _PoolIndex] = {}
        self._stamps = count()
        if len(insts) >= HEAP_MIN_INSTANCES:
            by_id = {inst.id: inst for inst in insts}
            for pool in (self.prompt, self.mixed, self.token):
                self._index[id(pool)] = _PoolIndex(pool, self._stamps, by_id)

    def _min(self, pool: list[Inst], k: int) -> Inst:
        """The pool's least-loaded instance by key k, the first in pool order on ties (as min())."""
        index = self._index.get(id(pool))
        if index is None:
            return min(pool, key=_pending if k == PENDING else _memory)
        return index.best(k)

    def _min_of_all(self) -> Inst:
        """min(prompt + mixed + token, key=pending): across pools, pool order breaks ties."""
        if not self._index:
            return min(self.prompt + self.mixed + self.token, key=_pending)
        best = None
        for pool in (self.prompt, self.mixed, self.token):
            if pool:
                inst = self._min(pool, PENDING)
                if best is None or inst.sched_pending < best.sched_pending:
                    best = inst
        return best

    def lowered(self, inst: Inst, key: int | None = None) -> None:
        """`inst`'s pending tokens (key PENDING), reserved memory (MEMORY) or both (None) fell: refresh
        its heap entries for that key (a key that fell without a fresh entry would drop out of the index)."""
        if self._index:
            pool = self.mixed if inst.role == "mixed" else self.prompt if inst.role == "prompt" else self.token
            index = self._index.get(id(pool))
            if index is not None:
                index.push(inst, key)

    def _move(self, inst: Inst, src: list[Inst], dst: list[Inst]) -> None:
        src.remove(inst)
        dst.append(inst)
        if self._index:
            del self._index[id(src)].stamps[inst.id]
            self._index[id(dst)].add(inst, next(self._stamps))

    def route(self, prompt_tokens: int, kv_tokens: int) -> tuple[Inst, Inst]:
        """(prompt instance, token instance) for a new request; the same object means no transfer."""
        prompt, token = self.prompt, self.token
        # the common case inline (small pools, no compat queue): _best_prompt's and _best_token's tests,
        # written out; tests/test_sim_splitwisesim.py holds the two paths to the same choices
        if prompt and token and not self._index and self.queue_len is None:
            p_inst = min(prompt, key=_pending)
            if p_inst.pq and p_inst.sched_pending + prompt_tokens > self.prompt_limit:
                p_inst = self._best_prompt(self.mixed, prompt_tokens)
            t_inst = min(token, key=_memory)
            if t_inst.sched_mem + kv_tokens >= t_inst.kv_cap + self.compat or (
                    self.token_wait_limit is not None and t_inst.sched_queue_tokens > self.token_wait_limit):
                t_inst = self._best_token(self.mixed, kv_tokens)
            elif p_inst is not None and p_inst.role != "mixed":
                return p_inst, t_inst
        else:
            p_inst = self._best_prompt(prompt, prompt_tokens) or self._best_prompt(self.mixed, prompt_tokens)
            t_inst = self._best_token(token, kv_tokens) or self._best_token(self.mixed, kv_tokens)
        if p_inst is None and self.token:
            p_inst = self._borrow(self.token, PENDING)
        if t_inst is None and self.prompt:
            t_inst = self._borrow(self.prompt, MEMORY)
        if p_inst is None or t_inst is None:
            p_inst = t_inst = self._min_of_all()
            if p_inst.role != "mixed" and not self.compat:  # it runs the whole request: mixed batching
                self._to_mixed(self.prompt if p_inst.role == "prompt" else self.token, p_inst)
        if p_inst.role == "mixed" or t_inst.role == "mixed":
            self.mixed_requests += 1
            self.mixed_tokens += kv_tokens
        return p_inst, t_inst

    def _best_prompt(self, pool: list[Inst], prompt_tokens: int) -> Inst | None:
        if not pool:
            return None
        inst = self._min(pool, PENDING) if self._index else min(pool, key=_pending)  # (a scan: no call)
        waiting = self.queue_len(inst) if self.queue_len is not None else inst.pq
        if waiting and inst.sched_pending + prompt_tokens > self.prompt_limit:
            return None
        return inst

    def _best_token(self, pool: list[Inst], kv_tokens: int) -> Inst | None:
        if not pool:
            return None
        inst = self._min(pool, MEMORY) if self._index else min(pool, key=_memory)
        # SplitwiseSim compares bytes with its fractional capacity: full once past the whole tokens
        if inst.sched_mem + kv_tokens >= inst.kv_cap + self.compat:
            return None
        if self.token_wait_limit is not None and inst.sched_queue_tokens > self.token_wait_limit:
            return None
        return inst

    def _borrow(self, pool: list[Inst], k: int) -> Inst:
        return self._to_mixed(pool, self._min(pool, k))

    def _to_mixed(self, pool: list[Inst], inst: Inst) -> Inst:
        self._move(inst, pool, self.mixed)
        inst.role = "mixed"
        if self.on_role is not None:
            self.on_role(inst)
        self.borrows += 1
        self.borrowed_now += 1
        self.max_borrowed = max(self.max_borrowed, self.borrowed_now)
        return inst

    def release(self, inst: Inst) -> None:
        """A borrowed instance drained: back to its home pool."""
        if inst.role != "mixed" or inst.home == "mixed":
            return
        inst.role = inst.home
        if self.on_role is not None:
            self.on_role(inst)
        self._move(inst, self.mixed, self.prompt if inst.home == "prompt" else self.token)
        self.borrowed_now -= 1


class BaselineRouter(Router):
    """One pool: join the shortest queue (pending prompt tokens plus one per decoding request)."""

    name = "baseline"
    __slots__ = ()

    def route(self, prompt_tokens: int, kv_tokens: int) -> tuple[Inst, Inst]:
        if len(self.mixed) == len(self.all):  # every instance co-located: the mixed pool in the same order
            inst = self._min(self.mixed, PENDING)
        else:
            inst = min(self.all, key=_pending)
        return inst, inst


class DisaggRouter(Router):
    """Fixed prefill and decode workers: least pending prefill work, least reserved KV; never borrows.

    A request whose KV does not fit any decode worker still goes to the emptiest one and waits there
    for memory (engines queue it; nothing overflows into a pool that does not exist)."""

    name = "disagg"
    __slots__ = ()

    def route(self, prompt_tokens: int, kv_tokens: int) -> tuple[Inst, Inst]:
        return self._min(self.prompt, PENDING), self._min(self.token, MEMORY)


ROUTERS: dict[str, type[Router]] = {cls.name: cls for cls in (BaselineRouter, Router, DisaggRouter)}


def make_router(name: str, insts: list[Inst], prompt_overflow_tokens: int,
                token_overflow_tokens: int | None, compat: bool = False) -> Router:
    """The router registered under `name` (a design kind: baseline, splitwise, disagg)."""
    from splitplan.errors import SplitplanError, nearest_names

    cls = ROUTERS.get(name)
    if cls is None:
        raise SplitplanError(f"unknown router '{name}'{nearest_names(name, ROUTERS)}", field="router")
    return cls(insts, prompt_overflow_tokens, token_overflow_tokens, compat)

