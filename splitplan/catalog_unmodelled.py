"""Model families splitplan knows and does not model: a name of one gets the reason, not "unknown".

Their attention is not the dense softmax attention the performance model prices (per-token KV reads
growing with the context, FLOPs growing with context x query tokens): linear-attention layers keep a
fixed-size state, and DeepSeek sparse attention reads a fixed number of selected keys plus an indexer
over all of them. A row of such a model is refused with the reason (a row is refused, never guessed);
describing the model in a --catalog file as a dense-attention model would price it wrongly, and the
reason says so. A name belongs to a family when its leading words, joined, spell the family's name
(organisation, separators and checkpoint words do not count, as in catalog_names): `Qwen/Qwen3.5-397B-A17B-FP8`
and `qwen3_5` are Qwen3.5, `GLM-5.1` is GLM-5, a `Qwen3-5B` would not be Qwen3.5.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unmodelled:
    family: str
    prefixes: tuple[str, ...]  # the family's name, lower case without separators: its leading words joined
    reason: str
    source: str


HYBRID_LINEAR = "hybrid linear attention (Gated DeltaNet layers with a fixed-size state between full-attention layers)"
SPARSE = "DeepSeek sparse attention (a lightning indexer scores every cached key and attention reads the top 2,048)"

FAMILIES: tuple[Unmodelled, ...] = (
    Unmodelled("Qwen3.5", ("qwen35",), HYBRID_LINEAR,
               "Qwen3.5 model cards: Gated DeltaNet and gated attention layers in a 3:1 layout (as Qwen3-Next)"),
    Unmodelled("Qwen3-Next", ("qwen3next",), HYBRID_LINEAR,
               "Qwen/Qwen3-Next-80B-A3B model card: hybrid Gated DeltaNet + gated attention, 3:1"),
    Unmodelled("Kimi-Linear", ("kimilinear",), "hybrid linear attention (Kimi Delta Attention layers between MLA layers)",
               "Kimi Linear technical report (arXiv 2510.26692): KDA and MLA layers, 3:1"),
    Unmodelled("MiniMax-M1 / MiniMax-Text-01", ("minimaxm1", "minimaxtext01"),
               "hybrid linear attention (lightning attention layers between softmax layers)",
               "MiniMax-01 technical report (arXiv 2501.08313): lightning attention with a softmax layer every 8"),
    Unmodelled("DeepSeek-V3.2", ("deepseekv32",), SPARSE,
               "DeepSeek-V3.2-Exp technical report: DSA on the V3.1 architecture (indexer top-k 2,048)"),
    Unmodelled("GLM-5", ("glm5",), "MLA with " + SPARSE,
               "GLM-5 technical report: MLA, DeepSeek sparse attention, 78 layers, 256 experts (the vLLM GLM-5 "
               "model reuses DeepSeek's DSA code)"),
)


def unmodelled(name: str) -> Unmodelled | None:
    """The known family `name` belongs to, if its attention is one splitplan does not model."""
    from splitplan.catalog_names import model_tokens

    tokens = model_tokens(name)
    leading = {"".join(tokens[:j]) for j in range(1, len(tokens) + 1)}
    return next((f for f in FAMILIES if leading & set(f.prefixes)), None)


def refusal(name: str, family: Unmodelled) -> str:
    """The one-line error for a model of an unmodelled family."""
    return (f"model '{name}' is a {family.family} model: its {family.reason} is not what splitplan's performance "
            "model prices (dense softmax attention over the whole context), so it is refused, not guessed")
