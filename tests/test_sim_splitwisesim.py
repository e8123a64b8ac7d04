"""Compat mode under overload follows SplitwiseSim's mechanisms (docs/simulator.md, "Heavy load").

The expected figures were produced by a line-by-line port of SplitwiseSim 8f99e7d (its
MixedPoolScheduler / TokenJSQScheduler, SplitwiseInstance, tasks, flows and DummyLink, event heap and
DatabasePerformanceModel; not part of this repository) that reproduces SplitwiseSim's four validation
runs request by request (within 4e-14 s, same completion order). Before compat mode copied
SplitwiseSim's instance batching, routing fallback, memory accounting and machine release, these runs
differed by tens of percent.
"""

from __future__ import annotations

import numpy as np
import pytest

from splitplan.cluster import baseline_cluster, splitwise_cluster
from splitplan.perf.base import PerfSettings
from splitplan.sim import routers, simulate
from splitplan.sim.machines import Inst
from splitplan.sim.policies.splitwisesim import (
    EV_RETRY,
    EV_XFER,
    TRANSFER_RETRY_S,
    SplitwiseSim,
)
from splitplan.sim.routers import make_router
from splitplan.workload import load_trace, poisson_workload, resolve_trace_path

COMPAT = PerfSettings(backend="profile", compat="splitwisesim")

# (design, H100s, A100s, trace, req/s, seconds) -> mixed-pool requests, borrows, and per metric
# (P50, P99, sum over requests) in seconds, from the SplitwiseSim port
CASES = {
    ("splitwise", 4, 4, "code", 35.0, 30.0): (478, 4, {
        "ttft": (1.7860093937818213, 5.652462751334408, 2080.716730691767),
        "tbt": (0.3944180583874758, 1.307537819622107, 455.69522733790836),
        "e2e": (8.201882072918629, 35.93505381512295, 11176.970646895694)}),
    ("baseline", 4, 0, "code", 40.0, 20.0): (0, 0, {
        "ttft": (8.54726608900183, 17.221024919143733, 6970.253292376474),
        "tbt": (0.34475482128604823, 0.7062243893481429, 285.7962390598582),
        "e2e": (15.82892140132453, 37.18519619617352, 12995.242750949676)}),
    ("splitwise", 2, 3, "conv", 40.0, 20.0): (655, 4, {
        "ttft": (0.6115025749085738, 4.590399922848717, 850.1849364398316),
        "tbt": (0.09187330449193665, 0.2955423452580209, 95.37309521773206),
        "e2e": (17.167450816565538, 40.08708221003797, 15313.998253652539)}),
}


@pytest.mark.parametrize("case", list(CASES), ids=lambda c: f"{c[0]}-{c[1]}h{c[2]}a-{c[3]}-{c[4]:g}rps")
def test_overloaded_compat_runs_match_splitwisesim(case):
    design, h100, a100, kind, rate, duration = case
    mixed, borrows, metrics = CASES[case]
    workload = poisson_workload(load_trace(resolve_trace_path(f"AzureLLMInferenceTrace_{kind}.csv")), rate, duration,
                                seed=0)
    cluster = (splitwise_cluster("llama2-70b", [("dgx-h100", h100)], [("dgx-a100", a100)]) if design == "splitwise"
               else baseline_cluster("llama2-70b", [("dgx-h100", h100)]))
    result = simulate(cluster, workload, perf=COMPAT)
    assert result.summary["completed"] == len(workload)
    if design == "splitwise":
        assert result.summary["mixed_pool"]["requests"] == mixed
        assert result.summary["mixed_pool"]["borrowed_machines"] == borrows
    requests = result.requests
    for metric, (p50, p99, total) in metrics.items():
        values = requests[f"{metric}_s"].to_numpy()
        got = (np.percentile(values, 50), np.percentile(values, 99), values.sum())
        assert got == pytest.approx((p50, p99, total), rel=1e-9), metric


def _insts(n_prompt: int, n_token: int, cap: int = 1000) -> list[Inst]:
    roles = ["prompt"] * n_prompt + ["token"] * n_token
    return [Inst(i, role, "m", i, None, cap) for i, role in enumerate(roles)]


