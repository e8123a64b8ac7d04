"""Serving stacks: the software that turns hardware into latency, keyed by engine and version.

A stack is one object shared by the performance model, the simulator, the capacity model and the SLO
reference: the engine and the version range it describes, its scheduling defaults (batching policy,
iteration token budget, running-sequence limit, KV block size and memory fraction), and its parameters
(serving/params.py), which apply to every GPU through that GPU's datasheet. Where a stack was fitted
on data of one architecture, the fitted values sit under `arch: {hopper: ...}` and say so; another
architecture gets the stack's architecture-neutral values over that architecture's measured kernels
(profiles/kernels.yaml), and every prediction on it says it is extrapolated.

Stack files live in profiles/stacks/*.yaml (bundled) or anywhere (--stack FILE); see docs/stacks.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from splitplan.catalog import GPU, profiles_dir, read_yaml
from splitplan.errors import SplitplanError, nearest_names
from splitplan.fields import FieldReader
from splitplan.serving.params import StackParams, parse_values
from splitplan.serving.quant import KvFormat, Quant, WeightFormat


class BatchPolicy(str, Enum):
    """How an instance serving both phases forms an iteration (sim/policies implements each)."""

    CHUNKED = "chunked"  # decodes first, then prompt chunks in the token budget (vLLM v1, Sarathi-Serve)
    PREFILL_FIRST = "prefill_first"  # waiting prompts run as prefill-only batches before decodes (SGLang)
    INFLIGHT = "inflight"  # decodes plus whole prompts that fit the token budget (TensorRT-LLM IFB)
    MIXED = "mixed"  # SplitwiseSim's mixed batching: whole prompts preempt running decodes


class KvPolicy(str, Enum):
    PAGED = "paged"  # blocks allocated as tokens are computed; preempt the newest by recompute when full (vLLM)
    RESERVE = "reserve"  # prompt + whole output reserved at admission (TensorRT-LLM GUARANTEED_NO_EVICT)


class MemoryBasis(str, Enum):
    TOTAL = "total"  # KV pool = fraction x HBM - weights - reserve (vLLM gpu_memory_utilization, SGLang)
    FREE = "free"  # KV pool = fraction x (HBM left after weights and reserve) (TensorRT-LLM)


@dataclass(frozen=True)
class Scheduling:
    """The engine's scheduling defaults (what `vllm serve` does without flags, unless a file says)."""

    policy: BatchPolicy = BatchPolicy.CHUNKED
    max_batched_tokens: int = 8192  # iteration token budget (prompt chunk tokens + one per decode)
    max_seqs: int = 256  # running sequences per instance
    kv_policy: KvPolicy = KvPolicy.PAGED
    block_tokens: int = 16
    memory_fraction: float = 0.90
    memory_basis: MemoryBasis = MemoryBasis.TOTAL
    fp8_weights_kv: KvFormat = KvFormat.BF16  # KV format when weights are FP8 and no KV format is given
    reserve_gb: float = 4.0  # per GPU: CUDA context, NCCL, activations, CUDA graphs


@dataclass(frozen=True)
class SchedulingRule:
    """Engine defaults that depend on the GPU (vLLM's A100 budget, SGLang's 16k chunks on B200)."""

    archs: tuple[str, ...] = ()
    gpus: tuple[str, ...] = ()
    hbm_gb_min: float = 0.0
    hbm_gb_max: float = 1e9
    values: Mapping[str, Any] = field(default_factory=dict)

    def applies(self, gpu: GPU, arch: str) -> bool:
        names = {gpu.name, *gpu.aliases}
        return ((not self.archs or arch in self.archs) and (not self.gpus or bool(names & set(self.gpus)))
                and self.hbm_gb_min <= gpu.hbm_gb < self.hbm_gb_max)


@dataclass(frozen=True)
class Fitted:
    """Where a stack's numbers come from, and the range they were fitted on."""

    data: str = ""  # the measurements the parameters were fitted on ("" = not fitted)
    date: str = ""
    archs: tuple[str, ...] = ()  # architectures with fitted values
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    accuracy: Mapping[str, Any] = field(default_factory=dict)
    protocol: Mapping[str, float] = field(default_factory=dict)  # the benchmark client the data was fitted under


