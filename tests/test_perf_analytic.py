"""Analytic backend: operator counts by hand, KV sizes, monotonicity, decode linearity, memory fit, cap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitplan.catalog import default_catalog
from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model, make_instance
from splitplan.perf import counts
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.base import Instance
from splitplan.perf.memory import kv_bytes_per_token, kv_capacity_tokens
from splitplan.perf.params import StackParams

CAT = default_catalog()
SPEC = PerfSettings(calibration_paths=("none",))


def inst(model="llama2-70b", machine="dgx-h100", tp=8, dtype="bf16") -> Instance:
    return make_instance(model, machine, tp, dtype, CAT)


def spec_model(model="llama2-70b", machine="dgx-h100", tp=8) -> AnalyticPerfModel:
    return AnalyticPerfModel(inst(model, machine, tp), StackParams(), "spec defaults (uncalibrated)")


# ---------------------------------------------------------------------------------- counts by hand

def test_llama2_70b_layer_weights_and_gemm_flops_by_hand():
    # attention: 8192 * (64 + 2*8) * 128 + 64*128*8192 = 150,994,944; MLP: 3 * 8192 * 28672 = 704,643,072
    per_layer = 150_994_944 + 704_643_072
    assert CAT.model("llama2-70b").params_per_layer == per_layer
    for tp in (1, 2, 4, 8):
        gemms = counts.layer_gemms(inst(tp=tp))
        assert sum(g.flops(1) for g in gemms) == pytest.approx(2 * per_layer / tp)
        # weight bytes (16-bit) of one layer on one GPU at M=0
        assert sum(g.bytes(0, 2.0) for g in gemms) == pytest.approx(2 * per_layer / tp)


def test_llama2_70b_attention_counts_by_hand():
    i8 = inst(tp=8)
    # prefill: 2 * s^2 * H * hd / t = 2 * 2048^2 * 64 * 128 / 8 per layer per sequence (causal half included)
    assert counts.prefill_attention_flops(i8, 2048**2) == 2 * 2048**2 * 64 * 128 / 8
    # decode KV read: 2 (K and V) * c * Hkv/t * hd * 2 bytes = 2 * 1000 * 1 * 128 * 2
    assert counts.decode_attention_bytes(i8, 1000) == 512_000
    assert counts.decode_attention_flops(i8, 1000) == 4 * 1000 * 64 * 128 / 8
    # LM head in prefill: only the last token of each of 3 prompts
    head = counts.lm_head(i8)
    assert head.flops(3) == 2 * 3 * 8192 * 32000 / 8


def test_kv_heads_are_replicated_beyond_kv_heads():
    i16 = Instance(CAT.model("llama2-70b"), CAT.machine("dgx-h100"), CAT.gpu("h100-80gb"), 16)
    assert counts.decode_attention_bytes(i16, 1000) == counts.decode_attention_bytes(inst(tp=8), 1000)


def test_kv_bytes_per_token():
    assert kv_bytes_per_token(inst(tp=8)) == 2 * 80 * 8 * 128 * 2 == 327_680  # 320 KiB, GQA
    assert kv_bytes_per_token(inst("llama2-7b", tp=1)) == 2 * 32 * 32 * 128 * 2  # 512 KiB, MHA
    assert kv_bytes_per_token(inst("llama3-8b", tp=1)) == 128 * 1024
    assert build_perf_model("llama2-70b", "dgx-h100", 8, SPEC).kv_bytes_per_token() == 327_680


# ------------------------------------------------------------------------------------- behaviour

@pytest.mark.parametrize("settings", [SPEC, PerfSettings()], ids=["spec", "calibrated"])
@pytest.mark.parametrize("machine,tp", [("dgx-a100", 4), ("dgx-h100", 8), ("dgx-h100", 2)])
def test_times_grow_with_batch_and_length(settings, machine, tp):
    perf = build_perf_model("llama2-70b", machine, tp, settings)
    lengths = np.array([64, 128, 256, 512, 1024, 2048, 4096, 8192], float)
    prefill = perf.prefill_ms(np.ones_like(lengths), lengths, lengths**2)
    assert np.all(np.diff(prefill) > 0)
    batches = np.arange(1, 129, dtype=float)
    decode = perf.decode_ms(batches, batches * 1000)
    assert np.all(np.diff(decode) > 0)
    contexts = np.linspace(0, 200_000, 50)
    assert np.all(np.diff(perf.decode_ms(np.full(50, 32.0), contexts)) > 0)


@pytest.mark.parametrize("settings", [SPEC, PerfSettings()], ids=["spec", "calibrated"])
def test_decode_coeffs_are_exact(settings):
    perf = build_perf_model("llama2-70b", "dgx-a100", 8, settings)
    for b in (1, 3, 16, 64, 200):
        base, per = perf.decode_coeffs(b)
        for s in (0.0, 1234.0, 98765.0):
            assert perf.decode_ms(b, s) == pytest.approx(base + per * s, rel=1e-12)


def test_scalar_and_vector_paths_agree():
    perf = build_perf_model("llama2-70b", "dgx-h100", 4)
    n, t = np.array([1.0, 4.0, 16.0]), np.array([500.0, 4000.0, 20000.0])
    t2 = t * t / n
    vec = perf.prefill_ms(n, t, t2)
    assert [perf.prefill_ms(*a) for a in zip(n, t, t2)] == pytest.approx(list(vec), rel=1e-12)
    vec = perf.mixed_ms(n, t, t2, n * 4, n * 4000)
    assert [perf.mixed_ms(a, b, c, a * 4, a * 4000) for a, b, c in zip(n, t, t2)] == pytest.approx(list(vec), rel=1e-12)
    assert isinstance(perf.decode_ms(8, 8000), float)


def test_mixed_costs_more_than_its_prefill_and_shares_gemms():
    perf = spec_model()
    prefill = perf.prefill_ms(1, 1024, 1024**2)
    decode = perf.decode_ms(32, 32 * 1000)
    mixed = perf.mixed_ms(1, 1024, 1024**2, 32, 32 * 1000)
    assert prefill < mixed < prefill + decode  # weights read once for both


def test_fp8_is_faster_than_bf16_for_prefill_and_decode():
    from dataclasses import replace

    model = CAT.model("llama2-70b")
    fp8_model = replace(model, name="llama2-70b-fp8", dtype_bytes=1.0)
    machine = CAT.machine("dgx-h100")
    bf16 = AnalyticPerfModel(Instance(model, machine, CAT.gpu("h100-80gb"), 4, "bf16"), StackParams(), "spec")
    fp8 = AnalyticPerfModel(Instance(fp8_model, machine, CAT.gpu("h100-80gb"), 4, "fp8"), StackParams(), "spec")
    assert fp8.prefill_ms(1, 4096, 4096**2) < 0.8 * bf16.prefill_ms(1, 4096, 4096**2)
    assert fp8.decode_ms(1, 1000) < 0.8 * bf16.decode_ms(1, 1000)


def test_spec_defaults_match_a_trtllm_ttft_row_and_say_so():
    # TensorRT-LLM v0.9 batch-1 TTFT, Llama-2-70B FP16 on A100 TP4, 128 tokens: 45.6 ms (perf-model §3.4)
    perf = build_perf_model("llama2-70b", "dgx-a100", 4, SPEC)
    assert perf.provenance == "spec defaults (uncalibrated)"
    assert perf.prefill_ms(1, 128, 128**2) == pytest.approx(45.6, rel=0.15)


def test_calibrated_default_reproduces_measured_rows():
    perf = build_perf_model("llama2-70b", "dgx-h100", 8)
    assert perf.provenance.startswith("calibrated: vllm-2023")
    # SplitwiseSim profile medians: prompt 2048 at TP8 137 ms, decode batch 1 at ~30 ms
    assert perf.prefill_ms(1, 2048, 2048**2) == pytest.approx(136.8, rel=0.08)
    assert perf.decode_ms(1, 1 * (512 + 64)) == pytest.approx(29.8, rel=0.08)
    other = build_perf_model("llama2-70b", "dgx-h200", 8)
    assert other.provenance == "spec defaults (uncalibrated)"


# ------------------------------------------------------------------------------------ memory fit

def test_memory_fit_error_names_model_machine_tp_and_sizes():
    with pytest.raises(SplitplanError) as info:
        build_perf_model("llama2-70b", "dgx-a100", 1)
    message = str(info.value)
    assert message.startswith("llama2-70b does not fit dgx-a100 at tp=1: needs 138.0 GB of weights, has 80.0 GB")
    assert "\n" not in message


def test_kv_capacity_is_what_is_left_after_weights_and_reserve():
    i2 = inst("llama2-70b", "dgx-a100", 2)
    cap = kv_capacity_tokens(i2)
    free_bytes = cap * kv_bytes_per_token(i2) / 2  # per GPU
    assert 0 < free_bytes < 80e9 - 138e9 / 2
    assert kv_capacity_tokens(inst("llama2-70b", "dgx-a100", 8)) > 4 * cap  # more GPUs: more room per token
    assert build_perf_model("llama2-70b", "dgx-a100", 2, SPEC).kv_capacity_tokens() == cap


def test_bad_tp_and_unknown_names_are_one_line_errors():
    for args in (("llama2-70b", "dgx-h100", 3), ("llama2-70b", "dgx-h100", 16)):
        with pytest.raises(SplitplanError, match="tp="):
            build_perf_model(*args)
    with pytest.raises(SplitplanError, match="unknown model 'llama9'"):
        build_perf_model("llama9", "dgx-h100")
    with pytest.raises(SplitplanError, match="unknown machine"):
        build_perf_model("llama2-70b", "dgx-z100")
    with pytest.raises(SplitplanError, match="backend"):
        build_perf_model("llama2-70b", "dgx-h100", 8, PerfSettings(backend="magic"))


def test_models_are_cached():
    assert build_perf_model("llama2-70b", "dgx-h100", 8) is build_perf_model("llama2-70b", "dgx-h100", 8)
    assert build_perf_model("llama2-70b", "dgx-h100", 8) is not build_perf_model("llama2-70b", "dgx-h100", 4)


# -------------------------------------------------------------------------------------- power cap

@pytest.mark.parametrize("prompt", [1024, 2048, 4096])
def test_power_cap_slows_prompts_about_1_3x_and_tokens_barely(prompt):
    free = build_perf_model("llama2-70b", "dgx-h100", 8)
    capped = build_perf_model("llama2-70b", "dgx-h100-pcap", 8)
    ratio = capped.prefill_ms(1, prompt, prompt**2) / free.prefill_ms(1, prompt, prompt**2)
    assert 1.2 <= ratio <= 1.4
    for batch in (1, 16, 64):
        ratio = capped.decode_ms(batch, batch * 1500) / free.decode_ms(batch, batch * 1500)
        assert 1.0 <= ratio <= 1.03


def test_uncapped_machine_has_no_stretch():
    assert spec_model().compute_stretch == 1.0
    assert math.isclose(AnalyticPerfModel(inst(machine="dgx-h100-pcap"), StackParams(cap_exponent=0.5), "x").compute_stretch,
                        ((700 - 75) / (350 - 75)) ** 0.5)


def test_long_decode_arrays_match_the_scalar_path():
    perf = build_perf_model("llama2-70b", "dgx-h100", 8)
    rng = np.random.default_rng(1)
    batch = rng.integers(1, 300, 6000).astype(float)  # long and whole: goes through the lookup table
    context = batch * rng.integers(10, 9000, 6000)
    fast = perf.decode_ms(batch, context)
    assert [perf.decode_ms(b, c) for b, c in zip(batch[:50], context[:50])] == pytest.approx(list(fast[:50]), rel=1e-12)
    fractional = batch + 0.5  # not whole: evaluated directly
    assert perf.decode_ms(fractional, context)[:3] == pytest.approx([perf.decode_ms(b, c) for b, c in zip(fractional[:3], context[:3])])
