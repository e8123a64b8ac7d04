"""Performance models of the prompt and token phases, KV cache and power (see perf/base.py)."""

from splitplan.perf.base import Instance, PerfModel, PerfSettings

__all__ = ["Instance", "PerfModel", "PerfSettings"]
