"""Cluster specifications: which machines serve which phase (the object the simulator and optimizer share).

A cluster is a model plus pools of machines. A *baseline* cluster has only "mixed" pools (every machine
runs prompts and tokens together, with its stack's batching policy); a *Splitwise* cluster has a "prompt"
pool and a "token" pool (and optionally a "mixed" pool for overflow, or machines borrowed across pools);
a *disagg* cluster has prefill and decode workers whose roles are fixed at launch, as disaggregated
engines run them (NVIDIA Dynamo, SGLang PD, llm-d): no mixed pool and no borrowing. Each pool has its
own instance shape (tp) and may run its own serving stack and scheduling settings (a prefill worker's
token budget, a decode worker's sequence limit). Specs are frozen and picklable so that optimizer worker
processes can ship them around.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from splitplan.catalog import Catalog, get_catalog
from splitplan.errors import SplitplanError, nearest_names

ROLES = ("prompt", "token", "mixed")
MAX_MACHINES = 100_000  # a typo'd count (dgx-h100:100000000) must be an error, not an out-of-memory crash
DESIGNS = ("baseline", "splitwise", "disagg")


@dataclass(frozen=True)
class PoolSpec:
    """`count` machines of one type serving one role, each split into gpus // tp instances.

    stack: the pool's serving stack (None: the cluster's); scheduling: the pool's overrides of its
    stack's scheduling, sorted (field, value) pairs (serving.stack.scheduling_overrides)."""

    role: str
    machine: str
    count: int
    tp: int = 8
    stack: str | None = None
    scheduling: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "machine": self.machine, "count": self.count, "tp": self.tp}
        if self.stack:
            out["stack"] = self.stack
        return out | overrides_to_dict(self.scheduling)


