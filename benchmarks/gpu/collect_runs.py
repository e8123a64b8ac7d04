#!/usr/bin/env python3
"""Merge the output folders of benchmarks/gpu/kernels.py runs into profiles/measured/h200-kernels/.

Usage: collect_runs.py OUTDIR RUN1_DIR [RUN2_DIR ...]

Each RUN dir is a folder written by one device call (it may hold sub-folders, one per
kernels.py invocation of that call). Rows get a `run` column (1, 2, ...). Files:
  ceilings, gemm, gemm_extra, gemm_repeat, elementwise, attn_prefill, attn_chunked, attn_decode,
  moe (+ moe_sharded rows), power, power_samples, monitor .csv; env_runN.json; log_runN.txt.
power.csv: the per-phase rows kernels.py wrote where they are complete; where a run's power.csv
lost its columns (run 2: its first rows were the step-time rows, which fixed a narrower header),
the per-phase means are recomputed here from that run's power_samples.csv (source=from_samples).
"""
from __future__ import annotations

import glob
import json
import os
import sys

import pandas as pd

TDP_W = 700.0



def scrub_paths(text: str) -> str:
    """Scratch paths of the measurement machine (/tmp/...) written as $TMPDIR/...: the repository keeps no
    machine's absolute paths (tests/test_release_hygiene.py)."""
    return text.replace("/tmp/", "$TMPDIR/")

def _frames(run_dir, name):
    out = []
    for p in sorted(glob.glob(os.path.join(run_dir, "**", name), recursive=True)):
        out.append(pd.read_csv(p))
    return out


def power_from_samples(s: pd.DataFrame, work: dict) -> pd.DataFrame:
    rows = []
    for ph, g in s.groupby("phase", sort=False):
        g = g.sort_values("t_s")
        dt = g.t_s.iloc[-1] - g.t_s.iloc[0]
        de = g.energy_j.iloc[-1] - g.energy_j.iloc[0]
        pw = g.power_w
        tail = pw.iloc[len(pw) // 3:]
        d = dict(phase=ph, source="from_samples", duration_s=dt, energy_j=de,
                 mean_power_w_energy=de / dt if dt > 0 else None,
                 mean_power_w_samples=pw.mean(), mean_power_w_last2of3=tail.mean(),
                 max_power_w=pw.max(), p50_power_w=pw.median(), mean_sm_mhz=g.sm_mhz.mean(),
                 min_sm_mhz=g.sm_mhz.min(), mean_mem_mhz=g.mem_mhz.mean(), n_samples=len(g))
        if "replays" in g and ph in work and dt > 0:
            reps = g.replays.iloc[-1] - g.replays.iloc[0]
            d["replays"] = reps
            d["work_rate"] = reps * work[ph][0] / dt
            d["work_unit"] = work[ph][1]
        rows.append(d)
    return pd.DataFrame(rows)


def main():
    out, runs = sys.argv[1], sys.argv[2:]
    os.makedirs(out, exist_ok=True)
    n = 8192
    shapes70 = [(10240, 8192), (8192, 8192), (57344, 8192), (8192, 28672)]
    work = {"compute_bf16_gemm": (20 * 2 * n**3 / 1e12, "TFLOP/s"),
            "compute_fp8_gemm": (40 * 2 * n**3 / 1e12, "TFLOP/s"),
            "memory_decode_gemm_m8": (6 * sum(a * b * 2 for a, b in shapes70) / 1e12,
                                      "TB/s weights"),
            "decode_step_70b_tp8_b64_c2048": (1.0, "steps/s"),
            "prefill_step_70b_tp8_s4096": (1.0, "steps/s")}
    merged = {}
    for i, rd in enumerate(runs, start=1):
        for name in ["ceilings", "gemm", "gemm_extra", "gemm_repeat", "elementwise",
                     "attn_prefill", "attn_chunked", "attn_decode", "moe", "moe_sharded",
                     "power_samples", "monitor"]:
            for f in _frames(rd, name + ".csv"):
                f.insert(0, "run", i)
                key = "moe" if name == "moe_sharded" else name
                merged.setdefault(key, []).append(f)
        for f in _frames(rd, "power.csv"):
            f.insert(0, "run", i)
            if "mean_power_w_energy" in f.columns:
                f.insert(1, "source", "online")
                merged.setdefault("power", []).append(f)
            else:  # narrow header: keep the step-time rows, recompute the phases from samples
                st = f[f.phase.str.startswith("steptime:")].copy()
                st.insert(1, "source", "online")
                merged.setdefault("power", []).append(st)
                for s in _frames(rd, "power_samples.csv"):
                    pf = power_from_samples(s, work)
                    pf.insert(0, "run", i)
                    merged["power"].append(pf)
        for j, p in enumerate(sorted(glob.glob(os.path.join(rd, "**", "env.json"), recursive=True))):
            env = json.loads(scrub_paths(open(p).read()))
            with open(os.path.join(out, f"env_run{i}.json"), "w") as fo:
                json.dump(env, fo, indent=1)
        logs = sorted(glob.glob(os.path.join(rd, "**", "log.txt"), recursive=True))
        with open(os.path.join(out, f"log_run{i}.txt"), "w") as fo:
            for p in logs:
                fo.write(f"### {os.path.relpath(p, rd)}\n")
                fo.write(scrub_paths(open(p).read()))
    for key, fs in merged.items():
        df = pd.concat(fs, ignore_index=True, sort=False)
        if key == "gemm_repeat":  # a noise check: keys and timings are enough
            df = df[["run", "model", "tp", "layer", "dtype", "M", "N", "K", "time_us", "p10_us",
                     "p90_us", "method"]]
        if key == "attn_chunked":  # run 1 FA3 rows ran without split-KV (num_splits=1)
            if "num_splits" not in df:
                df["num_splits"] = None
            df.loc[(df.impl == "fa3") & df.num_splits.isna(), "num_splits"] = 1
        if key == "moe" and "local_experts" in df:
            df["local_experts"] = df["local_experts"].fillna(df["experts"]).astype(int)
        if key == "power":
            for c in ("mean_power_w_energy", "mean_power_w_samples"):
                if c in df:
                    df[c.replace("mean_power_w", "frac_tdp")] = df[c] / TDP_W
        df.to_csv(os.path.join(out, key + ".csv"), index=False, float_format="%.6g")
        print(f"{key:14s} {len(df):6d} rows")


if __name__ == "__main__":
    main()
