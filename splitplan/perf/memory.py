"""Memory fit of one instance: weights per GPU + KV cache + reserve <= what the engine may use per GPU.

What is left after weights and the engine's reserve is the KV cache, which bounds how many tokens
(prompts being prefilled plus contexts being decoded) the instance holds at once. Engines size it two
ways (serving/stack.py MemoryBasis): vLLM and SGLang take a fraction of the whole HBM and give the KV
pool what weights and activations leave of it; TensorRT-LLM gives the KV pool a fraction of the memory
left free after loading. The reserve (CUDA context, NCCL buffers, activations of the largest batch,
CUDA graphs) is a stack setting; aiconfigurator budgets NCCL 0.34-0.39 GB plus 3.5 GB "other" per GPU
(performance-model.md §6).

HBM capacities in the catalog are the datasheets' "GB", which are binary gigabytes: an H100 80GB
reports 81,559 MiB (85.5e9 bytes), an H200 141GB 143,771 MiB; so capacity = hbm_gb x 2^30.
"""

from __future__ import annotations

import math

from splitplan.errors import SplitplanError
from splitplan.perf import ops, ops_attention, ops_moe
from splitplan.perf.base import Instance
from splitplan.serving.stack import MemoryBasis, Scheduling

GIB = 2**30
DEFAULT_SCHEDULING = Scheduling()


def kv_heads_per_gpu(kv_heads: int, tp: int) -> float:
    return ops.kv_heads_per_gpu(kv_heads, tp)


def kv_bytes_per_token(instance: Instance) -> float:
    """KV bytes one token adds to the model's cache, one copy: every layer with full attention, all KV
    heads once (MLA: the latent once). What a transfer must move per prompt token; replicas on the GPUs
    of an attention group (GQA heads beyond the KV heads, MLA's latent on every rank) take memory
    (`kv_token_bytes_per_gpu`) but are not more cache. Sliding-window layers hold at most the window per
    sequence, a per-sequence amount (`window_bytes_per_sequence_per_gpu`), not a per-token one."""
    full, _ = ops_attention.full_and_sliding_layers(instance)
    return full * ops_attention.unique_kv_bytes_per_token_layer(instance)


def kv_token_bytes_per_gpu(instance: Instance) -> float:
    """Bytes per GPU one token of its attention group's sequences holds (full-attention layers)."""
    full, _ = ops_attention.full_and_sliding_layers(instance)
    return full * ops.kv_bytes_per_token_layer(instance)


def window_bytes_per_sequence_per_gpu(instance: Instance) -> float:
    """Bytes per GPU the sliding-window layers of one long sequence hold: the window, whatever the context."""
    _, sliding = ops_attention.full_and_sliding_layers(instance)
    return sliding * instance.model.sliding_window * ops.kv_bytes_per_token_layer(instance)


def weight_bytes_per_gpu(instance: Instance) -> float:
    """Weights in their formats per GPU: attention and dense MLPs over the attention group (replicated
    over dp groups), 1/tp of the routed experts (split over ep groups, each expert over tp/ep GPUs), the
    router, shared experts, and the 16-bit embedding and LM head."""
    m = instance.model
    weights = lambda gemms: sum(g.weight_bytes * g.k * g.n for g in gemms)  # noqa: E731
    total = m.layers * weights(ops.attention_gemms(instance))
    total += ops.dense_mlp_layers(instance) * weights(ops.dense_mlp_gemms(instance))
    moe = ops_moe.moe_layer(instance)
    if moe is not None:
        experts = moe.local_experts * weights(moe.experts_gemms)
        total += m.moe_layers * (experts + weights((moe.router,)) + weights(moe.shared))
    head = ops.lm_head(instance)
    embeddings = head.weight_bytes * head.k * head.n * (1 if getattr(m, "tied_embeddings", False) else 2)
    return total + embeddings


def hbm_bytes_per_gpu(instance: Instance) -> float:
    return instance.gpu.hbm_gb * GIB


def kv_pool_bytes_per_gpu(instance: Instance, scheduling: Scheduling = DEFAULT_SCHEDULING) -> float:
    """Bytes per GPU the engine gives its KV cache (may be <= 0: the model does not fit)."""
    hbm = hbm_bytes_per_gpu(instance)
    taken = weight_bytes_per_gpu(instance) + scheduling.reserve_gb * GIB
    if scheduling.memory_basis is MemoryBasis.FREE:
        return scheduling.memory_fraction * (hbm - taken)
    return scheduling.memory_fraction * hbm - taken


