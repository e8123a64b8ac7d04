"""Analytic backend: per-operator smooth roofline, TP all-reduce and stack overheads, summed per step.

Each operator takes `t0 + (tc^n + tm^n)^(1/n)` (tc = FLOPs / (eta_c * peak), tm = bytes / (eta_m * BW)),
which fits measured GEMMs better than a hard max (performance-model.md §3.1). Operators do not overlap.
A step is L * (4 GEMMs + attention + elementwise kernels + 2 all-reduces) + LM head + CPU overhead.

Decode attention is modelled as purely memory-bound (it is: ~8 FLOP/B for GQA against a ridge of
150-300), so a decode step is exactly linear in the summed context for a given batch size; this is what
lets the simulator advance many decode steps in closed form (`decode_coeffs`).

All per-instance constants are precomputed in __init__ so one scalar call is a few dozen float
operations (plain Python, no numpy); numpy arrays go through the same arithmetic element-wise.
"""

from __future__ import annotations

import numpy as np

from splitplan.perf import counts
from splitplan.perf.base import Instance
from splitplan.perf.correction import FactorCurve, enforce_monotone, knots_for_tp
from splitplan.perf.memory import kv_bytes_per_token, kv_capacity_tokens
from splitplan.perf.params import StackParams
from splitplan.perf.power import cap_stretch


TABLE_THRESHOLD = 4096  # decode arrays longer than this with whole batch sizes go through a lookup table
TABLE_MAX_BATCH = 1 << 16


def _as_float(x):
    """Arrays become float arrays (so integer inputs do not overflow in s^2); scalars stay scalars."""
    if isinstance(x, np.ndarray):
        return x.astype(float)
    if isinstance(x, (list, tuple)):
        return np.asarray(x, dtype=float)
    return float(x)


