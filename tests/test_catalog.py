"""Catalog loading, lookups, aliases and one-line errors."""

import pytest

from splitplan.catalog import load_catalog
from splitplan.errors import SplitplanError


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_llama2_70b_shape(catalog):
    model = catalog.model("llama2-70b")
    assert model.params_per_layer == 855_638_016
    assert abs(model.params / 1e9 - 68.98) < 0.01
    assert model.kv_bytes_per_token == 320 * 1024


def test_kv_sizes(catalog):
    assert catalog.model("llama3-8b").kv_bytes_per_token == 128 * 1024
    assert catalog.model("llama2-7b").kv_bytes_per_token == 512 * 1024
    assert catalog.model("bloom-176b").kv_bytes_per_token == 2 * 70 * 14336 * 2


@pytest.mark.parametrize("alias,name", [("a100-80gb", "dgx-a100"), ("h100-80gb", "dgx-h100"),
                                        ("h100-80gb-pcap", "dgx-h100-pcap"), ("DGX-H100", "dgx-h100")])
def test_splitwisesim_aliases(catalog, alias, name):
    assert catalog.machine(alias).name == name


def test_every_bundled_entry_has_sources(catalog):
    for table in (catalog.gpus, catalog.machines, catalog.models):
        for entry in table.values():
            assert entry.sources, entry.name


def test_paper_prices_and_power(catalog):
    assert catalog.machine("dgx-a100").cost_usd_per_h == 17.6
    assert catalog.machine("dgx-h100").cost_usd_per_h == 38.0
    assert catalog.machine("dgx-h100-pcap").power_kw == pytest.approx(0.7 * 10.2)


def test_unknown_name_suggests_nearest(catalog):
    with pytest.raises(SplitplanError, match="did you mean dgx-h100"):
        catalog.machine("dgx-h10")


def test_user_catalog_adds_entries(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "gpus:\n  - {name: mygpu, arch: ada, bf16_tflops: 100, fp8_tflops: 0, hbm_gb: 24, hbm_gbps: 900,"
        " nvlink_gbps: 0, tdp_w: 300, idle_w: 30}\n"
        "machines:\n  - {name: mybox, gpu: mygpu, gpus: 4, power_kw: 2, cost_usd_per_h: 5, nic_gbps: 25,"
        " power_cap_fraction: 1.0}\n"
        "models:\n  - {name: tiny, layers: 2, hidden: 256, heads: 4, kv_heads: 4, ffn: 512, vocab: 1000,"
        " gated_mlp: true, dtype_bytes: 2}\n")
    catalog = load_catalog([extra])
    assert catalog.machine("mybox").gpu == "mygpu"
    assert catalog.model("tiny").head_dim == 64