@dataclass(frozen=True)
class ClusterSpec:
    """A model served by pools of machines under one design ("baseline" or "splitwise")."""

    model: str
    design: str
    pools: tuple[PoolSpec, ...]
    stack: str | None = None  # serving stack (None: the simulation's perf settings decide)

    def machine_count(self) -> int:
        return sum(pool.count for pool in self.pools)

    def role_count(self, role: str) -> int:
        return sum(pool.count for pool in self.pools if pool.role == role)

    def cost_usd_per_h(self, catalog: Catalog | None = None) -> float:
        catalog = catalog or get_catalog()
        return sum(pool.count * catalog.machine(pool.machine).cost_usd_per_h for pool in self.pools)

    def power_kw(self, catalog: Catalog | None = None) -> float:
        """Provisioned power (the machines' rated power, what a datacenter must budget)."""
        catalog = catalog or get_catalog()
        return sum(pool.count * catalog.machine(pool.machine).power_kw for pool in self.pools)

    def label(self) -> str:
        """Human summary, e.g. 'Splitwise: prompt 25 x dgx-h100 + token 26 x dgx-a100'."""
        parts = []
        for pool in self.pools:
            tp = "" if pool.tp == 8 else f" (tp{pool.tp})"
            role = "" if self.design == "baseline" and pool.role == "mixed" else f"{pool.role} "
            parts.append(f"{role}{pool.count} x {pool.machine}{tp}")
        word = DESIGN_LABELS[self.design]
        if self.design == "baseline" and any(dict(p.scheduling).get("policy") for p in self.pools):
            word = "Co-located"  # a co-located design with its batching chosen (kind: colocated)
        return f"{word}: " + " + ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = {"model": self.model, "design": self.design, "pools": [pool.to_dict() for pool in self.pools]}
        return out | ({"stack": self.stack} if self.stack else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "cluster") -> ClusterSpec:
        if not isinstance(data, dict):
            raise SplitplanError("expected a mapping with model, design, pools", source=source)
        for key in ("model", "design", "pools"):
            if key not in data:
                raise SplitplanError(f"missing key '{key}'", source=source, field=key)
        pools = []
        for index, pool in enumerate(data["pools"] or []):
            where = f"pools[{index}]"
            if not isinstance(pool, dict) or not {"role", "machine", "count"} <= set(pool):
                raise SplitplanError("each pool needs role, machine, count (tp, stack and scheduling "
                                     "settings optional)", source=source, field=where)
            extra = {k: v for k, v in pool.items() if k not in ("role", "machine", "count", "tp", "stack")}
            try:
                pools.append(PoolSpec(str(pool["role"]), str(pool["machine"]), int(pool["count"]),
                                      int(pool.get("tp", 8)), pool.get("stack"),
                                      serving_overrides(extra, source, where)))
            except (TypeError, ValueError) as exc:
                raise SplitplanError(f"bad number: {exc}", source=source, field=where) from None
        return cls(str(data["model"]), str(data["design"]), tuple(pools), data.get("stack"))

    def validate(self, catalog: Catalog | None = None, source: str = "cluster") -> ClusterSpec:
        """Check names, counts and fit; return the spec with canonical machine/model names."""
        catalog = catalog or get_catalog()
        if self.design not in DESIGNS:
            raise SplitplanError(f"unknown design '{self.design}'{nearest_names(self.design, DESIGNS)}",
                                 source=source, field="design")
        model = catalog.model(self.model)
        pools = []
        for index, pool in enumerate(self.pools):
            where = f"pools[{index}]"
            if pool.role not in ROLES:
                raise SplitplanError(f"unknown role '{pool.role}'{nearest_names(pool.role, ROLES)}",
                                     source=source, field=where)
            machine = catalog.machine(pool.machine)
            if pool.count < 0:
                raise SplitplanError(f"count must be >= 0, got {pool.count}", source=source, field=where)
            if not machine.packs(pool.tp):
                raise SplitplanError(f"tp {pool.tp} must divide the {machine.gpus} GPUs of {machine.name}",
                                     source=source, field=where)
            # whether the weights fit depends on their format and the engine's reserve: the performance
            # model checks that when it is built (a one-line error naming the shape)
            if pool.stack is not None:
                _check_stack(pool.stack, source, where)
            pools.append(PoolSpec(pool.role, machine.name, pool.count, pool.tp, pool.stack, pool.scheduling))
        spec = ClusterSpec(model.name, self.design, tuple(pools), self.stack)
        if spec.machine_count() == 0:
            raise SplitplanError("the cluster has no machines", source=source, field="pools")
        if spec.machine_count() > MAX_MACHINES:
            raise SplitplanError(f"{spec.machine_count():,} machines is more than splitplan simulates "
                                 f"({MAX_MACHINES:,})", source=source, field="pools")
        if self.design == "baseline" and any(p.role != "mixed" for p in pools if p.count):
            raise SplitplanError("a baseline cluster has only mixed pools", source=source, field="pools")
        if self.design == "splitwise":
            prompt, token, mixed = (spec.role_count(r) for r in ROLES)
            if not ((prompt and token) or mixed):
                raise SplitplanError(
                    f"a Splitwise cluster needs >= 1 prompt and >= 1 token machine (or a mixed pool); "
                    f"got prompt {prompt}, token {token}, mixed {mixed}", source=source, field="pools")
        if self.design == "disagg":
            prompt, token, mixed = (spec.role_count(r) for r in ROLES)
            if mixed or not (prompt and token):
                raise SplitplanError(
                    f"a disaggregated cluster needs >= 1 prompt (prefill) and >= 1 token (decode) machine and "
                    f"no mixed pool; got prompt {prompt}, token {token}, mixed {mixed}", source=source, field="pools")
        return spec


DESIGN_LABELS = {"baseline": "Baseline", "splitwise": "Splitwise", "disagg": "Disaggregated"}


def _check_stack(name: str, source: str, where: str) -> None:
    from splitplan.serving.stack import get_stack

    try:
        get_stack(name)
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=source, field=f"{where}.stack") from None


