"""Performance models of the prompt and token phases, KV cache and power (see perf/base.py).

Entry points: `build_perf_model` (a PerfModel per instance: analytic or profile backend),
`kv_transfer_ms` (KV cache moves between machines), `phase_power_w` (GPU power per phase).
"""

from splitplan.perf.base import Instance, PerfModel, PerfSettings
from splitplan.perf.build import build_perf_model, clear_caches, make_instance
from splitplan.perf.power import phase_power_w, request_energy_j
from splitplan.perf.transfer import SPLITWISESIM_TRANSFER_GBPS, kv_transfer_ms, splitwisesim_transfer_ms

__all__ = ["Instance", "PerfModel", "PerfSettings", "build_perf_model", "clear_caches", "make_instance",
           "phase_power_w", "request_energy_j", "kv_transfer_ms", "splitwisesim_transfer_ms",
           "SPLITWISESIM_TRANSFER_GBPS"]