@dataclass(frozen=True)
class Stack:
    name: str
    engine: str
    versions: str  # "0.11 - 0.13", ">= 1.0", "any"
    description: str
    scheduling: Scheduling
    params: Mapping[str, float]  # architecture-neutral values over the kernel defaults
    arch_params: Mapping[str, Mapping[str, float]]
    fitted: Fitted
    source: str  # the file it was read from
    rules: tuple[SchedulingRule, ...] = ()

    def scheduling_for(self, gpu: GPU, overrides: Mapping[str, Any] | None = None) -> Scheduling:
        """The scheduling defaults on this GPU (rules in file order, later ones winning), then the
        deployment's own settings (`overrides`: what a scenario's serving section or a flag sets)."""
        from splitplan.serving.kernels import gpu_arch

        arch = gpu_arch(gpu)
        sched = self.scheduling
        for rule in self.rules:
            if rule.applies(gpu, arch):
                sched = replace(sched, **rule.values)
        return replace(sched, **overrides) if overrides else sched

    @property
    def calibrated(self) -> bool:
        return bool(self.fitted.data)

    def params_for(self, gpu: GPU) -> tuple[StackParams, str]:
        """(parameters, provenance line) of this stack on `gpu`: kernel defaults of its architecture, the
        stack's neutral values (host side: the same CPU work on any GPU), then its values fitted on that
        architecture. On an architecture it was not fitted on, its fitted kernel efficiencies carry over as
        ratios to the kernels they were fitted against (the engine's kernels reach the same share of a
        cuBLAS/FlashAttention measurement), applied to that architecture's kernels, within bounds."""
        from splitplan.serving.kernels import arch_kernels, gpu_arch

        arch = gpu_arch(gpu)
        kernels, kernel_note = arch_kernels(arch)
        params = kernels.with_values(self.params)
        if arch in self.arch_params:
            return params.with_values(self.arch_params[arch]), self.provenance(arch, kernel_note)
        source = next((a for a in self.fitted.archs if a in self.arch_params), None)
        if source is None:
            return params, self.provenance(arch, kernel_note)
        return params.with_values(self._carried(source, kernels)), self.provenance(arch, kernel_note)

    def _carried(self, source_arch: str, target: StackParams) -> dict[str, float]:
        """Fitted values of `source_arch` as ratios to its kernels, applied to `target`'s (bounded)."""
        from splitplan.serving.kernels import arch_kernels
        from splitplan.serving.params import SPECS

        reference, _ = arch_kernels(source_arch)
        out = {}
        for key, value in self.arch_params[source_arch].items():
            base = getattr(reference, key)
            scaled = value if base <= 0 else getattr(target, key) * value / base
            out[key] = min(max(scaled, SPECS[key].lo), SPECS[key].hi)
        return out

    def provenance(self, arch: str, kernel_note: str = "") -> str:
        if not self.calibrated:
            status = "uncalibrated defaults"
        elif arch in self.fitted.archs:
            status = f"calibrated on {arch} ({self.fitted.data})"
        else:
            fitted = ", ".join(self.fitted.archs) or "no architecture"
            status = f"extrapolated to {arch or 'unknown architecture'}: fitted on {fitted} only"
        kernels = f"; kernels: {kernel_note}" if kernel_note else ""
        return f"stack {self.name} ({self.engine} {self.versions}): {status}{kernels}"

    def extrapolated(self, arch: str) -> bool:
        return not self.calibrated or arch not in self.fitted.archs

    def default_quant(self, weights: str | None, moe_weights: str | None, kv: str | None) -> Quant:
        """The quantization a run of this stack uses: given formats, and the engine's KV default."""
        quant = Quant.parse(weights, moe_weights, None)
        if kv:
            return Quant(quant.weights, quant.moe_weights, Quant.parse(kv=kv).kv)
        fp8 = quant.weights in (WeightFormat.FP8, WeightFormat.FP8_BLOCK)
        return Quant(quant.weights, quant.moe_weights, self.scheduling.fp8_weights_kv if fp8 else KvFormat.BF16)


# ----------------------------------------------------------------------------------------- versions
_VERSION = re.compile(r"^\s*v?(\d+(?:\.\d+)*)(?:\.?(rc|a|b|dev|post)(\d*))?")


