"""Fitting stacks on serving benchmarks: the fit finds known host costs back from synthetic
measurements, and the cross-validation never trains on the group it predicts."""

from dataclasses import replace
from pathlib import Path

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


def simulated_row(model: str, tp: int, isl: int, osl: int, clients: int, index: int, groups: dict) -> FitRow:
    """One simulated vLLM benchmark on a DGX-H100 as a fit row (measured values 1.0: tests set their own)."""
    cfg = BenchmarkConfig(model, "dgx-h100", isl, osl, clients, stack="vllm", quant=Quant(), tp=tp,
                          protocol=Protocol(num_prompts=4 * clients, range_ratio=0.8, warmup=0))
    eng = run_benchmark(cfg, CAT, record_segments=True)["_engine"]
    _, output = request_sizes(cfg)
    perf = eng.insts[0].perf
    features = row_features(eng, output, measured_mask(len(output), 0))
    return FitRow(index, perf.instance, perf.scheduling, features, 1.0, 1.0, groups)


@pytest.fixture(scope="module")
def rows():
    """Twelve simulated benchmarks (two TPs, two shapes, three concurrencies) with their features."""
    out = []
    for tp in (2, 4):
        for isl, osl in ((1024, 256), (4096, 128)):
            for c in (4, 16, 64):
                out.append(simulated_row("qwen3-32b", tp, isl, osl, c, len(out),
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


def test_cv_folds_on_workers_give_the_serial_answer(rows):
    kernels = arch_kernels("hopper")[0]
    data = synthetic(rows, replace(kernels, seq_us=30.0))
    serial = grouped_cv(data, "tp", kernels, ("seq_us", "api_ms"), prior=kernels, workers=1)
    forked = grouped_cv(data, "tp", kernels, ("seq_us", "api_ms"), prior=kernels, workers=2)
    for a, b in zip(serial, forked):
        assert np.array_equal(a, b) and np.isfinite(a).all()


def test_moe_parameters_are_fitted_only_where_rows_exercise_them(rows):
    from splitplan.perf import make_instance

    assert serving_fit.fit_params_for(rows) == serving_fit.FIT_PARAMS  # dense rows: no grouped-GEMM parameter
    gpt_oss = make_instance("gpt-oss-120b", "dgx-h100", 2, Quant.parse("bf16", "mxfp4"), CAT)
    minimax = make_instance("minimax-m2.5", "dgx-h100", 4, Quant.parse("fp8"), CAT, ep=4)
    moe_rows = [replace(rows[0], instance=gpt_oss), replace(rows[1], instance=minimax)]
    extra = serving_fit.fit_params_for(moe_rows)[len(serving_fit.FIT_PARAMS):]
    # MXFP4 experts on Hopper run weight-only; MiniMax's FP8 experts on FP8 tensor cores; nobody runs BF16
    # experts; any MoE row sees the routers' skew
    assert extra == ("moe_eta_c_fp8", "moe_eta_c_wo", "moe_eta_m", "moe_t0_us", "moe_routing_cv")


def test_rows_no_closed_loop_can_produce_are_flagged():
    import pandas as pd

    from splitplan.apps.benchmark_rows import read_rows
    from splitplan.apps.calibrate_serving import failed_rows

    base = {"model": "m", "engine": "vllm", "weights": "fp8", "moe_weights": "fp8", "tp": "2", "ep": "1",
            "attention_dp": "1", "isl": "1024", "osl": "1024", "mode": "agg"}
    # at 512 clients a decode step 2.6x faster than at 64: flagged; 1024 clients back at the 64-client TPOT: kept
    tpot = {"4": 5.0, "32": 11.0, "64": 14.8, "512": 5.6, "1024": 14.0}
    frame = pd.DataFrame([{**base, "concurrency": c, "tpot_ms": str(t)} for c, t in tpot.items()])
    assert failed_rows(frame).tolist() == [False, False, False, True, False]
    disagg = frame.assign(mode="disagg")
    assert not failed_rows(disagg).any()  # only aggregated rows are judged
    shipped = read_rows(Path(__file__).resolve().parent.parent / "profiles/measured/serving/h100.csv")
    flagged = shipped[failed_rows(shipped)]
    assert len(flagged) == 6 and set(flagged["model"]) == {"openai/gpt-oss-120b"}
    assert set(flagged["concurrency"]) == {"512"}


@pytest.fixture(scope="module")
def moe_rows():
    """Four simulated Qwen3-30B-A3B benchmarks (BF16 experts, TP2) with their features."""
    out = []
    for isl, osl in ((1024, 256), (4096, 128)):
        for c in (4, 32):
            out.append(simulated_row("qwen3-30b-a3b", 2, isl, osl, c, 100 + len(out),
                                     {"config": f"moe|{isl}/{osl}", "tp": "2", "isl_osl": f"{isl}/{osl}"}))
    return out


def test_moe_rows_do_not_move_the_dense_parameters_of_a_staged_fit(rows, moe_rows):
    kernels = arch_kernels("hopper")[0]
    truth = replace(kernels, seq_us=30.0, api_ms=25.0, moe_eta_m=0.5)
    dense_data = synthetic(rows, truth)
    # MoE rows measured 30% slower in decode than the dense truth says: a joint fit bends the shared parameters
    for row, t, p in zip(moe_rows, *FitData(moe_rows).predict(lambda _i: truth)):
        row.ttft_ms, row.tpot_ms = float(t), 1.3 * float(p)
    both = FitData(rows + moe_rows)
    alone = fit(dense_data, kernels, serving_fit.FIT_PARAMS, prior=kernels)
    staged = fit(both, kernels, prior=kernels)
    joint = fit(both, kernels, prior=kernels, staged=False)
    assert {k: staged.values[k] for k in serving_fit.FIT_PARAMS} == alone.values
    assert set(staged.values) == set(joint.values) == set(serving_fit.fit_params_for(both.rows))
    assert any(joint.values[k] != pytest.approx(alone.values[k], rel=0.01) for k in serving_fit.FIT_PARAMS)


def test_a_staged_fit_streams_experts_no_faster_than_dense_weights(rows, moe_rows, monkeypatch):
    """Rows made with moe_eta_m 0.97 (above the dense eta_m 0.85), and a prior that says 0.97 too: the
    staged fit stops at the dense value and says so; without the bound it follows the rows."""
    kernels = arch_kernels("hopper")[0]
    truth = replace(kernels, moe_eta_m=0.97)
    data = synthetic(rows + moe_rows, truth)
    capped = fit(data, kernels, prior=truth)
    assert capped.values["moe_eta_m"] == pytest.approx(capped.values["eta_m"], rel=1e-4)
    assert capped.values["eta_m"] < 0.9
    assert "moe_eta_m" in capped.at_bound
    monkeypatch.setattr(serving_fit, "CAP_MOE_ETA_M", False)
    free = fit(data, kernels, prior=truth)
    assert free.values["moe_eta_m"] > capped.values["eta_m"] + 0.03 and "moe_eta_m" not in free.at_bound


@pytest.mark.parametrize("cv", [0.0, 1.2])
def test_a_staged_fit_finds_the_routers_skew_back(rows, moe_rows, cv):
    """MoE rows made under routing skew cv (0: uniform): the staged fit, started at FIT_START, recovers it
    from how the expert weights read grow with the batch (4 and 32 clients)."""
    kernels = arch_kernels("hopper")[0]
    data = synthetic(rows + moe_rows, replace(kernels, moe_routing_cv=cv))
    result = fit(data, kernels, prior=kernels)
    assert "moe_routing_cv" in result.values
    assert result.values["moe_routing_cv"] == pytest.approx(cv, abs=0.25)
