"""Error statistics reported by calibration, prediction and the accuracy benchmark."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Errors:
    """Relative errors of one phase: MAPE, P90 and max of |pred/meas - 1| in percent, over n rows."""

    n: int
    mape: float
    p90: float
    max: float
    median: float = math.nan

    @staticmethod
    def of(pred: np.ndarray, meas: np.ndarray) -> "Errors":
        if len(meas) == 0:
            return Errors(0, math.nan, math.nan, math.nan)
        rel = np.abs(np.asarray(pred, float) / np.asarray(meas, float) - 1.0) * 100.0
        return Errors(len(rel), float(rel.mean()), float(np.percentile(rel, 90)), float(rel.max()),
                      float(np.median(rel)))
