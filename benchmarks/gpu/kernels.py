#!/usr/bin/env python3
"""Hopper kernel-efficiency microbenchmarks for splitplan's analytic performance model.

Runs ON THE GPU MACHINE (Python 3.12 + PyTorch with CUDA). It measures the kernel-level
quantities that `docs/performance-model.md` and `benchmarks/gpu/fit_kernels.py` use, in sections
(each described in its module's docstring):

  env          gpu_env.py            ceilings     gpu_ceilings.py       gemm     gpu_gemm.py
  elementwise  gpu_elementwise.py    prefill, chunked, decode  gpu_attention.py
  moe          gpu_moe.py            power        gpu_power.py

Timing method and shared machinery: gpu_timing.py; model shapes and datasheet peaks: gpu_specs.py.

Usage:  python3 kernels.py --out DIR [--sections a,b,...] [--budget gemm=150,prefill=60]
        python3 kernels.py --smoke --out DIR      # tiny CPU run to check the script's logic
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
import traceback

import torch

import gpu_timing as gt
from gpu_attention import section_chunked, section_decode, section_prefill  # noqa: F401
from gpu_ceilings import section_ceilings  # noqa: F401
from gpu_elementwise import section_elementwise  # noqa: F401
from gpu_env import section_env  # noqa: F401
from gpu_gemm import section_gemm  # noqa: F401
from gpu_moe import section_moe  # noqa: F401
from gpu_power import section_power  # noqa: F401
from gpu_timing import Monitor, log

ALL_SECTIONS = ["env", "ceilings", "gemm", "elementwise", "prefill", "chunked", "decode",
                "moe", "power"]


def parse_budget(s):
    d = {}
    if s:
        for part in s.split(","):
            k, v = part.split("=")
            d[k.strip()] = float(v)
    return d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sections", default=",".join(ALL_SECTIONS))
    ap.add_argument("--budget", default="", help="per-section seconds, e.g. gemm=150,prefill=60")
    ap.add_argument("--gemm-dtypes", default="", help="subset of bf16,fp8_tensor,fp8_rowwise,fp8_tensor_nofast")
    ap.add_argument("--attn-impls", default="", help="subset of sdpa_flash,sdpa_cudnn,fa3")
    ap.add_argument("--gemm-groups", default="", help="subset of model:tp, e.g. llama3.1-70b:8")
    ap.add_argument("--m-list", default="", help="GEMM M values (default: the 19-value sweep)")
    ap.add_argument("--gemm-csv", default="gemm.csv", help="GEMM output file name")
    ap.add_argument("--moe-set", default="base", choices=["base", "sharded", "all"])
    ap.add_argument("--moe-csv", default="moe.csv")
    ap.add_argument("--chunk-splits", type=int, default=1,
                    help="FA3 num_splits for chunked prefill (1: none, 0: FA3 heuristic)")
    ap.add_argument("--step-batches", default="64", help="decode-step batch sizes for power")
    ap.add_argument("--no-prefill-step", action="store_true")
    ap.add_argument("--power-only-steps", action="store_true",
                    help="power: only the whole-step phases (and idle)")
    ap.add_argument("--idle-s", type=float, default=5.0, help="final idle phase of power")
    ap.add_argument("--power-steps", action="store_true",
                    help="power: add whole-step phases (70B TP8-shaped decode and prefill)")
    ap.add_argument("--power-s", type=float, default=10.0)
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run that checks the logic")
    args = ap.parse_args()
    args.budget = parse_budget(args.budget)
    args.gemm_dtypes = [x for x in args.gemm_dtypes.split(",") if x]
    args.attn_impls = [x for x in args.attn_impls.split(",") if x]
    args.gemm_groups = [x for x in args.gemm_groups.split(",") if x]
    args.m_list = [int(x) for x in args.m_list.split(",") if x]
    args.step_batches = [int(x) for x in args.step_batches.split(",") if x]
    gt.SMOKE = args.smoke
    gt.DEV = "cpu" if gt.SMOKE or not torch.cuda.is_available() else "cuda"
    if gt.DEV == "cpu" and not gt.SMOKE:
        sys.exit("no CUDA device; use --smoke for a CPU logic check")
    os.makedirs(args.out, exist_ok=True)
    gt.LOG = open(os.path.join(args.out, "log.txt"), "a")
    torch.manual_seed(0)
    mon = Monitor(os.path.join(args.out, "monitor.csv"))
    mon.start()
    done = []
    with torch.inference_mode():
        for sec in [s for s in args.sections.split(",") if s]:
            mon.section = sec
            t = time.time()
            log(f"== section {sec}")
            try:
                globals()[f"section_{sec}"](args.out, args, mon)
                done.append((sec, "ok", time.time() - t))
            except Exception as ex:  # noqa: BLE001
                log(f"section {sec} FAILED: {repr(ex)[:300]}")
                gt.LOG.write(traceback.format_exc())
                gt.LOG.flush()
                traceback.print_exc()
                done.append((sec, "FAILED", time.time() - t))
            if gt.DEV == "cuda":
                try:
                    torch.cuda.empty_cache()
                except Exception as ex:  # noqa: BLE001 - a sticky CUDA error ends the run
                    log(f"CUDA context unusable after {sec}: {repr(ex)[:200]}")
                    break
    mon.stop()
    log("== summary")
    for sec, st, dt in done:
        log(f"  {sec:12s} {st:7s} {dt:6.1f}s")
    summarize(args.out)


def summarize(out):
    """Short table of key numbers (printed last, so the tail of the output carries it)."""
    def read(name):
        p = os.path.join(out, name)
        if not os.path.exists(p):
            return []
        with open(p) as f:
            return list(csv.DictReader(f))
    for r in read("ceilings.csv"):
        log(f"  ceiling {r['name']:12s} {r['dtype']:16s} {r['shape']:18s} "
            f"{r['tbytes_s'] or r['tflops']} {'TB/s' if r['tbytes_s'] else 'TFLOP/s'}")
    g = read("gemm.csv")
    for dt in ("bf16", "fp8_tensor", "fp8_rowwise"):
        for M in ("1", "64", "512", "4096", "16384"):
            rows = [r for r in g if r["dtype"] == dt and r["M"] == M and r["model"] == "llama3.1-70b"
                    and r["tp"] == "1"]
            if rows:
                log(f"  gemm 70b tp1 {dt:11s} M={M:5s} " + " ".join(
                    f"{r['layer']}:{float(r['time_us']):.1f}us/{float(r['frac_peak']):.2f}c/"
                    f"{float(r['frac_hbm']):.2f}m" for r in rows))
    for name in ("elementwise.csv", "attn_prefill.csv", "attn_chunked.csv", "attn_decode.csv",
                 "moe.csv", "power.csv"):
        log(f"  {name}: {len(read(name))} rows")
    for r in read("power.csv"):
        log(f"  power {r['phase']:24s} "
            f"{r.get('mean_power_w_energy') or r.get('mean_power_w_samples')} W")


if __name__ == "__main__":
    main()
