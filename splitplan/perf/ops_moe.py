"""Mixture-of-experts operators of one MoE layer per GPU: router, routed experts, shared experts, all-to-all.

Layout of an instance of tp GPUs (perf/base.py Instance): the routed experts are split over `ep` groups
(E / ep experts each) and each expert over the tp / ep GPUs of its group (TP inside the expert), so every
GPU holds 1/tp of the expert weights whatever ep is. The router, the shared experts and the dense parts
run with the attention group (tp / dp GPUs, replicated dp times).

Routing, under uniform random top-k (the default; real routers are more skewed, `moe_imbalance`):

- a step of T tokens sends T x k rows to the experts; an expert-parallel group receives T k / ep on
  average, the busiest of the ep groups more: mean + c(ep) x sd, with c(ep) the expected maximum of ep
  standard normals and sd from the hypergeometric count of a token's k experts among the group's E/ep
  (1 for ep = 1, large for few tokens, -> 1 as T grows). The step waits for the busiest GPU, so it is
  priced as if it had T_eff = T x imbalance tokens;
- the expert weights a step reads are those of the experts that received a token: of E experts each
  is missed by one token with probability 1 - k/E, so E x (1 - (1 - k/E)^T) are touched (all of them
  only for large T: 8 of 128 at T = 1 for Qwen3-235B, 125.9 at T = 64).

Skewed routing (`moe_routing_cv` = cv > 0): a trained router sends a step's tokens to some experts more
than to others. The experts' shares of the routed tokens are taken as Gamma distributed with mean k/E and
coefficient of variation cv; then an expert is missed by T tokens with probability E[(1 - p)^T] =
(1 + cv^2 x)^(-1/cv^2), x = -T ln(1 - k/E), so fewer distinct experts are touched (fewer weights read) at
small and middle batches, and all of them again as T grows (cv -> 0 is the uniform formula above). The
same skew makes the expert-parallel groups' shares unequal: a group of E/ep experts holds a share with
relative sd cv sqrt((1 - 1/ep) / (E/ep)), which adds to the sampling variance and does not shrink with T.

Grouped GEMMs have their own efficiencies (serving/params.py moe_*): measured on an H200 they read the
touched experts at ~0.62 of HBM bandwidth, not the 0.85 of a dense GEMM (docs/kernel-measurements.md).

With attention data parallelism (dp > 1) a GPU's tokens are its group's, so the routed rows travel: an
all-to-all dispatch and combine of T x k x hidden x 2 bytes each way for the instance, 1/tp of it per
GPU, over NVLink. With dp = 1 the layer input is replicated and the combine is the TP all-reduce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from splitplan.perf.base import Instance
from splitplan.perf.ops_core import ACT_BYTES, Gemm, attention_tp, bf16_gemm, dense_format, expert_format


@dataclass(frozen=True)
class MoeLayer:
    """One MoE layer on one GPU: expert GEMM shards, router, shared experts and the routing statistics."""

    experts: int  # E, routed experts of the model
    top_k: int
    ep: int
    local_experts: int  # E / ep
    experts_gemms: tuple[Gemm, ...]  # gate/up and down of one expert, sharded over tp / ep
    router: Gemm
    shared: tuple[Gemm, ...]  # shared experts (a dense MLP on every token), with the attention group
    imbalance_c: float  # busiest-group excess: imbalance(T) = 1 + imbalance_c / sqrt(T)
    imbalance_max: float  # no group can get more than min(k, E/ep) of a token's k experts
    a2a: bool  # attention data parallelism: dispatch and combine all-to-all
    max_normal: float = 0.0  # c(ep): expected maximum of ep standard normals

    def imbalance(self, tokens, floor: float = 1.0, cv: float = 0.0):
        """Busiest expert-parallel group's routed rows over the mean, for `tokens` tokens in the step
        (`cv`: skew of the router's expert shares, module docstring)."""
        if self.ep == 1:
            return 1.0  # every GPU computes a shard of every row: nothing to wait for
        sampling = self.imbalance_c * self.imbalance_c / _max(tokens, 1.0)
        skew = (self.max_normal * cv) ** 2 * (1.0 - 1.0 / self.ep) / self.local_experts
        return _max(_min(1.0 + _sqrt(sampling + skew), self.imbalance_max), floor)

    def rows(self, effective_tokens):
        """Routed rows one GPU computes (all of its group's experts' rows)."""
        return effective_tokens * (self.top_k / self.ep)

    def touched(self, effective_tokens, cv: float = 0.0):
        """Expected local experts that receive at least one of `effective_tokens` tokens (`cv`: routing
        skew; 0 = uniform random)."""
        if cv <= 0.0:
            return self.local_experts * (1.0 - (1.0 - self.top_k / self.experts) ** effective_tokens)
        import numpy as np

        x = -math.log1p(-self.top_k / self.experts) * effective_tokens
        c = cv * cv  # (1 + c x)^(-1/c) through log1p: exact as c -> 0 (a fit starts there)
        return self.local_experts * (1.0 - np.exp(-np.log1p(c * x) / c))

    def expert_flops(self, tokens, floor: float = 1.0, cv: float = 0.0):
        t_eff = tokens * self.imbalance(tokens, floor, cv)
        return sum(2.0 * self.rows(t_eff) * g.k * g.n for g in self.experts_gemms)

    def expert_bytes(self, tokens, floor: float = 1.0, cv: float = 0.0):
        t_eff = tokens * self.imbalance(tokens, floor, cv)
        rows, touched = self.rows(t_eff), self.touched(t_eff, cv)
        return sum(touched * g.weight_bytes * g.k * g.n + ACT_BYTES * rows * (g.k + g.n) for g in self.experts_gemms)


def moe_layer(instance: Instance) -> MoeLayer | None:
    """The MoE layer of an instance of an MoE model (None for dense models)."""
    m = instance.model
    if not m.is_moe:
        return None
    ep, moe_tp = instance.ep, max(instance.tp // instance.ep, 1)
    wb, dtype, weight_only = expert_format(instance)
    up = (2 if m.gated_mlp else 1) * m.expert_ffn
    experts = (Gemm("expert_up", m.hidden, up / moe_tp, wb, dtype, weight_only),
               Gemm("expert_down", m.expert_ffn / moe_tp, m.hidden, wb, dtype, weight_only))
    shared: tuple[Gemm, ...] = ()
    if m.shared_experts:
        t = attention_tp(instance)
        swb, sdtype, swo = dense_format(instance)
        width = m.shared_experts * m.shared_expert_ffn
        sup = (2 if m.gated_mlp else 1) * width
        shared = (Gemm("shared_up", m.hidden, sup / t, swb, sdtype, swo),
                  Gemm("shared_down", width / t, m.hidden, swb, sdtype, swo))
    c, cap = _imbalance_coefficients(m.experts, m.experts_per_token, ep)
    return MoeLayer(m.experts, m.experts_per_token, ep, m.experts // ep, experts,
                    bf16_gemm("router", m.hidden, m.experts, replicated=True), shared, c, cap, instance.dp > 1,
                    expected_max_normal(ep))


def a2a_bytes_per_gpu(instance: Instance, tokens):
    """Bytes one GPU sends (and receives) in one all-to-all: T x k x hidden x 2 bytes over the tp GPUs."""
    m = instance.model
    return tokens * m.experts_per_token * m.hidden * ACT_BYTES / instance.tp


@lru_cache(maxsize=64)
def expected_max_normal(n: int) -> float:
    """E[max of n independent standard normals] (0.56 for 2, 1.03 for 4, 1.42 for 8), by quadrature."""
    if n <= 1:
        return 0.0
    step, total = 0.002, 0.0
    for i in range(-6000, 6001):  # x in [-12, 12]
        x = i * step
        pdf = math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        cdf = 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))
        total += x * n * pdf * cdf ** (n - 1) * step
    return total


def _imbalance_coefficients(experts: int, top_k: int, ep: int) -> tuple[float, float]:
    """(c, cap) of imbalance(T) = min(1 + c / sqrt(T), cap) under uniform random top-k routing."""
    if ep <= 1:
        return 0.0, 1.0
    share = 1.0 / ep
    # a token's k distinct experts that land in one group of E/ep: hypergeometric mean k/ep, variance v
    var = top_k * share * (1.0 - share) * (experts - top_k) / max(experts - 1, 1)
    mean = top_k * share
    cap = min(top_k, experts // ep) / mean
    return expected_max_normal(ep) * math.sqrt(var) / mean, cap


def _sqrt(x):
    return x ** 0.5


def _max(a, b):
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.maximum(a, b)
    return a if a >= b else b


def _min(a, b):
    import numpy as np

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.minimum(a, b)
    return a if a <= b else b
