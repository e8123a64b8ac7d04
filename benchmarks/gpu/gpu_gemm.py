"""Section gemm of the GPU microbenchmarks: dense linear layers of Llama-3.1-8B/70B and Qwen3-32B at
TP 1..8, M = 1..16384, bf16 (cuBLAS via F.linear) and fp8 e4m3 (torch._scaled_mm, per-tensor and
rowwise)."""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

import gpu_timing as gt
from gpu_specs import HBM_BW, M_LIST, MODELS, PEAK_BF16, PEAK_FP8
from gpu_timing import Budget, Sink, bench, log, n_copies, randn


def linear_shapes(m, tp):
    kvh = max(1, m["kv_heads"] // tp)  # KV heads replicated when tp > kv_heads
    hd = m["head_dim"]
    return [("qkv", (m["heads"] // tp + 2 * kvh) * hd, m["hidden"]),
            ("o", m["hidden"], m["heads"] * hd // tp),
            ("gate_up", 2 * m["ffn"] // tp, m["hidden"]),
            ("down", m["hidden"], m["ffn"] // tp)]


def gemm_groups(args):
    """(model, tp, layer, N, K) in priority order."""
    g = []
    plan = [("llama3.1-70b", 1), ("llama3.1-70b", 2), ("llama3.1-70b", 4), ("llama3.1-70b", 8),
            ("llama3.1-8b", 1), ("llama3.1-8b", 2), ("qwen3-32b", 1), ("qwen3-32b", 2),
            ("qwen3-32b", 4)]
    lm = [("llama3.1-8b", 1), ("llama3.1-70b", 8), ("qwen3-32b", 4), ("llama3.1-70b", 1)]
    extra = [("qwen3-32b", 8), ("llama3.1-8b", 4), ("llama3.1-8b", 8)]
    for name, tp in plan:
        for layer, n, k in linear_shapes(MODELS[name], tp):
            g.append((name, tp, layer, n, k))
    for name, tp in lm:
        m = MODELS[name]
        g.append((name, tp, "lm_head", m["vocab"] // tp, m["hidden"]))
    for name, tp in extra:
        for layer, n, k in linear_shapes(MODELS[name], tp):
            g.append((name, tp, layer, n, k))
    if args.gemm_groups:
        g = [x for x in g if f"{x[0]}:{x[1]}" in args.gemm_groups]
    if gt.SMOKE:
        g = [(a, b, c, max(16, n // 64), max(16, k // 64)) for a, b, c, n, k in g[:3]]
    return g


def gemm_dtypes_for(model, tp, layer):
    d = ["bf16", "fp8_tensor"]
    if model == "llama3.1-70b" or (model == "llama3.1-8b" and tp == 1):
        d.append("fp8_rowwise")
    if model == "llama3.1-70b" and tp in (1, 8) and layer != "lm_head":
        d.append("fp8_tensor_nofast")
    return d


def section_gemm(out, args, mon):
    sink = Sink(os.path.join(out, args.gemm_csv))
    bud = Budget(args.budget.get("gemm", 240))
    mlist = (args.m_list or M_LIST) if not gt.SMOKE else [1, 16, 64]
    for (model, tp, layer, n, k) in gemm_groups(args):
        if not bud.ok():
            continue
        dts = gemm_dtypes_for(model, tp, layer)
        if args.gemm_dtypes:
            dts = [d for d in dts if d in args.gemm_dtypes]
        wbytes_bf16 = n * k * 2
        ncp = n_copies(wbytes_bf16 // 2)  # fp8-sized: enough copies for either dtype
        W = randn((ncp, n, k), scale=0.02)
        t_grp = time.time()
        W8 = None
        for dt in dts:
            if dt == "bf16":
                Wd, bw = W, 2
            else:
                if W8 is None:
                    W8 = W.to(torch.float8_e4m3fn)
                Wd, bw = W8, 1
            ncp_d = n_copies(n * k * bw)
            ncp_d = min(ncp_d, ncp)
            for M in mlist:
                if not bud.ok():
                    break
                try:
                    x = randn((M, k))
                    if dt == "bf16":
                        fns = [lambda i=i: F.linear(x, Wd[i]) for i in range(ncp_d)]
                        ab, ob = 2, 2
                        extra = 0
                    else:
                        x8 = x.to(torch.float8_e4m3fn)
                        ab, ob = 1, 2
                        if dt.startswith("fp8_tensor"):
                            sa = torch.ones((), device=gt.DEV)
                            sb = torch.ones((), device=gt.DEV)
                            extra = 8
                        else:
                            sa = torch.ones(M, 1, device=gt.DEV)
                            sb = torch.ones(1, n, device=gt.DEV)
                            extra = 4 * (M + n)
                        fast = dt != "fp8_tensor_nofast"
                        fns = [lambda i=i: torch._scaled_mm(x8, Wd[i].t(), sa, sb,
                                                            out_dtype=torch.bfloat16,
                                                            use_fast_accum=fast)
                               for i in range(ncp_d)]
                    res = bench(fns, min_calls=ncp_d)
                    flops = 2 * M * n * k
                    nbytes = n * k * bw + M * k * ab + M * n * ob + extra
                    t = res["time_us"] * 1e-6
                    peak = PEAK_BF16 if dt == "bf16" else PEAK_FP8
                    sink.row(dict(model=model, tp=tp, layer=layer, dtype=dt, M=M, N=n, K=k,
                                  time_us=res["time_us"], p10_us=res["p10_us"],
                                  p90_us=res["p90_us"], flops=flops, bytes=nbytes,
                                  tflops=flops / t / 1e12, gbps=nbytes / t / 1e9,
                                  frac_peak=flops / t / peak, frac_hbm=nbytes / t / HBM_BW,
                                  weight_copies=ncp_d, calls=res["calls"],
                                  samples=res["samples"], method=res["method"]))
                except Exception as ex:  # noqa: BLE001
                    log(f"  gemm {model} tp{tp} {layer} {dt} M={M} failed: {repr(ex)[:200]}")
            del Wd
        del W, W8
        if gt.DEV == "cuda":
            torch.cuda.empty_cache()
        log(f"  gemm {model:13s} tp{tp} {layer:8s} N={n:6d} K={k:6d} {dts} "
            f"{time.time() - t_grp:5.1f}s (rows {sink.n})")
    if bud.skipped:
        log(f"  gemm: budget exhausted, {bud.skipped} cases skipped")
    sink.close()
