"""Quantization per component: what a format costs in bytes, and which tensor cores it runs on.

A serving configuration quantizes three things separately (the measured-serving columns `weights`,
`moe_weights` and the engines' `--kv-cache-dtype`): the dense GEMM weights (attention projections,
dense MLPs), the MoE expert weights, and the KV cache. Bytes moved and memory held follow the
format, including its scale factors; the compute dtype follows the GPU: FP8 runs on FP8 tensor cores
where the GPU has them (Hopper, Blackwell, Ada) and is dequantized to 16-bit compute where it has not
(Ampere: weight-only, as vLLM's Marlin FP8 kernels do); 4-bit formats run on FP4 tensor cores only on
Blackwell and are weight-only (4-bit weights, 16-bit math) elsewhere. The LM head stays 16-bit: the
quantized checkpoints of the catalog models (ModelOpt FP8/NVFP4, gpt-oss MXFP4) keep it in BF16.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from splitplan.errors import SplitplanError, nearest_names


class WeightFormat(str, Enum):
    """How GEMM weights are stored (the measured-serving `weights` / `moe_weights` values)."""

    BF16 = "bf16"
    FP8 = "fp8"  # per-tensor (or per-channel) scales: ModelOpt / compressed-tensors FP8
    FP8_BLOCK = "fp8_block"  # 128 x 128 block scales (DeepSeek-V3, Qwen3-*-FP8 checkpoints)
    MXFP4 = "mxfp4"  # OCP microscaling: E2M1 values, one E8M0 scale per 32 (gpt-oss experts)
    NVFP4 = "nvfp4"  # E2M1 values, one FP8 scale per 16, one FP32 per tensor
    INT4_WO = "int4_wo"  # weight-only int4, group 128 with 16-bit scale and zero (AWQ/GPTQ, Marlin)


class KvFormat(str, Enum):
    BF16 = "bf16"
    FP8 = "fp8"


class ComputeDtype(str, Enum):
    """Tensor-core input precision of a GEMM; picks the GPU's peak (GPU.peak_tflops)."""

    BF16 = "bf16"
    FP8 = "fp8"
    FP4 = "fp4"


# Bytes per stored element, scale factors included (the scale overhead of a format is its scale bytes
# divided by the elements that share one scale).
WEIGHT_BYTES: dict[WeightFormat, float] = {
    WeightFormat.BF16: 2.0,
    WeightFormat.FP8: 1.0,
    WeightFormat.FP8_BLOCK: 1.0 + 4.0 / (128 * 128),
    WeightFormat.MXFP4: 0.5 + 1.0 / 32,
    WeightFormat.NVFP4: 0.5 + 1.0 / 16,
    WeightFormat.INT4_WO: 0.5 + 4.0 / 128,
}
KV_BYTES: dict[KvFormat, float] = {KvFormat.BF16: 2.0, KvFormat.FP8: 1.0}
_NATIVE: dict[WeightFormat, ComputeDtype] = {
    WeightFormat.BF16: ComputeDtype.BF16, WeightFormat.FP8: ComputeDtype.FP8, WeightFormat.FP8_BLOCK: ComputeDtype.FP8,
    WeightFormat.MXFP4: ComputeDtype.FP4, WeightFormat.NVFP4: ComputeDtype.FP4, WeightFormat.INT4_WO: ComputeDtype.BF16,
}
ALIASES = {"fp16": "bf16", "float16": "bf16", "half": "bf16", "bfloat16": "bf16", "auto": "bf16", "fp8_e4m3": "fp8",
           "fp8_e4m3fn": "fp8", "fp8_dynamic": "fp8", "w8a8_fp8": "fp8", "fp8block": "fp8_block",
           "fp8_blockwise": "fp8_block", "fp4": "nvfp4", "w4a16": "int4_wo", "int4": "int4_wo", "awq": "int4_wo",
           "gptq": "int4_wo"}


def _alias_key(raw: object) -> str:
    """A format name as the aliases spell it: lower case, `-` and spaces as `_` (`FP8-Block` = `fp8_block`)."""
    key = "_".join(str(raw).strip().lower().replace("-", " ").split())
    return ALIASES.get(key, key)


def weight_format(raw: str | WeightFormat, field: str = "weights") -> WeightFormat:
    """Parse a weight format name (case-insensitive; common aliases such as fp16 and awq accepted)."""
    if isinstance(raw, WeightFormat):
        return raw
    key = _alias_key(raw)
    try:
        return WeightFormat(key)
    except ValueError:
        valid = [f.value for f in WeightFormat]
        raise SplitplanError(f"unknown weight format '{raw}'{nearest_names(key, valid)}", field=field) from None


def kv_format(raw: str | KvFormat, field: str = "kv") -> KvFormat:
    if isinstance(raw, KvFormat):
        return raw
    key = _alias_key(raw)
    key = "fp8" if key.startswith("fp8") else key
    try:
        return KvFormat(key)
    except ValueError:
        raise SplitplanError(f"unknown KV-cache format '{raw}' (valid: bf16, fp8)", field=field) from None


def compute_dtype(fmt: WeightFormat, gpu_supports) -> tuple[ComputeDtype, bool]:
    """(compute dtype, weight_only) of a GEMM with weights in `fmt` on a GPU.

    `gpu_supports(dtype_name) -> bool` says whether the GPU has tensor cores for that dtype. A format
    without native units runs weight-only: its bytes, 16-bit math."""
    native = _NATIVE[fmt]
    if native is ComputeDtype.BF16 or gpu_supports(native.value):
        return native, fmt is WeightFormat.INT4_WO
    return ComputeDtype.BF16, True


@dataclass(frozen=True)
class Quant:
    """Formats of one instance's dense weights, expert weights and KV cache."""

    weights: WeightFormat = WeightFormat.BF16
    moe_weights: WeightFormat | None = None  # None: same as `weights`
    kv: KvFormat = KvFormat.BF16

    @property
    def experts(self) -> WeightFormat:
        return self.moe_weights or self.weights

    @property
    def weight_bytes(self) -> float:
        return WEIGHT_BYTES[self.weights]

    @property
    def expert_bytes(self) -> float:
        return WEIGHT_BYTES[self.experts]

    @property
    def kv_bytes(self) -> float:
        return KV_BYTES[self.kv]

    def label(self) -> str:
        parts = [f"weights {self.weights.value}"]
        if self.moe_weights and self.moe_weights != self.weights:
            parts.append(f"experts {self.moe_weights.value}")
        parts.append(f"kv {self.kv.value}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, str]:
        return {"weights": self.weights.value, "moe_weights": self.experts.value, "kv": self.kv.value}

    @staticmethod
    def parse(weights: str | None = None, moe_weights: str | None = None, kv: str | None = None,
              default: Quant | None = None) -> Quant:
        """A Quant from format names; None keeps `default`'s value (BF16 everywhere if no default)."""
        base = default or Quant()
        w = weight_format(weights, "weights") if weights else base.weights
        m = weight_format(moe_weights, "moe_weights") if moe_weights else (base.moe_weights if not weights else None)
        return Quant(weights=w, moe_weights=m, kv=kv_format(kv) if kv else base.kv)


BF16 = Quant()