def test_compat_fallback_keeps_the_instance_in_its_pool():
    """SplitwiseSim's last resort runs the request whole on the least-loaded instance without retagging
    it; outside compat that instance is borrowed (it must then run mixed batching)."""
    for compat in (True, False):
        insts = _insts(2, 1)
        p1, p2, tok = insts
        router = make_router("splitwise", insts, 10, None, compat=compat)
        router.queue_len = (lambda inst: 1) if compat else None
        for inst, pending in ((p1, 100), (p2, 0), (tok, 100)):
            inst.pq.append(0)  # every prompt queue is long
            inst.sched_pending = pending
        assert router.route(50, 20) == (tok, tok)  # the token machine is borrowed for the prompt
        assert router.borrows == 1
        # prompt queues long everywhere and no token machine left to borrow: the fallback takes p2
        assert router.route(50, 20) == (p2, p2)
        assert p2.role == ("prompt" if compat else "mixed")
        assert router.borrows == (1 if compat else 2)


def test_compat_token_memory_full_only_past_the_whole_capacity():
    """SplitwiseSim compares bytes with a fractional capacity (tokens x KV bytes < its free memory), so a
    request that exactly fills the whole-token capacity still fits; outside compat it overflows."""
    for compat, fits in ((True, True), (False, False)):
        insts = _insts(1, 1, cap=1000)
        router = make_router("splitwise", insts, 8192, None, compat=compat)
        insts[1].sched_mem = 400
        _, t_inst = router.route(10, 600)
        assert (t_inst is insts[1]) is fits


def test_compat_prompt_overflow_counts_every_waiting_task():
    """SplitwiseSim's "queue is long" test looks at the instance's whole pending queue (decodes too), not
    only at waiting prompts."""
    insts = _insts(1, 1)
    router = make_router("splitwise", insts, 100, None, compat=True)
    insts[0].sched_pending = 90
    router.queue_len = lambda inst: 0
    assert router.route(20, 10)[0] is insts[0]  # nothing waits: not overloaded
    router.queue_len = lambda inst: 1
    assert router.route(20, 10)[0] is not insts[0]


class _Eng:
    """Just what SplitwiseSim.flow_retry touches."""

    def __init__(self, dst_used: int):
        self.insts = _insts(1, 1, cap=1000)
        self.insts[1].kv_used = dst_used
        self.pr, self.p_inst, self.t_inst = [99], [0], [1]
        self.now, self.kvbpt, self.machines = 5.0, 1.0, [None, None]
        self.events: list[tuple] = []

        class _Links:
            @staticmethod
            def start(now, kv_bytes, *args):
                return now + kv_bytes / 100.0
        self.links = _Links()

    def _schedule(self, t, kind, a, b):
        self.events.append((t, kind, a))


def test_kv_transfer_waits_for_room_at_the_destination():
    """SplitwiseSim's link starts a KV transfer only if the destination's allocated memory has room for
    the prompt's cache (prompt + 1 tokens), else retries every second; the cache is allocated there when
    the transfer starts."""
    eng = _Eng(dst_used=950)
    SplitwiseSim().flow_retry(eng, 0)
    assert eng.events == [(5.0 + TRANSFER_RETRY_S, EV_RETRY, 0)]
    assert eng.insts[1].kv_used == 950
    eng = _Eng(dst_used=900)
    SplitwiseSim().flow_retry(eng, 0)
    assert eng.events == [(5.0 + 99 / 100.0, EV_XFER, 0)]
    assert eng.insts[1].kv_used == 1000


@pytest.mark.parametrize("compat", [False, True], ids=["default", "compat"])
def test_router_heaps_choose_as_the_scan_does(monkeypatch, compat):
    """Large clusters route through per-pool heaps; every choice (ties included: first in pool order)
    must equal the linear scan's, borrowing and returning machines included."""
    workload = poisson_workload(load_trace(resolve_trace_path("AzureLLMInferenceTrace_code.csv")), 45.0, 15.0, seed=3)
    cluster = splitwise_cluster("llama2-70b", [("dgx-h100", 4)], [("dgx-a100", 5)])
    perf = COMPAT if compat else PerfSettings()
    outputs = []
    for threshold in (10**9, 0):
        monkeypatch.setattr(routers, "HEAP_MIN_INSTANCES", threshold)
        result = simulate(cluster, workload, perf=perf)
        outputs.append((result.requests.to_csv(index=False), result.summary["mixed_pool"]))
    assert outputs[0][1]["borrowed_machines"] > 0
    assert outputs[0] == outputs[1]


