"""Hardware and model catalogs: GPUs, machines (SKUs) and models, each number with its source.

The bundled catalog lives in `profiles/{gpus,machines,models}.yaml`. A user extends or overrides it
without touching code by passing YAML files with top-level lists `gpus`, `machines`, `models`
(`--catalog FILE` on every command, or `load_catalog(extra_files=[...])` from Python).

Units: all `*_gbps` fields are gigabytes per second (GB/s), `*_tflops` dense tera-FLOP/s, `*_w` watts,
`*_kw` kilowatts, `cost_usd_per_h` US dollars per machine-hour.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from splitplan.errors import SplitplanError, nearest_names

BUNDLED_PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"


def profiles_dir() -> Path:
    """Where the bundled catalogs and calibrations live (overridable with SPLITPLAN_PROFILES)."""
    return Path(os.environ.get("SPLITPLAN_PROFILES", BUNDLED_PROFILES_DIR))


@dataclass(frozen=True)
class GPU:
    """One accelerator's datasheet numbers (dense, not sparse)."""

    name: str
    bf16_tflops: float
    fp8_tflops: float
    hbm_gb: float
    hbm_gbps: float
    nvlink_gbps: float
    tdp_w: float
    idle_w: float
    aliases: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def peak_tflops(self, dtype: str) -> float:
        """Dense peak for a compute dtype; FP8 falls back to BF16 where the GPU has no FP8 units."""
        if dtype == "fp8" and self.fp8_tflops > 0:
            return self.fp8_tflops
        return self.bf16_tflops


@dataclass(frozen=True)
class Machine:
    """A server SKU: several GPUs of one type, its provisioned power, price and scale-out NIC."""

    name: str
    gpu: str
    gpus: int
    power_kw: float
    cost_usd_per_h: float
    nic_gbps: float
    power_cap_fraction: float = 1.0  # each GPU capped to this fraction of its TDP
    idle_kw: float = 0.0  # host power besides the GPUs (CPUs, NICs, fans) when idle
    aliases: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_power_capped(self) -> bool:
        return self.power_cap_fraction < 1.0


@dataclass(frozen=True)
class Model:
    """A dense decoder-only transformer's shape (Llama-style; `gated_mlp` means SwiGLU, 3 matrices)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    gated_mlp: bool = True
    dtype_bytes: float = 2.0
    head_dim: int = 0  # 0 means hidden // heads
    aliases: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden // self.heads)

    @property
    def params_per_layer(self) -> int:
        """Weights of one layer: attention (Q, K, V, O) plus the MLP."""
        attn = self.hidden * (self.heads + 2 * self.kv_heads) * self.head_dim + self.heads * self.head_dim * self.hidden
        mlp = (3 if self.gated_mlp else 2) * self.hidden * self.ffn
        return attn + mlp

    @property
    def params(self) -> int:
        """All weights, with untied input embedding and LM head."""
        return self.layers * self.params_per_layer + 2 * self.vocab * self.hidden

    @property
    def weight_bytes(self) -> float:
        return self.params * self.dtype_bytes

    @property
    def kv_bytes_per_token(self) -> float:
        """K and V for every layer and KV head (GQA-correct): 320 KiB for Llama2-70B in 16-bit."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


@dataclass(frozen=True)
class Catalog:
    """All known GPUs, machines and models, looked up by name or alias."""

    gpus: Mapping[str, GPU]
    machines: Mapping[str, Machine]
    models: Mapping[str, Model]

    def gpu(self, name: str) -> GPU:
        return _lookup(self.gpus, name, "GPU")

    def machine(self, name: str) -> Machine:
        return _lookup(self.machines, name, "machine")

    def model(self, name: str) -> Model:
        return _lookup(self.models, name, "model")

    def gpu_of(self, machine: Machine | str) -> GPU:
        machine = self.machine(machine) if isinstance(machine, str) else machine
        return self.gpu(machine.gpu)


def _lookup(table: Mapping[str, Any], name: str, kind: str) -> Any:
    key = str(name).strip().lower()
    if key in table:
        return table[key]
    for entry in table.values():
        if key in entry.aliases:
            return entry
    valid = list(table) + [alias for entry in table.values() for alias in entry.aliases]
    raise SplitplanError(f"unknown {kind} '{name}'{nearest_names(key, valid)}")


_REQUIRED = {
    GPU: ("name", "bf16_tflops", "hbm_gb", "hbm_gbps", "tdp_w"),
    Machine: ("name", "gpu", "gpus", "power_kw", "cost_usd_per_h", "nic_gbps"),
    Model: ("name", "layers", "hidden", "heads", "kv_heads", "ffn", "vocab"),
}
_DEFAULTS = {GPU: {"fp8_tflops": 0.0, "nvlink_gbps": 0.0, "idle_w": 0.0}}
_SECTIONS = {"gpus": GPU, "machines": Machine, "models": Model}


