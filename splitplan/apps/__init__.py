"""Applications on top of the planner and simulator: benchmark, check, reproduction, sweeps."""
