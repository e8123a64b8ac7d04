"""The operator inventory of one transformer layer per GPU of an instance: FLOPs and bytes.

Kept apart from the timing code so the counts can be checked by hand (tests compare Llama2-70B to
hand-computed values) and reused by the power model. Formulas: performance-model.md §1 and its MoE/MLA
section. Bytes follow the instance's quantization (serving/quant.py): an FP8 weight is one byte, an FP8
KV-cache element one byte; activations between kernels stay 16-bit (FP8 GEMMs quantize their input on
the fly, which is one extra read and a one-byte write of the activation, counted as part of the 16-bit
input traffic).

A layer is attention (ops_attention.py: GQA or MLA, full or sliding-window) plus an MLP: a dense one of
width `ffn` (every layer of a dense model, the leading `dense_layers` of an MoE model) or an MoE block
(ops_moe.py: router, routed experts, shared experts). Dense parts run on the attention group's tokens
(1/dp of the instance's each, sharded over tp/dp GPUs); experts see every routed token.
"""

from __future__ import annotations

from splitplan.perf.base import Instance
from splitplan.perf.ops_attention import (attention_flops_per_pair, attention_gemms, decode_attention_bytes,
                                          decode_attention_flops, decode_flops_per_context_token,
                                          full_and_sliding_layers, kv_bytes_per_token_layer, prefill_attention_flops,
                                          qo_bytes_per_token_layer, sliding_pairs)
from splitplan.perf.ops_core import ACT_BYTES, Gemm, attention_tp, bf16_gemm, dense_format, kv_heads_per_gpu
from splitplan.perf.ops_moe import moe_layer

__all__ = ["ACT_BYTES", "Gemm", "kv_heads_per_gpu", "layer_gemms", "dense_mlp_gemms", "attention_gemms", "lm_head",
           "attention_flops_per_pair", "kv_bytes_per_token_layer", "qo_bytes_per_token_layer",
           "prefill_attention_flops", "decode_attention_bytes", "decode_attention_flops", "dense_mlp_layers",
           "step_flops", "step_bytes"]


def dense_mlp_gemms(instance: Instance) -> tuple[Gemm, ...]:
    """MLP-up(+gate) and MLP-down of a dense layer of width `ffn`, sharded over the attention group."""
    m, t = instance.model, attention_tp(instance)
    wb, dtype, weight_only = dense_format(instance)
    up = (2 if m.gated_mlp else 1) * m.ffn
    return (Gemm("mlp_up", m.hidden, up / t, wb, dtype, weight_only),
            Gemm("mlp_down", m.ffn / t, m.hidden, wb, dtype, weight_only))


def layer_gemms(instance: Instance) -> tuple[Gemm, ...]:
    """Attention projections and the dense MLP of one dense layer (Megatron-style sharding)."""
    return attention_gemms(instance) + dense_mlp_gemms(instance)


def dense_mlp_layers(instance: Instance) -> int:
    """Layers with a dense MLP: all of a dense model, the leading ones of an MoE model."""
    return instance.model.layers - instance.model.moe_layers


def lm_head(instance: Instance) -> Gemm:
    """Vocabulary projection, sharded over the attention group, in 16-bit; runs on tokens that need logits."""
    m = instance.model
    return bf16_gemm("lm_head", m.hidden, m.vocab / attention_tp(instance))


def _counts(instance: Instance, kind: str, n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context):
    """FLOPs ("flops") or HBM bytes ("bytes") of one whole step on one GPU."""
    m, share = instance.model, 1.0 / instance.dp
    tokens = sum_tokens + n_decode
    group = tokens * share  # tokens of one attention group
    of = (lambda g, rows: g.flops(rows)) if kind == "flops" else (lambda g, rows: g.bytes(rows))
    full, sliding = full_and_sliding_layers(instance)
    total = m.layers * sum(of(g, group) for g in attention_gemms(instance))
    total += dense_mlp_layers(instance) * sum(of(g, group) for g in dense_mlp_gemms(instance))
    moe = moe_layer(instance)
    if moe is not None:
        experts = moe.expert_flops(tokens) if kind == "flops" else moe.expert_bytes(tokens)
        total += m.moe_layers * (of(moe.router, group) + sum(of(g, group) for g in moe.shared) + experts)
    if kind == "flops":
        pairs = 0.5 * sum_sq_tokens
        window_pairs = sliding_pairs(pairs, sum_tokens, m.sliding_window)
        total += attention_flops_per_pair(instance) * share * (full * pairs + sliding * window_pairs)
        total += decode_attention_flops(instance, sum_context) * full
        total += sliding * decode_flops_per_context_token(instance) * n_decode * m.sliding_window * share
    else:
        kv = kv_bytes_per_token_layer(instance)
        total += m.layers * sum_tokens * share * (qo_bytes_per_token_layer(instance) + kv)
        total += full * decode_attention_bytes(instance, sum_context)
        total += sliding * kv * n_decode * m.sliding_window * share
    return total + of(lm_head(instance), (n_prompts + n_decode) * share)


def step_flops(instance: Instance, n_prompts, sum_tokens, sum_sq_tokens, n_decode=0, sum_context=0):
    """Whole-step FLOPs per GPU (all layers plus LM head); used for utilization and power."""
    return _counts(instance, "flops", n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context)


def step_bytes(instance: Instance, n_prompts, sum_tokens, sum_sq_tokens, n_decode=0, sum_context=0):
    """Whole-step HBM bytes per GPU: weights once, activations, KV reads and writes."""
    return _counts(instance, "bytes", n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context)
