"""The operator inventory of one transformer layer per GPU of a tp-way instance: FLOPs and bytes.

Kept apart from the timing code so the counts can be checked by hand (tests compare Llama2-70B to
hand-computed values) and reused by the power model. Formulas: performance-model.md §1. Bytes follow
the instance's quantization (serving/quant.py): an FP8 weight is one byte, an FP8 KV-cache element one
byte; activations between kernels stay 16-bit (FP8 GEMMs quantize their input on the fly, which is one
extra read and a one-byte write of the activation, counted as part of the 16-bit input traffic).
"""

from __future__ import annotations

from dataclasses import dataclass

from splitplan.perf.base import Instance
from splitplan.serving.quant import WEIGHT_BYTES, ComputeDtype, WeightFormat

ACT_BYTES = 2.0


@dataclass(frozen=True)
class Gemm:
    """One linear layer on one GPU: an (M x K) x (K x N) product, M = tokens in the step."""

    name: str
    k: float
    n: float
    weight_bytes: float = 2.0  # per weight element, scales included
    dtype: ComputeDtype = ComputeDtype.BF16
    weight_only: bool = False

    def flops(self, m):
        return 2.0 * m * self.k * self.n

    def bytes(self, m):
        return self.weight_bytes * self.k * self.n + ACT_BYTES * m * (self.k + self.n)


def kv_heads_per_gpu(kv_heads: int, tp: int) -> float:
    """KV heads each GPU stores: split across tp, replicated when tp exceeds kv_heads (GQA)."""
    return max(kv_heads / tp, 1.0)


def layer_gemms(instance: Instance) -> tuple[Gemm, ...]:
    """QKV, O, MLP-up(+gate) and MLP-down projections of one layer, sharded over tp (Megatron style)."""
    m, t = instance.model, instance.tp
    dtype, weight_only = instance.dense_compute
    wb = WEIGHT_BYTES[instance.quant.weights]
    q_width = m.heads * m.head_dim
    kv_width = 2 * kv_heads_per_gpu(m.kv_heads, t) * m.head_dim  # replicated KV heads are recomputed
    up = (2 if m.gated_mlp else 1) * m.ffn
    shapes = (("qkv", m.hidden, q_width / t + kv_width), ("o", q_width / t, m.hidden),
              ("mlp_up", m.hidden, up / t), ("mlp_down", m.ffn / t, m.hidden))
    return tuple(Gemm(name, k, n, wb, dtype, weight_only) for name, k, n in shapes)


def lm_head(instance: Instance) -> Gemm:
    """Vocabulary projection, sharded over tp, in 16-bit; runs on tokens that need logits only."""
    m = instance.model
    return Gemm("lm_head", m.hidden, m.vocab / instance.tp, WEIGHT_BYTES[WeightFormat.BF16])


def attention_flops_per_pair(instance: Instance) -> float:
    """FLOPs per causal query-key pair of one layer per GPU: QK^T and PV, 2 MACs per head dim each."""
    m = instance.model
    return 4.0 * m.heads * m.head_dim / instance.tp


def kv_bytes_per_token_layer(instance: Instance) -> float:
    """KV-cache bytes of one token in one layer on one GPU (K and V, the GPU's KV heads)."""
    m = instance.model
    return 2.0 * kv_heads_per_gpu(m.kv_heads, instance.tp) * m.head_dim * instance.quant.kv_bytes


def qo_bytes_per_token_layer(instance: Instance) -> float:
    """Query read and output write of prefill attention, per new token, per layer, per GPU (16-bit)."""
    m = instance.model
    return ACT_BYTES * 2.0 * m.heads * m.head_dim / instance.tp


def prefill_attention_flops(instance: Instance, sum_sq_tokens):
    """Causal attention of one layer over whole prompts: s^2/2 pairs each."""
    return attention_flops_per_pair(instance) * 0.5 * sum_sq_tokens


def decode_attention_bytes(instance: Instance, sum_context):
    """The KV read of one decode step in one layer per GPU."""
    return sum_context * kv_bytes_per_token_layer(instance)


def decode_attention_flops(instance: Instance, sum_context):
    """Decode attention of one layer: 4*c*H*hd/t per sequence (GQA does not reduce FLOPs)."""
    return sum_context * attention_flops_per_pair(instance)


def step_flops(instance: Instance, n_prompts, sum_tokens, sum_sq_tokens, n_decode=0, sum_context=0):
    """Whole-step FLOPs per GPU (all layers plus LM head); used for utilization and power."""
    tokens = sum_tokens + n_decode
    per_layer = sum(g.flops(tokens) for g in layer_gemms(instance))
    per_layer += prefill_attention_flops(instance, sum_sq_tokens) + decode_attention_flops(instance, sum_context)
    return instance.model.layers * per_layer + lm_head(instance).flops(n_prompts + n_decode)


def step_bytes(instance: Instance, n_prompts, sum_tokens, sum_sq_tokens, n_decode=0, sum_context=0):
    """Whole-step HBM bytes per GPU: weights once, activations, KV reads and writes."""
    tokens = sum_tokens + n_decode
    per_layer = sum(g.bytes(tokens) for g in layer_gemms(instance))
    per_layer += sum_tokens * (qo_bytes_per_token_layer(instance) + kv_bytes_per_token_layer(instance))
    per_layer += decode_attention_bytes(instance, sum_context)
    return instance.model.layers * per_layer + lm_head(instance).bytes(n_prompts + n_decode)
