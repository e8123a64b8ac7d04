"""Workloads: request arrival times and prompt/output sizes (readers and generators live here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    """A trace of requests, sorted by arrival. Arrays are aligned; times in seconds from the start."""

    arrival_s: np.ndarray  # float64, non-decreasing
    prompt_tokens: np.ndarray  # int64, >= 1
    output_tokens: np.ndarray  # int64, >= 1
    name: str = "workload"

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])
