"""Serving stacks: bundled files, scheduling rules per GPU, versions, provenance, extrapolation."""

import pytest
import yaml

from splitplan.catalog import default_catalog
from splitplan.errors import SplitplanError
from splitplan.perf import build_perf_model
from splitplan.perf.base import PerfSettings
from splitplan.serving.kernels import arch_kernels
from splitplan.serving.params import SPECS
from splitplan.serving.stack import (BatchPolicy, bundled_stacks, closest_stack, get_stack, load_stacks, parse_stack,
                                     version_key)


def test_bundled_stacks_load_and_the_engines_are_calibrated_on_hopper():
    stacks = bundled_stacks()
    assert {"vllm-2023", "vllm", "sglang", "trtllm", "spec"} <= set(stacks)
    for name in ("vllm", "sglang", "trtllm", "vllm-2023"):
        assert stacks[name].calibrated and "hopper" in stacks[name].fitted.archs, name
    assert not stacks["spec"].calibrated
    assert stacks["sglang"].scheduling.policy is BatchPolicy.PREFILL_FIRST
    assert stacks["trtllm"].scheduling.policy is BatchPolicy.INFLIGHT
    assert stacks["vllm"].scheduling.policy is BatchPolicy.CHUNKED


def test_scheduling_rules_follow_the_gpu():
    cat = default_catalog()
    vllm, sglang = get_stack("vllm"), get_stack("sglang")
    assert vllm.scheduling_for(cat.gpu("h100-80gb")).max_batched_tokens == 8192
    assert vllm.scheduling_for(cat.gpu("a100-80gb")).max_batched_tokens == 2048  # vLLM's A100 default
    assert sglang.scheduling_for(cat.gpu("h200")).max_batched_tokens == 8192
    assert sglang.scheduling_for(cat.gpu("b200")).max_batched_tokens == 16384  # chunked_prefill_size on B200


def test_versions_pick_the_closest_stack():
    assert version_key("0.5.1.post1") > version_key("0.5.1") > version_key("0.5.1rc3")
    assert closest_stack("vllm", "0.12.0")[0].name == "vllm"
    assert closest_stack("vllm", "0.2.1")[0].name == "vllm-2023"
    stack, note = closest_stack("trtllm", "0.9.0")
    assert stack.name == "trtllm" and "0.9.0 is older" in note
    # a version newer than every stack is the newest stack's, not the nearest by digits (1.0 vs 0.2 / 0.18)
    stack, note = closest_stack("vllm", "1.0.0")
    assert stack.name == "vllm" and "1.0.0 is newer" in note
    assert closest_stack("vllm", "0.6.0")[0].name == "vllm"  # as far from 0.2 as from 0.10: the newer stack
    for spelled in ("TensorRT-LLM", "tensorrt_llm", "trt", "TRTLLM"):  # how tables and InferenceX name it
        assert closest_stack(spelled, "1.1.0")[0].name == "trtllm"
    with pytest.raises(SplitplanError, match="no stack for engine 'tgi'"):
        closest_stack("tgi", "2.0")


def test_provenance_says_calibrated_or_extrapolated():
    h100 = build_perf_model("llama3.1-70b", "dgx-h100", 8, PerfSettings(stack="vllm"))
    b200 = build_perf_model("llama3.1-70b", "hgx-b200", 8, PerfSettings(stack="vllm"))
    assert "calibrated on hopper" in h100.provenance
    assert "extrapolated to blackwell" in b200.provenance


def test_host_costs_carry_to_other_architectures_and_kernel_factors_scale():
    stack = get_stack("vllm")
    cat = default_catalog()
    hopper, _ = stack.params_for(cat.gpu("h100-80gb"))
    blackwell, _ = stack.params_for(cat.gpu("b200"))
    assert blackwell.seq_us == hopper.seq_us and blackwell.api_ms == hopper.api_ms  # CPU work is not the GPU's
    fitted = stack.arch_params["hopper"]["eta_c_bf16"]
    ratio = fitted / arch_kernels("hopper")[0].eta_c_bf16
    assert blackwell.eta_c_bf16 == pytest.approx(min(arch_kernels("blackwell")[0].eta_c_bf16 * ratio, 1.0))


def test_the_same_stack_bounds_h200_against_h100_by_the_hardware():
    """Issue: an H200 came out 4.1x an H100 on decode (different fits per GPU). One stack, one chip:
    the ratio is at most the HBM bandwidth ratio, and at least 1."""
    for stack in ("vllm", "sglang", "trtllm", "vllm-2023", "spec"):
        settings = PerfSettings(stack=stack)
        h100 = build_perf_model("llama3.1-70b", "dgx-h100", 8, settings).decode_ms(128, 128 * 2048)
        h200 = build_perf_model("llama3.1-70b", "dgx-h200", 8, settings).decode_ms(128, 128 * 2048)
        assert 1.0 <= h100 / h200 <= 4800 / 3350, stack


def test_stack_files_are_validated_in_one_line(tmp_path):
    good = yaml.safe_load(open(get_stack("vllm").source))
    bad = dict(good, params={"seq_us": -3})
    with pytest.raises(SplitplanError, match="outside its physical range"):
        parse_stack(bad, "x.yaml")
    with pytest.raises(SplitplanError, match="unknown parameter 'eta_x'"):
        parse_stack(dict(good, params={"eta_x": 0.5}), "x.yaml")
    with pytest.raises(SplitplanError, match="scheduling.policy"):
        parse_stack(dict(good, scheduling={"policy": "magic"}), "x.yaml")
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump({"stacks": [good, dict(good, name="vllm-copy")]}))
    assert set(load_stacks(path)) == {"vllm", "vllm-copy"}
    with pytest.raises(SplitplanError, match="holds 2 stacks"):
        get_stack(str(path))
    with pytest.raises(SplitplanError, match="unknown stack 'vlm'"):
        get_stack("vlm")


def test_every_parameter_has_bounds_that_hold_its_default():
    for name, spec in SPECS.items():
        assert spec.lo <= spec.default <= spec.hi, name
        assert spec.unit and spec.meaning, name
