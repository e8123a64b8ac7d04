"""Kernel efficiencies per GPU architecture: the measured physics every stack starts from.

profiles/kernels.yaml holds, per architecture (hopper, ampere, blackwell, ...), the GEMM, attention and
elementwise efficiencies measured on a GPU of that architecture, with their source. They are fractions
of datasheet peaks, so one measurement serves every GPU of the architecture (an H200 measurement
serves the H100: same chip, other memory). An architecture without measurements borrows the nearest
measured one and says so in every prediction's provenance.
"""

from __future__ import annotations

from collections.abc import Mapping

from splitplan.catalog import profiles_dir, read_yaml
from splitplan.errors import SplitplanError
from splitplan.serving.params import StackParams, parse_values

_TABLE: dict[str, tuple[StackParams, str, str]] | None = None  # arch -> (params, source, borrowed-from)


def _load() -> dict[str, tuple[StackParams, str, str]]:
    global _TABLE
    if _TABLE is None:
        path = profiles_dir() / "kernels.yaml"
        data = read_yaml(path)
        if not isinstance(data, Mapping) or not isinstance(data.get("architectures"), Mapping):
            raise SplitplanError("needs a mapping 'architectures' of name -> {source, params}", source=str(path))
        table: dict[str, tuple[StackParams, str, str]] = {}
        pending: dict[str, str] = {}
        for arch, spec in data["architectures"].items():
            where = f"architectures.{arch}"
            if not isinstance(spec, Mapping) or not isinstance(spec.get("source"), str):
                raise SplitplanError("needs 'source' (and 'params' or 'borrow')", source=str(path), field=where)
            if "borrow" in spec:
                pending[str(arch)] = str(spec["borrow"])
                table[str(arch)] = (StackParams(), spec["source"], str(spec["borrow"]))
                continue
            values = parse_values(spec.get("params", {}), str(path), f"{where}.params")
            table[str(arch)] = (StackParams().with_values(values), spec["source"], "")
        for arch, other in pending.items():
            if other not in table or table[other][2]:
                raise SplitplanError(f"borrows from '{other}', which has no measured kernels", source=str(path),
                                     field=f"architectures.{arch}.borrow")
            table[arch] = (table[other][0], table[arch][1], other)
        _TABLE = table
    return _TABLE


def gpu_arch(gpu) -> str:
    """The GPU's architecture (catalog field `arch`)."""
    return str(getattr(gpu, "arch", "") or "")


def arch_kernels(arch: str) -> tuple[StackParams, str]:
    """(kernel defaults, provenance note) of an architecture; unknown ones get the literature defaults."""
    table = _load()
    if arch not in table:
        return StackParams(), f"no kernel measurements for '{arch or 'unknown'}' (literature defaults)"
    params, source, borrowed = table[arch]
    if borrowed:
        return params, f"{arch} not measured, {borrowed} kernels assumed ({source})"
    return params, f"{arch} measured ({source})"


def clear_cache() -> None:
    global _TABLE
    _TABLE = None
