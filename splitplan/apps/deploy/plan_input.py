"""What a deployment needs from a plan.json: the chosen cluster, the model's Hugging Face id, and per pool
the engine knobs the simulation assumed (read from the plan's stack, since plan.json records the stack by
name and not its scheduling defaults).

Everything here is engine-neutral: `engines.py` turns a `PoolPlan` into one engine's flags. A plan the
targets cannot honour (no verified plan, no Hugging Face id, a quantization the public checkpoint does
not have) is refused here with one line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from splitplan.catalog import Catalog, Model
from splitplan.errors import SplitplanError
from splitplan.serving.quant import KvFormat, Quant, WeightFormat
from splitplan.serving.stack import Scheduling, Stack, get_stack

# plan role -> what the engines call it
ENGINE_ROLE = {"prompt": "prefill", "token": "decode", "mixed": "aggregated"}


@dataclass(frozen=True)
class PoolPlan:
    """One pool of the plan, with the per-instance engine settings the simulation assumed."""

    role: str  # the plan's role: prompt | token | mixed
    machine: str
    machines: int  # machines in the pool (the plan's count)
    gpus_per_machine: int
    tp: int
    ep: int  # expert parallelism (1: none; plan.json records it per pool when a plan uses it)
    gpu: str
    power_cap_w: float | None  # per-GPU power limit the plan's machine assumes (None: uncapped)
    scheduling: Scheduling  # the stack's defaults on this GPU
    gpu_memory_fraction: float  # share of the whole HBM for weights + KV (vLLM/SGLang convention)

    @property
    def engine_role(self) -> str:
        return ENGINE_ROLE[self.role]

    @property
    def instances_per_machine(self) -> int:
        return self.gpus_per_machine // self.tp

    @property
    def instances(self) -> int:
        """Engine replicas of the pool: machines x (GPUs per machine / TP)."""
        return self.machines * self.instances_per_machine


@dataclass(frozen=True)
class DeployPlan:
    """The plan as a deployment sees it."""

    source: str  # the plan file as given
    scenario: str
    design: str
    kind: str  # baseline | splitwise
    label: str
    throughput_rps: float | None
    model: str  # catalog name
    hf_id: str
    hf_id_given: bool  # --model-id was passed
    stack: Stack
    quant: Quant
    quantization: str | None  # engine --quantization for online quantization of a 16-bit checkpoint
    pools: tuple[PoolPlan, ...]
    compat: str | None

    @property
    def split(self) -> bool:
        return any(p.role != "mixed" for p in self.pools)

    def origin(self) -> str:
        """One line naming the plan, design and stack (every written file starts with it)."""
        return (f"splitplan plan {self.source} (scenario {self.scenario}), design {self.design}: {self.label}; "
                f"stack {self.stack.name} ({self.stack.engine} {self.stack.versions})")


def read_plan(path: str | Path) -> dict[str, Any]:
    source = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SplitplanError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SplitplanError(f"not a plan.json ({exc.__class__.__name__})", source=source) from None
    if not isinstance(data, dict) or "scenario" not in data or "designs" not in data:
        raise SplitplanError("not a plan.json written by splitplan optimize (no scenario/designs)", source=source)
    return data


def chosen_candidate(plan: dict[str, Any], source: str, design: str | None) -> dict[str, Any]:
    """The plan's verified best (or the named design's verified best)."""
    if design is None:
        best = plan.get("best")
        if not best or not best.get("verified"):
            why = plan.get("binding") or plan.get("status") or "no plan"
            raise SplitplanError(f"no verified best plan to deploy ({why})", source=source, field="best")
        return best
    designs = plan.get("designs") or {}
    if design not in designs:
        raise SplitplanError(f"no design '{design}' (designs: {', '.join(designs) or 'none'})", source=source,
                             field="designs")
    best = (designs[design] or {}).get("best")
    if not best or not best.get("verified"):
        why = (designs[design] or {}).get("binding") or "no plan"
        raise SplitplanError(f"design {design} has no verified plan to deploy ({why})", source=source,
                             field=f"designs.{design}")
    return best


def hf_id_of(model: Model, override: str | None) -> str:
    """The model's canonical Hugging Face id: the first catalog alias of the form org/name, spelt as the
    model's sources spell it (the catalog keeps aliases lower-cased)."""
    if override:
        return override
    ids = [a for a in model.aliases if "/" in a]
    if not ids:
        raise SplitplanError(f"model {model.name} has no Hugging Face id in the catalog (an alias org/name); "
                             "pass --model-id ORG/NAME", field="model")
    canonical = ids[0]
    pattern = re.compile(re.escape(canonical) + r"(?![\w.-])", re.IGNORECASE)
    for text in (model.sources or {}).values():
        match = pattern.search(str(text))
        if match:
            return match.group(0)
    return canonical


