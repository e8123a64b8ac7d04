"""Performance models of the prompt and token phases, KV cache and power (see perf/base.py).

Entry points: `build_perf_model` (a PerfModel per instance: analytic or profile backend),
`kv_transfer_ms` (KV cache moves between machines), `phase_power_w` (GPU power per phase).

The names below are imported from their submodules on first use (PEP 562), so importing a light
submodule such as `splitplan.perf.base` (PerfSettings, the interface) does not load numpy, scipy and
the backends; the CLI relies on that to start fast (docs/startup.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the submodule that defines it
_EXPORTS = {
    "Instance": "base", "PerfModel": "base", "PerfSettings": "base",
    "build_perf_model": "build", "clear_caches": "build", "make_instance": "build",
    "phase_power_w": "power", "request_energy_j": "power",
    "kv_transfer_ms": "transfer", "splitwisesim_transfer_ms": "transfer", "SPLITWISESIM_TRANSFER_GBPS": "transfer",
}

__all__ = list(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ resolves these
    from splitplan.perf.base import Instance, PerfModel, PerfSettings
    from splitplan.perf.build import build_perf_model, clear_caches, make_instance
    from splitplan.perf.power import phase_power_w, request_energy_j
    from splitplan.perf.transfer import SPLITWISESIM_TRANSFER_GBPS, kv_transfer_ms, splitwisesim_transfer_ms


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
