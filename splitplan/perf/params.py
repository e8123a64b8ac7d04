"""The software-stack parameters of the analytic model, and calibration files that set them per GPU.

The analytic model separates what the hardware datasheet gives (peak FLOP/s, HBM bandwidth, NVLink)
from what a serving stack achieves on it (kernel efficiencies, launch floors, collective latency,
CPU-side per-step overhead). Only the second part is fitted; it is what differs between vLLM 2023 and
TensorRT-LLM 2024 on the same GPU (performance-model.md §3.4 "Lesson"). Defaults below are the spec
values of performance-model.md §3 / §7.1, i.e. a tuned stack with CUDA graphs and no CPU overhead.

A calibration file is YAML keyed by GPU name:

    name: vllm-2023
    description: "..."
    gpus:
      a100-80gb: {eta_c: 0.7, ar_alpha_us: 40.0, ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from splitplan.catalog import GPU, profiles_dir, read_yaml
from splitplan.errors import SplitplanError, nearest_names


@dataclass(frozen=True)
class StackParams:
    """Efficiencies and overheads of one serving stack on one GPU type (times in us or ms as named)."""

    eta_c: float = 0.74  # GEMM fraction of dense BF16 peak (vidur/aiconfigurator fits, §3.1)
    eta_c_fp8: float = 0.60  # GEMM fraction of dense FP8 peak (FP8 GEMMs reach less of their 2x peak)
    eta_m: float = 0.88  # GEMM / elementwise fraction of HBM bandwidth
    gemm_t0_us: float = 5.0  # kernel launch + tail floor per GEMM
    smooth_n: float = 1.3  # smooth-max exponent between compute and memory time
    eta_fa: float = 0.50  # prefill (FlashAttention-class) fraction of peak on causal FLOPs
    attn_t0_us: float = 5.0  # floor per attention kernel
    eta_kv: float = 0.85  # decode attention: fraction of HBM bandwidth reading the KV cache
    elem_kernels: float = 8.0  # elementwise kernels per layer (norms, rotary, residual, activation)
    elem_t0_us: float = 2.0  # floor per elementwise kernel
    l2_mb: float = 0.0  # on-chip cache holding hidden-state tensors: elementwise traffic below it skips HBM
    ar_alpha_us: float = 8.0  # all-reduce latency at tp=2
    ar_alpha_log2_us: float = 2.0  # extra all-reduce latency per doubling of tp (tree/ring depth)
    ar_bw_fraction: float = 0.33  # all-reduce bus bandwidth as a fraction of bidirectional NVLink
    step_ms: float = 1.5  # per-iteration host overhead (sampling, sync, launch) at tp=1; tuned C++ runtime
    step_log2tp_ms: float = 1.0  # extra per-iteration overhead per doubling of tp (multi-GPU sync)
    seq_ms: float = 0.0  # per-sequence cost per decode iteration (input prep, sampling)
    seq2_ms: float = 0.0  # per-sequence^2 cost per decode iteration (batch-wide padding/block tables)
    prompt_seq_ms: float = 0.0  # per-prompt cost per prefill iteration
    prompt_token_us: float = 0.0  # per-prompt-token host cost (tokens moved/padded on the CPU side)
    cross_attn_frac: float = 0.0  # prefill attention over the whole batch (padding): extra FLOPs = frac*(T^2-sum s^2)
    cap_exponent: float = 0.30  # power-cap stretch exponent k (calibrated: DGX-H100 at 50% cap -> prompt 1.30x)
    busy_floor: float = 0.30  # fraction of (TDP - idle) drawn by a busy GPU regardless of utilization
    power_a_c: float = 1.10  # power weight of compute utilization
    power_a_m: float = 0.60  # power weight of memory-bandwidth utilization
    # Stack-efficiency curves (perf/correction.py): ((tp, ((x, factor), ...)), ...); empty = factor 1.
    prefill_corr: tuple = ()  # x = batch tokens
    decode_corr: tuple = ()  # x = batch size

    def ar_alpha_ms(self, tp: int) -> float:
        return (self.ar_alpha_us + self.ar_alpha_log2_us * (math.log2(tp) - 1.0)) * 1e-3

    def step_overhead_ms(self, tp: int) -> float:
        return self.step_ms + self.step_log2tp_ms * math.log2(tp)


CURVE_NAMES = ("prefill_corr", "decode_corr")
# Efficiencies and exponents the model divides by or raises to: zero is as impossible as negative.
DIVISOR_NAMES = ("eta_c", "eta_c_fp8", "eta_m", "eta_fa", "eta_kv", "ar_bw_fraction", "smooth_n")
PARAM_NAMES = tuple(f.name for f in fields(StackParams))


@dataclass(frozen=True)
class Calibration:
    """Stack parameters per GPU from one calibration file (or the spec defaults)."""

    name: str
    source: str
    per_gpu: Mapping[str, StackParams]

    def params_for(self, gpu: GPU) -> StackParams | None:
        for key in (gpu.name, *gpu.aliases):
            if key in self.per_gpu:
                return self.per_gpu[key]
        return None


def bundled_calibration_paths() -> list[Path]:
    """The default calibrations shipped in profiles/calibrations/ (sorted, so the choice is stable)."""
    folder = profiles_dir() / "calibrations"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def parse_params(spec: Any, source: str, where: str, base: StackParams = StackParams()) -> StackParams:
    """StackParams from a YAML mapping; unknown or non-numeric fields are one-line errors."""
    if not isinstance(spec, Mapping):
        raise SplitplanError("must be a mapping of parameter: value", source=source, field=where)
    values: dict[str, Any] = {}
    for key, raw in spec.items():
        if key not in PARAM_NAMES:
            raise SplitplanError(f"unknown parameter '{key}'{nearest_names(str(key), PARAM_NAMES)}",
                                 source=source, field=where)
        if key in CURVE_NAMES:
            values[key] = parse_curves(raw, source, f"{where}.{key}")
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            raise SplitplanError(f"must be a finite number, got {raw!r}", source=source, field=f"{where}.{key}")
        if raw < 0 or (raw == 0 and key in DIVISOR_NAMES):  # negative efficiencies gave complex times
            raise SplitplanError(f"must be {'> 0' if key in DIVISOR_NAMES else '>= 0'}, got {raw!r}", source=source,
                                 field=f"{where}.{key}")
        values[key] = float(raw)
    return replace(base, **values)


def parse_curves(raw: Any, source: str, where: str) -> tuple:
    """{tp or "model@tp": [[x, factor], ...]} -> ((key, ((x, factor), ...)), ...), validated and sorted."""
    if not isinstance(raw, Mapping):
        raise SplitplanError("must map a tp degree to a list of [x, factor] pairs", source=source, field=where)
    curves = []
    for tp, pairs in raw.items():
        if isinstance(tp, str) and "@" in tp and tp.rsplit("@", 1)[1].isdigit():
            tp = f"{tp.rsplit('@', 1)[0].strip().lower()}@{int(tp.rsplit('@', 1)[1])}"
        elif isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
            raise SplitplanError(f"key must be a tp degree or 'model@tp', got {tp!r}", source=source, field=where)
        ok = isinstance(pairs, list) and pairs and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                          and math.isfinite(v) and v > 0 for v in p) for p in pairs)
        if not ok:
            raise SplitplanError("must be a non-empty list of [x, factor] pairs of positive numbers",
                                 source=source, field=f"{where}.{tp}")
        knots = tuple(sorted((float(x), float(f)) for x, f in pairs))
        if len({x for x, _ in knots}) != len(knots):
            raise SplitplanError("repeats an x value", source=source, field=f"{where}.{tp}")
        curves.append((tp, knots))
    return tuple(sorted(curves, key=lambda c: (isinstance(c[0], str), str(c[0]).zfill(6))))


def curves_to_yaml(curves: tuple) -> dict:
    return {key: [[x, f] for x, f in knots] for key, knots in curves}


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration YAML (top-level `name`, `gpus: {gpu: {param: value}}`)."""
    source = str(path)
    data = read_yaml(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("gpus"), Mapping) or not data["gpus"]:
        raise SplitplanError("a calibration file needs a mapping 'gpus' of GPU name -> parameters",
                             source=source, field="gpus")
    per_gpu = {str(gpu).strip().lower(): parse_params(spec, source, f"gpus.{gpu}")
               for gpu, spec in data["gpus"].items()}
    name = str(data.get("name") or Path(path).stem)
    return Calibration(name=name, source=source, per_gpu=per_gpu)


NO_CALIBRATION = ("none", "spec")


def resolve_params(gpu: GPU, calibration_paths: tuple[str, ...]) -> tuple[StackParams, str]:
    """(params, provenance) for a GPU: the first calibration naming it, else the spec defaults.

    User calibrations are searched before the bundled ones, so a user file overrides the defaults
    for the GPUs it names and leaves the others on the bundled calibration. A path "none" (or
    "spec") switches the bundled calibrations off: spec defaults unless a user file names the GPU.
    """
    wanted = [p for p in calibration_paths if str(p).strip().lower() not in NO_CALIBRATION]
    bundled = [] if len(wanted) < len(calibration_paths) else bundled_calibration_paths()
    paths = [Path(p) for p in wanted] + bundled
    for path in paths:
        calibration = _cached_calibration(str(path))
        params = calibration.params_for(gpu)
        if params is not None:
            return params, f"calibrated: {calibration.name} ({Path(calibration.source).name})"
    return StackParams(), "spec defaults (uncalibrated)"


_CACHE: dict[str, Calibration] = {}


def _cached_calibration(path: str) -> Calibration:
    if path not in _CACHE:
        _CACHE[path] = load_calibration(path)
    return _CACHE[path]


def clear_cache() -> None:
    _CACHE.clear()