def _quantization(model: Model, quant: Quant, given_id: bool) -> str | None:
    """The engine's --quantization for what the plan ran, or None when the checkpoint already is it.

    A 16-bit checkpoint can be quantized to FP8 on load (vLLM and SGLang `--quantization fp8`); any
    other change of format needs a checkpoint in that format, which --model-id names."""
    native = {"weights": model.native_weights, "moe_weights": model.native_moe_weights or model.native_weights}
    wanted = {"weights": quant.weights.value, "moe_weights": quant.experts.value}
    if not model.is_moe:
        native.pop("moe_weights")
        wanted.pop("moe_weights")
    if native == wanted or given_id:
        return None
    if set(wanted.values()) == {WeightFormat.FP8.value} and set(native.values()) == {WeightFormat.BF16.value}:
        return "fp8"
    diff = ", ".join(f"{k} {wanted[k]} (checkpoint {native[k]})" for k in wanted if wanted[k] != native[k])
    raise SplitplanError(f"the plan runs {diff}; no engine flag converts {model.name}'s checkpoint to that: "
                         "pass --model-id with a checkpoint in that format", field="quantization")


def gpu_memory_fraction(model: Model, machine, gpu, tp: int, quant: Quant, sched: Scheduling) -> float:
    """Share of the whole HBM the simulated instance used for weights, reserve and KV pool.

    vLLM's --gpu-memory-utilization and SGLang's --mem-fraction-static are this share; a stack that sizes
    its KV pool from the memory left after the weights (TensorRT-LLM) is converted to it."""
    from splitplan.perf.base import Instance
    from splitplan.perf.memory import GIB, hbm_bytes_per_gpu, kv_pool_bytes_per_gpu, weight_bytes_per_gpu

    inst = Instance(model, machine, gpu, tp, quant)
    used = weight_bytes_per_gpu(inst) + sched.reserve_gb * GIB + max(kv_pool_bytes_per_gpu(inst, sched), 0.0)
    return round(min(used / hbm_bytes_per_gpu(inst), 1.0), 3)


def deploy_plan(path: str | Path, catalog: Catalog, *, design: str | None = None,
                model_id: str | None = None) -> DeployPlan:
    """Read plan.json and resolve everything a target writer needs."""
    source = str(path)
    plan = read_plan(path)
    cand = chosen_candidate(plan, source, design)
    scenario = plan.get("scenario") or {}
    perf = scenario.get("perf") or {}
    try:
        stack = get_stack(perf.get("stack_file") or perf.get("stack"))
        model = catalog.model(str(scenario.get("model")))
    except SplitplanError as exc:
        raise SplitplanError(f"{exc.problem} (the plan's scenario.perf / scenario.model)", source=source,
                             field=exc.field) from None
    quant = Quant.parse(perf.get("weights") or None, perf.get("moe_weights") or None, perf.get("kv") or None)
    try:
        hf_id = hf_id_of(model, model_id)
        quantization = _quantization(model, quant, bool(model_id))
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=source, field=exc.field) from None
    pools = []
    for i, raw in enumerate(cand.get("pools") or []):
        if not int(raw.get("count", 0)):
            continue
        try:
            machine = catalog.machine(str(raw["machine"]))
        except (SplitplanError, KeyError) as exc:
            problem = exc.problem if isinstance(exc, SplitplanError) else "no machine"
            raise SplitplanError(f"{problem}; pass the plan's --catalog", source=source, field=f"best.pools[{i}]") from None
        gpu = catalog.gpu_of(machine)
        tp = int(raw.get("tp", machine.gpus))
        sched = stack.scheduling_for(gpu, _pool_overrides(scenario, raw, source, i))
        cap = gpu.tdp_w * machine.power_cap_fraction if machine.is_power_capped else None
        pools.append(PoolPlan(role=str(raw["role"]), machine=machine.name, machines=int(raw["count"]),
                              gpus_per_machine=machine.gpus, tp=tp, ep=int(raw.get("ep", 1) or 1), gpu=gpu.name,
                              power_cap_w=cap, scheduling=sched,
                              gpu_memory_fraction=gpu_memory_fraction(model, machine, gpu, tp, quant, sched)))
    if not pools:
        raise SplitplanError("the chosen plan has no machines", source=source, field="best.pools")
    return DeployPlan(source=source, scenario=str(scenario.get("name", "")), design=str(cand.get("design", "")),
                      kind=str(cand.get("kind", "")), label=str(cand.get("label", "")),
                      throughput_rps=cand.get("throughput_rps"), model=model.name, hf_id=hf_id,
                      hf_id_given=bool(model_id), stack=stack, quant=quant, quantization=quantization,
                      pools=tuple(pools), compat=perf.get("compat"))


_POOL_KEYS = ("role", "machine", "count", "tp", "ep", "dp", "stack")
_SERVING_KEYS = ("prompt", "token", "mixed", "transfer", "prompt_overflow_tokens", "token_overflow_tokens")


def _pool_overrides(scenario: dict, raw: dict, source: str, index: int) -> dict:
    """The scheduling the plan was simulated with: the scenario's serving settings, then the pool's own
    (what the plan.json pool records: batching, max_batched_tokens, max_seqs, ...)."""
    from splitplan.cluster import serving_overrides

    serving = scenario.get("serving") or {}
    top = {k: v for k, v in serving.items() if k not in _SERVING_KEYS}
    own = {k: v for k, v in raw.items() if k not in _POOL_KEYS}
    return dict(serving_overrides(top, source, "scenario.serving")) | dict(
        serving_overrides(own, source, f"best.pools[{index}]"))


def kv_is_fp8(plan: DeployPlan) -> bool:
    return plan.quant.kv is KvFormat.FP8
