"""The interface every performance backend implements, and the settings that choose one.

A `PerfModel` predicts iteration times of one serving *instance* (a model on `tp` GPUs of a machine).
Every method takes batch *statistics*, not per-request arrays, because that is all the physics needs
(linear layers see the token count, causal attention the sum of squared prompt lengths, decode
attention the summed context) and because it keeps the simulator's hot path to a few float
operations. Arguments may be Python scalars (fast path, returns float) or numpy arrays of equal shape
(vectorized path, returns an array).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from splitplan.catalog import GPU, Machine, Model


@dataclass(frozen=True)
class Instance:
    """One model replica: `tp` GPUs of a machine running a model in a compute dtype."""

    model: Model
    machine: Machine
    gpu: GPU
    tp: int
    dtype: str = "bf16"  # "bf16" or "fp8" compute; weights/KV bytes come from model.dtype_bytes

    @property
    def per_machine(self) -> int:
        """How many instances one machine holds."""
        return self.machine.gpus // self.tp


@runtime_checkable
class PerfModel(Protocol):
    """Iteration-time predictions for one instance. Times in milliseconds."""

    instance: Instance
    provenance: str  # e.g. "calibrated (vllm-2023, splitwisesim profile)", "spec defaults", "profile table"

    def prefill_ms(self, n_prompts, sum_tokens, sum_sq_tokens):
        """One prefill iteration over `n_prompts` prompts totalling `sum_tokens` (sum of squares given)."""

    def decode_ms(self, batch_size, sum_context):
        """One decode step of `batch_size` sequences whose context lengths sum to `sum_context`."""

    def decode_coeffs(self, batch_size: int) -> tuple[float, float]:
        """(base_ms, ms_per_context_token): decode_ms(b, s) == base_ms + ms_per_context_token * s.

        Lets the simulator advance a decode batch over many steps in closed form (contexts grow by
        `batch_size` tokens per step, so step k costs base + per * (s0 + k * b))."""

    def mixed_ms(self, n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context):
        """One continuous-batching iteration holding prompt chunks and decode sequences together."""

    def kv_capacity_tokens(self) -> int:
        """KV-cache tokens the instance holds after weights and reserve (memory fit)."""

    def kv_bytes_per_token(self) -> float:
        """KV bytes one token occupies (whole model, all TP shards)."""


@dataclass(frozen=True)
class PerfSettings:
    """How to build performance models: which backend, its data, and compatibility quirks.

    backend: "analytic" (calibrated roofline) or "profile" (interpolate a measured table).
    profile_path: the measured table for the profile backend (SplitwiseSim perf_model.csv format).
    calibration_paths: calibration YAMLs for the analytic backend (default: the bundled ones).
    compat: None, or "splitwisesim" to copy SplitwiseSim's documented modelling choices.
    dtype: compute dtype, "bf16" or "fp8".
    """

    backend: str = "analytic"
    profile_path: str | None = None
    calibration_paths: tuple[str, ...] = ()
    compat: str | None = None
    dtype: str = "bf16"
