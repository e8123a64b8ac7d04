"""The names people write for GPUs and models (benchmark tables, engine logs, other tools) find their
catalog entry; names of something else are refused, never guessed."""

from types import SimpleNamespace

import pytest

from splitplan.catalog import default_catalog
from splitplan.catalog_names import _index, match
from splitplan.errors import SplitplanError

CAT = default_catalog()


@pytest.mark.parametrize("spelled, name", [
    ("h200_sxm", "h200"), ("NVIDIA H200 141GB", "h200"), ("h100_sxm", "h100-80gb"), ("H100 SXM5 80GB", "h100-80gb"),
    ("A100-SXM4-40GB", "a100-40gb"), ("b200_sxm", "b200"), ("b200-192gb", "b200"), ("mi300x_oam", "mi300x"),
])
def test_gpu_spellings_find_their_gpu(spelled, name):
    assert CAT.gpu(spelled).name == name


def test_a_memory_size_that_is_not_the_gpus_names_another_gpu():
    """The H100 NVL (94 GB, PCIe-based, slower HBM) is not the H100 SXM: refused, not mapped."""
    with pytest.raises(SplitplanError, match="unknown GPU 'h100-94gb'"):
        CAT.gpu("h100-94gb")


@pytest.mark.parametrize("spelled, name", [
    ("nvidia/Llama-3.3-70B-Instruct-FP8", "llama3.3-70b"), ("nvidia/DeepSeek-R1-0528-FP4", "deepseek-r1"),
    ("RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8-dynamic", "llama3.1-8b"), ("Qwen/Qwen3-32B-AWQ", "qwen3-32b"),
    ("amd/Llama-3.1-70B-Instruct-FP8-KV", "llama3.1-70b"), ("nvidia/Qwen3-235B-A22B-FP4", "qwen3-235b-a22b"),
    ("llama-3.1-70b", "llama3.1-70b"),
])
def test_checkpoint_names_find_their_base_model(spelled, name):
    assert CAT.model(spelled).name == name


def test_a_checkpoint_of_another_shape_is_refused_with_the_reason():
    """Meta's FP8 release of Llama-3.1-405B carries 16 KV heads, not the base model's 8 (models.yaml)."""
    for spelled in ("meta-llama/Llama-3.1-405B-Instruct-FP8", "Llama_3.1_405B_Instruct_FP8"):
        with pytest.raises(SplitplanError, match="is not llama3.1-405b: its checkpoint has another shape"):
            CAT.model(spelled)
    with pytest.raises(SplitplanError, match="unknown model 'openai/gpt-oss-20b'"):
        CAT.model("openai/gpt-oss-20b")  # a smaller sibling is not its big brother


def test_a_spelling_two_entries_share_matches_neither():
    table = {"x1-a": SimpleNamespace(aliases=()), "x1a": SimpleNamespace(aliases=())}
    assert match(table, "X1_A", "machine") == (None, ["x1-a", "x1a"])


def test_the_bundled_catalog_spells_no_two_entries_alike():
    """Where two entries' spellings meet, exactly one of them is spelled so by its own name (and wins)."""
    for kind, table in (("GPU", CAT.gpus), ("model", CAT.models), ("machine", CAT.machines)):
        names = _index(table, kind, aliases=False)
        assert all(len(keys) == 1 for keys in names.values()), f"{kind}: {names}"
        shared = {form: keys for form, keys in _index(table, kind).items() if len(keys) > 1 and form not in names}
        assert not shared, f"{kind}: {shared}"


def test_an_entry_name_outranks_another_entry_alias():
    """`thinking` is a checkpoint word, so kimi-k2.5's alias Kimi-K2-Thinking has kimi-k2's form: the name
    wins the tolerant match, the exact alias still names kimi-k2.5, and two aliases alone stay ambiguous."""
    assert CAT.model("Kimi-K2-Instruct-0905").name == "kimi-k2"
    assert CAT.model("moonshotai/Kimi-K2-Instruct").name == "kimi-k2"
    assert CAT.model("Kimi-K2-Thinking").name == "kimi-k2.5"
    assert CAT.model("nvidia/Kimi-K2.5-NVFP4").name == "kimi-k2.5"
    table = {"a": SimpleNamespace(name="a", aliases=("org/x-instruct",)),
             "b": SimpleNamespace(name="b", aliases=("org/x-thinking",))}
    assert match(table, "x", "model") == (None, ["a", "b"])


@pytest.mark.parametrize("spelled, family", [
    ("Qwen/Qwen3.5-397B-A17B-FP8", "Qwen3.5"), ("qwen3_5-122b-a10b", "Qwen3.5"), ("zai-org/GLM-5-FP8", "GLM-5"),
    ("GLM-5.1", "GLM-5"), ("deepseek-ai/DeepSeek-V3.2-Exp", "DeepSeek-V3.2"), ("Qwen/Qwen3-Next-80B-A3B-Instruct", "Qwen3-Next"),
    ("moonshotai/Kimi-Linear-48B-A3B-Instruct", "Kimi-Linear"),
])
def test_models_of_unmodelled_attention_are_refused_with_the_reason(spelled, family):
    with pytest.raises(SplitplanError, match=f"is a {family}") as err:
        CAT.model(spelled)
    assert "refused, not guessed" in str(err.value) and "attention" in str(err.value)


@pytest.mark.parametrize("spelled", ["Qwen3-5B", "GLM-4.6", "MiniMax-M3", "deepseek-ai/DeepSeek-V4"])
def test_other_unknown_models_stay_unknown(spelled):
    """Only the named families are refused for their attention; a name that merely looks close is unknown."""
    with pytest.raises(SplitplanError, match="unknown model"):
        CAT.model(spelled)


def test_a_catalog_model_is_never_taken_for_an_unmodelled_family():
    from splitplan.catalog_unmodelled import unmodelled

    assert [name for name in CAT.models if unmodelled(name)] == []
    assert CAT.model("deepseek-ai/DeepSeek-V3.1").name == "deepseek-v3"  # V3.1 is V3's shape; V3.2 is not
