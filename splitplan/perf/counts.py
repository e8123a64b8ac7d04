"""FLOP and byte counts of one transformer layer's operators, per GPU of a tp-way instance.

Kept apart from the timing code so the counts can be checked by hand (tests compare Llama2-70B to
hand-computed values) and reused by the power model. Formulas: performance-model.md §1.
"""

from __future__ import annotations

from dataclasses import dataclass

from splitplan.perf.base import Instance
from splitplan.perf.memory import kv_heads_per_gpu

ACT_BYTES = 2.0  # activations stay 16-bit even with FP8 weights (FP8 GEMMs quantize on the fly)


@dataclass(frozen=True)
class Gemm:
    """One linear layer on one GPU: an (M x K) x (K x N) product, M = tokens in the step."""

    name: str
    k: float
    n: float

    def flops(self, m):
        return 2.0 * m * self.k * self.n

    def bytes(self, m, weight_bytes: float):
        return weight_bytes * self.k * self.n + ACT_BYTES * m * (self.k + self.n)


def layer_gemms(instance: Instance) -> tuple[Gemm, ...]:
    """QKV, O, MLP-up(+gate) and MLP-down projections of one layer, sharded over tp (Megatron style)."""
    m, t = instance.model, instance.tp
    q_width = m.heads * m.head_dim
    kv_width = 2 * kv_heads_per_gpu(m.kv_heads, t) * m.head_dim  # replicated KV heads are recomputed
    up = (2 if m.gated_mlp else 1) * m.ffn
    return (
        Gemm("qkv", m.hidden, q_width / t + kv_width),
        Gemm("o", q_width / t, m.hidden),
        Gemm("mlp_up", m.hidden, up / t),
        Gemm("mlp_down", m.ffn / t, m.hidden),
    )


def lm_head(instance: Instance) -> Gemm:
    """Vocabulary projection, sharded over tp; runs on the last token of each sequence only."""
    m = instance.model
    return Gemm("lm_head", m.hidden, m.vocab / instance.tp)


def prefill_attention_flops(instance: Instance, sum_sq_tokens):
    """Causal attention of one layer: QK^T and PV over s^2/2 pairs, 2*s^2*H*hd/t per sequence."""
    m = instance.model
    return 2.0 * sum_sq_tokens * m.heads * m.head_dim / instance.tp


def prefill_attention_bytes(instance: Instance, sum_tokens):
    """Read Q, write O (16-bit) and write K, V to the cache, per layer per GPU."""
    m, t = instance.model, instance.tp
    return sum_tokens * (ACT_BYTES * 2 * m.heads * m.head_dim / t
                         + m.dtype_bytes * 2 * kv_heads_per_gpu(m.kv_heads, t) * m.head_dim)


def decode_attention_flops(instance: Instance, sum_context):
    """Decode attention of one layer: 4*c*H*hd/t per sequence (GQA does not reduce FLOPs)."""
    m = instance.model
    return 4.0 * sum_context * m.heads * m.head_dim / instance.tp


def decode_attention_bytes(instance: Instance, sum_context):
    """The KV read of one layer per GPU: 2*c*Hkv*hd*b_kv/t, with Hkv/t at least one replicated head."""
    m = instance.model
    return 2.0 * sum_context * kv_heads_per_gpu(m.kv_heads, instance.tp) * m.head_dim * m.dtype_bytes


def allreduce_bytes(instance: Instance, tokens):
    """Message of each of the 2 per-layer all-reduces (after O and after MLP-down)."""
    return tokens * instance.model.hidden * ACT_BYTES


def step_flops(instance: Instance, n_prompts, sum_tokens, sum_sq_tokens, n_decode=0, sum_context=0):
    """Whole-step FLOPs per GPU (all layers plus LM head); used for utilization and power."""
    m = instance.model
    tokens = sum_tokens + n_decode
    per_layer = sum(g.flops(tokens) for g in layer_gemms(instance))
    per_layer += prefill_attention_flops(instance, sum_sq_tokens) + decode_attention_flops(instance, sum_context)
    return m.layers * per_layer + lm_head(instance).flops(n_prompts + n_decode)


def step_bytes(instance: Instance, n_prompts, sum_tokens, sum_sq_tokens, n_decode=0, sum_context=0):
    """Whole-step HBM bytes per GPU: weights once, activations, KV reads and writes."""
    m = instance.model
    wb = m.dtype_bytes
    tokens = sum_tokens + n_decode
    per_layer = sum(g.bytes(tokens, wb) for g in layer_gemms(instance))
    per_layer += prefill_attention_bytes(instance, sum_tokens) + decode_attention_bytes(instance, sum_context)
    return m.layers * per_layer + lm_head(instance).bytes(n_prompts + n_decode, wb)