def version_key(text: str) -> tuple:
    """Sortable key of an engine version ('0.5.1.post1' > '0.5.1' > '0.5.1rc3'); () if unparseable."""
    m = _VERSION.match(str(text or ""))
    if not m:
        return ()
    nums = tuple(int(x) for x in m.group(1).split("."))
    nums = nums + (0,) * (4 - len(nums))
    tag = m.group(2)
    pre = ((1 if tag == "post" else -1), int(m.group(3) or 0)) if tag else (0, 0)
    return nums[:4] + pre


def parse_range(text: str, source: str) -> tuple[tuple, tuple]:
    """'0.11 - 0.13' -> (low key, high key); 'any' -> unbounded; a single version -> that version."""
    text = str(text).strip().lower()
    if text in ("", "any", "*"):
        return (), ()
    parts = [p.strip() for p in text.split(" - ")] if " - " in text else [text, text]
    if len(parts) != 2 or not all(version_key(p) for p in parts):
        raise SplitplanError(f"versions '{text}' must be 'any', a version, or 'LOW - HIGH'", source=source,
                             field="versions")
    return version_key(parts[0]), version_key(parts[1])


def covers(stack: Stack, version: str) -> bool:
    lo, hi = parse_range(stack.versions, stack.source)
    key = version_key(version)
    if not lo or not key:
        return not lo
    return lo <= key and key[:2] <= hi[:2]  # the high end covers its whole minor series


# ----------------------------------------------------------------------------------------- loading
def _enum(cls: type[Enum], f: FieldReader, name: str, default: Enum) -> Any:
    raw = f.string(name, default.value, choices=[e.value for e in cls])
    return cls(raw)


def _scheduling(data: Any, source: str, prefix: str = "scheduling", base: Scheduling | None = None,
                partial: bool = False) -> Any:
    """Scheduling from a mapping; `partial` returns only the fields given (for a rule's overrides)."""
    f = FieldReader(data or {}, source, prefix)
    d = base or Scheduling()
    s = Scheduling(
        policy=_enum(BatchPolicy, f, "policy", d.policy),
        max_batched_tokens=int(f.number("max_batched_tokens", d.max_batched_tokens, integer=True, lo=16, hi=1 << 20)),
        max_seqs=int(f.number("max_seqs", d.max_seqs, integer=True, lo=1, hi=1 << 16)),
        kv_policy=_enum(KvPolicy, f, "kv_policy", d.kv_policy),
        block_tokens=int(f.number("block_tokens", d.block_tokens, integer=True, lo=1, hi=4096)),
        memory_fraction=float(f.number("memory_fraction", d.memory_fraction, positive=True, hi=1.0)),
        memory_basis=_enum(MemoryBasis, f, "memory_basis", d.memory_basis),
        fp8_weights_kv=KvFormat(f.string("fp8_weights_kv", d.fp8_weights_kv.value, choices=("bf16", "fp8"))),
        reserve_gb=float(f.number("reserve_gb", d.reserve_gb, lo=0.0, hi=64.0)),
    )
    f.done()
    if partial:
        return {k: getattr(s, k) for k in (data or {})}
    return s


def scheduling_overrides(data: Any, source: str, prefix: str) -> tuple[tuple[str, Any], ...]:
    """Validated scheduling fields of a mapping, as sorted (field, value) pairs (hashable, so perf
    models built with them cache by them)."""
    return tuple(sorted(_scheduling(data, source, prefix, partial=True).items()))


SCHEDULING_FIELDS = tuple(Scheduling.__dataclass_fields__)