def check_fit(instance: Instance, scheduling: Scheduling = DEFAULT_SCHEDULING) -> None:
    """Raise a one-line SplitplanError when the weights (plus reserve) do not fit the tp GPUs."""
    model, machine, tp = instance.model, instance.machine, instance.tp
    if tp > machine.gpus:
        raise SplitplanError(f"tp={tp} is not a divisor of the {machine.gpus} GPUs of {machine.name}: instances "
                             f"spanning machines are not modelled", field="tp")
    if not machine.packs(tp):
        raise SplitplanError(f"tp={tp} is not a divisor of the {machine.gpus} GPUs of {machine.name}", field="tp")
    if kv_pool_bytes_per_gpu(instance, scheduling) - _window_reserve(instance, scheduling) <= 0:
        needs = weight_bytes_per_gpu(instance) * tp
        usable = hbm_bytes_per_gpu(instance) * tp
        raise SplitplanError(
            f"{model.name} ({instance.quant.label()}) does not fit {machine.name} at tp={tp}: needs "
            f"{needs / 1e9:.1f} GB of weights, has {usable / 1e9:.1f} GB, of which the engine keeps "
            f"{(1 - scheduling.memory_fraction) * 100:.0f}% plus {scheduling.reserve_gb:g} GB per GPU for itself"
            f"{_native_hint(instance)}")


def _native_hint(instance: Instance) -> str:
    """Where the run's weight formats are not the published checkpoint's: which formats that has (the
    formats default to BF16, which for DeepSeek, Kimi or gpt-oss is a copy nobody serves)."""
    model, quant = instance.model, instance.quant
    native = (model.native_weights, model.native_moe_weights if model.is_moe else model.native_weights)
    if (quant.weights.value, quant.experts.value) == native:
        return ""
    formats = f"weights {native[0]}" + (f", experts {native[1]}" if native[1] != native[0] else "")
    flags = "--weights" + (f" {native[0]} --moe-weights {native[1]}" if native[1] != native[0] else f" {native[0]}")
    return f"; its published checkpoint has {formats} ({flags}, or perf.weights/moe_weights in a scenario)"


def kv_capacity_tokens(instance: Instance, scheduling: Scheduling = DEFAULT_SCHEDULING) -> int:
    """Tokens of KV cache the instance holds after weights and reserve (raises if it does not fit)."""
    check_fit(instance, scheduling)
    free = kv_pool_bytes_per_gpu(instance, scheduling) - _window_reserve(instance, scheduling)
    return int(math.floor(free / kv_token_bytes_per_gpu(instance))) * max(instance.dp, 1)


def _window_reserve(instance: Instance, scheduling: Scheduling) -> float:
    """Bytes per GPU the sliding-window layers may hold: the window for each sequence the engine can run
    (its sequence limit per attention group, at most as many as the pool holds at one window each)."""
    per_seq = window_bytes_per_sequence_per_gpu(instance)
    if per_seq <= 0:
        return 0.0
    pool = kv_pool_bytes_per_gpu(instance, scheduling)
    at_one_window = per_seq + instance.model.sliding_window * kv_token_bytes_per_gpu(instance)
    seqs = min(scheduling.max_seqs / max(instance.dp, 1), max(pool, 0.0) / at_one_window)
    return seqs * per_seq


# SplitwiseSim's model sizes (configs/model_repo/sizes/*.yaml) and GPU memory (80 GiB per processor).
SPLITWISESIM_WEIGHT_BYTES = {"llama2-70b": 135e9, "bloom-176b": 329e9}
SPLITWISESIM_GIB = 2**30


def splitwisesim_kv_bytes_per_token(instance: Instance) -> float:
    """SplitwiseSim's KV size: 2 * hidden * layers * 2 bytes, as if every model were full MHA in FP16."""
    model = instance.model
    return 2.0 * model.hidden * model.layers * 2.0


def splitwisesim_kv_capacity_tokens(instance: Instance) -> int:
    """SplitwiseSim's capacity: tp * GPU memory - model weights (no reserve), in its KV size."""
    model = instance.model
    weights = SPLITWISESIM_WEIGHT_BYTES.get(model.name, model.params * 2.0)
    memory = instance.gpu.hbm_gb * SPLITWISESIM_GIB * instance.tp
    free = memory - weights
    if free <= 0:
        raise SplitplanError(
            f"{model.name} does not fit {instance.machine.name} at tp={instance.tp}: needs {weights / 1e9:.1f} GB "
            f"of weights, has {memory / 1e9:.1f} GB")
    return int(free // splitwisesim_kv_bytes_per_token(instance))
