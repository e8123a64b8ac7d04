"""Simulator behaviour: exact single-request times, Little's law, completeness, mixed-pool overflow,
saturation, determinism."""

import numpy as np
import pytest

from splitplan.catalog import get_catalog
from splitplan.cluster import baseline_cluster, splitwise_cluster
from splitplan.perf import build_perf_model, kv_transfer_ms
from splitplan.perf.base import PerfSettings
from splitplan.sim import SimConfig, simulate
from splitplan.sim.machines import run_time_s, steps_done
from splitplan.workload import Workload, load_trace, poisson_workload, resolve_trace_path

MODEL = "llama2-70b"


def one(prompt: int, output: int, at: float = 0.0) -> Workload:
    return Workload(np.array([at]), np.array([prompt]), np.array([output]), name="one")


@pytest.fixture(scope="module")
def conv():
    return load_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv"))


def test_one_request_baseline_equals_prefill_plus_decode():
    cat = get_catalog()
    perf = build_perf_model(cat.model(MODEL), cat.machine("dgx-h100"), tp=8, settings=PerfSettings(), catalog=cat)
    r = simulate(baseline_cluster(MODEL, [("dgx-h100", 1)]), one(1000, 10, at=1.5))
    req = r.requests.iloc[0]
    ttft = perf.prefill_ms(1, 1000, 1000**2) / 1e3
    decode = sum(perf.decode_ms(1, 1001 + k) for k in range(9)) / 1e3
    assert req.ttft_s == pytest.approx(ttft, rel=1e-9)
    assert req.e2e_s == pytest.approx(ttft + decode, rel=1e-9)
    assert req.tbt_s == pytest.approx(decode / 9, rel=1e-9)
    assert req.queue_s == 0 and req.completed


def test_one_request_splitwise_adds_the_kv_transfer():
    cat = get_catalog()
    h100, a100 = cat.machine("dgx-h100"), cat.machine("dgx-a100")
    model = cat.model(MODEL)
    p_perf = build_perf_model(model, h100, tp=8, settings=PerfSettings(), catalog=cat)
    t_perf = build_perf_model(model, a100, tp=8, settings=PerfSettings(), catalog=cat)
    cfg = SimConfig(transfer="serialized")
    r = simulate(splitwise_cluster(MODEL, [("dgx-h100", 1)], [("dgx-a100", 1)]), one(2000, 5), config=cfg)
    req = r.requests.iloc[0]
    prefill_ms = p_perf.prefill_ms(1, 2000, 2000**2)
    xfer_ms = kv_transfer_ms(2000 * p_perf.kv_bytes_per_token(), h100, a100, mode="serialized")
    decode_ms = sum(t_perf.decode_ms(1, 2001 + k) for k in range(4))
    assert req.transfer_s == pytest.approx(xfer_ms / 1e3, rel=1e-9)
    assert req.e2e_s == pytest.approx((prefill_ms + xfer_ms + decode_ms) / 1e3, rel=1e-9)
    assert (req.prompt_instance, req.token_instance) == (0, 1)


def test_closed_form_steps_invert():
    for base, per, s0, b in [(30.0, 0.0, 0, 1), (11.0, 1.4e-5, 5000, 7), (14.8, 2.3e-5, 200000, 300)]:
        for n in (1, 2, 17, 400):
            t = run_time_s(n, base, per, s0, b)
            assert steps_done(t, base, per, s0, b) == n
            assert steps_done(t * (1 - 1e-9), base, per, s0, b) == n - 1


def test_littles_law_and_completeness(conv):
    w = poisson_workload(conv, 6.0, 90.0, seed=3)
    r = simulate(baseline_cluster(MODEL, [("dgx-h100", 4)]), w)
    req = r.requests
    assert not r.saturated and req.completed.all()
    assert r.summary["completed"] + r.summary["unfinished"] == len(w)
    # Little: time-average number in system == arrival rate x mean time in system (over [20 s, 80 s])
    grid = np.linspace(20.0, 80.0, 2001)
    done = req.arrival_s + req.e2e_s
    in_system = ((req.arrival_s.values[None, :] <= grid[:, None]) & (done.values[None, :] > grid[:, None])).sum(1)
    lam = ((req.arrival_s > 10) & (req.arrival_s < 80)).sum() / 70.0
    assert in_system.mean() == pytest.approx(lam * req.e2e_s.mean(), rel=0.15)