def test_pool_index_matches_min_under_random_updates():
    import random

    rng = random.Random(7)
    insts = _insts(20, 20)
    for inst in insts:
        inst.sched_pending = rng.randrange(5)
        inst.sched_mem = rng.randrange(5)
    old = routers.HEAP_MIN_INSTANCES
    routers.HEAP_MIN_INSTANCES = 0
    try:
        router = make_router("splitwise", insts, 8192, None)
    finally:
        routers.HEAP_MIN_INSTANCES = old
    for _ in range(3000):
        inst = rng.choice(insts)
        op = rng.random()
        if op < 0.4:
            key = rng.choice(("sched_pending", "sched_mem"))  # rises need no announcement
            setattr(inst, key, getattr(inst, key) + rng.randrange(3))
        elif op < 0.8:  # one key falls and is announced alone, or both fall
            which = rng.choice((routers.PENDING, routers.MEMORY, None))
            if which != routers.MEMORY:
                inst.sched_pending = max(0, inst.sched_pending - rng.randrange(3))
            if which != routers.PENDING:
                inst.sched_mem = max(0, inst.sched_mem - rng.randrange(3))
            router.lowered(inst, which)
        elif op < 0.9 and inst.role != "mixed":
            router._to_mixed(router.prompt if inst.role == "prompt" else router.token, inst)
        elif inst.role == "mixed":
            router.release(inst)
        for pool in (router.prompt, router.token, router.mixed):
            if pool:
                assert router._min(pool, routers.PENDING) is min(pool, key=lambda i: i.sched_pending)
                assert router._min(pool, routers.MEMORY) is min(pool, key=lambda i: i.sched_mem)
        assert router._min_of_all() is min(router.prompt + router.mixed + router.token, key=lambda i: i.sched_pending)


def test_route_inline_case_chooses_as_the_general_path():
    """route() takes small prompt and token pools inline; the general path (reached here by giving the
    router a queue_len that reads the same queue) must choose the same instances, overflow into the
    mixed pool, borrowing and the fallback included."""
    import random

    rng = random.Random(11)
    fast_insts, slow_insts = _insts(4, 3, cap=60), _insts(4, 3, cap=60)
    fast = make_router("splitwise", fast_insts, 40, 30)
    slow = make_router("splitwise", slow_insts, 40, 30)
    slow.queue_len = lambda inst: inst.pq
    borrowed = 0
    for step in range(4000):
        if rng.random() < 0.3:  # the instances' loads change the same way in both
            j = rng.randrange(len(fast_insts))
            pending, mem, queued, waiting = rng.randrange(60), rng.randrange(70), rng.randrange(50), rng.random() < 0.5
            for inst in (fast_insts[j], slow_insts[j]):
                inst.sched_pending, inst.sched_mem, inst.sched_queue_tokens = pending, mem, queued
                inst.pq.clear()
                if waiting:
                    inst.pq.append(step)
        if rng.random() < 0.05:  # a borrowed machine goes home
            for router in (fast, slow):
                if router.mixed:
                    router.release(router.mixed[0])
        prompt_tokens, kv_tokens = rng.randrange(1, 30), rng.randrange(1, 40)
        got = [tuple(i.id for i in router.route(prompt_tokens, kv_tokens)) for router in (fast, slow)]
        assert got[0] == got[1], step
        assert (fast.borrows, fast.mixed_requests, fast.mixed_tokens) == (slow.borrows, slow.mixed_requests,
                                                                          slow.mixed_tokens)
        borrowed = max(borrowed, fast.borrows)
    assert borrowed > 0 and fast.mixed_requests > 0  # the overflow branches ran


def test_compat_id_order_shortcut_changes_nothing(monkeypatch):
    """With strictly increasing open-loop arrivals SplitwiseSim's per-instance lists are kept and searched
    by request id; forcing the general arrival-keyed path must give the same run, byte for byte."""
    from splitplan.sim.policies.splitwisesim import SplitwiseSim

    # token machines short of memory, so that the order in which waiting decodes are admitted matters
    workload = poisson_workload(load_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv")), 60.0, 15.0, seed=5)
    cluster = splitwise_cluster("llama2-70b", [("dgx-a100", 3)], [("dgx-a100", 2)])
    shortcut = simulate(cluster, workload, perf=COMPAT)
    bind = SplitwiseSim.bind

    def general(self, n, insts, distinct_arrivals):
        bind(self, n, insts, distinct_arrivals)
        assert self.distinct  # the shortcut was on above
        self.distinct = False

    monkeypatch.setattr(SplitwiseSim, "bind", general)
    assert simulate(cluster, workload, perf=COMPAT).requests.to_csv(index=False) == \
        shortcut.requests.to_csv(index=False)
