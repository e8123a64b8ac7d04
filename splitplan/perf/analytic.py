"""Analytic backend: operators x hardware x stack, summed per iteration.

Each GEMM takes `t0 + (tc^n + tm^n)^(1/n)` with tc = FLOPs / (eta_c(M) x peak of its compute dtype)
and tm = bytes in its formats / (eta_m x HBM bandwidth), which fits measured GEMMs better than a hard
max (performance-model.md §3.1); eta_c(M) = eta_c x M / (M + m_half) makes compute efficiency grow
with the token count, so tc is linear in M. Prefill attention is compute on causal query-key pairs
(efficiency eta_fa x s / (s + s_half), growing with the sequence) against the KV and Q/O traffic; decode
attention is the KV read at eta_kv of HBM bandwidth. Per layer: the attention projections, attention,
elementwise kernels and an all-reduce, then a dense MLP and its all-reduce, or an MoE block
(analytic_moe.py: router, grouped expert GEMMs, shared experts, all-reduce or all-to-all); then the
LM head on the tokens that need logits; then the host's time (per iteration, per sequence, per prompt
token), of which `host_overlap` hides a share under the GPU. Dense parts see one attention group's
tokens (1/dp of the instance's); MLA decode costs the larger of its compute and its latent read per
context token; sliding-window layers read at most the window (performance-model.md, MoE/MLA section).

Decode attention is memory-bound (~8 FLOP/B for GQA against a ridge of 150-300), so a decode step is
exactly linear in the summed context for a given batch size; this is what lets the simulator advance
many decode steps in closed form (`decode_coeffs`).

Host and GPU run as two streams (eager execution, performance-model.md §7.1): the host launches every
kernel (`launch_us` each, plus `prompt_layer_us` per layer when prompts are in the iteration) while
the GPU works through them, so the iteration takes the smooth max of the two streams; the scheduler,
sampler and input-preparation costs (per iteration, sequence, prompt, prompt token) are serial and
add. The decode KV read is added outside the max, so a decode step stays exactly linear in the summed
context. With `launch_us` = `prompt_layer_us` = 0 (stacks with CUDA graphs) the max is the GPU time.
Iterations above `ar_big_tokens` tokens run their all-reduces at `ar_big_bw_fraction` (a second,
slower regime that the 2023 vLLM profile shows; 0 disables it).

All per-instance constants are precomputed in __init__, so one scalar call is a few dozen float
operations (plain Python); numpy arrays go through the same arithmetic element-wise.
"""

from __future__ import annotations

import numpy as np

from splitplan.perf import ops, ops_attention
from splitplan.perf.analytic_moe import MoeTiming
from splitplan.perf.base import Instance, peak_flops_per_ms
from splitplan.perf.memory import DEFAULT_SCHEDULING, kv_bytes_per_token, kv_capacity_tokens
from splitplan.perf.power import cap_stretch
from splitplan.serving.params import StackParams
from splitplan.serving.stack import Scheduling

STREAM_SHARPNESS = 20.0  # exponent of the smooth max of the host launch and GPU streams (within 3.5% of max at a tie)
BIG_SHARPNESS = 6.0  # logistic step in log tokens of the big-iteration all-reduce regime (10%-90% over 0.7-1.4x)
TABLE_THRESHOLD = 4096  # decode arrays longer than this with whole batch sizes go through a lookup table
TABLE_MAX_BATCH = 1 << 16


def _as_float(x):
    """Arrays become float arrays (so integer inputs do not overflow in s^2); scalars stay scalars."""
    if isinstance(x, np.ndarray):
        return x.astype(float)
    if isinstance(x, (list, tuple)):
        return np.asarray(x, dtype=float)
    return float(x)


def _positive(x):
    """1.0 where x > 0, else 0.0 (scalar or array)."""
    if isinstance(x, np.ndarray):
        return (x > 0).astype(float)
    return 1.0 if x > 0 else 0.0


def smooth_max(a, b, n: float = STREAM_SHARPNESS):
    """(a^n + b^n)^(1/n) for a, b >= 0, computed as hi * (1 + (lo/hi)^n)^(1/n) (no overflow)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        hi, lo = np.maximum(a, b), np.minimum(a, b)
        return np.where(hi > 0, hi * (1.0 + (lo / np.where(hi > 0, hi, 1.0)) ** n) ** (1.0 / n), 0.0)
    hi, lo = (a, b) if a >= b else (b, a)
    return hi * (1.0 + (lo / hi) ** n) ** (1.0 / n) if hi > 0 else 0.0


def big_share(tokens, big_tokens: float):
    """Smooth 0 -> 1 step of an iteration's tokens across `big_tokens` (logistic in log tokens)."""
    if isinstance(tokens, np.ndarray):
        safe = np.maximum(tokens, 1e-9)
        return np.where(tokens > 0, 1.0 / (1.0 + (big_tokens / safe) ** BIG_SHARPNESS), 0.0)
    return 1.0 / (1.0 + (big_tokens / tokens) ** BIG_SHARPNESS) if tokens > 0 else 0.0


