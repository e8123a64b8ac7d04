"""Fit the grouped expert GEMM parameters (serving/params.py moe_*) on the H200 MoE measurements.

    .venv/bin/python benchmarks/fit_moe_kernels.py

One smooth roofline for both dtypes, as perf/analytic_moe.py evaluates it: an efficiency eta_c per
compute dtype (of its datasheet peak) and one eta_m, t0 and n; bytes = touched experts' weights +
activations, as measured (profiles/measured/h200-kernels/moe.csv). benchmarks/gpu/fit_kernels.py fits
each dtype separately (fit.yaml); the analytic model shares eta_m, t0 and n between dtypes, so its
prior comes from this joint fit. Prints the values profiles/kernels.yaml quotes, the in-sample and the
leave-one-model-out errors. A second.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "profiles" / "measured" / "h200-kernels" / "moe.csv"
HBM = 4.8e12  # H200 datasheet bytes/s
PEAK = {"bf16": 989e12, "fp8_rowwise": 1979e12}
NAMES = ("moe_eta_c_bf16", "moe_eta_c_fp8", "moe_eta_m", "moe_t0_us", "moe_smooth_n")


def predict_us(p: np.ndarray, d: pd.DataFrame) -> np.ndarray:
    eta_bf16, eta_fp8, eta_m, t0, n = p
    fp8 = (d["dtype"] != "bf16").to_numpy()
    tc = d["flops"].to_numpy(float) / (np.where(fp8, eta_fp8, eta_bf16) * d["dtype"].map(PEAK).to_numpy()) * 1e6
    tm = (d["weight_bytes_read"] + d["act_bytes"]).to_numpy(float) / (eta_m * HBM) * 1e6
    return t0 + (tc**n + tm**n) ** (1.0 / n)


def fit(d: pd.DataFrame) -> np.ndarray:
    res = least_squares(lambda p: np.log(predict_us(p, d)) - np.log(d["time_us"].to_numpy(float)),
                        [0.7, 0.6, 0.6, 13.0, 2.0], bounds=([0.05, 0.05, 0.05, 0.0, 1.0], [1, 1, 1, 50, 10]),
                        loss="soft_l1", f_scale=0.1, x_scale="jac")
    return res.x


def main() -> int:
    d = pd.read_csv(DATA)
    p = fit(d)
    ape = np.abs(predict_us(p, d) / d["time_us"] - 1.0)
    fp8 = d["dtype"] != "bf16"
    print("  ".join(f"{k} {v:.3f}" for k, v in zip(NAMES, p)))
    print(f"in-sample MAPE {ape.mean():.1%} (bf16 {ape[~fp8].mean():.1%}, fp8 {ape[fp8].mean():.1%})")
    held = pd.Series(index=d.index, dtype=float)
    for _, idx in d.groupby("model").groups.items():
        held.loc[idx] = predict_us(fit(d.drop(index=idx)), d.loc[idx])
    ape = np.abs(held / d["time_us"] - 1.0)
    print(f"leave one model out MAPE {ape.mean():.1%} (bf16 {ape[~fp8].mean():.1%}, fp8 {ape[fp8].mean():.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
