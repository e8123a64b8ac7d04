"""Quantization formats: bytes per element (scales included), compute dtype per GPU, parsing."""

import pytest

from splitplan.catalog import default_catalog
from splitplan.errors import SplitplanError
from splitplan.perf import build_perf_model
from splitplan.perf.base import PerfSettings
from splitplan.perf.memory import kv_bytes_per_token, weight_bytes_per_gpu
from splitplan.serving.quant import (KV_BYTES, WEIGHT_BYTES, ComputeDtype, KvFormat, Quant, WeightFormat,
                                     compute_dtype, weight_format)


def test_bytes_per_element_by_hand():
    assert WEIGHT_BYTES[WeightFormat.BF16] == 2.0
    assert WEIGHT_BYTES[WeightFormat.FP8] == 1.0
    assert WEIGHT_BYTES[WeightFormat.FP8_BLOCK] == pytest.approx(1.0 + 4 / 16384)  # fp32 scale per 128x128
    assert WEIGHT_BYTES[WeightFormat.MXFP4] == pytest.approx(0.53125)  # e8m0 scale per 32
    assert WEIGHT_BYTES[WeightFormat.NVFP4] == pytest.approx(0.5625)  # fp8 scale per 16
    assert KV_BYTES[KvFormat.FP8] == 1.0 and KV_BYTES[KvFormat.BF16] == 2.0


@pytest.mark.parametrize("gpu, fmt, expected", [
    ("a100-80gb", "fp8", (ComputeDtype.BF16, True)),  # no FP8 units: weight-only
    ("h100-80gb", "fp8", (ComputeDtype.FP8, False)),
    ("h100-80gb", "nvfp4", (ComputeDtype.BF16, True)),  # FP4 units are Blackwell's
    ("b200", "nvfp4", (ComputeDtype.FP4, False)),
    ("b200", "int4_wo", (ComputeDtype.BF16, True)),
    ("h100-80gb", "bf16", (ComputeDtype.BF16, False)),
])
def test_compute_dtype_follows_the_tensor_cores(gpu, fmt, expected):
    g = default_catalog().gpu(gpu)
    assert compute_dtype(weight_format(fmt), g.supports) == expected


def test_fp8_weights_halve_weight_memory_and_fp8_kv_doubles_capacity():
    base = build_perf_model("llama3.1-70b", "dgx-h100", 4, PerfSettings(stack="vllm", quant=Quant()))
    fp8 = build_perf_model("llama3.1-70b", "dgx-h100", 4, PerfSettings(stack="vllm", quant=Quant.parse("fp8")))
    kv8 = build_perf_model("llama3.1-70b", "dgx-h100", 4, PerfSettings(stack="vllm", quant=Quant.parse("fp8", kv="fp8")))
    # layers halve; the 16-bit embedding and LM head stay
    head = 2 * 128256 * 8192 * 2 / 4
    assert weight_bytes_per_gpu(fp8.instance) - head == pytest.approx((weight_bytes_per_gpu(base.instance) - head) / 2)
    assert kv_bytes_per_token(kv8.instance) == kv_bytes_per_token(fp8.instance) / 2
    assert kv8.kv_capacity_tokens() == pytest.approx(2 * fp8.kv_capacity_tokens(), rel=1e-6)
    assert fp8.kv_capacity_tokens() > base.kv_capacity_tokens()


def test_fp8_makes_memory_bound_decode_faster_but_not_twice():
    bf16 = build_perf_model("llama3.1-70b", "dgx-h100", 4, PerfSettings(stack="vllm", quant=Quant()))
    fp8 = build_perf_model("llama3.1-70b", "dgx-h100", 4, PerfSettings(stack="vllm", quant=Quant.parse("fp8")))
    ratio = bf16.decode_ms(8, 8 * 1024) / fp8.decode_ms(8, 8 * 1024)
    assert 1.2 < ratio < 2.0  # weight bytes halve; host costs and floors do not


def test_unknown_formats_are_one_line_errors():
    with pytest.raises(SplitplanError, match="unknown weight format 'fp7'"):
        Quant.parse("fp7")
    with pytest.raises(SplitplanError, match="unknown KV-cache format"):
        Quant.parse(kv="int2")
    assert Quant.parse("FP16").weights is WeightFormat.BF16 and Quant.parse("awq").weights is WeightFormat.INT4_WO


def test_format_names_as_tables_spell_them():
    from splitplan.serving.quant import kv_format, weight_format

    for spelled, fmt in (("FP8-Block", "fp8_block"), ("fp8block", "fp8_block"), ("float16", "bf16"),
                         ("fp8_e4m3fn", "fp8"), ("NVFP4", "nvfp4"), ("AWQ", "int4_wo")):
        assert weight_format(spelled).value == fmt
    assert kv_format("FP8_E4M3").value == "fp8" and kv_format("auto").value == "bf16"