def _rules(data: Any, source: str) -> tuple[SchedulingRule, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise SplitplanError("must be a list of {when: {...}, set: {...}}", source=source, field="scheduling_rules")
    rules = []
    for i, raw in enumerate(data):
        f = FieldReader(raw, source, f"scheduling_rules[{i}]")
        w = FieldReader(f.raw("when", required=True), source, f"scheduling_rules[{i}].when")
        names = lambda key: tuple(str(x).lower() for x in (w.raw(key, []) or []))  # noqa: E731
        rule = SchedulingRule(archs=names("archs"), gpus=names("gpus"),
                              hbm_gb_min=float(w.number("hbm_gb_min", 0.0, lo=0.0)),
                              hbm_gb_max=float(w.number("hbm_gb_max", 1e9, lo=0.0)),
                              values=_scheduling(f.raw("set", required=True), source,
                                                 f"scheduling_rules[{i}].set", partial=True))
        w.done()
        f.done()
        rules.append(rule)
    return tuple(rules)


def _fitted(data: Any, source: str) -> Fitted:
    f = FieldReader(data or {}, source, "fitted")
    ranges_raw = f.raw("ranges", {})
    if not isinstance(ranges_raw, Mapping):
        raise f.error("ranges", "must map a quantity to [low, high]")
    ranges = {}
    for key, pair in ranges_raw.items():
        ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair)
        if not ok or pair[0] > pair[1]:
            raise f.error(f"ranges.{key}", "must be [low, high] with low <= high")
        ranges[str(key)] = (float(pair[0]), float(pair[1]))
    archs = f.raw("archs", [])
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise f.error("archs", "must be a list of architecture names")
    protocol = f.raw("protocol", {}) or {}
    known = ("num_prompts", "range_ratio", "warmup", "client_delay_ms", "seed")
    if not isinstance(protocol, Mapping) or any(k not in known for k in protocol):
        raise f.error("protocol", f"must map some of {', '.join(known)} to numbers")
    fitted = Fitted(data=str(f.raw("data", "") or ""), date=str(f.raw("date", "") or ""), archs=tuple(archs),
                    ranges=ranges, accuracy=dict(f.raw("accuracy", {}) or {}),
                    protocol={str(k): float(v) for k, v in protocol.items()})
    f.done()
    return fitted


def parse_stack(data: Any, source: str) -> Stack:
    f = FieldReader(data, source, "")
    name = f.string("name", required=True).strip().lower()
    arch_raw = f.raw("arch", {})
    if not isinstance(arch_raw, Mapping):
        raise f.error("arch", "must map an architecture name to parameter values")
    stack = Stack(
        name=name,
        engine=f.string("engine", required=True).strip().lower(),
        versions=str(f.raw("versions", "any")),
        description=f.string("description", "") or "",
        scheduling=_scheduling(f.raw("scheduling"), source),
        params=parse_values(f.raw("params", {}), source, "params"),
        arch_params={str(a).lower(): parse_values(v, source, f"arch.{a}") for a, v in arch_raw.items()},
        fitted=_fitted(f.raw("fitted"), source),
        source=source,
        rules=_rules(f.raw("scheduling_rules"), source),
    )
    f.done()
    parse_range(stack.versions, source)
    unknown = [a for a in stack.fitted.archs if a not in stack.arch_params]
    if unknown:
        raise SplitplanError(f"fitted.archs names '{unknown[0]}' but arch has no values for it", source=source,
                             field="fitted.archs")
    return stack


def load_stack_file(path: str | Path) -> Stack:
    """The one stack of a file (a file of several stacks needs `load_stacks`)."""
    stacks = load_stacks(path)
    if len(stacks) != 1:
        raise SplitplanError(f"holds {len(stacks)} stacks ({', '.join(stacks)}); name one of them", source=str(path))
    return next(iter(stacks.values()))


def load_stacks(path: str | Path) -> dict[str, Stack]:
    """Every stack of a file: one stack mapping, or `stacks: [...]` (what calibrate --serving writes)."""
    data = read_yaml(path)
    source = str(path)
    if isinstance(data, Mapping) and "stacks" in data:
        if set(data) - {"stacks"} or not isinstance(data["stacks"], list) or not data["stacks"]:
            raise SplitplanError("'stacks' must be the only key, a non-empty list of stacks", source=source,
                                 field="stacks")
        out: dict[str, Stack] = {}
        for i, spec in enumerate(data["stacks"]):
            stack = parse_stack(spec, f"{source}: stacks[{i}]")
            if stack.name in out:
                raise SplitplanError(f"stack name '{stack.name}' appears twice", source=source, field=f"stacks[{i}]")
            out[stack.name] = replace(stack, source=source)
        return out
    stack = parse_stack(data, source)
    return {stack.name: stack}


def bundled_stack_paths() -> list[Path]:
    folder = profiles_dir() / "stacks"
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


