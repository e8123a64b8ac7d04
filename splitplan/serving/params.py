"""The parameters a serving stack achieves on hardware: each has a physical meaning, a unit and bounds.

The analytic model separates what a datasheet gives (peak FLOP/s per dtype, HBM bandwidth, NVLink)
from what software achieves on it. The second part is this table: kernel efficiencies as fractions of
the datasheet peaks (so they carry from one GPU to another of the same architecture), kernel floors
in microseconds, collective latency, and host-side costs in milliseconds that do not scale with the
GPU at all (a faster GPU does not make the scheduler's Python faster). Calibration moves a few of
them inside their bounds; a fitted value at a bound is reported as such, since it means the data
wanted something the physics does not allow.

Defaults are the literature values of shared/reference/performance-model.md §3 and §7.1 (a tuned
stack with CUDA graphs); measured architecture kernels (profiles/kernels.yaml) and stacks
(profiles/stacks/*.yaml) override them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from splitplan.errors import SplitplanError, nearest_names


@dataclass(frozen=True)
class ParamSpec:
    default: float
    lo: float
    hi: float
    unit: str
    meaning: str


SPECS: dict[str, ParamSpec] = {
    # GEMMs: t = t0 + (tc^n + tm^n)^(1/n), tc = FLOPs / (eta_c(M) peak), tm = bytes / (eta_m BW)
    "eta_c_bf16": ParamSpec(0.74, 0.2, 1.0, "of dense BF16 peak", "large-M GEMM efficiency, BF16 tensor cores"),
    "eta_c_fp8": ParamSpec(0.60, 0.2, 1.0, "of dense FP8 peak", "large-M GEMM efficiency, FP8 tensor cores"),
    "eta_c_fp4": ParamSpec(0.50, 0.1, 1.0, "of dense FP4 peak", "large-M GEMM efficiency, FP4 tensor cores"),
    "eta_c_wo": ParamSpec(0.55, 0.1, 1.0, "of dense BF16 peak", "large-M efficiency of weight-only (dequantizing) GEMMs"),
    "gemm_m_half": ParamSpec(0.0, 0.0, 4096.0, "tokens", "M at which GEMM compute efficiency is half its large-M value"),
    "eta_m": ParamSpec(0.88, 0.3, 1.0, "of HBM bandwidth", "weight and activation streaming efficiency"),
    "gemm_t0_us": ParamSpec(5.0, 0.0, 50.0, "us per GEMM", "kernel floor (launch, prologue, tail)"),
    "smooth_n": ParamSpec(1.3, 1.0, 10.0, "exponent", "sharpness of the compute/memory roofline corner"),
    # attention
    "eta_fa": ParamSpec(0.50, 0.05, 1.0, "of dense BF16 peak", "prefill attention efficiency on causal FLOPs, long sequences"),
    "fa_s_half": ParamSpec(0.0, 0.0, 16384.0, "tokens", "sequence length at which prefill attention efficiency is half"),
    "attn_t0_us": ParamSpec(5.0, 0.0, 100.0, "us per kernel", "attention kernel floor, per layer and phase"),
    "eta_kv": ParamSpec(0.85, 0.1, 1.0, "of HBM bandwidth", "decode attention KV-read efficiency, 16-bit KV cache"),
    "eta_kv_fp8": ParamSpec(0.70, 0.1, 1.0, "of HBM bandwidth", "decode attention KV-read efficiency, FP8 KV cache"),
    # MLA decode (absorbed weights): per context token, max(FLOPs / (eta_mla BF16 peak), latent bytes / (eta_kv BW))
    "eta_mla": ParamSpec(0.60, 0.1, 1.0, "of dense BF16 peak",
                         "MLA absorbed decode attention compute efficiency (FlashMLA: 580-660 of 989 TFLOP/s on H800)"),
    # mixture of experts: grouped GEMMs over the routed tokens, same smooth roofline with their own constants
    "moe_eta_c_bf16": ParamSpec(0.725, 0.1, 1.0, "of dense BF16 peak", "large-M grouped expert GEMM efficiency, BF16"),
    "moe_eta_c_fp8": ParamSpec(0.542, 0.1, 1.0, "of dense FP8 peak", "large-M grouped expert GEMM efficiency, FP8"),
    "moe_eta_c_fp4": ParamSpec(0.45, 0.05, 1.0, "of dense FP4 peak", "large-M grouped expert GEMM efficiency, FP4"),
    "moe_eta_c_wo": ParamSpec(0.50, 0.05, 1.0, "of dense BF16 peak",
                              "large-M efficiency of weight-only (dequantizing) grouped expert GEMMs"),
    "moe_eta_m": ParamSpec(0.619, 0.1, 1.0, "of HBM bandwidth", "grouped expert GEMM streaming efficiency (touched experts)"),
    "moe_t0_us": ParamSpec(13.0, 0.0, 100.0, "us per grouped GEMM", "grouped expert GEMM floor (routing metadata, tails)"),
    "moe_smooth_n": ParamSpec(1.79, 1.0, 10.0, "exponent", "sharpness of the grouped GEMM compute/memory corner"),
    "moe_imbalance": ParamSpec(1.0, 1.0, 4.0, "busiest / mean",
                               "floor of the routed-token load of the busiest expert-parallel GPU over the mean "
                               "(1: what uniform random routing gives)"),
    # 4: routing every token to the same k experts gives sqrt(E/k - 1) = 3.9 for top-8 of 128 (5.6 for top-4)
    "moe_routing_cv": ParamSpec(0.0, 0.0, 4.0, "coefficient of variation",
                                "spread of the experts' shares of a step's routed tokens (0: uniform random routing; "
                                "a skewed router touches fewer experts per step and loads expert-parallel groups "
                                "unequally)"),
    "moe_kernels": ParamSpec(4.0, 0.0, 32.0, "per MoE layer",
                             "small kernels of an MoE layer besides its GEMMs (top-k, permute, unpermute, activation)"),
    "a2a_alpha_us": ParamSpec(15.0, 1.0, 500.0, "us", "latency of one MoE all-to-all (dispatch or combine)"),
    "a2a_bw_fraction": ParamSpec(0.35, 0.02, 1.0, "of bidirectional NVLink",
                                 "all-to-all bandwidth for the per-GPU payload (attention data parallelism)"),
    # other kernels
    "elem_kernels": ParamSpec(8.0, 0.0, 64.0, "per layer", "elementwise kernels (norms, rotary, residual, activation)"),
    "elem_t0_us": ParamSpec(2.0, 0.0, 20.0, "us per kernel", "elementwise kernel floor"),
    # tensor-parallel all-reduce: 2 per layer, alpha + ring bytes / bus bandwidth
    "ar_alpha_us": ParamSpec(8.0, 1.0, 200.0, "us", "latency of one all-reduce at tp=2"),
    "ar_alpha_log2_us": ParamSpec(2.0, 0.0, 100.0, "us per doubling", "extra all-reduce latency per doubling of tp"),
    "ar_bw_fraction": ParamSpec(0.33, 0.05, 1.0, "of bidirectional NVLink", "all-reduce bus bandwidth"),
    "ar_big_tokens": ParamSpec(4096.0, 256.0, 65536.0, "tokens per iteration",
                               "iteration size above which all-reduces run at ar_big_bw_fraction"),
    "ar_big_bw_fraction": ParamSpec(0.0, 0.0, 1.0, "of bidirectional NVLink",
                                    "all-reduce bus bandwidth in iterations above ar_big_tokens (0: no second regime)"),
    # host side: CPU time, independent of the GPU. Launches overlap with the GPU (the iteration takes the
    # longer of the two streams); the per-iteration, per-sequence and per-token costs below do not.
    "launch_us": ParamSpec(0.0, 0.0, 200.0, "us per kernel", "host time to launch one kernel in eager mode (no CUDA graphs)"),
    "prompt_layer_us": ParamSpec(0.0, 0.0, 2000.0, "us per layer",
                                 "extra launch-stream host time per layer when an iteration holds prompt tokens"),
    "step_ms": ParamSpec(1.5, 0.0, 100.0, "ms per iteration", "scheduler, sampling and launch time of one iteration"),
    "step_log2tp_ms": ParamSpec(0.0, 0.0, 50.0, "ms per doubling", "extra per-iteration time per doubling of tp (worker sync)"),
    "seq_us": ParamSpec(0.0, 0.0, 2000.0, "us per sequence", "per-sequence host cost of one iteration (inputs, sampling)"),
    "prompt_token_us": ParamSpec(0.0, 0.0, 100.0, "us per token", "per-prompt-token cost outside the kernels (input prep, padding)"),
    "prompt_seq_ms": ParamSpec(0.0, 0.0, 200.0, "ms per prompt", "per-prompt cost of an iteration that prefills it"),
    "host_overlap": ParamSpec(0.0, 0.0, 1.0, "fraction", "share of host time hidden under GPU work (async scheduling)"),
    "api_ms": ParamSpec(0.0, 0.0, 500.0, "ms per request", "time outside the engine loop counted in TTFT (HTTP, tokenizer)"),
    # power and power caps
    "cap_exponent": ParamSpec(0.30, 0.0, 3.0, "exponent", "compute-time stretch under a power cap"),
    "busy_floor": ParamSpec(0.30, 0.0, 1.0, "of TDP - idle", "power of a busy GPU regardless of utilization"),
    "power_a_c": ParamSpec(1.10, 0.0, 3.0, "per unit", "power weight of compute utilization"),
    "power_a_m": ParamSpec(0.60, 0.0, 3.0, "per unit", "power weight of memory-bandwidth utilization"),
}


@dataclass(frozen=True)
class StackParams:
    """One stack's parameters on one GPU architecture (see SPECS for units, bounds and meaning)."""

    eta_c_bf16: float = SPECS["eta_c_bf16"].default
    eta_c_fp8: float = SPECS["eta_c_fp8"].default
    eta_c_fp4: float = SPECS["eta_c_fp4"].default
    eta_c_wo: float = SPECS["eta_c_wo"].default
    gemm_m_half: float = SPECS["gemm_m_half"].default
    eta_m: float = SPECS["eta_m"].default
    gemm_t0_us: float = SPECS["gemm_t0_us"].default
    smooth_n: float = SPECS["smooth_n"].default
    eta_fa: float = SPECS["eta_fa"].default
    fa_s_half: float = SPECS["fa_s_half"].default
    attn_t0_us: float = SPECS["attn_t0_us"].default
    eta_kv: float = SPECS["eta_kv"].default
    eta_kv_fp8: float = SPECS["eta_kv_fp8"].default
    eta_mla: float = SPECS["eta_mla"].default
    moe_eta_c_bf16: float = SPECS["moe_eta_c_bf16"].default
    moe_eta_c_fp8: float = SPECS["moe_eta_c_fp8"].default
    moe_eta_c_fp4: float = SPECS["moe_eta_c_fp4"].default
    moe_eta_c_wo: float = SPECS["moe_eta_c_wo"].default
    moe_eta_m: float = SPECS["moe_eta_m"].default
    moe_t0_us: float = SPECS["moe_t0_us"].default
    moe_smooth_n: float = SPECS["moe_smooth_n"].default
    moe_imbalance: float = SPECS["moe_imbalance"].default
    moe_routing_cv: float = SPECS["moe_routing_cv"].default
    moe_kernels: float = SPECS["moe_kernels"].default
    a2a_alpha_us: float = SPECS["a2a_alpha_us"].default
    a2a_bw_fraction: float = SPECS["a2a_bw_fraction"].default
    elem_kernels: float = SPECS["elem_kernels"].default
    elem_t0_us: float = SPECS["elem_t0_us"].default
    ar_alpha_us: float = SPECS["ar_alpha_us"].default
    ar_alpha_log2_us: float = SPECS["ar_alpha_log2_us"].default
    ar_bw_fraction: float = SPECS["ar_bw_fraction"].default
    ar_big_tokens: float = SPECS["ar_big_tokens"].default
    ar_big_bw_fraction: float = SPECS["ar_big_bw_fraction"].default
    launch_us: float = SPECS["launch_us"].default
    prompt_layer_us: float = SPECS["prompt_layer_us"].default
    step_ms: float = SPECS["step_ms"].default
    step_log2tp_ms: float = SPECS["step_log2tp_ms"].default
    seq_us: float = SPECS["seq_us"].default
    prompt_token_us: float = SPECS["prompt_token_us"].default
    prompt_seq_ms: float = SPECS["prompt_seq_ms"].default
    host_overlap: float = SPECS["host_overlap"].default
    api_ms: float = SPECS["api_ms"].default
    cap_exponent: float = SPECS["cap_exponent"].default
    busy_floor: float = SPECS["busy_floor"].default
    power_a_c: float = SPECS["power_a_c"].default
    power_a_m: float = SPECS["power_a_m"].default

    def ar_alpha_ms(self, tp: int) -> float:
        return (self.ar_alpha_us + self.ar_alpha_log2_us * max(math.log2(tp) - 1.0, 0.0)) * 1e-3

    def step_overhead_ms(self, tp: int) -> float:
        return self.step_ms + self.step_log2tp_ms * math.log2(tp)

    def eta_c(self, dtype: str, weight_only: bool = False) -> float:
        """Large-M GEMM efficiency for a compute dtype ("bf16", "fp8", "fp4")."""
        if weight_only:
            return self.eta_c_wo
        return {"bf16": self.eta_c_bf16, "fp8": self.eta_c_fp8, "fp4": self.eta_c_fp4}[dtype]

    def moe_eta_c(self, dtype: str, weight_only: bool = False) -> float:
        """Large-M grouped expert GEMM efficiency for a compute dtype."""
        if weight_only:
            return self.moe_eta_c_wo
        return {"bf16": self.moe_eta_c_bf16, "fp8": self.moe_eta_c_fp8, "fp4": self.moe_eta_c_fp4}[dtype]

    def with_values(self, values: Mapping[str, float]) -> StackParams:
        return replace(self, **dict(values))

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PARAM_NAMES = tuple(f.name for f in fields(StackParams))
assert set(PARAM_NAMES) == set(SPECS), "every parameter needs a spec"


def parse_values(spec: Any, source: str, where: str) -> dict[str, float]:
    """{parameter: value} from a YAML mapping: known names only, finite, inside the parameter's bounds."""
    if not isinstance(spec, Mapping):
        raise SplitplanError("must be a mapping of parameter: value", source=source, field=where)
    values: dict[str, float] = {}
    for key, raw in spec.items():
        if key not in SPECS:
            raise SplitplanError(f"unknown parameter '{key}'{nearest_names(str(key), PARAM_NAMES)}",
                                 source=source, field=where)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise SplitplanError(f"must be a finite number, got {raw!r}", source=source, field=f"{where}.{key}")
        s = SPECS[key]
        if not s.lo <= raw <= s.hi:
            raise SplitplanError(f"{raw!r} is outside its physical range [{s.lo:g}, {s.hi:g}] ({s.unit}: {s.meaning})",
                                 source=source, field=f"{where}.{key}")
        values[str(key)] = float(raw)
    return values
