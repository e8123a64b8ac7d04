"""Hardware and model catalogs: GPUs, machines (SKUs) and models, each number with its source.

The bundled catalog lives in `profiles/{gpus,machines,models}.yaml`. A user extends or overrides it
without touching code by passing YAML files with top-level lists `gpus`, `machines`, `models`
(`--catalog FILE` on every command, or `load_catalog(extra_files=[...])` from Python).

Units: all `*_gbps` fields are gigabytes per second (GB/s), `*_tflops` dense tera-FLOP/s, `*_w` watts,
`*_kw` kilowatts, `cost_usd_per_h` US dollars per machine-hour.

`Model` lives in `splitplan.catalog_model` (re-exported here); this module holds GPUs, machines, the
loader and its validation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from splitplan.catalog_model import ATTENTION_KINDS, WEIGHT_FORMATS, Model, model_problems
from splitplan.errors import SplitplanError, nearest_names
from splitplan.resources import bundled_profiles_dir, profiles_dir  # profiles_dir: re-exported
from splitplan.yaml_io import read_yaml  # re-exported: scenario, check and calibration loaders use it

BUNDLED_PROFILES_DIR = bundled_profiles_dir()


ARCHES = ("ampere", "ada", "hopper", "blackwell", "cdna3", "cdna4")
DTYPES = ("bf16", "fp8", "fp4")
# Tensor-core dtypes each architecture has units for: a datasheet peak for any other dtype is a typo.
_ARCH_DTYPES = {"ampere": ("bf16",), "ada": ("bf16", "fp8"), "hopper": ("bf16", "fp8"),
                "blackwell": ("bf16", "fp8", "fp4"), "cdna3": ("bf16", "fp8"), "cdna4": ("bf16", "fp8", "fp4")}


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
    arch: str = ""  # one of ARCHES; required in catalog files (the default only serves Python-built GPUs)
    fp4_tflops: float = 0.0  # dense FP4 tensor peak; 0 = no FP4 units (Blackwell and CDNA 4 have them)
    aliases: tuple[str, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def peak_tflops(self, dtype: str) -> float:
        """Dense tensor peak for `dtype` ("bf16", "fp8", "fp4"); 0.0 where the GPU has no units for it,
        so a caller must choose a fallback explicitly (see `supports`)."""
        try:
            return float({"bf16": self.bf16_tflops, "fp8": self.fp8_tflops, "fp4": self.fp4_tflops}[dtype])
        except KeyError:
            raise SplitplanError(f"unknown compute dtype '{dtype}'{nearest_names(str(dtype), DTYPES)}",
                                 field="dtype") from None

    def supports(self, dtype: str) -> bool:
        """Whether the GPU has tensor units for `dtype` (a positive datasheet peak)."""
        return self.peak_tflops(dtype) > 0


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

    def packs(self, tp: int) -> bool:
        """Whether instances of `tp` GPUs can be cut from this machine (gpus // tp of them): tp divides
        its GPUs, or is a power of two up to them, which packs a rack-scale NVLink domain (16 of a GB200
        NVL72's 72 GPUs) with the rest idle; on an 8-GPU machine both say the same."""
        return 1 <= tp <= self.gpus and (self.gpus % tp == 0 or tp & (tp - 1) == 0)


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
    """By name, then alias, then the spelling-tolerant match of catalog_names (unambiguous only)."""
    key = str(name).strip().lower()
    if key in table:
        return table[key]
    for entry in table.values():
        if key in entry.aliases:
            return entry
    from splitplan.catalog_names import is_unlike, match  # only names outside the catalog's own spellings need it

    entry, ambiguous = match(table, key, kind)
    if entry is not None and is_unlike(key, getattr(entry, "unlike", ())):
        raise SplitplanError(f"{kind} '{name}' is not {entry.name}: its checkpoint has another shape (see the "
                             f"catalog's sources for {entry.name}); describe it in a --catalog file")
    if entry is not None:
        return entry
    if ambiguous:
        raise SplitplanError(f"{kind} '{name}' could be any of {', '.join(ambiguous)}: give its full name")
    if kind == "model":
        from splitplan.catalog_unmodelled import refusal, unmodelled

        family = unmodelled(key)
        if family is not None:
            raise SplitplanError(refusal(str(name).strip(), family))
    valid = list(table) + [alias for entry in table.values() for alias in entry.aliases]
    raise SplitplanError(f"unknown {kind} '{name}'{nearest_names(key, valid)}")


_REQUIRED = {
    GPU: ("name", "arch", "bf16_tflops", "hbm_gb", "hbm_gbps", "tdp_w"),
    Machine: ("name", "gpu", "gpus", "power_kw", "cost_usd_per_h", "nic_gbps"),
    Model: ("name", "layers", "hidden", "heads", "kv_heads", "ffn", "vocab"),
}
_DEFAULTS = {GPU: {"fp8_tflops": 0.0, "nvlink_gbps": 0.0, "idle_w": 0.0}}
# String fields with a closed set of values (checked after lower-casing).
_CHOICES = {"arch": ARCHES, "attention": ATTENTION_KINDS, "native_weights": WEIGHT_FORMATS,
            "native_moe_weights": WEIGHT_FORMATS}
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
        if key in ("source", "sources", "aliases", "unlike", "expert_checkpoints"):
            continue
        values[key] = _coerce_value(cls, known[key], raw, source, f"{where}.{key}")
    values["name"] = str(spec["name"]).strip().lower()
    aliases = spec.get("aliases") or ()
    if not isinstance(aliases, (list, tuple)) or not all(isinstance(a, (str, int, float)) for a in aliases):
        raise SplitplanError(f"must be a list of names, got {aliases!r}", source=source, field=f"{where}.aliases")
    values["aliases"] = tuple(str(a).strip().lower() for a in aliases)
    for key, what in (("unlike", "names"), ("expert_checkpoints", "weight formats")):
        if key in spec:
            values[key] = _string_list(spec.get(key), what, source, f"{where}.{key}")
    sources = spec.get("sources") or {}
    if not isinstance(sources, Mapping):
        raise SplitplanError(f"must be a mapping of field -> source, got {sources!r}", source=source,
                             field=f"{where}.sources")
    sources = {str(k): str(v) for k, v in sources.items()}
    if "source" in spec:
        sources.setdefault("*", str(spec["source"]))
    sources.setdefault("*", source)
    values["sources"] = sources
    entry = cls(**values)
    problems = _entry_problems(entry)
    if problems:
        key, message = problems[0]
        raise SplitplanError(message, source=source, field=f"{where}.{key}")
    return entry


def _string_list(raw: Any, what: str, source: str, field: str) -> tuple[str, ...]:
    """A YAML list of strings, lower-cased (a model's `unlike` names, its `expert_checkpoints` formats)."""
    items = raw or ()
    if not isinstance(items, (list, tuple)) or not all(isinstance(a, str) for a in items):
        raise SplitplanError(f"must be a list of {what}, got {raw!r}", source=source, field=field)
    return tuple(a.strip().lower() for a in items)


def _entry_problems(entry: Any) -> list[tuple[str, str]]:
    """Cross-field inconsistencies of a GPU or model entry as (field, message); machines have none."""
    if isinstance(entry, Model):
        return model_problems(entry)
    if isinstance(entry, GPU):
        units = _ARCH_DTYPES[entry.arch]
        return [(f"{dtype}_tflops", f"must be 0: {entry.arch} GPUs have no {dtype.upper()} tensor units")
                for dtype in DTYPES if dtype not in units and entry.peak_tflops(dtype) > 0]
    return []


def _coerce_value(cls: type, fld: Any, raw: Any, source: str, where: str) -> Any:
    annotation = str(fld.type)
    if annotation == "str":
        if not isinstance(raw, str) or not raw.strip():
            raise SplitplanError("must be a non-empty string", source=source, field=where)
        value = raw.strip().lower()
        choices = _CHOICES.get(fld.name)
        if choices and value not in choices:
            raise SplitplanError(f"must be one of {', '.join(choices)}, got '{value}'{nearest_names(value, choices)}",
                                 source=source, field=where)
        return value
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
        _check_duplicates(parsed[section], str(path))
    return parsed


def _check_duplicates(entries: list[Any], source: str) -> None:
    """Within one file, a name or alias may denote one entry only (a later file may still override)."""
    owner: dict[str, Any] = {}
    for entry in entries:
        kind = type(entry).__name__.lower()
        for key in dict.fromkeys((entry.name, *entry.aliases)):
            other = owner.setdefault(key, entry)
            if other is not entry:
                what = "name" if key == entry.name else "alias"
                raise SplitplanError(f"duplicate {kind} {what} '{key}', already used by {kind} '{other.name}' in this file",
                                     source=source, field=f"{kind} '{entry.name}'")


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