def serving_overrides(data: dict[str, Any], source: str, where: str) -> tuple[tuple[str, Any], ...]:
    """A pool's or scenario's scheduling settings as sorted (field, value) pairs: `batching` names the
    stack's batching policy, the other keys are Scheduling fields (max_batched_tokens, max_seqs, ...)."""
    if not data:
        return ()
    from splitplan.serving.stack import scheduling_overrides

    raw = {("policy" if k == "batching" else k): v for k, v in data.items()}
    if "policy" in data:
        raise SplitplanError("name the batching policy with 'batching'", source=source, field=f"{where}.policy")
    return scheduling_overrides(raw, source, where)


def overrides_to_dict(pairs: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The inverse of serving_overrides, for writing specs back (enums as their names)."""
    return {("batching" if k == "policy" else k): getattr(v, "value", v) for k, v in pairs}


def baseline_cluster(model: str, machines: list[tuple[str, int]], tp: int = 8) -> ClusterSpec:
    """Every machine runs mixed continuous batching (the paper's Baseline-A100 / Baseline-H100)."""
    return ClusterSpec(model, "baseline", tuple(PoolSpec("mixed", m, c, tp) for m, c in machines))


def splitwise_cluster(model: str, prompt: list[tuple[str, int]], token: list[tuple[str, int]],
                      mixed: list[tuple[str, int]] | tuple = (), tp: int = 8) -> ClusterSpec:
    """Prompt pool + token pool (+ optional provisioned mixed pool)."""
    pools = [PoolSpec("prompt", m, c, tp) for m, c in prompt]
    pools += [PoolSpec("token", m, c, tp) for m, c in token]
    pools += [PoolSpec("mixed", m, c, tp) for m, c in mixed]
    return ClusterSpec(model, "splitwise", tuple(pools))


def disagg_cluster(model: str, prompt: list[tuple[str, int]], token: list[tuple[str, int]],
                   prompt_tp: int = 8, token_tp: int = 8) -> ClusterSpec:
    """Prefill workers + decode workers with fixed roles, each pool with its own shape."""
    pools = [PoolSpec("prompt", m, c, prompt_tp) for m, c in prompt]
    pools += [PoolSpec("token", m, c, token_tp) for m, c in token]
    return ClusterSpec(model, "disagg", tuple(pools))


def parse_pool_arg(text: str, source: str = "command line", field: str = "pool") -> Any:
    """'dgx-h100:25' -> ('dgx-h100', 25); 'dgx-h100:25:tp4' -> ('dgx-h100', 25, 4);
    'dgx-h100:10,dgx-a100:5' -> [('dgx-h100', 10), ('dgx-a100', 5)]."""
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    if not items:
        raise SplitplanError(f"empty pool '{text}' (expected MACHINE:COUNT)", source=source, field=field)
    parsed = [_parse_one_pool(item, source, field) for item in items]
    return parsed[0] if len(parsed) == 1 else parsed


def _parse_one_pool(item: str, source: str, field: str) -> tuple:
    parts = item.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise SplitplanError(f"'{item}' is not MACHINE:COUNT[:tpN]", source=source, field=field)
    try:
        count = int(parts[1])
    except ValueError:
        raise SplitplanError(f"count '{parts[1]}' in '{item}' is not an integer", source=source, field=field) from None
    if count < 0:
        raise SplitplanError(f"count must be >= 0 in '{item}'", source=source, field=field)
    if len(parts) == 2:
        return (parts[0], count)
    tp_text = parts[2].lower().removeprefix("tp")
    if not tp_text.isdigit() or int(tp_text) < 1:
        raise SplitplanError(f"'{parts[2]}' in '{item}' is not tpN", source=source, field=field)
    return (parts[0], count, int(tp_text))


def pools_from_args(role: str, parsed: Any, default_tp: int) -> list[PoolSpec]:
    """PoolSpecs from parse_pool_arg's output (one tuple or a list of them)."""
    items = parsed if isinstance(parsed, list) else [parsed]
    return [PoolSpec(role, item[0], item[1], item[2] if len(item) == 3 else default_tp) for item in items]
