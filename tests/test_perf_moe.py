"""Mixture-of-experts, latent attention (MLA) and sliding windows in the analytic model: counts by hand,
routing statistics against simulated routings, grouped GEMMs against the H200 measurements, memory
fit per GPU, and the invariants the simulator relies on (decode exactly linear in the summed context,
scalar and numpy paths agreeing, chunk_ms consistent with prefill/mixed/decode)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from splitplan.catalog import default_catalog
from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model, make_instance, ops
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.analytic_moe import MoeTiming
from splitplan.perf.base import Instance
from splitplan.perf.memory import kv_token_bytes_per_gpu, weight_bytes_per_gpu
from splitplan.perf.ops_attention import decode_flops_per_context_token
from splitplan.perf.ops_core import expert_format
from splitplan.perf.ops_moe import a2a_bytes_per_gpu, expected_max_normal, moe_layer
from splitplan.serving.kernels import arch_kernels
from splitplan.serving.params import StackParams
from splitplan.serving.quant import ComputeDtype, Quant

CAT = default_catalog()
ROOT = Path(__file__).resolve().parent.parent
HOPPER = arch_kernels("hopper")[0]
FP8 = Quant.parse("fp8_block")


def spec(quant: Quant = FP8) -> PerfSettings:
    return PerfSettings(stack="spec", quant=quant)


def inst(model, machine="dgx-h100", tp=8, quant=FP8, ep=1, dp=1) -> Instance:
    return make_instance(model, machine, tp, quant, CAT, ep, dp)


# ------------------------------------------------------------------------------------------- MLA

def test_deepseek_v3_kv_bytes_per_token_is_the_latent_at_the_perf_level():
    """61 x (512 + 64) x 2 bytes: one copy of the latent, whatever the attention layout; with attention TP
    every GPU of the group holds it (8 x the memory), with attention data parallelism each GPU its own."""
    tp8 = build_perf_model("deepseek-v3", "hgx-b200", 8, spec())
    dp8 = build_perf_model("deepseek-v3", "hgx-b200", 8, spec(), ep=8, dp=8)
    assert tp8.kv_bytes_per_token() == dp8.kv_bytes_per_token() == 61 * (512 + 64) * 2 == 70_272
    assert kv_token_bytes_per_gpu(tp8.instance) == kv_token_bytes_per_gpu(dp8.instance) == 70_272
    # TP 8 keeps 8 copies of every token's latent, DP 8 one: more than 6x the tokens despite 8 copies of attention
    assert dp8.kv_capacity_tokens() > 6 * tp8.kv_capacity_tokens()
    assert weight_bytes_per_gpu(dp8.instance) > weight_bytes_per_gpu(tp8.instance)
    fp8_kv = build_perf_model("deepseek-v3", "hgx-b200", 8, spec(Quant.parse("fp8_block", kv="fp8")), ep=8, dp=8)
    assert fp8_kv.kv_bytes_per_token() == 35_136


def test_mla_attention_counts_by_hand():
    i1 = inst("deepseek-v3", "dgx-h200", 8, ep=8, dp=8)  # attention TP 1: all 128 heads on each GPU
    # prefill with decompressed heads: QK over 128 + 64 dims, PV over 128: 2 * 128 * (192 + 128) per pair
    assert ops.attention_flops_per_pair(i1) == 2 * 128 * (192 + 128)
    # absorbed decode: scores over the latent and the rope key, output over the latent
    assert decode_flops_per_context_token(i1) == 2 * 128 * (2 * 512 + 64) == 278_528
    assert ops.kv_bytes_per_token_layer(i1) == 576 * 2
    i8 = inst("deepseek-v3", "dgx-h200", 8, ep=8)  # attention TP 8: 16 heads per GPU, the latent replicated
    assert decode_flops_per_context_token(i8) == 278_528 / 8
    assert ops.kv_bytes_per_token_layer(i8) == 576 * 2
    names = [g.name for g in ops.attention_gemms(i8)]
    assert names == ["q_a", "q_b", "kv_a", "kv_b", "o"]
    q_a, q_b, kv_a, kv_b, o = ops.attention_gemms(i8)
    assert (q_a.k, q_a.n, kv_a.n) == (7168, 1536, 576)  # replicated down-projections
    assert (q_b.n, kv_b.k, kv_b.n, o.k) == (16 * 192, 512, 16 * 256, 16 * 128)


def test_mla_decode_is_the_larger_of_its_compute_and_its_latent_read():
    """Per context token: 61 layers x max(FLOPs / (eta_mla peak), bytes / (eta_kv BW)), exactly linear.
    With all 128 heads on a GPU (attention DP) the absorbed kernel is compute-bound on an H200 (242 FLOP/B,
    at these efficiencies above its ridge); with 16 heads per GPU (attention TP 8) it is memory-bound."""
    p = StackParams()
    for dp, bound in ((8, "compute"), (1, "memory")):
        perf = AnalyticPerfModel(inst("deepseek-v3", "dgx-h200", 8, ep=8, dp=dp), p, "x")
        i = perf.instance
        compute = decode_flops_per_context_token(i) / (p.eta_mla * 989e9)
        memory = ops.kv_bytes_per_token_layer(i) / (p.eta_kv * 4800e6)
        expected = 61 * (compute if bound == "compute" else memory) / dp
        assert (compute > memory) == (bound == "compute")
        _, per = perf.decode_coeffs(32)
        assert per == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------------------------- MoE routing

def test_experts_touched_is_the_uniform_routing_expectation_by_hand():
    layer = moe_layer(inst("qwen3-235b-a22b", tp=8))
    assert layer.touched(1) == pytest.approx(8.0)  # one token: its top-8
    assert layer.touched(64) == pytest.approx(128 * (1 - (120 / 128) ** 64))  # 125.9: almost all
    assert layer.rows(10) == 80  # ep 1: every GPU computes a shard of every row
    ep8 = moe_layer(inst("qwen3-235b-a22b", tp=8, ep=8))
    assert ep8.local_experts == 16 and ep8.rows(10) == 10.0 and ep8.touched(1) == pytest.approx(1.0)


def test_experts_touched_matches_the_measured_random_routings():
    """moe.csv records how many experts the kernel benchmark's uniform random routings touched (mean of 4)."""
    m = pd.read_csv(ROOT / "profiles/measured/h200-kernels/moe.csv")
    m = m[(m["dtype"] == "bf16") & (m["gemm"] == "down")]
    for _, r in m.iterrows():
        expected = r.local_experts * (1 - (1 - r.topk / r.experts) ** r.tokens)
        assert r.experts_touched == pytest.approx(expected, rel=0.08, abs=1.0), (r.model, r.tokens)


