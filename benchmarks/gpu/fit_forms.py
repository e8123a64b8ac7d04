"""Fitting machinery and functional forms of benchmarks/gpu/fit_kernels.py.

Every fit is scipy.optimize.least_squares on log residuals log(t_pred) - log(t_meas) (relative
error, so 5 us and 50 ms kernels count alike), loss soft_l1 (f_scale 0.1), with bounds that keep
each parameter physical. Efficiencies are against DATASHEET peaks (H200 SXM: 989 TFLOP/s dense
bf16, 1979 fp8, 4800 GB/s HBM) so that they transfer to the H100 (same compute, 3350 GB/s).

Families and forms (t in microseconds):
  gemm         t = t0 + (tc^n + tm^n)^(1/n),  tc = FLOPs/(eta_c*peak_dtype), tm = bytes/(eta_m*BW)
  moe          same form, bytes = weights of the experts touched + activations
  elementwise  t = t0 + bytes/(eta*BW)
  attn_prefill t = t0 + FLOPs/(eta(s)*peak),  eta(s) = eta_max*s^k/(s^k+s_half^k)   ("s" form)
               "s+par" form: eta also times w/(w+w_half), w = batch*q_heads*ceil(s/128) CTAs
  attn_decode  t = t0 + bytes/(eta(b)*BW),     eta(b) = eta_max*b^k/(b^k+b_half^k), b = bytes
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

PEAK = {"bf16": 989e12, "fp8": 1979e12}
HBM = 4.8e12
TDP_W = 700.0
H100_HBM = 3.35e12


def peak_of(dtype: str) -> float:
    return PEAK["fp8"] if "fp8" in dtype else PEAK["bf16"]


# ----------------------------------------------------------------------------------------------
# generic machinery
# ----------------------------------------------------------------------------------------------

@dataclass
class Form:
    name: str
    params: list          # names
    x0: list
    lo: list
    hi: list
    meaning: dict
    predict: object       # f(p, df) -> time_us (np.ndarray)
    fixed: dict = field(default_factory=dict)


def fit_form(form: Form, df: pd.DataFrame, y="time_us"):
    meas = df[y].to_numpy(float)

    def res(p):
        return np.log(form.predict(p, df)) - np.log(meas)

    r = least_squares(res, np.array(form.x0, float), bounds=(form.lo, form.hi), loss="soft_l1",
                      f_scale=0.1, x_scale="jac", max_nfev=20000)
    return r.x


def errs(pred, meas) -> dict:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    ape = np.abs(pred / meas - 1.0)
    return dict(n=int(len(ape)), mape=float(ape.mean()), p50=float(np.median(ape)),
                p90=float(np.quantile(ape, 0.9)), max=float(ape.max()),
                bias=float(np.exp(np.mean(np.log(pred / meas))) - 1.0))


def cv(form: Form, df: pd.DataFrame, groups: pd.Series, y="time_us", min_train=8) -> dict:
    """Hold out each group in turn (fit on the rest); pooled held-out errors and per-group MAPE,
    plus the spread of every parameter over the folds."""
    preds = pd.Series(index=df.index, dtype=float)
    per, ps = {}, []
    for gname, idx in df.groupby(groups).groups.items():
        tr = df.drop(index=idx)
        if len(tr) < min_train:
            continue
        p = fit_form(form, tr, y)
        ps.append(p)
        te = df.loc[idx]
        preds.loc[idx] = form.predict(p, te)
        per[str(gname)] = round(errs(preds.loc[idx], te[y])["mape"], 4)
    ok = preds.notna()
    out = errs(preds[ok], df.loc[ok, y])
    out["per_group_mape"] = per
    if ps:
        arr = np.array(ps)
        out["param_range"] = {n: [float(arr[:, i].min()), float(arr[:, i].max())]
                              for i, n in enumerate(form.params)}
    return out


def rnd(x, k=4):
    if isinstance(x, dict):
        return {a: rnd(b, k) for a, b in x.items()}
    if isinstance(x, (list, tuple)):
        return [rnd(b, k) for b in x]
    if isinstance(x, (float, np.floating)):
        if x == 0 or not math.isfinite(x):
            return float(x)
        return float(f"{x:.{k}g}")
    if isinstance(x, np.integer):
        return int(x)
    return x


def param_block(form: Form, p, data_desc: str, heldout: dict, fold_ranges: dict | None) -> dict:
    out = {}
    for i, n in enumerate(form.params):
        d = dict(value=float(p[i]), bounds=[form.lo[i], form.hi[i]], meaning=form.meaning[n],
                 data=data_desc, heldout_mape=heldout)
        if fold_ranges and n in fold_ranges:
            d["cv_fold_range"] = fold_ranges[n]
        out[n] = d
    return rnd(out)


# ----------------------------------------------------------------------------------------------
# forms
# ----------------------------------------------------------------------------------------------

def smooth_roofline(peak_col="peak"):
    def pred(p, df):
        eta_c, eta_m, t0, n = p
        tc = df["flops"].to_numpy(float) / (eta_c * df[peak_col].to_numpy(float)) * 1e6
        tm = df["bytes"].to_numpy(float) / (eta_m * HBM) * 1e6
        tc = np.maximum(tc, 1e-9)
        tm = np.maximum(tm, 1e-9)
        return t0 + np.exp(np.logaddexp(n * np.log(tc), n * np.log(tm)) / n)
    return Form("smooth_roofline", ["eta_c", "eta_m", "t0_us", "n"], [0.7, 0.85, 5.0, 1.5],
                [0.05, 0.05, 0.0, 1.0], [1.0, 1.0, 50.0, 10.0],
                {"eta_c": "fraction of the datasheet dense peak of the dtype reached when "
                          "compute-bound",
                 "eta_m": "fraction of datasheet HBM bandwidth (4800 GB/s) reached when "
                          "memory-bound (bytes = weights + activations in + out)",
                 "t0_us": "fixed per-kernel time (launch/prologue/epilogue floor), microseconds",
                 "n": "smoothness of the max(): (tc^n+tm^n)^(1/n); n->inf is a hard roofline"},
                pred)


def elementwise_form():
    def pred(p, df):
        t0, eta = p
        return t0 + df["bytes"].to_numpy(float) / (eta * HBM) * 1e6
    return Form("floor_plus_bandwidth", ["t0_us", "eta_bw"], [2.0, 0.8], [0.0, 0.05], [50.0, 1.0],
                {"t0_us": "kernel floor of a small elementwise/norm kernel, microseconds",
                 "eta_bw": "fraction of datasheet HBM bandwidth reached by large tensors"}, pred)


def prefill_form(par=False):
    def pred(p, df):
        if par:
            eta_max, s_half, k, t0, w_half = p
        else:
            eta_max, s_half, k, t0 = p
        s = df["s_eff"].to_numpy(float)
        eta = eta_max * s**k / (s**k + s_half**k)
        if par:
            w = df["ctas"].to_numpy(float)
            eta = eta * w / (w + w_half)
        return t0 + df["flops"].to_numpy(float) / (eta * df["peak"].to_numpy(float)) * 1e6
    names = ["eta_fa_max", "s_half", "k", "t0_us"] + (["ctas_half"] if par else [])
    meaning = {"eta_fa_max": "attention FLOP efficiency vs datasheet peak of the dtype at long "
                             "sequences (causal FLOPs 2*s^2*H*hd per sequence and layer)",
               "s_half": "sequence length (tokens) at which the efficiency is half of eta_fa_max",
               "k": "steepness of the saturation in s",
               "t0_us": "kernel floor (short prompts), microseconds",
               "ctas_half": "q-tile CTAs (batch*q_heads*ceil(s/128)) at which the wave-fill factor "
                            "w/(w+ctas_half) is one half (132 SMs)"}
    return Form("saturating_in_s" + ("_and_ctas" if par else ""), names,
                [0.7, 1500.0, 1.5, 8.0] + ([100.0] if par else []),
                [0.05, 16.0, 0.3, 0.0] + ([0.1] if par else []),
                [1.0, 65536.0, 4.0, 50.0] + ([10000.0] if par else []),
                {n: meaning[n] for n in names}, pred)


def decode_form(sat=True):
    """sat=True: t = (t0^n + (bytes/(eta*BW))^n)^(1/n) -- the achieved HBM efficiency
    bytes/(BW*t) rises with bytes per kernel and saturates at eta_kv_max, with a soft knee near
    bytes = t0*eta*BW. sat=False: t = t0 + bytes/(eta*BW) (the hard-sum limit, n = 1)."""
    def pred(p, df):
        b = df["bytes"].to_numpy(float)
        if sat:
            eta, t0, n = p
            tm = b / (eta * HBM) * 1e6
            return np.exp(np.logaddexp(n * np.log(t0), n * np.log(tm)) / n)
        eta, t0 = p
        return t0 + b / (eta * HBM) * 1e6
    m = {"eta_kv_max": "HBM efficiency (vs 4800 GB/s) reached by large decode-attention kernels "
                       "(bytes = KV read + q + out)",
         "t0_us": "kernel floor (small batch x context), microseconds",
         "n": "smoothness of the knee between floor and bandwidth (n=1: plain sum)"}
    if sat:
        return Form("smooth_floor_bandwidth", ["eta_kv_max", "t0_us", "n"], [0.9, 9.0, 1.5],
                    [0.05, 0.0, 1.0], [1.0, 50.0, 10.0], m, pred)
    return Form("floor_plus_bandwidth", ["eta_kv_max", "t0_us"], [0.9, 8.0], [0.05, 0.0],
                [1.0, 50.0], {k: m[k] for k in ["eta_kv_max", "t0_us"]}, pred)


def roofline_baseline(df, eta_c=1.0, eta_m=1.0, t0=0.0, n=None):
    tc = df["flops"] / (eta_c * df["peak"]) * 1e6
    tm = df["bytes"] / (eta_m * HBM) * 1e6
    if n is None:
        return t0 + np.maximum(tc, tm)
    return t0 + (tc**n + tm**n) ** (1 / n)
