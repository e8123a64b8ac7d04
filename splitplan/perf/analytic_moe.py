"""Time of one MoE layer on one GPU (analytic backend): router, shared experts, grouped expert GEMMs,
the layer's small kernels, and its collective (the TP all-reduce, or a dispatch and combine all-to-all
under attention data parallelism). Operator counts: perf/ops_moe.py.

A grouped GEMM takes `t0 + (tc^n + tm^n)^(1/n)` like a dense one, with its own constants (`moe_*`):
tc = 2 x rows x K x N / (moe_eta_c x peak of its compute dtype), tm = (touched experts x K x N x
weight bytes + rows x (K + N) x 2) / (moe_eta_m x HBM), where rows and touched experts are those of the
busiest expert-parallel GPU (ops_moe.MoeLayer). Nothing here depends on the context lengths, so decode
steps stay exactly linear in the summed context.
"""

from __future__ import annotations

from splitplan.perf.base import Instance, peak_flops_per_ms
from splitplan.perf.ops_core import ACT_BYTES
from splitplan.perf.ops_moe import a2a_bytes_per_gpu, moe_layer
from splitplan.serving.params import StackParams


def _pnorm(a, b, n: float):
    """(a^n + b^n)^(1/n) for a, b >= 0 (scalars or arrays), without overflow or 0/0."""
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        hi, lo = np.maximum(a, b), np.minimum(a, b)
        return np.where(hi > 0, hi * (1.0 + (lo / np.where(hi > 0, hi, 1.0)) ** n) ** (1.0 / n), 0.0)
    hi, lo = (a, b) if a >= b else (b, a)
    return hi * (1.0 + (lo / hi) ** n) ** (1.0 / n) if hi > 0 else 0.0


class MoeTiming:
    """Precomputed constants of one MoE layer of an instance under one stack's parameters."""

    def __init__(self, instance: Instance, params: StackParams, stretch: float, bw: float, dense_coeffs):
        p, g = params, instance.gpu
        layer = moe_layer(instance)
        assert layer is not None
        self.layer = layer
        self._floor = p.moe_imbalance
        self._cv = p.moe_routing_cv
        self._t0 = p.moe_t0_us * 1e-3
        self._n = p.moe_smooth_n
        self._experts = []  # per expert GEMM: (ms per row compute, ms per touched expert, ms per row traffic)
        for gemm in layer.experts_gemms:
            eta = p.moe_eta_c(gemm.dtype.value, gemm.weight_only)
            peak = peak_flops_per_ms(g, gemm.dtype)
            self._experts.append((2.0 * gemm.k * gemm.n * stretch / (eta * peak),
                                  gemm.weight_bytes * gemm.k * gemm.n / (p.moe_eta_m * bw),
                                  ACT_BYTES * (gemm.k + gemm.n) / (p.moe_eta_m * bw)))
        self._router = dense_coeffs(layer.router, stretch, bw)
        self._shared = tuple(dense_coeffs(s, stretch, bw) for s in layer.shared)
        # top-k, permute and unpermute, activation: floors plus moving each routed row in and out twice
        m = instance.model
        self._small_t0 = p.moe_kernels * p.elem_t0_us * 1e-3
        self._small_per_row = 4.0 * ACT_BYTES * m.hidden / (p.eta_m * bw)
        self._a2a = layer.a2a and instance.tp > 1
        self._a2a_alpha = p.a2a_alpha_us * 1e-3
        self._a2a_per_token = a2a_bytes_per_gpu(instance, 1.0) / (p.a2a_bw_fraction * g.nvlink_gbps * 1e6)
        ar = 2.0 if self._a2a else (1.0 if instance.tp > 1 else 0.0)
        self.kernels = 1.0 + len(self._experts) + p.moe_kernels + len(self._shared) + ar  # for the launch stream

    def grouped_gemms_ms(self, rows, touched):
        """The expert GEMMs (gate/up, down) of one GPU over `rows` routed rows and `touched` local experts."""
        total = 0.0
        for per_row, per_expert, traffic in self._experts:
            total = total + self._t0 + _pnorm(per_row * rows, per_expert * touched + traffic * rows, self._n)
        return total

    def experts_ms(self, tokens):
        """The routed experts for `tokens` tokens of the instance, on the busiest GPU: grouped GEMMs and
        the layer's small kernels."""
        layer = self.layer
        effective = tokens * layer.imbalance(tokens, self._floor, self._cv)
        rows = layer.rows(effective)
        return self.grouped_gemms_ms(rows, layer.touched(effective, self._cv)) + self._small_t0 + self._small_per_row * rows

    def layer_ms(self, tokens, group_tokens, gemm_ms, all_reduce_ms):
        """One MoE layer: router and shared experts on the group's tokens, experts on all, the collective."""
        total = gemm_ms(self._router, group_tokens) + self.experts_ms(tokens)
        for coeffs in self._shared:
            total = total + gemm_ms(coeffs, group_tokens)
        if self._a2a:
            return total + 2.0 * (self._a2a_alpha + tokens * self._a2a_per_token)
        return total + all_reduce_ms(group_tokens)