class AnalyticPerfModel:
    """The analytic PerfModel of one instance under one set of stack parameters."""

    def __init__(self, instance: Instance, params: StackParams, provenance: str, apply_cap: bool = True):
        self.instance = instance
        self.params = params
        self.provenance = provenance
        m, g, t, p = instance.model, instance.gpu, instance.tp, params
        fp8 = instance.dtype == "fp8"
        peak = g.legacy_peak_tflops(instance.dtype) * 1e9  # FLOP per ms
        eta_c = p.eta_c_fp8 if fp8 and g.fp8_tflops > 0 else p.eta_c
        bw = g.hbm_gbps * 1e6  # bytes per ms
        self.compute_stretch = cap_stretch(instance, params) if apply_cap else 1.0
        stretch = self.compute_stretch
        self._n = p.smooth_n
        self._inv_n = 1.0 / p.smooth_n
        L = m.layers
        wb = m.dtype_bytes
        act = counts.ACT_BYTES
        # GEMMs: tc = m * c, tm = w + m * a; time per layer summed, so keep per-GEMM coefficients.
        self._gemms = tuple(
            (2.0 * gm.k * gm.n * stretch / (eta_c * peak), wb * gm.k * gm.n / (p.eta_m * bw), act * (gm.k + gm.n) / (p.eta_m * bw))
            for gm in counts.layer_gemms(instance))
        head = counts.lm_head(instance)
        self._head = (2.0 * head.k * head.n * stretch / (eta_c * peak), wb * head.k * head.n / (p.eta_m * bw),
                      act * (head.k + head.n) / (p.eta_m * bw))
        self._layers = float(L)
        self._gemm_t0 = p.gemm_t0_us * 1e-3
        # Prefill attention: tc per sum_sq, tm per token; one kernel per layer.
        self._fa_c = counts.prefill_attention_flops(instance, 1.0) * stretch / (p.eta_fa * peak)
        self._fa_m = counts.prefill_attention_bytes(instance, 1.0) / (p.eta_m * bw)
        self._attn_t0 = p.attn_t0_us * 1e-3
        self._cross = p.cross_attn_frac
        # Decode attention: memory-bound KV read, linear in the summed context.
        self._kv_ms_per_token = L * counts.decode_attention_bytes(instance, 1.0) / (p.eta_kv * bw)
        # Elementwise kernels: read + write one hidden-sized 16-bit tensor each, not sharded.
        self._elem_t0 = p.elem_kernels * p.elem_t0_us * 1e-3
        self._elem_per_token = p.elem_kernels * 2.0 * act * m.hidden / (p.eta_m * bw)
        self._l2_tokens = p.l2_mb * 1e6 / (act * m.hidden)  # tokens whose hidden state fits on chip
        # All-reduce: 2 per layer; ring bytes 2(t-1)/t * message over the bus bandwidth.
        if t > 1:
            busbw = max(p.ar_bw_fraction * g.nvlink_gbps, 1e-9) * 1e6
            self._ar_alpha = p.ar_alpha_ms(t)
            self._ar_per_token = 2.0 * (t - 1) / t * m.hidden * act / busbw
        else:
            self._ar_alpha = 0.0
            self._ar_per_token = 0.0
        self._step = p.step_overhead_ms(t)
        self._seq = p.seq_ms
        self._seq2 = p.seq2_ms
        self._prompt_seq = p.prompt_seq_ms
        self._prompt_token = p.prompt_token_us * 1e-3
        self._kv_bytes = kv_bytes_per_token(instance)
        self._prefill_factor = None
        self._decode_factor = None
        self._decode_cache: dict[float, tuple[float, float]] = {}  # batch size -> (base, per), scalar path
        self._prefill_factor = self._monotone_curve(knots_for_tp(p.prefill_corr, t, m.name), "prefill")
        self._decode_factor = self._monotone_curve(knots_for_tp(p.decode_corr, t, m.name), "decode")

    def _monotone_curve(self, knots, phase: str) -> FactorCurve | None:
        """The stack-efficiency curve, lowered where needed so that factor x this instance's own
        roofline time never decreases with the batch (single and 512-token-batched prompts; decode
        at short and long contexts). Called before the curves are set, so the times are uncorrected."""
        if not knots:
            return None
        if phase == "prefill":
            shapes = (lambda x: self.prefill_ms(np.ones_like(x), x, x * x),
                      lambda x: self.prefill_ms(np.maximum(x / 512.0, 1.0), x, x * np.minimum(x, 512.0)))
        else:
            shapes = (lambda x: self.decode_ms(x, x * 32.0), lambda x: self.decode_ms(x, x * 1024.0))
        return FactorCurve(enforce_monotone(knots, shapes))

    # ---- building blocks -------------------------------------------------------------------
    def _linear_ms(self, tokens, head_tokens):
        """All layers' GEMMs, elementwise kernels and all-reduces over `tokens`, plus the LM head."""
        n, inv = self._n, self._inv_n
        per_layer = len(self._gemms) * self._gemm_t0
        for c, w, a in self._gemms:
            tm = w + tokens * a  # > 0 (weights), so the smooth max is tm * (1 + (tc/tm)^n)^(1/n): 2 powers, not 3
            per_layer = per_layer + tm * (1.0 + (tokens * c / tm) ** n) ** inv
        spill = tokens - self._l2_tokens  # hidden-state tokens that do not fit the cache: max(0, spill)
        per_layer = per_layer + self._elem_t0 + 0.5 * (spill + abs(spill)) * self._elem_per_token
        if self._ar_per_token:
            per_layer = per_layer + 2.0 * (self._ar_alpha + tokens * self._ar_per_token)
        c, w, a = self._head
        tm = w + head_tokens * a
        return self._layers * per_layer + self._gemm_t0 + tm * (1.0 + (head_tokens * c / tm) ** n) ** inv

    def _prefill_attention_ms(self, sum_tokens, sum_sq_tokens):
        n, inv = self._n, self._inv_n
        pairs = sum_sq_tokens + self._cross * (sum_tokens * sum_tokens - sum_sq_tokens)
        tc = pairs * self._fa_c
        tm = sum_tokens * self._fa_m
        return self._layers * (self._attn_t0 + (tc**n + tm**n) ** inv)

    # ---- PerfModel --------------------------------------------------------------------------
    def prefill_ms(self, n_prompts, sum_tokens, sum_sq_tokens):
        n_prompts, sum_tokens, sum_sq_tokens = _as_float(n_prompts), _as_float(sum_tokens), _as_float(sum_sq_tokens)
        time = (self._linear_ms(sum_tokens, n_prompts) + self._prefill_attention_ms(sum_tokens, sum_sq_tokens)
                + self._step + self._prompt_seq * n_prompts + self._prompt_token * sum_tokens)
        return time * self._prefill_factor(sum_tokens) if self._prefill_factor else time

    def _decode_base_ms(self, batch_size):
        return (self._linear_ms(batch_size, batch_size) + self._layers * self._attn_t0
                + self._step + self._seq * batch_size + self._seq2 * batch_size * batch_size)

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
                return base[whole] + per[whole] * sum_context
        base, per = self._decode_parts(batch_size)
        return base + per * sum_context

    def _decode_parts(self, batch_size):
        """(base, per-context-token) of a decode step, efficiency factor included."""
        factor = self._decode_factor(batch_size) if self._decode_factor else 1.0
        return self._decode_base_ms(batch_size) * factor, self._kv_ms_per_token * factor

    def decode_coeffs(self, batch_size: int) -> tuple[float, float]:
        """Exact: decode_ms(b, s) == base + per * s (the efficiency factor depends on b only)."""
        base, per = self._decode_parts(float(batch_size))
        return float(base), float(per)

    def mixed_ms(self, n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context):
        n_prompts, sum_tokens, sum_sq_tokens = _as_float(n_prompts), _as_float(sum_tokens), _as_float(sum_sq_tokens)
        n_decode, sum_context = _as_float(n_decode), _as_float(sum_context)
        time = (self._linear_ms(sum_tokens + n_decode, n_prompts + n_decode)
                + self._prefill_attention_ms(sum_tokens, sum_sq_tokens)
                + self._layers * self._attn_t0 * (n_decode > 0) + self._kv_ms_per_token * sum_context
                + self._step + self._prompt_seq * n_prompts + self._prompt_token * sum_tokens
                + self._seq * n_decode + self._seq2 * n_decode * n_decode)
        return time * self._prefill_factor(sum_tokens + n_decode) if self._prefill_factor else time

    def kv_capacity_tokens(self) -> int:
        return kv_capacity_tokens(self.instance)

    def kv_bytes_per_token(self) -> float:
        return self._kv_bytes

    def __repr__(self) -> str:
        i = self.instance
        return f"AnalyticPerfModel({i.model.name} on {i.machine.name} tp={i.tp} {i.dtype}; {self.provenance})"

