"""Capacity model: queueing pieces against closed forms, monotonicity, and named bounds."""

import numpy as np
import pytest

from splitplan.perf import build_perf_model
from splitplan.plan.capacity import (CapacityParams, RequestSample, SloTarget, erlang_c, machine_capacity,
                                     prompt_rate_rps, token_rate_rps)
from splitplan.slo import paper_slos, reference_latencies
from splitplan.workload import load_trace
from splitplan.plan.problem import slo_targets


def test_erlang_c_closed_forms():
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # M/M/2 at a = 1: 1/3
    assert erlang_c(3, 3.5) == 1.0  # overloaded


@pytest.fixture(scope="module")
def sample():
    trace = load_trace("scenarios/traces/rr_conv_80_2min.csv")
    ref = build_perf_model("llama2-70b", "dgx-a100")
    refs = reference_latencies(trace.prompt_tokens, trace.output_tokens, ref)
    return RequestSample.draw(trace.prompt_tokens, trace.output_tokens, refs.ttft_s * 1e3, refs.tbt_s * 1e3,
                              refs.e2e_s * 1e3, 1000)


def test_faster_machine_and_looser_slo_give_more_capacity(sample):
    slos = slo_targets(paper_slos())
    a100, h100 = build_perf_model("llama2-70b", "dgx-a100"), build_perf_model("llama2-70b", "dgx-h100")
    params = CapacityParams()
    assert prompt_rate_rps(h100, sample, slos, params)[0] > prompt_rate_rps(a100, sample, slos, params)[0]
    tight = [SloTarget("tbt", 0.5, 1.1)]
    loose = [SloTarget("tbt", 0.5, 2.0)]
    assert token_rate_rps(a100, sample, loose, params)[0] > token_rate_rps(a100, sample, tight, params)[0]


def test_pooling_raises_per_machine_prompt_rate(sample):
    slos = slo_targets(paper_slos())
    h100 = build_perf_model("llama2-70b", "dgx-h100")
    one = machine_capacity(h100, "dgx-h100", "prompt", sample, slos, CapacityParams(), pool_machines=1)
    ten = machine_capacity(h100, "dgx-h100", "prompt", sample, slos, CapacityParams(), pool_machines=10)
    assert ten.rate_rps > one.rate_rps > 0


def test_derating_is_a_named_factor(sample):
    slos = slo_targets(paper_slos())
    h100 = build_perf_model("llama2-70b", "dgx-h100")
    full = machine_capacity(h100, "dgx-h100", "token", sample, slos, CapacityParams())
    half = machine_capacity(h100, "dgx-h100", "token", sample, slos, CapacityParams(token_derate=0.5))
    assert half.rate_rps == pytest.approx(0.5 * full.rate_rps)
    assert full.bound  # says what limits it


def test_unmeetable_absolute_slo_gives_zero(sample):
    a100 = build_perf_model("llama2-70b", "dgx-a100")
    rate, _ = prompt_rate_rps(a100, sample, [SloTarget("ttft", 0.5, 1.0, relative=False)], CapacityParams())
    assert rate == 0.0


def test_sample_is_deterministic():
    x = np.arange(5000)
    a = RequestSample.draw(x, x, x, x, x, 100, seed=3)
    b = RequestSample.draw(x, x, x, x, x, 100, seed=3)
    assert np.array_equal(a.prompt_tokens, b.prompt_tokens) and len(a.prompt_tokens) == 100


def test_poisson_helpers_give_scipy_stats_values():
    """The capacity model's Poisson quantile and cdf (from scipy.special, to keep scipy.stats off the
    import path) agree exactly with scipy.stats.poisson, edges included."""
    import numpy as np
    from scipy.stats import poisson

    from splitplan.plan.capacity import poisson_cdf, poisson_ppf

    for mu in (1e-6, 0.3, 1.0, 7.5, 42.0, 511.9, 3e4):
        for q in (1e-9, 0.01, 0.5, 0.9, 0.99, 0.999999):
            assert poisson_ppf(q, mu) == float(poisson.ppf(q, mu)), (q, mu)
        k = np.array([-3.0, -0.5, 0.0, 0.4, 1.0, 2.7, mu, 2 * mu + 5, np.inf])
        assert np.array_equal(poisson_cdf(k, mu), poisson.cdf(k, mu)), mu
