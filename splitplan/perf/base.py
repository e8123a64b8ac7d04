"""The interface every performance backend implements, and the settings that choose one.

A `PerfModel` predicts iteration times of one serving *instance* (a model on `tp` GPUs of a machine,
quantized per component, run by one serving stack). Every method takes batch *statistics*, not
per-request arrays, because that is all the physics needs (linear layers see the token count, causal
attention the number of query-key pairs, decode attention the summed context) and because it keeps
the simulator's hot path to a few float operations. Arguments may be Python scalars (fast path,
returns float) or numpy arrays of equal shape (vectorized path, returns an array).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from splitplan.catalog import GPU, Machine, Model
from splitplan.serving.quant import BF16, ComputeDtype, Quant, compute_dtype


@dataclass(frozen=True)
class Instance:
    """One model replica: `tp` GPUs of a machine running a model quantized as `quant`.

    `ep`: the routed experts are split over `ep` of the instance's GPUs (expert parallelism; 1 = every
    GPU holds a TP shard of every expert). `dp`: attention runs data-parallel over `dp` groups of tp/dp
    GPUs each (attention data parallelism, for MoE and MLA models). Both divide tp."""

    model: Model
    machine: Machine
    gpu: GPU
    tp: int
    quant: Quant = BF16
    ep: int = 1
    dp: int = 1

    @property
    def per_machine(self) -> int:
        """How many instances one machine holds."""
        return self.machine.gpus // self.tp

    @property
    def dense_compute(self) -> tuple[ComputeDtype, bool]:
        """(compute dtype, weight-only) of the dense GEMMs on this GPU."""
        return compute_dtype(self.quant.weights, gpu_supports(self.gpu))

    @property
    def label(self) -> str:
        shape = f"tp={self.tp}" + (f" ep={self.ep}" if self.ep > 1 else "") + (f" dp={self.dp}" if self.dp > 1 else "")
        return f"{self.model.name} on {self.machine.name} {shape} ({self.quant.label()})"


def gpu_supports(gpu: GPU):
    """A predicate dtype -> whether the GPU has tensor cores for it (datasheet peak above zero)."""
    return gpu.supports


def peak_flops_per_ms(gpu: GPU, dtype: ComputeDtype | str) -> float:
    """Dense peak of a compute dtype, FLOP per millisecond (0 if the GPU lacks those units)."""
    return gpu.peak_tflops(dtype.value if isinstance(dtype, ComputeDtype) else str(dtype)) * 1e9


@runtime_checkable
class PerfModel(Protocol):
    """Iteration-time predictions for one instance. Times in milliseconds."""

    instance: Instance
    provenance: str  # e.g. "stack vllm-0.12 (vllm 0.11 - 0.13): calibrated on hopper (...)"

    def prefill_ms(self, n_prompts, sum_tokens, sum_sq_tokens):
        """One prefill iteration over whole prompts totalling `sum_tokens` (sum of squares given)."""

    def decode_ms(self, batch_size, sum_context):
        """One decode step of `batch_size` sequences whose context lengths sum to `sum_context`."""

    def decode_coeffs(self, batch_size: int) -> tuple[float, float]:
        """(base_ms, ms_per_context_token): decode_ms(b, s) == base_ms + ms_per_context_token * s.

        Lets the simulator advance a decode batch over many steps in closed form (contexts grow by
        `batch_size` tokens per step, so step k costs base + per * (s0 + k * b))."""

    def mixed_ms(self, n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context):
        """One iteration holding whole prompts and decode sequences together (SplitwiseSim mixed)."""

    def chunk_ms(self, n_chunks, chunk_tokens, pairs, pairs_per_len, prefix_tokens, n_last, n_decode, sum_context):
        """One iteration of prompt chunks (with cached prefixes) and decodes (chunked prefill).

        `pairs` = sum over chunks of c*p + c^2/2 (causal query-key pairs of a chunk of c new tokens
        after p cached ones), `pairs_per_len` = sum of pairs / (p + c) (attention efficiency grows
        with the sequence), `prefix_tokens` = sum of p (KV read), `n_last` = chunks that finish their
        prompt (they need logits)."""

    def kv_capacity_tokens(self) -> int:
        """KV-cache tokens the instance holds after weights and reserve (memory fit)."""

    def kv_bytes_per_token(self) -> float:
        """KV bytes one token occupies (whole model, all TP shards)."""


@dataclass(frozen=True)
class PerfSettings:
    """How to build performance models: which backend, stack and quantization, and compat quirks.

    backend: "analytic" (stack parameters over datasheet physics) or "profile" (a measured table).
    profile_path: the measured table for the profile backend (SplitwiseSim perf_model.csv format).
    stack: a bundled stack name or a stack YAML path (None: the default stack).
    compat: None, or "splitwisesim" to copy SplitwiseSim's documented modelling choices.
    quant: weights, expert weights and KV-cache formats.
    scheduling: overrides of the stack's scheduling defaults, as sorted (field, value) pairs (a
        scenario's `serving:` section: token budget, sequence limit, batching and KV policy).
    """

    backend: str = "analytic"
    profile_path: str | None = None
    stack: str | None = None
    compat: str | None = None
    quant: Quant = field(default=BF16)
    scheduling: tuple[tuple[str, Any], ...] = ()
