"""What every operator module shares: the GEMM record, activation bytes, the attention group's TP degree.

Split out of ops.py so the attention (ops_attention.py) and expert (ops_moe.py) inventories can use it
without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from splitplan.perf.base import Instance
from splitplan.serving.quant import WEIGHT_BYTES, ComputeDtype, WeightFormat, compute_dtype

ACT_BYTES = 2.0  # activations between kernels stay 16-bit


@dataclass(frozen=True)
class Gemm:
    """One linear layer on one GPU: an (M x K) x (K x N) product, M = tokens in the step."""

    name: str
    k: float
    n: float
    weight_bytes: float = 2.0  # per weight element, scales included
    dtype: ComputeDtype = ComputeDtype.BF16
    weight_only: bool = False
    replicated: bool = False  # every GPU holds the whole matrix (MLA down-projections, the router)

    def flops(self, m):
        return 2.0 * m * self.k * self.n

    def bytes(self, m):
        return self.weight_bytes * self.k * self.n + ACT_BYTES * m * (self.k + self.n)


def attention_tp(instance: Instance) -> int:
    """GPUs of one attention group: tp / dp (attention data parallelism splits the instance into dp groups)."""
    return max(instance.tp // max(instance.dp, 1), 1)


def kv_heads_per_gpu(kv_heads: int, tp: int) -> float:
    """KV heads each GPU stores: split across tp, replicated when tp exceeds kv_heads (GQA)."""
    return max(kv_heads / tp, 1.0)


def dense_format(instance: Instance) -> tuple[float, ComputeDtype, bool]:
    """(bytes per weight, compute dtype, weight-only) of the dense GEMMs (attention, dense MLP, shared experts)."""
    dtype, weight_only = instance.dense_compute
    return WEIGHT_BYTES[instance.quant.weights], dtype, weight_only


def expert_format(instance: Instance) -> tuple[float, ComputeDtype, bool]:
    """(bytes per weight, compute dtype, weight-only) of the routed experts (`quant.experts`).

    4-bit experts run on FP4 tensor cores only where the GPU has them (Blackwell); on Hopper they are
    weight-only: 4-bit bytes, 16-bit math (gpt-oss's MXFP4 experts under vLLM's Marlin/Triton kernels)."""
    fmt = instance.quant.experts
    dtype, weight_only = compute_dtype(fmt, instance.gpu.supports)
    return WEIGHT_BYTES[fmt], dtype, weight_only


def bf16_gemm(name: str, k: float, n: float, replicated: bool = False) -> Gemm:
    """A 16-bit GEMM (LM head, router: the quantized checkpoints keep them in BF16)."""
    return Gemm(name, k, n, WEIGHT_BYTES[WeightFormat.BF16], ComputeDtype.BF16, False, replicated)