_BUNDLED: dict[str, Stack] | None = None


def bundled_stacks() -> dict[str, Stack]:
    """Name -> Stack of every bundled stack file (read once per process)."""
    global _BUNDLED
    if _BUNDLED is None:
        stacks: dict[str, Stack] = {}
        for path in bundled_stack_paths():
            stack = load_stack_file(path)
            if stack.name in stacks:
                raise SplitplanError(f"stack name '{stack.name}' is also used by {stacks[stack.name].source}",
                                     source=str(path), field="name")
            stacks[stack.name] = stack
        _BUNDLED = stacks
    return _BUNDLED


DEFAULT_STACK = "vllm-2023"  # the paper's stack: what every scenario without `stack:` ran on before stacks existed


def get_stack(name_or_path: str | Stack | None) -> Stack:
    """A bundled stack by name, or a stack file by path (None: the default stack)."""
    if isinstance(name_or_path, Stack):
        return name_or_path
    key = str(name_or_path or DEFAULT_STACK).strip()
    stacks = bundled_stacks()
    if key.lower() in stacks:
        return stacks[key.lower()]
    if key.endswith((".yaml", ".yml")) or Path(key).is_file():
        return _cached_file(str(Path(key)))
    raise SplitplanError(f"unknown stack '{key}'{nearest_names(key.lower(), stacks)}", field="stack")


_FILES: dict[str, Stack] = {}


def _cached_file(path: str) -> Stack:
    if path not in _FILES:
        _FILES[path] = load_stack_file(path)
    return _FILES[path]


# How benchmark tables and tools name the engines: InferenceX says "trt", others "TensorRT-LLM"
ENGINE_ALIASES = {"tensorrtllm": "trtllm", "trt": "trtllm", "sglangsrt": "sglang"}


def engine_key(engine: str) -> str:
    """An engine name with case and punctuation ignored and common other names mapped to the stacks'."""
    compact = "".join(ch for ch in str(engine).lower() if ch.isalnum())
    return ENGINE_ALIASES.get(compact, compact)


def closest_stack(engine: str, version: str, stacks: Mapping[str, Stack] | None = None) -> tuple[Stack, str]:
    """The bundled stack for (engine, version), and a note saying how it was chosen.

    A stack whose range covers the version wins; else the engine's stack nearest in version."""
    stacks = stacks if stacks is not None else bundled_stacks()
    engine = str(engine or "").strip().lower()
    wanted = engine_key(engine)
    same = [s for s in stacks.values() if engine_key(s.engine) == wanted and s.calibrated] or \
        [s for s in stacks.values() if engine_key(s.engine) == wanted]
    if not same:
        raise SplitplanError(f"no stack for engine '{engine}'"
                             f"{nearest_names(engine, {s.engine for s in stacks.values()})}", field="engine")
    for stack in same:
        if version and covers(stack, version):
            return stack, f"{stack.name} (covers {engine} {version})"
    key = version_key(version)
    if not key:
        best = max(same, key=lambda s: parse_range(s.versions, s.source)[1])
        return best, f"{best.name} (newest {engine} stack; no version given)"

    ranges = {stack.name: parse_range(stack.versions, stack.source) for stack in same}
    if all(key > hi for _, hi in ranges.values()):  # newer than every stack: the newest carries on
        best = max(same, key=lambda s: ranges[s.name][1])
        return best, f"{best.name} (newest {engine} stack, {best.versions}; {version} is newer)"
    if all(key < lo for lo, _ in ranges.values()):
        best = min(same, key=lambda s: ranges[s.name][0])
        return best, f"{best.name} (oldest {engine} stack, {best.versions}; {version} is older)"

    def distance(stack: Stack) -> tuple[float, tuple]:
        lo, hi = ranges[stack.name]
        ref = lo if key < lo else hi
        gap = sum(abs(a - b) * w for a, b, w in zip(key[:3], ref[:3], (1000.0, 10.0, 0.1)))
        return gap, tuple(-x for x in hi)  # a tie goes to the newer stack

    best = min(same, key=distance)
    return best, f"{best.name} (closest to {engine} {version}; fitted for {best.versions})"


def clear_cache() -> None:
    global _BUNDLED
    _BUNDLED = None
    _FILES.clear()