class AnalyticPerfModel:
    """The analytic PerfModel of one instance under one stack's parameters."""

    def __init__(self, instance: Instance, params: StackParams, provenance: str,
                 scheduling: Scheduling = DEFAULT_SCHEDULING, apply_cap: bool = True):
        self.instance = instance
        self.params = params
        self.provenance = provenance
        self.scheduling = scheduling
        m, g, t, p = instance.model, instance.gpu, instance.tp, params
        ta = ops.attention_tp(instance)  # GPUs of one attention group (tp / dp)
        bw = g.hbm_gbps * 1e6  # bytes per ms
        self.compute_stretch = cap_stretch(instance, params) if apply_cap else 1.0
        stretch = self.compute_stretch
        self._share = 1.0 / instance.dp  # one attention group's part of the instance's tokens
        self._n = p.smooth_n
        self._inv_n = 1.0 / p.smooth_n
        self._layers = float(m.layers)
        full, sliding = ops_attention.full_and_sliding_layers(instance)
        self._full, self._sliding, self._window = float(full), float(sliding), float(m.sliding_window)
        self._mlp_layers = float(ops.dense_mlp_layers(instance))
        self._moe_layers = float(m.moe_layers)
        self._gemm_t0 = p.gemm_t0_us * 1e-3
        self._m_half = p.gemm_m_half
        # GEMMs: tc = c * (M + m_half), tm = w + M * a; one (c, w, a) per GEMM
        self._attn_gemms = tuple(self._gemm_coeffs(gm, stretch, bw) for gm in ops.attention_gemms(instance))
        self._mlp_gemms = tuple(self._gemm_coeffs(gm, stretch, bw) for gm in ops.dense_mlp_gemms(instance))
        self._head = self._gemm_coeffs(ops.lm_head(instance), stretch, bw)
        # prefill attention: compute per pair (efficiency growing with the sequence), traffic per token
        bf16_peak = peak_flops_per_ms(g, "bf16")
        self._fa_c = ops.attention_flops_per_pair(instance) * stretch / (p.eta_fa * bf16_peak)
        self._fa_half = p.fa_s_half
        kv_layer = ops.kv_bytes_per_token_layer(instance)
        self._fa_new = (ops.qo_bytes_per_token_layer(instance) + kv_layer) / (p.eta_m * bw)
        self._fa_prefix = kv_layer / (p.eta_m * bw)
        self._attn_t0 = p.attn_t0_us * 1e-3
        # decode attention: the KV read (MLA absorbed: the larger of its compute and its latent read) per
        # context token of the full layers, linear in the summed context; sliding layers read the window
        eta_kv = p.eta_kv_fp8 if instance.quant.kv.value == "fp8" else p.eta_kv
        per_ctx = kv_layer / (eta_kv * bw)
        if m.is_mla:
            per_ctx = max(per_ctx, ops_attention.decode_flops_per_context_token(instance) * stretch
                          / (p.eta_mla * bf16_peak))
        self._kv_ms_per_token = full * per_ctx * self._share
        self._window_ms_per_seq = sliding * m.sliding_window * per_ctx * self._share
        # elementwise kernels: read + write one hidden-sized 16-bit tensor each, not sharded
        self._elem_t0 = p.elem_kernels * p.elem_t0_us * 1e-3
        self._elem_per_token = p.elem_kernels * 2.0 * ops.ACT_BYTES * m.hidden / (p.eta_m * bw)
        # all-reduce inside the attention group: after attention and after every MLP (dp = 1: also the MoE
        # combine); ring bytes 2(t-1)/t x message over the bus bandwidth
        self._ar_big_extra = 0.0  # extra ms per token of every all-reduce in iterations above ar_big_tokens
        self._big_tokens = p.ar_big_tokens
        if ta > 1:
            busbw = max(p.ar_bw_fraction * g.nvlink_gbps, 1e-9) * 1e6
            ring = 2.0 * (ta - 1) / ta * m.hidden * ops.ACT_BYTES
            self._ar_alpha = p.ar_alpha_ms(ta)
            self._ar_per_token = ring / busbw
            if 0.0 < p.ar_big_bw_fraction < p.ar_bw_fraction:
                self._ar_big_extra = ring / (p.ar_big_bw_fraction * g.nvlink_gbps * 1e6) - self._ar_per_token
        else:
            self._ar_alpha = 0.0
            self._ar_per_token = 0.0
        self._moe = MoeTiming(instance, p, stretch, bw, self._gemm_coeffs) if m.is_moe else None
        # host launch stream: every kernel of every layer, overlapping the GPU
        ar = 1.0 if ta > 1 else 0.0
        kernels = m.layers * (len(self._attn_gemms) + 1.0 + p.elem_kernels + ar)
        kernels += self._mlp_layers * (len(self._mlp_gemms) + ar)
        kernels += self._moe_layers * (self._moe.kernels if self._moe else 0.0)
        self._launch = kernels * p.launch_us * 1e-3
        self._launch_prompt = m.layers * p.prompt_layer_us * 1e-3
        host = 1.0 - p.host_overlap
        self._step = p.step_overhead_ms(t) * host
        self._seq = p.seq_us * 1e-3 * host
        self._prompt_seq = p.prompt_seq_ms * host
        self._prompt_token = p.prompt_token_us * 1e-3 * host
        self.api_ms = p.api_ms
        self._kv_bytes = kv_bytes_per_token(instance)
        self._decode_cache: dict[float, tuple[float, float]] = {}

    def _gemm_coeffs(self, gemm: ops.Gemm, stretch: float, bw: float) -> tuple[float, float, float]:
        p, g = self.params, self.instance.gpu
        peak = peak_flops_per_ms(g, gemm.dtype)
        eta = p.eta_c(gemm.dtype.value, gemm.weight_only)
        c = 2.0 * gemm.k * gemm.n * stretch / (eta * peak)
        return c, gemm.weight_bytes * gemm.k * gemm.n / (p.eta_m * bw), ops.ACT_BYTES * (gemm.k + gemm.n) / (p.eta_m * bw)

    # ---- building blocks -------------------------------------------------------------------
    def _gemm_ms(self, coeffs, tokens):
        c, w, a = coeffs
        tm = w + tokens * a  # > 0 (weights), so the smooth max is tm * (1 + (tc/tm)^n)^(1/n)
        return self._gemm_t0 + tm * (1.0 + (c * (tokens + self._m_half) / tm) ** self._n) ** self._inv_n

    def _all_reduce_ms(self, tokens):
        if not self._ar_per_token:
            return 0.0
        per_token = self._ar_per_token
        if self._ar_big_extra:
            per_token = per_token + self._ar_big_extra * big_share(tokens, self._big_tokens)
        return self._ar_alpha + tokens * per_token

    def _linear_ms(self, tokens, logit_tokens):
        """All layers' GEMMs, elementwise kernels and collectives over `tokens` (the instance's), plus the
        LM head; dense parts see one attention group's share of them, the experts all of them."""
        group = tokens * self._share
        attention = self._elem_t0 + group * self._elem_per_token + self._all_reduce_ms(group)
        for coeffs in self._attn_gemms:
            attention = attention + self._gemm_ms(coeffs, group)
        total = self._layers * attention
        if self._mlp_layers:
            mlp = self._all_reduce_ms(group)
            for coeffs in self._mlp_gemms:
                mlp = mlp + self._gemm_ms(coeffs, group)
            total = total + self._mlp_layers * mlp
        if self._moe is not None:
            total = total + self._moe_layers * self._moe.layer_ms(tokens, group, self._gemm_ms, self._all_reduce_ms)
        return total + self._gemm_ms(self._head, logit_tokens * self._share)

    def _attention_layer_ms(self, new_tokens, pairs, pairs_per_len, prefix_tokens):
        tc = self._fa_c * (pairs + self._fa_half * pairs_per_len)
        tm = new_tokens * self._fa_new + prefix_tokens * self._fa_prefix
        n, inv = self._n, self._inv_n
        if isinstance(tm, np.ndarray):
            safe = np.maximum(tm, 1e-30)
            return np.where(tm > 0, self._attn_t0 + safe * (1.0 + (tc / safe) ** n) ** inv, 0.0)
        if new_tokens <= 0:
            return 0.0
        return self._attn_t0 + tm * (1.0 + (tc / tm) ** n) ** inv

    def _prefill_attention_ms(self, new_tokens, pairs, pairs_per_len, prefix_tokens, n_chunks=1.0):
        s = self._share
        new, pairs, per_len, prefix = new_tokens * s, pairs * s, pairs_per_len * s, prefix_tokens * s
        total = self._full * self._attention_layer_ms(new, pairs, per_len, prefix)
        if self._sliding:  # at most `window` keys per query: pairs, efficiency and prefix read of a window
            w = self._window
            wpairs = ops_attention.sliding_pairs(pairs, new, w)
            wlen = np.maximum(per_len, wpairs / w) if isinstance(wpairs, np.ndarray) else max(per_len, wpairs / w)
            wprefix = ops_attention.sliding_pairs(prefix, n_chunks * s, w)
            total = total + self._sliding * self._attention_layer_ms(new, wpairs, wlen, wprefix)
        return total

    def _host_ms(self, n_seqs, n_prompts, prompt_tokens):
        return self._step + self._seq * n_seqs + self._prompt_seq * n_prompts + self._prompt_token * prompt_tokens

    # ---- PerfModel --------------------------------------------------------------------------
    def chunk_ms(self, n_chunks, chunk_tokens, pairs, pairs_per_len, prefix_tokens, n_last, n_decode, sum_context):
        n_chunks, chunk_tokens, pairs = _as_float(n_chunks), _as_float(chunk_tokens), _as_float(pairs)
        pairs_per_len, prefix_tokens, n_last = _as_float(pairs_per_len), _as_float(prefix_tokens), _as_float(n_last)
        n_decode, sum_context = _as_float(n_decode), _as_float(sum_context)
        gpu = (self._linear_ms(chunk_tokens + n_decode, n_last + n_decode)
               + self._prefill_attention_ms(chunk_tokens, pairs, pairs_per_len, prefix_tokens, n_chunks)
               + self._layers * self._attn_t0 * _positive(n_decode))
        launch = self._launch + self._launch_prompt * _positive(chunk_tokens)
        return (smooth_max(launch, gpu) + self._kv_ms_per_token * sum_context + self._window_ms_per_seq * n_decode
                + self._host_ms(n_chunks + n_decode, n_chunks, chunk_tokens))

    def prefill_ms(self, n_prompts, sum_tokens, sum_sq_tokens):
        s = _as_float(sum_tokens)
        return self.chunk_ms(n_prompts, s, 0.5 * _as_float(sum_sq_tokens), 0.5 * s, 0.0, n_prompts, 0.0, 0.0)

    def mixed_ms(self, n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context):
        s = _as_float(sum_tokens)
        return self.chunk_ms(n_prompts, s, 0.5 * _as_float(sum_sq_tokens), 0.5 * s, 0.0, n_prompts, n_decode,
                             sum_context)

    def _decode_parts(self, batch_size):
        """(base, per-context-token) of a decode step: the same arithmetic as chunk_ms with no chunks."""
        gpu = self._linear_ms(batch_size, batch_size) + self._layers * self._attn_t0
        base = (smooth_max(self._launch, gpu) + self._window_ms_per_seq * batch_size
                + self._host_ms(batch_size, 0.0, 0.0))
        return base, self._kv_ms_per_token

    decode_parts = _decode_parts  # public: calibration evaluates many batch sizes at once

    def decode_ms(self, batch_size, sum_context):
        batch_size, sum_context = _as_float(batch_size), _as_float(sum_context)
        if not isinstance(batch_size, np.ndarray):
            parts = self._decode_cache.get(batch_size)
            if parts is None:
                parts = self._decode_parts(batch_size)
                if len(self._decode_cache) < TABLE_MAX_BATCH:
                    self._decode_cache[batch_size] = parts
            return parts[0] + parts[1] * sum_context
        if batch_size.size > TABLE_THRESHOLD:
            # long arrays of whole batch sizes: evaluate each size once in a table, then index it
            top = float(batch_size.max()) if batch_size.size else 0.0
            whole = batch_size.astype(np.int64)
            if 0 <= batch_size.min() and top <= TABLE_MAX_BATCH and np.array_equal(whole, batch_size):
                base, per = self._decode_parts(np.arange(int(top) + 1, dtype=float))
                return base[whole] + per * sum_context
        base, per = self._decode_parts(batch_size)
        return base + per * sum_context

    def decode_coeffs(self, batch_size: int) -> tuple[float, float]:
        """Exact: decode_ms(b, s) == base + per * s."""
        base, per = self._decode_parts(float(batch_size))
        return float(base), float(per)

    def kv_capacity_tokens(self) -> int:
        return kv_capacity_tokens(self.instance, self.scheduling)

    def kv_bytes_per_token(self) -> float:
        return self._kv_bytes

    def __repr__(self) -> str:
        return f"AnalyticPerfModel({self.instance.label}; {self.provenance})"
