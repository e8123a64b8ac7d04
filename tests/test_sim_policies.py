"""Batching policies: registered by name; chunked prefill, paged KV with recomputation, reservation,
prefill-first and in-flight batching behave as the engines they stand for; closed-loop clients."""

import numpy as np
import pytest

from splitplan.apps.benchmark import BenchmarkConfig, Protocol, run_benchmark
from splitplan.catalog import default_catalog
from splitplan.perf import build_perf_model
from splitplan.perf.base import PerfSettings
from splitplan.serving.quant import Quant
from splitplan.sim.api import run_closed_loop
from splitplan.sim.machines import SEG_DECODE
from splitplan.sim.policies import POLICIES, BatchPolicy, make_policy, policy_names, register

CAT = default_catalog()


def perf(stack="vllm", tp=2, quant=Quant.parse("fp8")):
    return build_perf_model("llama3.1-70b", "dgx-h100", tp, PerfSettings(stack=stack, quant=quant), CAT)


def closed(policy, n=60, clients=8, isl=1024, osl=64, stack="vllm", **kw):
    p = perf(stack)
    return run_closed_loop(p, np.full(n, isl), np.full(n, osl), clients, policy=policy, catalog=CAT,
                           record_segments=True, **kw)


def test_every_bundled_policy_is_registered():
    assert {"prompt_pool", "token_pool", "mixed", "chunked", "prefill_first", "inflight"} <= set(policy_names())
    with pytest.raises(Exception, match="unknown batching policy 'magic'"):
        make_policy("magic")


def test_a_policy_is_added_without_touching_the_engine():
    """A decode-only-when-idle policy registered here runs through the unchanged engine."""

    @register("test-one-prompt-at-a-time")
    class OnePromptAtATime(BatchPolicy):
        def start(self, eng, inst):
            if inst.B:
                eng.decode_run(inst)
            elif inst.pq:
                rid = inst.pq.popleft()
                inst.kv_used += eng.reserve[rid]
                inst.prefilling.append(rid)
                eng.begin_chunks(inst, [(rid, eng.pre_need[rid])], with_decodes=False)
            else:
                eng.idle(inst)

    try:
        eng = closed("test-one-prompt-at-a-time", n=20, clients=4)
        assert eng.completed == 20
        prompts = [s for s in eng.segments if s[3] != SEG_DECODE]
        assert all(s[7] == 1 and s[4] == 0 for s in prompts)  # one prompt, no decodes beside it
    finally:
        POLICIES.pop("test-one-prompt-at-a-time")


def test_chunked_prefill_spreads_long_prompts_within_the_token_budget():
    eng = closed("chunked", n=24, clients=8, isl=12000, osl=16)
    budget = eng.insts[0].perf.scheduling.max_batched_tokens
    chunk_iters = [s for s in eng.segments if s[3] != SEG_DECODE]
    assert all(s[8] + s[4] <= budget for s in chunk_iters)  # chunk tokens + one per decode
    assert any(s[11] > 0 for s in chunk_iters)  # chunks with a cached prefix: prompts split
    assert eng.completed == 24


def test_paged_kv_preempts_by_recomputation_and_returns_every_token():
    """8k/1k at 64 clients does not fit an H100 TP2 KV cache: decodes are preempted and recomputed; the
    cache never overflows and is empty at the end."""
    eng = closed("chunked", n=128, clients=64, isl=8192, osl=1024)
    inst = eng.insts[0]
    assert inst.paged and eng.preemptions > 0
    assert inst.kv_peak <= inst.kv_cap
    assert inst.kv_used == 0 and eng.completed == 128


def test_reservation_never_preempts_and_queues_instead():
    p = perf("trtllm")
    eng = run_closed_loop(p, np.full(128, 8192), np.full(128, 1024), 64, policy="inflight", catalog=CAT)
    inst = eng.insts[0]
    assert not inst.paged and eng.preemptions == 0
    assert inst.kv_peak <= inst.kv_cap and inst.kv_used == 0 and eng.completed == 128


def test_prefill_first_pauses_decodes_so_waves_stay_together():
    """SGLang-style prefill batches stall every decode: with identical requests the clients stay in
    lockstep waves and TTFT grows with concurrency far faster than under chunked prefill."""
    def mean_ttft(policy, clients):
        eng = closed(policy, n=10 * clients, clients=clients, osl=128, stack="sglang")
        return float(np.mean(np.asarray(eng.t_first) - np.asarray(eng.arr)))

    assert mean_ttft("prefill_first", 64) > 3 * mean_ttft("prefill_first", 8)
    assert mean_ttft("prefill_first", 64) > 1.5 * mean_ttft("chunked", 64)


def test_closed_loop_keeps_at_most_c_requests_in_flight():
    eng = closed("chunked", n=50, clients=5, osl=32)
    arr, done = np.asarray(eng.arr), np.asarray(eng.t_done)
    for t in np.linspace(0, float(done.max()), 200):
        assert np.sum((arr <= t) & (done > t)) <= 5
    assert np.all(arr[5:] >= np.sort(done)[:45] - 1e-12)  # request i+C waits for a completion


def test_client_delays_arrive_later_but_serve_the_same_requests():
    base = closed("chunked", n=40, clients=4, osl=32)
    slow = closed("chunked", n=40, clients=4, osl=32, client_delay_s=np.full(40, 0.05))
    assert slow.completed == base.completed == 40
    assert max(slow.t_done) > max(base.t_done)