def _coerce(cls: type, spec: Any, source: str, index: int) -> Any:
    """Build one catalog entry from a YAML mapping, rejecting unknown, missing and ill-typed fields."""
    kind = cls.__name__.lower()
    where = f"{kind} #{index + 1}"
    if not isinstance(spec, Mapping):
        raise SplitplanError(f"each {kind} entry must be a mapping, got {type(spec).__name__}", source=source, field=where)
    name = spec.get("name")
    where = f"{kind} '{name}'" if name else where
    known = {f.name: f for f in fields(cls)} | {"source": None}
    unknown = [k for k in spec if k not in known]
    if unknown:
        raise SplitplanError(f"unknown field '{unknown[0]}'{nearest_names(str(unknown[0]), known)}", source=source, field=where)
    missing = [k for k in _REQUIRED[cls] if k not in spec]
    if missing:
        raise SplitplanError(f"missing required field '{missing[0]}'", source=source, field=where)
    values: dict[str, Any] = dict(_DEFAULTS.get(cls, {}))
    for key, raw in spec.items():
        if key in ("source", "sources", "aliases"):
            continue
        values[key] = _coerce_value(cls, known[key], raw, source, f"{where}.{key}")
    values["name"] = str(spec["name"]).strip().lower()
    values["aliases"] = tuple(str(a).strip().lower() for a in (spec.get("aliases") or ()))
    sources = dict(spec.get("sources") or {})
    if "source" in spec:
        sources.setdefault("*", str(spec["source"]))
    sources.setdefault("*", source)
    values["sources"] = sources
    return cls(**values)


def _coerce_value(cls: type, fld: Any, raw: Any, source: str, where: str) -> Any:
    annotation = str(fld.type)
    if annotation == "str":
        if not isinstance(raw, str) or not raw.strip():
            raise SplitplanError("must be a non-empty string", source=source, field=where)
        return raw.strip().lower()
    if annotation == "bool":
        if not isinstance(raw, bool):
            raise SplitplanError(f"must be true or false, got {raw!r}", source=source, field=where)
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise SplitplanError(f"must be a number, got {raw!r}", source=source, field=where)
    if not math.isfinite(raw) or raw < 0:
        raise SplitplanError(f"must be a finite non-negative number, got {raw!r}", source=source, field=where)
    if annotation == "int":
        if raw != int(raw):
            raise SplitplanError(f"must be a whole number, got {raw!r}", source=source, field=where)
        raw = int(raw)
    positive = fld.name in _REQUIRED[cls] or fld.name in ("dtype_bytes", "power_cap_fraction")
    if positive and raw <= 0:
        raise SplitplanError(f"must be positive, got {raw!r}", source=source, field=where)
    if fld.name == "power_cap_fraction" and raw > 1:
        raise SplitplanError(f"is a fraction of TDP in (0, 1], got {raw!r}", source=source, field=where)
    return raw


# libyaml's parser where PyYAML has it: the bundled catalog parses in about 1 ms instead of 28 ms
# (`splitplan catalog` reads it on every run). Values are built by the same SafeConstructor either way.
_FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_FAST_SAFE_LOADER)
    except yaml.YAMLError:  # reparse so errors keep the pure-Python parser's wording and line numbers
        return yaml.safe_load(text)


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file, turning every I/O or syntax problem into a one-line SplitplanError."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SplitplanError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitplanError(f"cannot read file ({exc.__class__.__name__})", source=str(path)) from None
    try:
        data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid syntax"
        raise SplitplanError(f"malformed YAML{at}: {problem}", source=str(path)) from None
    if data is None:
        raise SplitplanError("file is empty", source=str(path))
    return data


def parse_catalog_file(path: str | Path) -> dict[str, list[Any]]:
    """Entries of one catalog YAML file, grouped by section (`gpus`, `machines`, `models`)."""
    data = read_yaml(path)
    if not isinstance(data, Mapping):
        raise SplitplanError("a catalog file must be a mapping with lists 'gpus', 'machines', 'models'", source=str(path))
    unknown = [k for k in data if k not in _SECTIONS]
    if unknown:
        raise SplitplanError(f"unknown section '{unknown[0]}'{nearest_names(str(unknown[0]), _SECTIONS)}", source=str(path))
    parsed: dict[str, list[Any]] = {}
    for section, cls in _SECTIONS.items():
        entries = data.get(section) or []
        if not isinstance(entries, list):
            raise SplitplanError(f"'{section}' must be a list", source=str(path), field=section)
        parsed[section] = [_coerce(cls, spec, str(path), i) for i, spec in enumerate(entries)]
    return parsed


def load_catalog(extra_files: Iterable[str | Path] = (), *, include_bundled: bool = True) -> Catalog:
    """The bundled catalog, then each extra file in order (later entries override by name)."""
    tables: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    files: list[Path] = []
    if include_bundled:
        files += [profiles_dir() / f"{section}.yaml" for section in _SECTIONS]
    files += [Path(f) for f in extra_files]
    for path in files:
        for section, entries in parse_catalog_file(path).items():
            for entry in entries:
                tables[section][entry.name] = entry
    catalog = Catalog(gpus=tables["gpus"], machines=tables["machines"], models=tables["models"])
    _check_references(catalog)
    return catalog


def _check_references(catalog: Catalog) -> None:
    for machine in catalog.machines.values():
        if machine.gpu not in catalog.gpus and not any(machine.gpu in g.aliases for g in catalog.gpus.values()):
            raise SplitplanError(
                f"uses unknown GPU '{machine.gpu}'{nearest_names(machine.gpu, catalog.gpus)}",
                source=machine.sources.get("*"),
                field=f"machine '{machine.name}'.gpu",
            )


_DEFAULT_CATALOG: Catalog | None = None


def default_catalog() -> Catalog:
    """The bundled catalog, loaded once per process."""
    global _DEFAULT_CATALOG
    if _DEFAULT_CATALOG is None:
        _DEFAULT_CATALOG = load_catalog()
    return _DEFAULT_CATALOG


def get_catalog(extra_files: Iterable[str | Path] = ()) -> Catalog:
    """The catalog a command should use: the cached bundled one, or bundled plus the user's files."""
    extra = list(extra_files)
    return load_catalog(extra) if extra else default_catalog()
