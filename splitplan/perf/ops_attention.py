"""Attention operators of one layer per GPU: GQA and MLA projections, FLOPs per query-key pair, KV bytes.

Attention runs tensor-parallel over the attention group of an instance (tp / dp GPUs; dp > 1 is
attention data parallelism: dp groups, each with its own sequences). Per GPU a group's tokens and
contexts are 1/dp of the instance's, which every count here includes, so the caller passes instance
totals. Formulas: docs/performance-model.md (MoE and MLA section).

- GQA: QKV and O projections sharded by heads; K and V cached per KV head (replicated when the group
  has more GPUs than KV heads).
- MLA (DeepSeek): the query and KV down-projections (q_a, kv_a) are replicated on every GPU, the
  up-projections (q_b, kv_b) and O are sharded by heads. The cache holds the latent and the decoupled
  RoPE key, (kv_lora_rank + qk_rope_head_dim) elements per token and layer, on every GPU of the group:
  heads do not split it. Prefill attends with decompressed heads (K of nope + rope dims, V of v dims);
  decode absorbs the up-projections into the query and output, so each context token costs
  2 x heads x (2 kv_lora + rope) FLOPs against (kv_lora + rope) bytes: compute-heavy (~240 FLOP/B at
  128 heads per GPU, against a ridge of 200-300).
- Sliding-window layers (gpt-oss: 18 of 36, window 128) attend to at most the window.
"""

from __future__ import annotations

from splitplan.perf.base import Instance
from splitplan.perf.ops_core import ACT_BYTES, Gemm, attention_tp, dense_format, kv_heads_per_gpu


def _share(instance: Instance) -> float:
    """A GPU's share of the instance's tokens in attention: its group's, 1/dp."""
    return 1.0 / instance.dp


def attention_gemms(instance: Instance) -> tuple[Gemm, ...]:
    """Projections of one attention layer on one GPU of its group (M = the group's tokens)."""
    m, t = instance.model, attention_tp(instance)
    wb, dtype, weight_only = dense_format(instance)
    if m.is_mla:
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        heads = m.heads / t
        shapes: list[tuple[str, float, float]] = []
        if m.q_lora_rank:
            shapes += [("q_a", m.hidden, m.q_lora_rank), ("q_b", m.q_lora_rank, heads * qk)]
        else:
            shapes.append(("q", m.hidden, heads * qk))
        shapes += [("kv_a", m.hidden, m.kv_lora_rank + m.qk_rope_head_dim),
                   ("kv_b", m.kv_lora_rank, heads * (m.qk_nope_head_dim + m.v_head_dim)),
                   ("o", heads * m.v_head_dim, m.hidden)]
        return tuple(Gemm(name, k, n, wb, dtype, weight_only, replicated=name in ("q_a", "kv_a"))
                     for name, k, n in shapes)
    q_width = m.heads * m.head_dim
    kv_width = 2 * kv_heads_per_gpu(m.kv_heads, t) * m.head_dim  # replicated KV heads are recomputed
    return (Gemm("qkv", m.hidden, q_width / t + kv_width, wb, dtype, weight_only),
            Gemm("o", q_width / t, m.hidden, wb, dtype, weight_only))


def _qk_v_dims(instance: Instance) -> tuple[float, float]:
    m = instance.model
    if m.is_mla:
        return float(m.qk_nope_head_dim + m.qk_rope_head_dim), float(m.v_head_dim)
    return float(m.head_dim), float(m.head_dim)


def attention_flops_per_pair(instance: Instance) -> float:
    """FLOPs per causal query-key pair of one layer on one GPU: QK^T and PV (MLA: decompressed heads)."""
    qk, v = _qk_v_dims(instance)
    return 2.0 * instance.model.heads * (qk + v) / attention_tp(instance)


def qo_bytes_per_token_layer(instance: Instance) -> float:
    """Query read and output write of prefill attention, per new token of its GPU, per layer (16-bit)."""
    qk, v = _qk_v_dims(instance)
    return ACT_BYTES * instance.model.heads * (qk + v) / attention_tp(instance)


def kv_elements_per_token_layer(instance: Instance) -> float:
    """KV-cache elements one token holds in one layer on each GPU of its group."""
    m = instance.model
    if m.is_mla:
        return float(m.kv_lora_rank + m.qk_rope_head_dim)  # the latent: on every GPU of the group
    return 2.0 * kv_heads_per_gpu(m.kv_heads, attention_tp(instance)) * m.head_dim


def kv_bytes_per_token_layer(instance: Instance) -> float:
    """KV-cache bytes of one token in one layer on one GPU of its group (GQA: its KV heads; MLA: the latent)."""
    return kv_elements_per_token_layer(instance) * instance.quant.kv_bytes


def unique_kv_bytes_per_token_layer(instance: Instance) -> float:
    """One copy of a token's KV in one layer (all heads once; MLA: the latent once)."""
    m = instance.model
    elements = m.kv_lora_rank + m.qk_rope_head_dim if m.is_mla else 2 * m.kv_heads * m.head_dim
    return elements * instance.quant.kv_bytes


def decode_flops_per_context_token(instance: Instance) -> float:
    """Decode attention FLOPs per context token of one layer on one GPU (MLA: absorbed weights)."""
    m = instance.model
    if m.is_mla:
        return 2.0 * m.heads / attention_tp(instance) * (2.0 * m.kv_lora_rank + m.qk_rope_head_dim)
    return attention_flops_per_pair(instance)


def full_and_sliding_layers(instance: Instance) -> tuple[int, int]:
    """(layers with full attention, layers with a sliding window)."""
    m = instance.model
    sliding = m.sliding_layers if m.sliding_window else 0
    return m.layers - sliding, sliding


def prefill_attention_flops(instance: Instance, sum_sq_tokens):
    """Causal attention of one full layer over whole prompts (s^2/2 pairs each), per GPU."""
    return attention_flops_per_pair(instance) * 0.5 * sum_sq_tokens * _share(instance)


def sliding_pairs(pairs, new_tokens, window: float):
    """Query-key pairs of a sliding-window layer: at most `window` keys per new token."""
    return _min(pairs, new_tokens * window)


def decode_attention_bytes(instance: Instance, sum_context):
    """The KV read of one decode step in one full layer per GPU."""
    return sum_context * kv_bytes_per_token_layer(instance) * _share(instance)


def decode_attention_flops(instance: Instance, sum_context):
    """Decode attention of one full layer per GPU (GQA does not reduce FLOPs; MLA absorbed)."""
    return sum_context * decode_flops_per_context_token(instance) * _share(instance)


def _min(a, b):
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.minimum(a, b)
    return a if a <= b else b


__all__ = ["attention_gemms", "attention_flops_per_pair", "qo_bytes_per_token_layer", "kv_bytes_per_token_layer",
           "kv_elements_per_token_layer", "unique_kv_bytes_per_token_layer", "decode_flops_per_context_token",
           "full_and_sliding_layers", "prefill_attention_flops", "sliding_pairs", "decode_attention_bytes",
           "decode_attention_flops"]
