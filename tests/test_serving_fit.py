"""Fitting stacks on serving benchmarks: the fit finds known host costs back from synthetic
measurements, and the cross-validation never trains on the group it predicts."""

from dataclasses import replace

import numpy as np
import pytest

from splitplan.apps import serving_fit
from splitplan.apps.benchmark import BenchmarkConfig, Protocol, measured_mask, request_sizes, run_benchmark
from splitplan.apps.serving_features import row_features
from splitplan.apps.serving_fit import FitData, FitRow, fit, grouped_cv
from splitplan.catalog import default_catalog
from splitplan.serving.kernels import arch_kernels
from splitplan.serving.quant import Quant

CAT = default_catalog()


@pytest.fixture(scope="module")
def rows():
    """Twelve simulated benchmarks (two TPs, two shapes, three concurrencies) with their features."""
    out = []
    for tp in (2, 4):
        for isl, osl in ((1024, 256), (4096, 128)):
            for c in (4, 16, 64):
                cfg = BenchmarkConfig("qwen3-32b", "dgx-h100", isl, osl, c, stack="vllm", quant=Quant(), tp=tp,
                                      protocol=Protocol(num_prompts=4 * c, range_ratio=0.8, warmup=0))
                r = run_benchmark(cfg, CAT, record_segments=True)
                eng = r["_engine"]
                _, output = request_sizes(cfg)
                perf = eng.insts[0].perf
                f = row_features(eng, output, measured_mask(len(output), 0))
                out.append(FitRow(len(out), perf.instance, perf.scheduling, f, 1.0, 1.0,
                                  {"config": f"tp{tp}|{isl}/{osl}", "tp": str(tp), "isl_osl": f"{isl}/{osl}"}))
    return out


def synthetic(rows, truth):
    data = FitData(rows)
    ttft, tpot = data.predict(lambda _i: truth)
    for row, t, p in zip(rows, ttft, tpot):
        row.ttft_ms, row.tpot_ms = float(t), float(p)
    return FitData(rows)


def test_fit_finds_known_host_costs_back(rows):
    kernels = arch_kernels("hopper")[0]
    truth = replace(kernels, seq_us=40.0, api_ms=25.0, step_ms=1.0)
    data = synthetic(rows, truth)
    result = fit(data, kernels, ("seq_us", "api_ms", "step_ms"), prior=kernels)
    assert result.values["seq_us"] == pytest.approx(40.0, rel=0.05)
    assert result.values["api_ms"] == pytest.approx(25.0, rel=0.05)
    assert result.values["step_ms"] == pytest.approx(1.0, rel=0.10)


def test_cross_validation_never_trains_on_the_group_it_predicts(rows, monkeypatch):
    kernels = arch_kernels("hopper")[0]
    data = synthetic(rows, replace(kernels, seq_us=30.0))
    seen = []
    real_fit = serving_fit.fit

    def spy(train, *args, **kwargs):
        seen.append({r.groups["config"] for r in train.rows})
        return real_fit(train, *args, **kwargs)

    monkeypatch.setattr(serving_fit, "fit", spy)
    ttft, tpot = grouped_cv(data, "config", kernels, ("seq_us",), prior=kernels)
    labels = sorted({r.groups["config"] for r in rows})
    assert len(seen) == len(labels)
    for label, train in zip(labels, seen):
        assert label not in train and len(train) == len(labels) - 1
    assert np.isfinite(ttft).all() and np.isfinite(tpot).all()
