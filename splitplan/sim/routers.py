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

from operator import attrgetter

from splitplan.sim.machines import Inst

_pending = attrgetter("sched_pending")
_memory = attrgetter("sched_mem")


class Router:
    """The Splitwise mixed-pool routing (and the state every router keeps)."""

    name = "splitwise"

    __slots__ = ("prompt", "token", "mixed", "all", "prompt_limit", "token_wait_limit",
                 "borrows", "borrowed_now", "max_borrowed", "mixed_requests", "compat", "queue_len")

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
        self.compat = compat  # SplitwiseSim's own tests and fallback (see route)
        self.queue_len = None  # compat: tasks waiting on an instance (SplitwiseSim's pending queue)

    def route(self, prompt_tokens: int, kv_tokens: int) -> tuple[Inst, Inst]:
        """(prompt instance, token instance) for a new request; the same object means no transfer."""
        p_inst = self._best_prompt(self.prompt, prompt_tokens) or self._best_prompt(self.mixed, prompt_tokens)
        t_inst = self._best_token(self.token, kv_tokens) or self._best_token(self.mixed, kv_tokens)
        if p_inst is None and self.token:
            p_inst = self._borrow(self.token, _pending)
        if t_inst is None and self.prompt:
            t_inst = self._borrow(self.prompt, _memory)
        if p_inst is None or t_inst is None:
            p_inst = t_inst = min(self.prompt + self.mixed + self.token, key=_pending)
            if p_inst.role != "mixed" and not self.compat:  # it runs the whole request: mixed batching
                self._to_mixed(self.prompt if p_inst.role == "prompt" else self.token, p_inst)
        if p_inst.role == "mixed" or t_inst.role == "mixed":
            self.mixed_requests += 1
        return p_inst, t_inst

    def _best_prompt(self, pool: list[Inst], prompt_tokens: int) -> Inst | None:
        if not pool:
            return None
        inst = min(pool, key=_pending)
        waiting = self.queue_len(inst) if self.queue_len is not None else inst.pq
        if waiting and inst.sched_pending + prompt_tokens > self.prompt_limit:
            return None
        return inst

    def _best_token(self, pool: list[Inst], kv_tokens: int) -> Inst | None:
        if not pool:
            return None
        inst = min(pool, key=_memory)
        # SplitwiseSim compares bytes with its fractional capacity: full once past the whole tokens
        if inst.sched_mem + kv_tokens >= inst.kv_cap + self.compat:
            return None
        if self.token_wait_limit is not None and inst.sched_queue_tokens > self.token_wait_limit:
            return None
        return inst

    def _borrow(self, pool: list[Inst], key) -> Inst:
        return self._to_mixed(pool, min(pool, key=key))

    def _to_mixed(self, pool: list[Inst], inst: Inst) -> Inst:
        pool.remove(inst)
        self.mixed.append(inst)
        inst.role = "mixed"
        self.borrows += 1
        self.borrowed_now += 1
        self.max_borrowed = max(self.max_borrowed, self.borrowed_now)
        return inst

    def release(self, inst: Inst) -> None:
        """A borrowed instance drained: back to its home pool."""
        if inst.role != "mixed" or inst.home == "mixed":
            return
        self.mixed.remove(inst)
        inst.role = inst.home
        (self.prompt if inst.home == "prompt" else self.token).append(inst)
        self.borrowed_now -= 1


class BaselineRouter(Router):
    """One pool: join the shortest queue (pending prompt tokens plus one per decoding request)."""

    name = "baseline"
    __slots__ = ()

    def route(self, prompt_tokens: int, kv_tokens: int) -> tuple[Inst, Inst]:
        inst = min(self.all, key=_pending)
        return inst, inst


class DisaggRouter(Router):
    """Fixed prefill and decode workers: least pending prefill work, least reserved KV; never borrows.

    A request whose KV does not fit any decode worker still goes to the emptiest one and waits there
    for memory (engines queue it; nothing overflows into a pool that does not exist)."""

    name = "disagg"
    __slots__ = ()

    def route(self, prompt_tokens: int, kv_tokens: int) -> tuple[Inst, Inst]:
        return min(self.prompt, key=_pending), min(self.token, key=_memory)


ROUTERS: dict[str, type[Router]] = {cls.name: cls for cls in (BaselineRouter, Router, DisaggRouter)}


def make_router(name: str, insts: list[Inst], prompt_overflow_tokens: int,
                token_overflow_tokens: int | None, compat: bool = False) -> Router:
    """The router registered under `name` (a design kind: baseline, splitwise, disagg)."""
    from splitplan.errors import SplitplanError, nearest_names

    cls = ROUTERS.get(name)
    if cls is None:
        raise SplitplanError(f"unknown router '{name}'{nearest_names(name, ROUTERS)}", field="router")
    return cls(insts, prompt_overflow_tokens, token_overflow_tokens, compat)