def test_mixed_pool_engages_only_under_overflow(conv):
    light = poisson_workload(conv, 4.0, 60.0, seed=1)
    r = simulate(splitwise_cluster(MODEL, [("dgx-h100", 3)], [("dgx-a100", 3)]), light)
    assert r.summary["mixed_pool"] == {"requests": 0, "borrowed_machines": 0, "max_borrowed_at_once": 0,
                                       "request_share": 0.0, "token_share": 0.0}
    heavy = poisson_workload(conv, 40.0, 30.0, seed=1)
    r = simulate(splitwise_cluster(MODEL, [("dgx-h100", 1)], [("dgx-a100", 6)]), heavy)
    assert r.summary["mixed_pool"]["borrowed_machines"] >= 1
    assert r.summary["mixed_pool"]["requests"] > 0
    share = r.summary["mixed_pool"]["request_share"]
    assert share == pytest.approx(r.summary["mixed_pool"]["requests"] / len(heavy))
    assert 0 < r.summary["mixed_pool"]["token_share"] <= 1
    assert r.requests.completed.all()


def test_saturation_detected_and_percentiles_withheld(conv):
    w = poisson_workload(conv, 60.0, 60.0, seed=0)
    r = simulate(baseline_cluster(MODEL, [("dgx-a100", 1)]), w, config=SimConfig(drain_min_s=5, drain_limit_factor=0.1))
    assert r.saturated and not r.all_slos_met
    assert r.summary["saturation_reason"]
    assert r.summary["ttft_s"]["p99"] is None
    assert r.summary["unfinished"] == int((~r.requests.completed).sum()) > 0
    assert r.requests.loc[~r.requests.completed, "e2e_s"].isna().all()


def test_request_larger_than_kv_cache_is_saturation():
    r = simulate(baseline_cluster(MODEL, [("dgx-h100", 1)]), one(3_000_000, 10))
    assert r.saturated and "KV cache" in r.summary["saturation_reason"]


def test_same_inputs_byte_identical_outputs(conv, tmp_path):
    cluster = splitwise_cluster(MODEL, [("dgx-h100", 2)], [("dgx-a100", 2)])
    outputs = []
    for run in ("a", "b"):
        r = simulate(cluster, poisson_workload(conv, 10.0, 30.0, seed=7))
        r.write(tmp_path / run)
        outputs.append({f: (tmp_path / run / f).read_bytes() for f in ("summary.json", "requests.csv",
                                                                      "machines.csv", "timeline.csv")})
    assert outputs[0] == outputs[1]
    assert b"wall" not in outputs[0]["summary.json"]


def test_compat_mode_tracks_splitwisesim_on_validation_trace():
    """ha26a25h on rr_code_80_2min: SplitwiseSim reference percentiles (results.csv) within 10%."""
    w = load_trace(resolve_trace_path("rr_code_80_2min.csv"))
    perf = PerfSettings(backend="profile", compat="splitwisesim")
    s = simulate(splitwise_cluster(MODEL, [("dgx-h100", 25)], [("dgx-a100", 26)]), w, perf=perf).summary
    reference = {"ttft_s": (0.102341, 0.501815, 0.747456), "tbt_s": (0.0425395, 0.0457741, 0.0519209),
                 "e2e_s": (0.768434, 2.64506, 10.7667)}
    for key, values in reference.items():
        for q, ref in zip(("p50", "p90", "p99"), values):
            assert s[key][q] == pytest.approx(ref, rel=0.10), (key, q)


def test_no_request_is_stranded_when_machines_are_borrowed(conv):
    """Overloaded token pool: prompt machines are borrowed and returned; with an unbounded drain every
    request still finishes (a machine must not go home while KV caches are in flight to it)."""
    w = poisson_workload(conv, 40.0, 60.0, seed=0)
    r = simulate(splitwise_cluster(MODEL, [("dgx-h100", 5)], [("dgx-a100", 1)]), w,
                 config=SimConfig(drain_min_s=1e5))
    assert r.summary["mixed_pool"]["borrowed_machines"] >= 1
    assert r.requests.completed.all()
    assert r.saturated and "grows without bound" in r.summary["saturation_reason"]
