"""Model entries of the catalog: a decoder-only transformer's shape, its parameter counts and KV size.

Split out of `splitplan.catalog` (which re-exports `Model`) to keep each module short. The defaults
describe a dense Llama-style model (GQA attention, SwiGLU MLP, untied embeddings), so an entry only
states what differs: MLA attention (DeepSeek), sliding-window layers (gpt-oss), routed and shared
experts (Mixtral, Qwen3-MoE, DeepSeek, gpt-oss, MiniMax).

Counting rules (matrices only: norms, biases, attention sinks and router biases are left out; they
are below 0.1% of every bundled model):

- attention per layer, GQA: `hidden*(heads + 2*kv_heads)*head_dim + heads*head_dim*hidden`
- attention per layer, MLA: `q + kv + o` with
  `q = hidden*q_lora_rank + q_lora_rank*heads*(qk_nope + qk_rope)` (or `hidden*heads*(qk_nope + qk_rope)`
  without a query LoRA), `kv = hidden*(kv_lora_rank + qk_rope) + kv_lora_rank*heads*(qk_nope + v_head_dim)`,
  `o = heads*v_head_dim*hidden`
- an MLP of width F: `m*hidden*F` with `m` = 3 (gated) or 2
- embeddings: `vocab*hidden` for the input table plus as much again for the LM head unless tied
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field

from splitplan.errors import SplitplanError

ATTENTION_KINDS = ("gqa", "mla")
WEIGHT_FORMATS = ("bf16", "fp8", "fp8_block", "mxfp4", "nvfp4", "int4_wo")
_MLA_FIELDS = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
_MLA_REQUIRED = ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
_EXPERT_FIELDS = ("experts_per_token", "shared_experts", "expert_ffn", "shared_expert_ffn", "dense_layers")


@dataclass(frozen=True)
class Model:
    """A decoder-only transformer's shape; defaults mean dense Llama-style (GQA, SwiGLU, untied)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int  # dense MLP width (all layers of a dense model, the `dense_layers` of an MoE model)
    vocab: int
    gated_mlp: bool = True  # SwiGLU, 3 matrices (also for experts); false: 2 matrices (BLOOM)
    dtype_bytes: float = 2.0  # bytes per weight and per KV element (the instance will own quantization)
    head_dim: int = 0  # 0: hidden // heads (GQA) or qk_nope_head_dim + qk_rope_head_dim (MLA)
    # attention
    attention: str = "gqa"  # "gqa" (MHA is kv_heads == heads) or "mla" (DeepSeek latent attention)
    q_lora_rank: int = 0  # MLA query compression rank; 0 = plain query projection
    kv_lora_rank: int = 0  # MLA latent width: what the KV cache stores per token and layer ...
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0  # ... plus this decoupled RoPE key
    v_head_dim: int = 0
    sliding_window: int = 0  # tokens a sliding-window layer attends to; 0 = none
    sliding_layers: int = 0  # how many of the layers use the window
    attention_sinks: bool = False  # learned per-head sink logits (gpt-oss); no weights worth counting
    # mixture of experts
    experts: int = 0  # routed experts per MoE layer; 0 = dense
    experts_per_token: int = 0  # top-k
    shared_experts: int = 0  # always-on experts per MoE layer
    expert_ffn: int = 0  # routed expert MLP width
    shared_expert_ffn: int = 0  # 0: same as expert_ffn
    dense_layers: int = 0  # leading layers with a dense MLP of width `ffn` (DeepSeek-V3: 3)
    tied_embeddings: bool = False  # LM head shares the input embedding table
    # informational: the published checkpoint's formats (defaults for quantization choices)
    native_weights: str = "bf16"
    native_moe_weights: str = ""  # "": same as native_weights
    # other published checkpoints' expert formats (Kimi-K2.5: NVIDIA's NVFP4 copy of its INT4 experts):
    # a row labelled with one of these runs it, not the native experts (apps/benchmark_rows.py)
    expert_checkpoints: tuple[str, ...] = ()
    # model-card totals in billions, for tests that check the counting rules
    card_params_b: float = 0.0
    card_active_params_b: float = 0.0
    aliases: tuple[str, ...] = ()
    # names the spelling-tolerant match (catalog_names.py) must not take for this model: checkpoints of
    # another shape that only look like a quantized copy of it
    unlike: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.head_dim:
            mla = self.attention == "mla" and self.qk_nope_head_dim + self.qk_rope_head_dim
            object.__setattr__(self, "head_dim", mla or self.hidden // max(self.heads, 1))
        if self.shared_experts and not self.shared_expert_ffn:
            object.__setattr__(self, "shared_expert_ffn", self.expert_ffn)
        if not self.native_moe_weights:
            object.__setattr__(self, "native_moe_weights", self.native_weights)

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def is_mla(self) -> bool:
        return self.attention == "mla"

    @property
    def moe_layers(self) -> int:
        """Layers whose MLP is routed experts (all but the leading dense ones)."""
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def _mlp_matrices(self) -> int:
        return 3 if self.gated_mlp else 2

    @property
    def attention_params_per_layer(self) -> int:
        """Q, K, V and O projections of one layer (MLA: down/up projections of the latents)."""
        d, h = self.hidden, self.heads
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = d * self.q_lora_rank + self.q_lora_rank * h * qk if self.q_lora_rank else d * h * qk
            kv = d * (self.kv_lora_rank + self.qk_rope_head_dim) \
                + self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv + h * self.v_head_dim * d
        return d * (h + 2 * self.kv_heads) * self.head_dim + h * self.head_dim * d

    @property
    def dense_mlp_params(self) -> int:
        """One dense MLP of width `ffn`."""
        return self._mlp_matrices * self.hidden * self.ffn

    @property
    def expert_params(self) -> int:
        """One routed expert."""
        return self._mlp_matrices * self.hidden * self.expert_ffn

    @property
    def shared_expert_params(self) -> int:
        """All shared experts of one MoE layer."""
        return self.shared_experts * self._mlp_matrices * self.hidden * self.shared_expert_ffn

    @property
    def router_params(self) -> int:
        return self.hidden * self.experts

    @property
    def embedding_params(self) -> int:
        """The input embedding table."""
        return self.vocab * self.hidden

    @property
    def lm_head_params(self) -> int:
        """The output projection, 0 when tied to the embedding table (counted there once)."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    def _total(self, routed_experts: int) -> int:
        dense_mlp_layers = self.dense_layers if self.is_moe else self.layers
        moe = routed_experts * self.expert_params + self.shared_expert_params + self.router_params
        return (self.layers * self.attention_params_per_layer + dense_mlp_layers * self.dense_mlp_params
                + self.moe_layers * moe + self.embedding_params + self.lm_head_params)

    @property
    def params(self) -> int:
        """All weights: attention, dense MLPs, routed and shared experts, routers, embeddings, LM head."""
        return self._total(self.experts)

    @property
    def active_params(self) -> int:
        """Weights one token uses, as model cards count them: `params` with only the top-k routed
        experts per MoE layer (shared experts, routers, the embedding table and the LM head included)."""
        return self._total(self.experts_per_token)

    @property
    def active_matmul_params(self) -> int:
        """Weights one token multiplies through (forward FLOPs ~ 2x this): `active_params` without the
        input-embedding lookup, unless tied (then the table is the LM head). OpenAI's gpt-oss card and
        DeepSeek's README_WEIGHTS count active parameters this way."""
        return self.active_params - (0 if self.tied_embeddings else self.embedding_params)

    @property
    def params_per_layer(self) -> int:
        """Weights of one layer of a dense model: attention plus the MLP (MoE layers differ; use params)."""
        if self.is_moe:
            raise SplitplanError(f"model '{self.name}' is a mixture of experts: its layers differ, use params",
                                 field="params_per_layer")
        return self.attention_params_per_layer + self.dense_mlp_params

    @property
    def weight_bytes(self) -> float:
        return self.params * self.dtype_bytes

    @property
    def kv_elements_per_token(self) -> int:
        """KV-cache elements one token adds across all layers: GQA `2*layers*kv_heads*head_dim`,
        MLA `layers*(kv_lora_rank + qk_rope_head_dim)` (the latent and the RoPE key, shared by all heads)."""
        return self.layers * self._kv_elements_per_layer

    @property
    def _kv_elements_per_layer(self) -> int:
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.kv_heads * self.head_dim

    def kv_elements(self, context_tokens: int) -> int:
        """KV elements a sequence of `context_tokens` holds: sliding-window layers keep at most the window."""
        full = (self.layers - self.sliding_layers) * context_tokens
        windowed = self.sliding_layers * min(context_tokens, self.sliding_window)
        return (full + windowed) * self._kv_elements_per_layer

    @property
    def kv_bytes_per_token(self) -> float:
        """KV bytes per token at `dtype_bytes` per element: 320 KiB for Llama2-70B in 16-bit, 70,272 B for
        DeepSeek-V3 (61 x (512 + 64) x 2)."""
        return self.kv_elements_per_token * self.dtype_bytes

    def check_tp(self, tp: int) -> None:
        """Raise a one-line error unless tensor parallelism `tp` splits this model's attention evenly:
        query heads divisible by tp, and (GQA) KV heads divisible by tp or dividing it (replicated).
        MLA keeps one latent per token that every rank holds, so only the query heads constrain it."""
        tp = _whole(tp, "tp")
        if self.heads % tp:
            raise SplitplanError(f"model '{self.name}': {self.heads} attention heads are not divisible by tp {tp}",
                                 field="tp")
        if not self.is_mla and self.kv_heads % tp and tp % self.kv_heads:
            raise SplitplanError(f"model '{self.name}': {self.kv_heads} KV heads neither divide into tp {tp} "
                                 f"nor replicate evenly across it", field="tp")

    def check_ep(self, ep: int) -> None:
        """Raise a one-line error unless expert parallelism `ep` splits the routed experts evenly."""
        ep = _whole(ep, "ep")
        if ep == 1:
            return
        if not self.is_moe:
            raise SplitplanError(f"model '{self.name}' is dense: it has no experts to split over ep {ep}",
                                 field="ep")
        if self.experts % ep:
            raise SplitplanError(f"model '{self.name}': {self.experts} experts are not divisible by ep {ep}",
                                 field="ep")


def _whole(value: object, name: str) -> int:
    """A parallelism degree as an int >= 1 (numpy integers accepted), else a one-line error."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = 0
    if isinstance(value, bool) or number < 1:
        raise SplitplanError(f"must be a whole number >= 1, got {value!r}", field=name)
    return number


def model_problems(m: Model) -> list[tuple[str, str]]:
    """Every inconsistency of one model entry as (field, message), in a stable order; empty if valid."""
    out: list[tuple[str, str]] = []
    if m.attention not in ATTENTION_KINDS:
        out.append(("attention", f"must be one of {', '.join(ATTENTION_KINDS)}, got '{m.attention}'"))
    for name in ("native_weights", "native_moe_weights"):
        if getattr(m, name) not in WEIGHT_FORMATS:
            out.append((name, f"must be one of {', '.join(WEIGHT_FORMATS)}, got '{getattr(m, name)}'"))
    for fmt in m.expert_checkpoints:
        if fmt not in WEIGHT_FORMATS:
            out.append(("expert_checkpoints", f"must be formats among {', '.join(WEIGHT_FORMATS)}, got '{fmt}'"))
    if m.expert_checkpoints and not m.is_moe:
        out.append(("expert_checkpoints", "names expert formats: only for a model with experts"))
    if m.kv_heads > m.heads:
        out.append(("kv_heads", f"{m.kv_heads} KV heads exceed the {m.heads} attention heads"))
    elif m.heads % m.kv_heads:
        out.append(("kv_heads", f"{m.kv_heads} KV heads do not divide the {m.heads} attention heads"))
    if m.is_mla:
        out += [(f, "is required for attention: mla") for f in _MLA_REQUIRED if not getattr(m, f)]
    else:
        out += [(f, "is an MLA field; set attention: mla or drop it") for f in _MLA_FIELDS if getattr(m, f)]
    if m.sliding_layers > m.layers:
        out.append(("sliding_layers", f"{m.sliding_layers} exceeds the {m.layers} layers"))
    if bool(m.sliding_window) != bool(m.sliding_layers):
        out.append(("sliding_window" if m.sliding_layers else "sliding_layers",
                    "sliding_window and sliding_layers go together (both 0, or both positive)"))
    if m.is_moe:
        if not m.experts_per_token:
            out.append(("experts_per_token", "is required when experts > 0"))
        elif m.experts_per_token > m.experts:
            out.append(("experts_per_token", f"top-{m.experts_per_token} exceeds the {m.experts} experts"))
        if not m.expert_ffn:
            out.append(("expert_ffn", "is required when experts > 0"))
        if m.dense_layers >= m.layers:
            out.append(("dense_layers", f"{m.dense_layers} leaves none of the {m.layers} layers for experts"))
    else:
        out += [(f, "is an expert field; set experts > 0 or drop it") for f in _EXPERT_FIELDS if getattr(m, f)]
    return out