@pytest.mark.parametrize("text,message", [
    ("gpus: [1, 2", "malformed YAML"),
    ("", "file is empty"),
    ("gpus:\n  - {name: g, arch: hopper, bf16_tflops: -1, hbm_gb: 1, hbm_gbps: 1, tdp_w: 1}\n", "bf16_tflops: must be"),
    ("gpus:\n  - {name: g, arch: hopper, bf16_tflops: fast, hbm_gb: 1, hbm_gbps: 1, tdp_w: 1}\n", "must be a number"),
    ("models:\n  - {name: m, layers: 2}\n", "missing required field 'hidden'"),
    ("machines:\n  - {name: m, gpu: nope, gpus: 8, power_kw: 1, cost_usd_per_h: 1, nic_gbps: 1}\n", "unknown GPU 'nope'"),
    ("gpu:\n  - {name: g}\n", "unknown section 'gpu'"),
    ("models:\n  - {name: m, layers: 2, hidden: 8, heads: 2, kv_heads: 2, ffn: 8, vocab: 8, colour: red}\n", "unknown field 'colour'"),
    ("models:\n  - {name: m, layers: 2, hidden: 8, heads: 2, kv_heads: 2, ffn: 8, vocab: 8, aliases: 5}\n",
     "model 'm'.aliases: must be a list of names"),
    ("models:\n  - {name: m, layers: 2, hidden: 8, heads: 2, kv_heads: 2, ffn: 8, vocab: 8, sources: [a]}\n",
     "model 'm'.sources: must be a mapping"),
])
def test_malformed_catalogs_give_one_line(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(SplitplanError) as info:
        load_catalog([bad])
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert str(bad) in str(info.value)


# ---- GPUs: architecture, dtype peaks, Blackwell entries

def test_every_bundled_gpu_states_its_architecture(catalog):
    from splitplan.catalog import ARCHES
    assert {g.name: g.arch for g in catalog.gpus.values()} == {
        "a100-40gb": "ampere", "a100-80gb": "ampere", "h100-80gb": "hopper", "h200": "hopper", "b200": "blackwell",
        "b300": "blackwell", "gb200": "blackwell", "l40s": "ada", "mi300x": "cdna3", "mi325x": "cdna3", "mi355x": "cdna4"}
    assert all(g.arch in ARCHES for g in catalog.gpus.values())


def test_peak_tflops_is_zero_without_units_and_never_falls_back(catalog):
    a100, h100, b200 = catalog.gpu("a100-80gb"), catalog.gpu("h100-80gb"), catalog.gpu("b200")
    assert a100.peak_tflops("bf16") == 312 and a100.peak_tflops("fp8") == 0.0 and not a100.supports("fp8")
    assert h100.peak_tflops("fp8") == 1979 and h100.supports("fp8") and not h100.supports("fp4")
    assert h100.peak_tflops("fp4") == 0.0
    assert b200.peak_tflops("fp4") == 9000 and b200.supports("fp4")
    with pytest.raises(SplitplanError, match="unknown compute dtype 'int8'"):
        h100.peak_tflops("int8")


def test_blackwell_figures_are_the_dense_hgx_ones(catalog):
    """HGX B200 at 1,000 W: 36/72/144 PFLOPS sparse BF16/FP8/FP4 per 8 GPUs (FP4 72 dense) -> per GPU dense."""
    b200, b300 = catalog.gpu("b200"), catalog.gpu("b300")
    assert (b200.bf16_tflops, b200.fp8_tflops, b200.fp4_tflops) == (36_000 / 8 / 2, 72_000 / 8 / 2, 72_000 / 8)
    assert (b200.hbm_gb, b200.hbm_gbps, b200.nvlink_gbps, b200.tdp_w) == (1440 / 8, 8000, 1800, 1000)
    assert (b300.bf16_tflops, b300.fp8_tflops, b300.fp4_tflops) == (2250, 4500, 14000)
    assert (b300.hbm_gb, b300.tdp_w) == (288, 1100) and b300.hbm_gbps < b200.hbm_gbps
    for gpu in (b200, b300):
        assert {"bf16_tflops", "fp8_tflops", "fp4_tflops", "hbm_gbps", "tdp_w"} <= set(gpu.sources)


def test_blackwell_machines(catalog):
    b200, b300 = catalog.machine("hgx-b200"), catalog.machine("dgx-b300")
    assert (b200.gpu, b200.power_kw, b200.nic_gbps) == ("b200", 14.3, 400)  # 8 x ConnectX-7 400 Gb/s
    assert (b300.name, b300.gpu, b300.nic_gbps) == ("hgx-b300", "b300", 800)  # 8 x ConnectX-8 800 Gb/s
    h100 = catalog.machine("dgx-h100").cost_usd_per_h
    assert h100 < b200.cost_usd_per_h < b300.cost_usd_per_h < 2 * h100
    assert all("[" in b300.sources[k] for k in ("power_kw", "cost_usd_per_h", "nic_gbps"))


GPU_LINE = "gpus:\n  - {name: g, arch: %s, bf16_tflops: 100, fp8_tflops: %s, fp4_tflops: %s, hbm_gb: 1, hbm_gbps: 1, tdp_w: 1}\n"
MODEL = "{name: %s, layers: 4, hidden: 64, heads: 8, kv_heads: 2, ffn: 128, vocab: 100%s}"


@pytest.mark.parametrize("text,message", [
    ("gpus:\n  - {name: g, bf16_tflops: 1, hbm_gb: 1, hbm_gbps: 1, tdp_w: 1}\n", "gpu 'g': missing required field 'arch'"),
    (GPU_LINE % ("volta", 0, 0), "gpu 'g'.arch: must be one of ampere, ada, hopper, blackwell, cdna3, cdna4, got 'volta'"),
    (GPU_LINE % ("hopper", 200, 400), "gpu 'g'.fp4_tflops: must be 0: hopper GPUs have no FP4"),
    (GPU_LINE % ("ampere", 200, 0), "gpu 'g'.fp8_tflops: must be 0: ampere GPUs have no FP8"),
    ("models:\n  - " + MODEL % ("m", ", kv_heads: 16") + "\n", "model 'm'.kv_heads: 16 KV heads exceed the 8"),
    ("models:\n  - " + MODEL % ("m", ", kv_heads: 3") + "\n", "model 'm'.kv_heads: 3 KV heads do not divide the 8"),
    ("models:\n  - " + MODEL % ("m", ", attention: mha") + "\n", "model 'm'.attention: must be one of gqa, mla"),
    ("models:\n  - " + MODEL % ("m", ", attention: mla, kv_lora_rank: 32, qk_nope_head_dim: 8, v_head_dim: 8") + "\n",
     "model 'm'.qk_rope_head_dim: is required for attention: mla"),
    ("models:\n  - " + MODEL % ("m", ", kv_lora_rank: 32") + "\n", "model 'm'.kv_lora_rank: is an MLA field"),
    ("models:\n  - " + MODEL % ("m", ", experts: 8, expert_ffn: 32") + "\n",
     "model 'm'.experts_per_token: is required when experts > 0"),
    ("models:\n  - " + MODEL % ("m", ", experts: 8, experts_per_token: 9, expert_ffn: 32") + "\n",
     "model 'm'.experts_per_token: top-9 exceeds the 8 experts"),
    ("models:\n  - " + MODEL % ("m", ", experts: 8, experts_per_token: 2") + "\n",
     "model 'm'.expert_ffn: is required when experts > 0"),
    ("models:\n  - " + MODEL % ("m", ", experts: 8, experts_per_token: 2, expert_ffn: 32, dense_layers: 4") + "\n",
     "model 'm'.dense_layers: 4 leaves none of the 4 layers for experts"),
    ("models:\n  - " + MODEL % ("m", ", dense_layers: 1") + "\n", "model 'm'.dense_layers: is an expert field"),
    ("models:\n  - " + MODEL % ("m", ", sliding_window: 16, sliding_layers: 5") + "\n",
     "model 'm'.sliding_layers: 5 exceeds the 4 layers"),
    ("models:\n  - " + MODEL % ("m", ", sliding_window: 16") + "\n", "model 'm'.sliding_layers: sliding_window and"),
    ("models:\n  - " + MODEL % ("m", ", native_moe_weights: fp6") + "\n", "model 'm'.native_moe_weights: must be one of"),
    ("models:\n  - " + MODEL % ("m", "") + "\n  - " + MODEL % ("m", "") + "\n",
     "model 'm': duplicate model name 'm', already used by model 'm' in this file"),
    ("models:\n  - " + MODEL % ("a", ", aliases: [org/b]") + "\n  - " + MODEL % ("b", ", aliases: [ORG/B]") + "\n",
     "model 'b': duplicate model alias 'org/b', already used by model 'a'"),
    ("models:\n  - " + MODEL % ("a", "") + "\n  - " + MODEL % ("b", ", aliases: [a]") + "\n",
     "model 'b': duplicate model alias 'a', already used by model 'a'"),
])
def test_inconsistent_entries_give_one_line_naming_file_and_field(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(SplitplanError) as info:
        load_catalog([bad])
    assert message in str(info.value) and str(info.value).startswith(str(bad)) and "\n" not in str(info.value)


def test_a_later_file_still_overrides_a_name(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("models:\n  - " + MODEL % ("m", ", ffn: 128") + "\n")
    second.write_text("models:\n  - " + MODEL % ("m", ", ffn: 256") + "\n  - " + MODEL % ("llama2-7b", "") + "\n")
    catalog = load_catalog([first, second])
    assert catalog.model("m").ffn == 256 and catalog.model("llama2-7b").layers == 4


def test_new_fields_default_to_a_dense_llama_style_model(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("models:\n  - " + MODEL % ("m", "") + "\n")
    m = load_catalog([extra]).model("m")
    assert (m.attention, m.experts, m.sliding_window, m.tied_embeddings, m.native_weights, m.native_moe_weights) \
        == ("gqa", 0, 0, False, "bf16", "bf16")
    assert not m.is_moe and m.active_params == m.params and m.head_dim == 8


# ---- Hugging Face ids

# Every model id in shared/reference/measured-serving/h100.csv (copied here so the test needs no outside file).
MEASURED_HF_IDS = {
    "Qwen/Qwen3-32B": "qwen3-32b", "meta-llama/Llama-3.1-8B-Instruct": "llama3.1-8b",
    "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b", "openai/gpt-oss-120b": "gpt-oss-120b",
    "deepseek-ai/DeepSeek-R1": "deepseek-r1", "meta-llama/Llama-3.1-70B": "llama3.1-70b",
    "MiniMaxAI/MiniMax-M2.5": "minimax-m2.5", "deepseek-ai/DeepSeek-V3": "deepseek-v3",
}


@pytest.mark.parametrize("hf_id,name", sorted(MEASURED_HF_IDS.items()))
def test_measured_serving_model_ids_resolve(catalog, hf_id, name):
    assert catalog.model(hf_id).name == name


@pytest.mark.parametrize("alias,name", [
    ("meta-llama/Llama-3.1-70B-Instruct", "llama3.1-70b"), ("llama3.1-8b", "llama3.1-8b"),
    ("meta-llama/Meta-Llama-3.1-405B-Instruct", "llama3.1-405b"), ("meta-llama/Llama-3.3-70B-Instruct", "llama3.3-70b"),
    ("Qwen/Qwen3-235B-A22B", "qwen3-235b-a22b"), ("Qwen/Qwen3-30B-A3B", "qwen3-30b-a3b"),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"), ("deepseek-ai/DeepSeek-V3-0324", "deepseek-v3"),
    ("deepseek-ai/DeepSeek-R1-0528", "deepseek-r1"), ("meta-llama/Meta-Llama-3-8B", "llama3-8b"),
])
def test_common_hf_variants_resolve(catalog, alias, name):
    assert catalog.model(alias).name == name


def test_llama31_is_its_own_entry_not_an_alias_of_llama3(catalog):
    assert "llama3.1-8b" not in catalog.model("llama3-8b").aliases
    assert catalog.model("llama3.1-70b") is not catalog.model("llama3-70b")


def test_measured_serving_csv_ids_resolve_when_the_file_is_present(catalog):
    import csv
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "shared" / "reference" / "measured-serving" / "h100.csv"
    if not path.exists():
        pytest.skip(f"{path} not present (the hard-coded list above covers it)")
    with path.open() as f:
        ids = {row["model"] for row in csv.DictReader(f)}
    assert ids == set(MEASURED_HF_IDS)
    assert all(catalog.model(i) for i in ids)


def test_gb200_rows_run_in_the_nvl72_rack_and_follow_the_datasheet(catalog):
    """A GB200 is a B200 die at 1,200 W in a 72-GPU NVLink domain: a TP8 instance fits one NVL72 rack (no
    'spans machines' refusal), prefill is a little faster than the HGX B200's (2.5 vs 2.25 dense PFLOP/s)
    and decode the same (8 TB/s both)."""
    import pandas as pd

    from splitplan.apps.benchmark_rows import machine_for, predict_rows

    assert machine_for(catalog, "gb200", 8).name == "gb200-nvl72" and catalog.machine("nvl72").gpus == 72
    row = {"model": "meta-llama/Llama-3.1-70B", "engine": "vllm", "engine_version": "", "mode": "agg", "weights": "fp8",
           "moe_weights": "fp8", "isl": "1024", "osl": "128", "concurrency": "8", "tp": "8", "pp": "1", "ep": "1",
           "attention_dp": "1"}
    out = predict_rows(pd.DataFrame([row | {"gpu": "gb200"}, row | {"gpu": "b200"}]), catalog, workers=1)
    assert out["status"].str.startswith("ok").all()
    gb200, b200 = out.to_dict("records")
    assert gb200["predicted_ttft_ms"] < b200["predicted_ttft_ms"]
    assert gb200["predicted_tpot_ms"] == pytest.approx(b200["predicted_tpot_ms"], rel=0.05)


def test_cdna4_has_fp4_units_and_cdna3_has_none(catalog):
    assert catalog.gpu("mi355x").supports("fp4") and catalog.gpu("mi355x").peak_tflops("fp4") > 10_000 - 1
    assert not catalog.gpu("mi325x").supports("fp4") and catalog.gpu("mi325x").peak_tflops("bf16") == 1307