def test_expected_max_of_normals():
    assert expected_max_normal(1) == 0.0
    assert expected_max_normal(2) == pytest.approx(1 / math.sqrt(math.pi), abs=1e-6)
    assert expected_max_normal(4) == pytest.approx(1.0294, abs=1e-3)
    assert expected_max_normal(8) == pytest.approx(1.4236, abs=1e-3)


@pytest.mark.parametrize("ep", [2, 4, 8])
def test_load_imbalance_matches_simulated_uniform_routing(ep):
    """The busiest of ep groups' routed rows over the mean, against 2000 simulated top-8-of-128 routings."""
    layer = moe_layer(inst("qwen3-235b-a22b", tp=8, ep=ep))
    rng = np.random.default_rng(0)
    for tokens in (1, 4, 16, 64, 256):
        ratios = []
        for _ in range(2000 if tokens < 64 else 400):
            picks = np.argsort(rng.random((tokens, 128)), axis=1)[:, :8]  # k distinct experts per token
            per_group = np.bincount((picks // (128 // ep)).ravel(), minlength=ep)
            ratios.append(per_group.max() / (tokens * 8 / ep))
        assert layer.imbalance(float(tokens)) == pytest.approx(np.mean(ratios), rel=0.10), tokens
    assert layer.imbalance(1e6) == pytest.approx(1.0, abs=0.01)
    assert layer.imbalance(1e6, floor=1.2) == 1.2  # the settable floor (real routers are skewed)
    assert moe_layer(inst("qwen3-235b-a22b", tp=8)).imbalance(1.0, floor=1.5) == 1.0  # ep 1: nothing to wait for


def _skewed_routing(rng, experts: int, top_k: int, cv: float, tokens: int) -> np.ndarray:
    """One step's routing by a skewed router: expert weights Gamma distributed with coefficient of variation
    cv, each token takes k distinct experts with probabilities in proportion (Gumbel top-k); (tokens, k)."""
    weights = rng.gamma(1.0 / cv**2, cv**2, size=experts)
    keys = np.log(weights)[None, :] + rng.gumbel(size=(tokens, experts))
    return np.argsort(-keys, axis=1)[:, :top_k]


@pytest.mark.parametrize("cv", [0.5, 1.0])
def test_experts_touched_under_skewed_routing_match_a_simulated_router(cv):
    """A skewed router touches fewer distinct experts than uniform routing at middle batches, and the
    closed form (ops_moe docstring) follows a simulated one within 12%."""
    layer = moe_layer(inst("qwen3-235b-a22b", tp=8))
    rng = np.random.default_rng(1)
    for tokens in (1, 4, 16, 64, 256):
        counts = [np.unique(_skewed_routing(rng, 128, 8, cv, tokens)).size for _ in range(300)]
        assert layer.touched(float(tokens), cv) == pytest.approx(np.mean(counts), rel=0.12), tokens
        if tokens >= 4:
            assert layer.touched(float(tokens), cv) < layer.touched(float(tokens))
    assert layer.touched(1e5, cv) == pytest.approx(128.0, rel=0.01)  # a large enough batch touches every expert
    assert layer.touched(16.0, 1e-9) == pytest.approx(layer.touched(16.0), rel=1e-9)  # cv -> 0: uniform


def test_skewed_routing_loads_expert_parallel_groups_unequally_at_any_batch():
    """With cv > 0 the busiest group's excess stops shrinking with T (uniform routing's goes to 0), and it
    follows a simulated skewed router within 10%."""
    layer = moe_layer(inst("qwen3-235b-a22b", tp=8, ep=4))
    rng = np.random.default_rng(2)
    for tokens in (64, 1024):
        ratios = []
        for _ in range(400):
            picks = _skewed_routing(rng, 128, 8, 0.8, tokens)
            per_group = np.bincount((picks // 32).ravel(), minlength=4)
            ratios.append(per_group.max() / (tokens * 8 / 4))
        assert layer.imbalance(float(tokens), cv=0.8) == pytest.approx(np.mean(ratios), rel=0.10), tokens
    assert layer.imbalance(1e7, cv=0.8) > 1.1 > layer.imbalance(1e7) + 0.09


# ------------------------------------------------------------------------------ grouped GEMM times

def _measured_instance(name: str, dtype: str) -> tuple[Instance, int]:
    """The instance whose expert shards moe.csv's configuration measured, and its tokens divisor."""
    base, _, shard = name.partition("-tp") if "-tp" in name else name.partition("-ep")
    model = CAT.model(base)
    quant = Quant.parse("bf16" if dtype == "bf16" else "fp8")
    tp = int(shard or 1)
    ep = tp if "-ep" in name else 1
    return Instance(model, CAT.machine("dgx-h200"), CAT.gpu("h200"), tp, quant, ep), tp


def test_grouped_gemms_reproduce_the_h200_measurements():
    """The analytic expert GEMMs (shards, bytes, compute dtype, kernels.yaml's hopper values) on the measured
    rows and touched experts of each of the 142 x 2 kernels: MAPE <= 15% (the fit of the same form: 12.6%)."""
    m = pd.read_csv(ROOT / "profiles/measured/h200-kernels/moe.csv")
    errors = []
    for (name, dtype, tokens), g in m.groupby(["model", "dtype", "tokens"]):
        if len(g) != 2:
            continue
        instance, _ = _measured_instance(name, dtype)
        timing = MoeTiming(instance, HOPPER, 1.0, instance.gpu.hbm_gbps * 1e6, lambda *a: (0.0, 1.0, 0.0))
        predicted_us = timing.grouped_gemms_ms(g.routed_rows.iloc[0], g.experts_touched.iloc[0]) * 1e3
        errors.append(abs(predicted_us / g.time_us.sum() - 1))
    assert len(errors) >= 130
    assert np.mean(errors) <= 0.15


def test_four_bit_experts_are_weight_only_on_hopper_and_fp4_on_blackwell():
    quant = Quant.parse("bf16", "mxfp4")
    assert expert_format(inst("gpt-oss-120b", "dgx-h100", 2, quant))[1:] == (ComputeDtype.BF16, True)
    assert expert_format(inst("gpt-oss-120b", "hgx-b200", 2, quant))[1:] == (ComputeDtype.FP4, False)
    # attention stays BF16 and the experts take 0.53 bytes per weight
    i = inst("gpt-oss-120b", "dgx-h100", 2, quant)
    assert i.dense_compute == (ComputeDtype.BF16, False)
    assert moe_layer(i).experts_gemms[0].weight_bytes == pytest.approx(0.5 + 1 / 32)


def test_a_decode_step_reads_only_the_experts_its_tokens_touched():
    """At batch 1 Qwen3-235B reads 8 of its 128 experts per layer; at batch 256 nearly all of them."""
    layer = moe_layer(inst("qwen3-235b-a22b", tp=8))
    one_expert = sum(g.weight_bytes * g.k * g.n for g in layer.experts_gemms)  # its shard on one GPU
    assert one_expert == pytest.approx(3 * 4096 * 1536 / 8, rel=1e-3)
    weights_1 = layer.expert_bytes(1.0) - 2 * 8 * (4096 + 384 + 192 + 4096)  # minus the activation traffic
    assert weights_1 == pytest.approx(8 * one_expert, rel=1e-3)
    assert layer.expert_bytes(256.0) > 14 * layer.expert_bytes(1.0)
    perf = build_perf_model("qwen3-235b-a22b", "dgx-h200", 8, spec())
    assert perf.decode_ms(1, 1024) < 0.5 * perf.decode_ms(256, 256 * 1024)


def test_attention_data_parallelism_adds_the_all_to_all():
    i = inst("minimax-m2.5", "dgx-h100", 4, Quant.parse("fp8"), ep=4, dp=4)
    assert a2a_bytes_per_gpu(i, 64.0) == 64 * 8 * 3072 * 2 / 4
    p = replace(StackParams(), a2a_alpha_us=15.0)
    with_a2a = AnalyticPerfModel(i, p, "x")
    slower = AnalyticPerfModel(i, replace(p, a2a_alpha_us=115.0), "x")
    # 2 all-to-alls per MoE layer, 62 MoE layers: 100 us more latency each costs 12.4 ms per step
    assert slower.decode_ms(8, 8000) - with_a2a.decode_ms(8, 8000) == pytest.approx(62 * 2 * 0.1, rel=1e-9)
    no_dp = AnalyticPerfModel(inst("minimax-m2.5", "dgx-h100", 4, Quant.parse("fp8"), ep=4), p, "x")
    assert AnalyticPerfModel(no_dp.instance, replace(p, a2a_alpha_us=115.0), "x").decode_ms(8, 8000) == \
        no_dp.decode_ms(8, 8000)


# ------------------------------------------------------------------------------- sliding windows

def _no_window(model_name: str):
    m = CAT.model(model_name)
    return replace(m, sliding_window=0, sliding_layers=0)


def test_sliding_window_layers_read_the_window_and_keep_decode_linear():
    """gpt-oss: 18 of 36 layers attend to 128 tokens. Per context token only the 18 full layers read; the
    windowed layers read batch x 128 tokens each step (exact once contexts exceed the window)."""
    quant = Quant.parse("bf16", "mxfp4")
    windowed = inst("gpt-oss-120b", "dgx-h100", 2, quant)
    full = replace(windowed, model=_no_window("gpt-oss-120b"))
    p = StackParams()
    a, b = AnalyticPerfModel(windowed, p, "x"), AnalyticPerfModel(full, p, "x")
    for batch in (1, 16, 200):
        base_w, per_w = a.decode_coeffs(batch)
        base_f, per_f = b.decode_coeffs(batch)
        assert per_w == pytest.approx(per_f / 2, rel=1e-12)
        assert base_w - base_f == pytest.approx(batch * 128 * per_f / 2, rel=1e-9)
    assert a.prefill_ms(1, 8192, 8192**2) < b.prefill_ms(1, 8192, 8192**2)
    assert a.prefill_ms(1, 100, 100**2) == pytest.approx(b.prefill_ms(1, 100, 100**2), rel=1e-12)  # inside the window


def test_sliding_window_kv_memory_is_at_most_the_window_per_sequence():
    quant = Quant.parse("bf16", "mxfp4")
    perf = build_perf_model("gpt-oss-120b", "dgx-h100", 2, spec(quant))
    assert perf.kv_bytes_per_token() == 18 * 2 * 8 * 64 * 2  # the full-attention layers
    windowed = perf.kv_capacity_tokens()
    full = make_instance(_no_window("gpt-oss-120b"), "dgx-h100", 2, quant, CAT)
    from splitplan.perf.memory import kv_capacity_tokens

    every_layer = kv_capacity_tokens(full, perf.scheduling)
    assert every_layer < windowed < 2 * every_layer


# ------------------------------------------------------------------------------------ memory fit

def test_expert_weights_are_split_over_all_gpus_whatever_ep():
    m = CAT.model("qwen3-235b-a22b")
    tp8, ep8 = inst("qwen3-235b-a22b", tp=8), inst("qwen3-235b-a22b", tp=8, ep=8)
    assert weight_bytes_per_gpu(tp8) == pytest.approx(weight_bytes_per_gpu(ep8), rel=1e-12)
    # fp8 block weights (1.0002 B) except the 16-bit embeddings, LM head and router
    assert weight_bytes_per_gpu(tp8) == pytest.approx(m.params / 8 * 1.02, rel=0.03)
    # attention data parallelism: every GPU holds all of attention (TP 8 held 1/8 of Q and O and one of the
    # 4 KV heads, replicated), and the whole 16-bit embedding and LM head
    dp8 = inst("qwen3-235b-a22b", tp=8, ep=8, dp=8)
    q_o = 2 * 4096 * 64 * 128
    tp8_attention = q_o / 8 + 2 * 128 * 4096
    extra = m.layers * (m.attention_params_per_layer - tp8_attention) * (1 + 4 / 128**2)
    assert weight_bytes_per_gpu(dp8) - weight_bytes_per_gpu(ep8) == pytest.approx(
        extra + 2 * m.vocab * m.hidden * 2 * 7 / 8, rel=1e-9)


def test_moe_models_that_do_not_fit_say_so():
    with pytest.raises(SplitplanError, match="qwen3-235b-a22b .* does not fit dgx-h100 at tp=4"):
        build_perf_model("qwen3-235b-a22b", "dgx-h100", 4, spec(Quant()))
    build_perf_model("qwen3-235b-a22b", "dgx-h100", 4, spec())  # FP8 fits
    with pytest.raises(SplitplanError, match="instances spanning machines are not modelled"):
        build_perf_model("deepseek-v3", "dgx-h100", 16, spec())


def test_a_model_that_fits_only_as_published_names_its_checkpoint():
    """BF16 is the default format; Kimi-K2.5's published experts are INT4 (DeepSeek-R1's FP8 blocks): the
    error says so, and the formats it names fit. A model already in its formats gets no hint."""
    with pytest.raises(SplitplanError, match=r"published checkpoint has weights bf16, experts int4_wo "
                                             r"\(--weights bf16 --moe-weights int4_wo"):
        build_perf_model("kimi-k2.5", "hgx-b200", 8, spec(Quant()))
    build_perf_model("kimi-k2.5", "hgx-b200", 8, spec(Quant.parse("bf16", "int4_wo", None)))
    with pytest.raises(SplitplanError, match=r"published checkpoint has weights fp8_block \(--weights fp8_block,"):
        build_perf_model("deepseek-r1", "dgx-h200", 8, spec(Quant()))
    with pytest.raises(SplitplanError) as err:
        build_perf_model("llama3.1-405b", "dgx-h100", 8, spec(Quant()))
    assert "does not fit" in str(err.value) and "published checkpoint" not in str(err.value)


# --------------------------------------------------------------------------------- invariants

SHAPES = [("qwen3-235b-a22b", "dgx-h100", 8, 1, 1, FP8), ("qwen3-235b-a22b", "dgx-h200", 8, 8, 1, FP8),
          ("minimax-m2.5", "dgx-h100", 4, 4, 4, Quant.parse("fp8")),
          ("gpt-oss-120b", "dgx-h100", 2, 1, 1, Quant.parse("bf16", "mxfp4")),
          ("deepseek-v3", "dgx-h200", 8, 8, 8, FP8), ("deepseek-v3", "hgx-b200", 8, 8, 1, FP8),
          ("mixtral-8x7b", "dgx-h100", 2, 2, 1, Quant())]


@pytest.mark.parametrize("model,machine,tp,ep,dp,quant", SHAPES)
def test_decode_is_exactly_linear_and_the_paths_agree(model, machine, tp, ep, dp, quant):
    perf = build_perf_model(model, machine, tp, PerfSettings(stack="vllm", quant=quant), ep=ep, dp=dp)
    for b in (1, 3, 64, 300):
        base, per = perf.decode_coeffs(b)
        for s in (0.0, 4321.0, 987654.0):
            assert perf.decode_ms(b, s) == pytest.approx(base + per * s, rel=1e-12)
    batch = np.array([1.0, 7.0, 64.0, 300.0])
    assert list(perf.decode_ms(batch, batch * 900)) == pytest.approx([perf.decode_ms(b, b * 900) for b in batch],
                                                                      rel=1e-12)
    n, t = np.array([1.0, 4.0, 2.0]), np.array([500.0, 4000.0, 9000.0])
    vec = perf.mixed_ms(n, t, t * t / n, n * 4, n * 4000)
    assert list(vec) == pytest.approx([perf.mixed_ms(*a, a[0] * 4, a[0] * 4000) for a in zip(n, t, t * t / n)],
                                      rel=1e-12)
    for k, tokens, sq in ((1.0, 2048.0, 2048.0**2), (4.0, 2048.0, 4 * 512.0**2)):
        pairs, per_len = 0.5 * sq, 0.5 * tokens
        assert perf.chunk_ms(k, tokens, pairs, per_len, 0.0, k, 0.0, 0.0) == pytest.approx(
            perf.prefill_ms(k, tokens, sq), rel=1e-12)
        assert perf.chunk_ms(k, tokens, pairs, per_len, 0.0, k, 16.0, 16000.0) == pytest.approx(
            perf.mixed_ms(k, tokens, sq, 16.0, 16000.0), rel=1e-12)
    assert perf.chunk_ms(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 16.0, 16000.0) == pytest.approx(
        perf.decode_ms(16, 16000.0), rel=1e-12)
    c, p = 512.0, 1536.0
    assert perf.chunk_ms(1.0, c, c * p + c * c / 2, (c * p + c * c / 2) / (c + p), p, 1.0, 0.0, 0.0) > \
        perf.prefill_ms(1, c, c * c)
    batches = np.arange(1, 257, dtype=float)
    assert np.all(np.diff(perf.decode_ms(batches, batches * 1000)) > 0)
    assert np.all(np.diff(batches / perf.decode_ms(batches, batches * 1000)) > -1e-12)  # throughput never falls


def test_dense_models_keep_their_times():
    """The MoE/MLA/window terms vanish for a dense GQA model: its step equals the old composition, 4 GEMMs,
    attention, elementwise kernels and 2 all-reduces per layer, to rounding."""
    perf = AnalyticPerfModel(inst("llama2-70b", tp=8, quant=Quant()), StackParams(), "x")
    ar = 2 * (perf._ar_alpha + 64 * perf._ar_per_token)
    gemms = sum(perf._gemm_ms(c, 64.0) for c in perf._attn_gemms + perf._mlp_gemms)
    expected = 80 * (perf._elem_t0 + 64 * perf._elem_per_token + gemms + ar) + perf._gemm_ms(perf._head, 64.0)
    assert perf._linear_ms(64.0, 64.0) == pytest.approx(expected, rel=1e-12)
    assert perf._moe is None and perf._sliding == 0 and perf._window_ms_per_seq == 0
