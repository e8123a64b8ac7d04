"""Matching the names people write to catalog entries: `h200_sxm`, `NVIDIA H200 141GB`,
`nvidia/DeepSeek-R1-0528-FP4`, `Meta-Llama-3.1-70B-Instruct`.

Benchmark tables, engine logs and other tools spell the same GPU or model many ways, and a row refused
over spelling is a prediction lost. Exact names and aliases always win (catalog.py); failing those, the
name and every catalog name and alias are brought to one canonical form and compared:

- case, spaces, `_`, `-`, `.` and `/` do not count (`H200_SXM` = `h200-sxm`);
- GPUs: vendor and form-factor words (`nvidia`, `sxm5`, `oam`, `hbm3e`, ...) do not count; a memory
  size (`141gb`) counts when the catalog spells one, and is otherwise accepted only within 10% of the
  GPU's capacity (`b200-192gb` is the B200; `h100-94gb`, the PCIe-based H100 NVL, is not the H100 SXM);
- models: the organisation (`nvidia/`), a leading `meta-` of `Meta-Llama`, and checkpoint words that
  do not change the architecture (`instruct`, `fp8`, `nvfp4`, `awq`, a 4-digit release date, ...) do
  not count: the row's weight columns say the format, the shape is the base model's.

An entry's own name outranks another entry's alias (`Kimi-K2-Instruct-0905` is kimi-k2, though
kimi-k2.5's alias `kimi-k2-thinking` drops `thinking` to the same form); a canonical form that two
names, or else two aliases, share is ambiguous and matches neither: the error lists both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SPLIT = re.compile(r"[\s_\-/.]+")
_MEMORY = re.compile(r"^(\d+)gb$")
GPU_WORDS = frozenset({"nvidia", "amd", "instinct", "tesla", "sxm", "sxm4", "sxm5", "sxm6", "oam", "hbm2e", "hbm3",
                       "hbm3e", "gpu"})
MODEL_WORDS = frozenset({"instruct", "chat", "it", "hf", "base", "thinking", "fp8", "fp4", "nvfp4", "mxfp4", "int4",
                         "int8", "w4a16", "w8a8", "w4a8", "w4afp8", "awq", "gptq", "kv", "dynamic", "static", "block"})
MEMORY_TOLERANCE = 0.10  # a stated memory size within 10% of the GPU's capacity names that GPU


def _gpu_tokens(name: str) -> list[str]:
    return [t for t in _SPLIT.split(name.lower()) if t and t not in GPU_WORDS]


def model_tokens(name: str) -> list[str]:
    tokens = [t for t in _SPLIT.split(name.lower().rsplit("/", 1)[-1]) if t]
    if len(tokens) > 1 and tokens[0] == "meta" and tokens[1].startswith("llama"):
        tokens = tokens[1:]
    return [t for t in tokens if t not in MODEL_WORDS and not re.fullmatch(r"\d{4}", t)]


def canonical(name: str, kind: str) -> str:
    """The form a name is compared in (module docstring); kind is "GPU", "model" or "machine"."""
    if kind == "GPU":
        return "".join(_gpu_tokens(name))
    if kind == "model":
        return "".join(model_tokens(name))
    return "".join(t for t in _SPLIT.split(name.lower()) if t)


def _index(table: Mapping[str, Any], kind: str, aliases: bool = True) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for key, entry in table.items():
        for spelled in (key, *(entry.aliases if aliases else ())):
            index.setdefault(canonical(spelled, kind), set()).add(key)
    return index


def match(table: Mapping[str, Any], name: str, kind: str) -> tuple[Any | None, list[str]]:
    """(the one entry `name` denotes, []) or (None, the entries it could denote when ambiguous)."""
    form = canonical(name, kind)
    named = _index(table, kind, aliases=False).get(form, set())
    if len(named) == 1:
        return table[next(iter(named))], []
    index = _index(table, kind)
    found = index.get(form, set())
    if not found and kind == "GPU":
        found = _without_memory(table, index, name)
    if len(found) == 1:
        return table[next(iter(found))], []
    return None, sorted(found)


def _without_memory(table: Mapping[str, Any], index: dict[str, set[str]], name: str) -> set[str]:
    """A GPU spelled with a memory size the catalog does not spell: the GPU of that capacity."""
    tokens = _gpu_tokens(name)
    sizes = [(i, int(m.group(1))) for i, t in enumerate(tokens) if (m := _MEMORY.match(t))]
    if len(sizes) != 1:
        return set()
    i, size_gb = sizes[0]
    found = index.get("".join(tokens[:i] + tokens[i + 1:]), set())
    return {key for key in found if abs(float(table[key].hbm_gb) - size_gb) <= MEMORY_TOLERANCE * size_gb}


def is_unlike(name: str, unlike: tuple[str, ...]) -> bool:
    """`name` is one of an entry's `unlike` names, whatever its organisation prefix and separators."""
    def bare(text: str) -> str:
        return "-".join(t for t in _SPLIT.split(text.lower().rsplit("/", 1)[-1]) if t)

    return bare(name) in {bare(u) for u in unlike}
