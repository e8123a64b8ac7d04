"""A scenario's designs and its `serving:` section: which clusters to compare, and how they serve.

Design kinds (docs/scenarios.md):
- `colocated`: every machine runs both phases, batched by `batching:` (default: the stack's own policy;
  chunked prefill where the stack's is SplitwiseSim's 2023 mixed batching). The design people run.
- `disaggregated`: prefill and decode workers whose roles are fixed at launch (NVIDIA Dynamo, SGLang
  PD, llm-d): KV moves from one to the other, nothing overflows.
- `baseline`: co-located with the stack's batching, as the paper's baselines ran (the 2023 stack: mixed).
- `splitwise`: the paper's prompt and token pools, overflowing into mixed or borrowed machines.

Instance shapes: `tp: 8` fixes the tensor parallelism of every pool; `tp: auto` (the default of
colocated and disaggregated designs) lets the optimizer choose among 1, 2, 4 and 8 GPUs per instance;
`tp: [4, 8]` among those; `prompt_tp:` / `token_tp:` give a pool its own. Shapes that do not divide a
machine's GPUs or do not hold the model are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitplan.errors import SplitplanError
from splitplan.fields import FieldReader

DESIGN_KINDS = ("colocated", "disaggregated", "baseline", "splitwise")
CLUSTER_DESIGNS = {"colocated": "baseline", "baseline": "baseline", "splitwise": "splitwise",
                   "disaggregated": "disagg"}  # the simulator's router per design kind
SPLIT_KINDS = ("splitwise", "disaggregated")  # kinds whose phases run on separate pools
TP_CHOICES = (1, 2, 4, 8)
BATCHING = ("chunked", "mixed", "prefill_first", "inflight")
SERVING_ROLES = ("prompt", "token", "mixed")


@dataclass(frozen=True)
class Design:
    """One cluster design to optimize (see the module docstring for the kinds)."""

    name: str
    kind: str
    machines: tuple[str, ...] = ()  # co-located kinds: machine types of the one pool
    prompt: tuple[str, ...] = ()  # split kinds: machine types allowed in the prompt (prefill) pool
    token: tuple[str, ...] = ()  # split kinds: machine types allowed in the token (decode) pool
    tp: tuple[int, ...] = (8,)  # instance shapes (GPUs per instance) searched for every pool; one = fixed
    prompt_tp: tuple[int, ...] = ()  # the prompt pool's own shapes (empty: tp)
    token_tp: tuple[int, ...] = ()
    stack: str | None = None  # serving stack of this design (None: the scenario's perf.stack)
    batching: str | None = None  # co-located batching policy (None: see the module docstring)

    def __post_init__(self) -> None:
        for key in ("tp", "prompt_tp", "token_tp"):  # Design(tp=8) from Python means one fixed shape
            value = getattr(self, key)
            if isinstance(value, int):
                object.__setattr__(self, key, (value,))

    def pools(self) -> dict[str, tuple[str, ...]]:
        """Role -> allowed machine types."""
        if self.kind in SPLIT_KINDS:
            return {"prompt": self.prompt, "token": self.token}
        return {"mixed": self.machines}

    def shapes(self, role: str) -> tuple[int, ...]:
        """The tensor-parallel sizes a role's instances may take."""
        own = {"prompt": self.prompt_tp, "token": self.token_tp}.get(role, ())
        return own or self.tp

    @property
    def searched(self) -> bool:
        """Whether the optimizer chooses some pool's shape (not one fixed tp)."""
        return any(len(self.shapes(role)) > 1 for role in self.pools())

    @property
    def cluster_design(self) -> str:
        return CLUSTER_DESIGNS[self.kind]

    @property
    def split(self) -> bool:
        return self.kind in SPLIT_KINDS

    def shape_text(self, role: str | None = None) -> str:
        """'tp8', 'tp auto' or 'tp 4/8' for messages."""
        shapes = self.shapes(role) if role else self.tp
        if len(shapes) == 1:
            return f"tp {shapes[0]}"
        return "tp auto" if shapes == TP_CHOICES else "tp " + "/".join(map(str, shapes))

    def to_dict(self) -> dict[str, Any]:
        """The design as plan.json records it."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "tp": _tp_out(self.tp)}
        out |= {r: list(m) for r, m in self.pools().items()}
        for key, shapes in (("prompt_tp", self.prompt_tp), ("token_tp", self.token_tp)):
            if shapes:
                out[key] = _tp_out(shapes)
        return out | {k: v for k, v in (("stack", self.stack), ("batching", self.batching)) if v}


def _tp_out(shapes: tuple[int, ...]) -> Any:
    return shapes[0] if len(shapes) == 1 else "auto" if shapes == TP_CHOICES else list(shapes)


@dataclass(frozen=True)
class RoleServing:
    """One pool role's own serving settings: its stack and scheduling overrides."""

    stack: str | None = None
    scheduling: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ServingSection:
    """How the designs serve: the stack's scheduling overrides (every pool), per-role settings, the KV
    transfer mode and the overflow limits of Splitwise routing. The capacity model and the simulator
    read the same resolved Scheduling (perf.scheduling), so they batch alike."""

    scheduling: tuple[tuple[str, Any], ...] = ()
    roles: tuple[tuple[str, RoleServing], ...] = ()
    transfer: str | None = None  # layerwise | serialized (None: the simulator's default, layerwise)
    prompt_overflow_tokens: int | None = None
    token_overflow_tokens: int | None = None

    def role(self, role: str) -> RoleServing:
        return dict(self.roles).get(role, RoleServing())

    def to_dict(self) -> dict[str, Any]:
        from splitplan.cluster import overrides_to_dict

        out: dict[str, Any] = overrides_to_dict(self.scheduling)
        for role, rs in self.roles:
            out[role] = overrides_to_dict(rs.scheduling) | ({"stack": rs.stack} if rs.stack else {})
        for key in ("transfer", "prompt_overflow_tokens", "token_overflow_tokens"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


# ---------------------------------------------------------------- parsing
def _shapes(f: FieldReader, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = f.raw(name)
    if raw is None:
        return default
    if raw == "auto":
        return TP_CHOICES
    values = raw if isinstance(raw, list) else [raw]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise f.error(name, f"must be a GPU count (1, 2, 4, 8), a list of them, or 'auto'; got {raw!r}")
    for v in values:
        if v < 1 or v & (v - 1) or v > 64:
            raise f.error(name, f"must be a power of two (1, 2, 4, 8), got {v}")
    if len(set(values)) != len(values):
        raise f.error(name, "lists a shape twice")
    return tuple(sorted(values))


def parse_design(data: Any, source: str, index: int, base_dir: Path | None = None) -> Design:
    from splitplan.scenario import resolve_stack_name

    f = FieldReader(data, source, f"designs[{index}]")
    kind = f.string("kind", required=True, choices=DESIGN_KINDS)
    name = f.string("name", required=True)
    f.prefix = f"designs.{name}"
    default = TP_CHOICES if kind in ("colocated", "disaggregated") else (8,)
    tp = _shapes(f, "tp", default)
    stack = resolve_stack_name(f.string("stack"), base_dir, source, f"designs.{name}.stack")
    common: dict[str, Any] = {"name": name, "kind": kind, "tp": tp, "stack": stack}
    if kind in SPLIT_KINDS:
        design = Design(prompt=f.names("prompt", required=True), token=f.names("token", required=True),
                        prompt_tp=_shapes(f, "prompt_tp", ()), token_tp=_shapes(f, "token_tp", ()), **common)
        for other, why in (("machines", "lists 'prompt' and 'token' machines instead"),
                           ("batching", "has no co-located pool (its pools batch one phase each)")):
            if f.raw(other) is not None:
                raise f.error(other, f"a {kind} design {why}")
    else:
        batching = f.string("batching", choices=BATCHING)
        if batching and kind == "baseline":
            raise f.error("batching", "a baseline batches as its stack does; use kind: colocated to choose")
        design = Design(machines=f.names("machines", required=True), batching=batching, **common)
        for other in ("prompt", "token", "prompt_tp", "token_tp"):
            if f.raw(other) is not None:
                raise f.error(other, f"only split designs (splitwise, disaggregated) have prompt/token pools; "
                                     "use 'machines' and 'tp'")
    f.done()
    return design


def parse_serving(data: Any, source: str, base_dir: Path | None = None) -> ServingSection:
    from splitplan.cluster import serving_overrides
    from splitplan.scenario import resolve_stack_name
    from splitplan.sim.config import TRANSFER_MODES

    f = FieldReader(data or {}, source, "serving")
    transfer = f.string("transfer", choices=TRANSFER_MODES)
    overflow = {key: f.number(key, integer=True, positive=True, hi=1 << 24, hi_why="tokens")
                for key in ("prompt_overflow_tokens", "token_overflow_tokens")}
    if f.raw("stack") is not None:
        raise f.error("stack", "the scenario's stack is perf.stack (a design's: designs.NAME.stack; "
                               "a pool's: serving.prompt.stack)")
    roles = []
    for role in SERVING_ROLES:
        raw = f.raw(role)
        if raw is None:
            continue
        r = FieldReader(raw, source, f"serving.{role}")
        stack = resolve_stack_name(r.string("stack"), base_dir, source, f"serving.{role}.stack")
        rest = {k: v for k, v in raw.items() if k != "stack"}
        roles.append((role, RoleServing(stack, serving_overrides(rest, source, f"serving.{role}"))))
    scheduling = {k: v for k, v in (data or {}).items() if k not in f.seen}
    section = ServingSection(scheduling=serving_overrides(scheduling, source, "serving"), roles=tuple(roles),
                             transfer=transfer, **overflow)
    if dict(section.scheduling).get("policy") is not None and any(
            dict(rs.scheduling).get("policy") for _, rs in section.roles):
        raise SplitplanError("give batching once: for every pool, or per role", source=source, field="serving.batching")
    return section
