"""Memory fit of one instance: weights / tp + KV cache + reserve <= HBM per GPU.

What is left after weights and the reserve is the KV cache, which bounds how many tokens (prompts
being prefilled plus contexts being decoded) the instance holds at once. The reserve is what a serving
engine keeps for itself: the CUDA context, NCCL buffers and allocator slack (aiconfigurator budgets
NCCL 0.34-0.39 GB plus 3.5 GB "other" per GPU, performance-model.md §6) plus activations of the
largest batch (a few hundred MB for 70B-class models at 8k batched tokens).
"""

from __future__ import annotations

import math

from splitplan.errors import SplitplanError
from splitplan.perf.base import Instance

GB = 1e9  # datasheet gigabytes: HBM sizes are quoted in GB (conservative versus GiB)
RUNTIME_RESERVE_BYTES = 4.0e9  # CUDA context + NCCL + allocator slack per GPU
ACTIVATION_TOKENS = 8192  # activations budgeted for this many batched tokens
ACTIVATION_BYTES_PER_TOKEN_HIDDEN = 2.0 * 6  # ~6 live bf16 hidden-sized tensors per token


def kv_heads_per_gpu(kv_heads: int, tp: int) -> float:
    """KV heads each GPU stores: split across tp, replicated when tp exceeds kv_heads (GQA)."""
    return max(kv_heads / tp, 1.0)


def kv_bytes_per_token(instance: Instance) -> float:
    """KV bytes one token occupies across the whole instance (replicas of shared heads included)."""
    model = instance.model
    per_gpu = 2 * model.layers * kv_heads_per_gpu(model.kv_heads, instance.tp) * model.head_dim * model.dtype_bytes
    return per_gpu * instance.tp


def weight_bytes_per_gpu(instance: Instance) -> float:
    return instance.model.weight_bytes / instance.tp


def reserve_bytes_per_gpu(instance: Instance) -> float:
    """Runtime reserve plus activations of ACTIVATION_TOKENS batched tokens (sharded MLP included)."""
    model = instance.model
    activations = ACTIVATION_TOKENS * (ACTIVATION_BYTES_PER_TOKEN_HIDDEN * model.hidden + 2.0 * 2 * model.ffn / instance.tp)
    return RUNTIME_RESERVE_BYTES + activations


def hbm_bytes_per_gpu(instance: Instance) -> float:
    return instance.gpu.hbm_gb * GB


def check_fit(instance: Instance) -> None:
    """Raise a one-line SplitplanError when the weights (plus reserve) do not fit the tp GPUs."""
    model, machine, tp = instance.model, instance.machine, instance.tp
    if tp < 1 or tp > machine.gpus or machine.gpus % tp:
        raise SplitplanError(f"tp={tp} is not a divisor of the {machine.gpus} GPUs of {machine.name}", field="tp")
    needs = model.weight_bytes
    has = hbm_bytes_per_gpu(instance) * tp
    free = hbm_bytes_per_gpu(instance) - weight_bytes_per_gpu(instance) - reserve_bytes_per_gpu(instance)
    if free <= 0:
        reserve = reserve_bytes_per_gpu(instance) * tp
        raise SplitplanError(
            f"{model.name} does not fit {machine.name} at tp={tp}: needs {needs / GB:.1f} GB of weights, "
            f"has {has / GB:.1f} GB (of which {reserve / GB:.1f} GB is kept as runtime reserve)")


def kv_capacity_tokens(instance: Instance) -> int:
    """Tokens of KV cache the instance holds after weights and reserve (raises if it does not fit)."""
    check_fit(instance)
    free_per_gpu = hbm_bytes_per_gpu(instance) - weight_bytes_per_gpu(instance) - reserve_bytes_per_gpu(instance)
    per_token_per_gpu = kv_bytes_per_token(instance) / instance.tp
    return int(math.floor(free_per_gpu / per_token_per_gpu))


# SplitwiseSim's model sizes (configs/model_repo/sizes/*.yaml) and GPU memory (80 GiB per processor).
SPLITWISESIM_WEIGHT_BYTES = {"llama2-70b": 135e9, "bloom-176b": 329e9}
SPLITWISESIM_GIB = 2**30


def splitwisesim_kv_bytes_per_token(instance: Instance) -> float:
    """SplitwiseSim's KV size: 2 * hidden * layers * dtype bytes, as if every model were full MHA."""
    model = instance.model
    return 2.0 * model.hidden * model.layers * model.dtype_bytes


def splitwisesim_kv_capacity_tokens(instance: Instance) -> int:
    """SplitwiseSim's capacity: tp * GPU memory - model weights (no reserve), in its KV size."""
    model = instance.model
    weights = SPLITWISESIM_WEIGHT_BYTES.get(model.name, model.weight_bytes)
    memory = instance.gpu.hbm_gb * SPLITWISESIM_GIB * instance.tp
    free = memory - weights
    if free <= 0:
        raise SplitplanError(
            f"{model.name} does not fit {instance.machine.name} at tp={instance.tp}: needs {weights / GB:.1f} GB "
            f"of weights, has {memory / GB:.1f} GB")
    return int(free // splitwisesim_kv_bytes_per_token(instance))
