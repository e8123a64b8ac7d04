"""Discrete-event cluster simulator (baseline and Splitwise designs) and max-throughput search."""

from splitplan.sim.api import simulate
from splitplan.sim.config import SimConfig
from splitplan.sim.maxrate import MaxRateResult, find_max_rps
from splitplan.sim.result import SimResult

__all__ = ["SimConfig", "SimResult", "simulate", "find_max_rps", "MaxRateResult"]
