#!/usr/bin/env python3
"""Hopper kernel-efficiency microbenchmarks for splitplan's analytic performance model.

Runs ON THE GPU MACHINE (Python 3.12 + PyTorch with CUDA). It measures the kernel-level
quantities that `docs/performance-model.md` and `benchmarks/gpu/fit_kernels.py` use:

  env          torch / CUDA / driver / GPU facts, API availability (written to env.json)
  ceilings     copy and read bandwidth, 8192^3 bf16 and fp8 GEMM rate
  gemm         dense linear layers of Llama-3.1-8B/70B and Qwen3-32B at TP 1..8, M = 1..16384,
               bf16 (cuBLAS via F.linear) and fp8 e4m3 (torch._scaled_mm, per-tensor and rowwise)
  elementwise  Triton RMSNorm / fused add+RMSNorm / SiLU*mul / fp8 quant and a torch add, vs M
  prefill      causal prefill attention: SDPA FLASH (FA2), SDPA cuDNN, FlashAttention-3 (bf16/fp8)
  chunked      chunked-prefill attention: c new tokens over p cached + c (bottom-right causal)
  decode       decode attention, one query token per sequence: SDPA FLASH, FA3 bf16 / fp8 KV
  moe          grouped expert GEMMs (torch._grouped_mm bf16, torch._scaled_grouped_mm fp8)
  power        NVML power / clocks during a compute-bound, a memory-bound and an idle phase

Method (see profiles/measured/h200-kernels/README.md):
  * random (never zero) inputs; every case is warmed up, then captured into a CUDA graph of
    `calls` back-to-back launches (as an engine with CUDA graphs would run them) and the graph is
    replayed `samples` times, each replay timed with CUDA events; time_us = median(replay)/calls,
    p10_us/p90_us the 10th/90th percentiles. Kernels longer than 4 ms are timed eagerly.
  * memory-bound operands rotate through copies (a pool) whose total exceeds ~4x the 60 MB L2,
    so weights/KV are re-read from HBM as in a real layer-by-layer step.
  * CSV rows are flushed as they are measured, so a killed run still leaves data.

FA3 comes from the `fa3-fwd` wheel (FlashAttention-3 forward, Hopper kernels) when importable
(`fa3_fwd_interface`); if not, FA3 rows are skipped and env.json says why.

Usage:  python3 kernels.py --out DIR [--sections a,b,...] [--budget gemm=150,prefill=60]
        python3 kernels.py --smoke --out DIR      # tiny CPU run to check the script's logic
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
import traceback

import torch
import torch.nn.functional as F

ALL_SECTIONS = ["env", "ceilings", "gemm", "elementwise", "prefill", "chunked", "decode",
                "moe", "power"]

# Datasheet numbers (H200 SXM), only used for the derived efficiency columns.
PEAK_BF16 = 989e12
PEAK_FP8 = 1979e12
HBM_BW = 4.8e12

MODELS = {
    "llama3.1-8b": dict(hidden=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, vocab=128256),
    "llama3.1-70b": dict(hidden=8192, heads=64, kv_heads=8, head_dim=128, ffn=28672, vocab=128256),
    "qwen3-32b": dict(hidden=5120, heads=64, kv_heads=8, head_dim=128, ffn=25600, vocab=151936),
}
M_LIST = [1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 8192,
          16384]
MOE_MODELS = {
    "qwen3-235b-a22b": dict(hidden=4096, ffn=1536, experts=128, topk=8),
    "qwen3-30b-a3b": dict(hidden=2048, ffn=768, experts=128, topk=8),
    "gpt-oss-120b": dict(hidden=2880, ffn=2880, experts=128, topk=4),
    "mixtral-8x7b": dict(hidden=4096, ffn=14336, experts=8, topk=2),
}
# Sharded variants: "-tpN" splits every expert's ffn N ways (all experts local); "-epN" keeps whole
# experts but only experts/N of them are local (tokens routed to the others are not computed here).
MOE_SHARDED = {
    "qwen3-235b-a22b-tp8": dict(hidden=4096, ffn=192, experts=128, topk=8),
    "qwen3-235b-a22b-ep8": dict(hidden=4096, ffn=1536, experts=128, topk=8, local=16),
    "qwen3-30b-a3b-tp4": dict(hidden=2048, ffn=192, experts=128, topk=8),
    "gpt-oss-120b-tp4": dict(hidden=2880, ffn=720, experts=128, topk=4),
    "mixtral-8x7b-tp8": dict(hidden=4096, ffn=1792, experts=8, topk=2),
}

T0 = time.time()
DEV = "cuda"
SMOKE = False
ROT_BYTES = 320 * 2**20     # operands rotate through copies totalling at least this much
MAX_COPIES = 1024
LOG = None


def log(*a):
    msg = f"[{time.time() - T0:7.1f}s] " + " ".join(str(x) for x in a)
    print(msg, flush=True)
    if LOG is not None:
        LOG.write(msg + "\n")
        LOG.flush()


class Sink:
    """CSV writer that writes the header with the first row and flushes every row."""

    def __init__(self, path):
        self.path, self.f, self.w, self.n = path, None, None, 0

    def row(self, d):
        if self.w is None:
            self.f = open(self.path, "w", newline="")
            self.w = csv.DictWriter(self.f, fieldnames=list(d.keys()), extrasaction="ignore")
            self.w.writeheader()
        self.w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in d.items()})
        self.f.flush()
        self.n += 1

    def close(self):
        if self.f:
            self.f.close()


class Budget:
    def __init__(self, seconds):
        self.t_end = time.time() + seconds
        self.skipped = 0

    def ok(self):
        if time.time() < self.t_end:
            return True
        self.skipped += 1
        return False


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------

def _sync():
    if DEV == "cuda":
        torch.cuda.synchronize()


def _pct(xs, q):
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def bench(fns, *, min_calls=1, target_us=2500.0, budget_us=15000.0, min_samples=5,
          max_samples=25, graph=True, eager_above_us=4000.0):
    """Time a list of equivalent zero-argument callables (rotating operands).

    Returns dict(time_us, p10_us, p90_us, samples, calls, method).
    """
    n = len(fns)
    if DEV != "cuda":  # smoke mode: host timer, no graphs
        for f in fns[: min(n, 2)]:
            f()
        ts = []
        for i in range(3):
            t = time.perf_counter()
            fns[i % n]()
            ts.append((time.perf_counter() - t) * 1e6)
        return dict(time_us=_pct(ts, .5), p10_us=_pct(ts, .1), p90_us=_pct(ts, .9), samples=3,
                    calls=1, method="cpu-eager")
    for f in fns[: min(n, 3)]:
        f()
    _sync()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    k = min(n, 4)
    s.record()
    for i in range(k):
        fns[i % n]()
    e.record()
    _sync()
    est = max(s.elapsed_time(e) * 1e3 / k, 0.5)
    method = "graph"
    if est > eager_above_us or not graph:
        method = "eager"
    if method == "graph":
        calls = int(min(MAX_COPIES, max(min_calls, round(target_us / est), 1)))
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g):
                for i in range(calls):
                    fns[i % n]()
            g.replay()
            _sync()
        except Exception as ex:  # noqa: BLE001 - fall back to eager timing
            log("  graph capture failed, eager timing:", repr(ex)[:200])
            try:
                _sync()
            except Exception:  # noqa: BLE001
                pass
            g = None
            method = "eager-fallback"
    if method == "graph":
        s.record()
        g.replay()
        e.record()
        _sync()
        gt = s.elapsed_time(e) * 1e3
        r = int(max(min_samples, min(max_samples, budget_us / max(gt, 1.0))))
        evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
               for _ in range(r)]
        for a, b in evs:
            a.record()
            g.replay()
            b.record()
        _sync()
        ts = [a.elapsed_time(b) * 1e3 / calls for a, b in evs]
        del g
    else:
        calls = 1
        r = int(max(3, min(max_samples, budget_us / est)))
        if method != "eager":  # small kernels without a graph: time a loop of launches
            calls = int(max(1, min(200, round(target_us / est))))
        evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
               for _ in range(r)]
        j = 0
        for a, b in evs:
            a.record()
            for _ in range(calls):
                fns[j % n]()
                j += 1
            b.record()
        _sync()
        ts = [a.elapsed_time(b) * 1e3 / calls for a, b in evs]
    return dict(time_us=_pct(ts, .5), p10_us=_pct(ts, .1), p90_us=_pct(ts, .9), samples=len(ts),
                calls=calls, method=method)


def n_copies(bytes_per_instance, cap=MAX_COPIES):
    if SMOKE:
        return 2
    return int(max(1, min(cap, math.ceil(ROT_BYTES / max(bytes_per_instance, 1)))))


def randn(shape, dtype=torch.bfloat16, scale=1.0):
    """Random normal tensor built in chunks (keeps fp32 temporaries small)."""
    out = torch.empty(shape, dtype=dtype, device=DEV)
    flat = out.view(-1)
    step = 1 << 27
    for i in range(0, flat.numel(), step):
        j = min(flat.numel(), i + step)
        flat[i:j] = (torch.randn(j - i, device=DEV) * scale).to(dtype)
    return out


# ----------------------------------------------------------------------------------------------
# monitor (NVML) -- clocks / power throughout the run
# ----------------------------------------------------------------------------------------------

class Monitor:
    def __init__(self, path, period=1.0):
        self.period, self.section, self.rows, self.stop_ev = period, "start", [], threading.Event()
        self.nvml = None
        self.sink = Sink(path)
        try:
            import pynvml  # nvidia-ml-py
            pynvml.nvmlInit()
            self.nvml = pynvml
            self.h = pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as ex:  # noqa: BLE001
            log("NVML unavailable:", repr(ex)[:200])
        self.th = threading.Thread(target=self._loop, daemon=True)

    def read(self):
        d = dict(t_s=round(time.time() - T0, 3), section=self.section)
        p = self.nvml
        if p is None:
            try:
                q = subprocess.run(["nvidia-smi", "--query-gpu=power.draw,clocks.sm,clocks.mem,"
                                    "temperature.gpu,utilization.gpu",
                                    "--format=csv,noheader,nounits"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
                pw, sm, mem, tmp, ut = [x.strip() for x in q.split(",")]
                d.update(power_w=float(pw), sm_mhz=float(sm), mem_mhz=float(mem),
                         temp_c=float(tmp), util=float(ut), energy_j="", throttle="")
            except Exception:  # noqa: BLE001
                pass
            return d
        try:
            d["power_w"] = p.nvmlDeviceGetPowerUsage(self.h) / 1e3
            d["sm_mhz"] = p.nvmlDeviceGetClockInfo(self.h, p.NVML_CLOCK_SM)
            d["mem_mhz"] = p.nvmlDeviceGetClockInfo(self.h, p.NVML_CLOCK_MEM)
            d["temp_c"] = p.nvmlDeviceGetTemperature(self.h, p.NVML_TEMPERATURE_GPU)
            d["util"] = p.nvmlDeviceGetUtilizationRates(self.h).gpu
            d["energy_j"] = p.nvmlDeviceGetTotalEnergyConsumption(self.h) / 1e3
            fn = getattr(p, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                getattr(p, "nvmlDeviceGetCurrentClocksThrottleReasons")
            d["throttle"] = hex(fn(self.h))
        except Exception as ex:  # noqa: BLE001
            d["err"] = repr(ex)[:80]
        return d

    def _loop(self):
        while not self.stop_ev.wait(self.period):
            r = self.read()
            self.rows.append(r)
            self.sink.row(r)

    def start(self):
        self.th.start()

    def stop(self):
        self.stop_ev.set()
        self.th.join(timeout=5)
        self.sink.close()


# ----------------------------------------------------------------------------------------------
# env
# ----------------------------------------------------------------------------------------------

FA3 = None


def try_fa3():
    global FA3
    try:
        import fa3_fwd_interface as m  # noqa: F401
        FA3 = m
        return "ok: fa3_fwd_interface " + getattr(m, "__file__", "")
    except Exception as ex:  # noqa: BLE001
        FA3 = None
        return "unavailable: " + repr(ex)[:300]


def section_env(out, args, mon):
    env = dict(date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               python=sys.version, platform=platform.platform(), torch=torch.__version__,
               cuda=torch.version.cuda, smoke=SMOKE, argv=sys.argv)
    try:
        import triton
        env["triton"] = triton.__version__
    except Exception as ex:  # noqa: BLE001
        env["triton"] = repr(ex)
    if DEV == "cuda":
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, sm_count=p.multi_processor_count, total_mem_gib=p.total_memory / 2**30,
                   capability=f"{p.major}.{p.minor}",
                   l2_bytes=getattr(p, "L2_cache_size", None),
                   cudnn=torch.backends.cudnn.version(),
                   cublas_allow_bf16_reduced=torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
                   allow_tf32=torch.backends.cuda.matmul.allow_tf32)
        for q in ["name,driver_version,vbios_version,pstate,power.limit,power.default_limit,"
                  "power.max_limit,enforced.power.limit,clocks.sm,clocks.mem,clocks.max.sm,"
                  "clocks.max.mem,clocks.applications.graphics,temperature.gpu,memory.total"]:
            try:
                env["nvidia_smi"] = subprocess.run(
                    ["nvidia-smi", f"--query-gpu={q}", "--format=csv"], capture_output=True,
                    text=True, timeout=20).stdout.strip()
            except Exception as ex:  # noqa: BLE001
                env["nvidia_smi"] = repr(ex)
        try:
            txt = subprocess.run(["nvidia-smi", "-q", "-d", "CLOCK,POWER,PERFORMANCE"],
                                 capture_output=True, text=True, timeout=20).stdout
            open(os.path.join(out, "nvidia_smi_q.txt"), "w").write(txt)
        except Exception as ex:  # noqa: BLE001
            env["nvidia_smi_q"] = repr(ex)
    env["has_scaled_mm"] = hasattr(torch, "_scaled_mm")
    env["has_grouped_mm"] = hasattr(torch, "_grouped_mm")
    env["has_scaled_grouped_mm"] = hasattr(torch, "_scaled_grouped_mm")
    env["fa3"] = try_fa3()
    env["monitor_first"] = mon.read()
    # quick correctness / availability probes (small shapes)
    probes = {}
    if DEV == "cuda":
        probes.update(probe_apis())
    env["probes"] = probes
    with open(os.path.join(out, "env.json"), "w") as f:
        json.dump(env, f, indent=1, default=str)
    log("env:", json.dumps({k: env.get(k) for k in ["gpu", "torch", "cuda", "triton", "cudnn",
                                                    "fa3", "sm_count", "l2_bytes"]},
                           default=str))
    log("nvidia-smi:", env.get("nvidia_smi", "").replace("\n", " | "))
    for k, v in probes.items():
        log(f"  probe {k}: {v}")


def _relerr(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def probe_apis():
    r = {}
    torch.manual_seed(0)
    x = torch.randn(64, 256, device=DEV)
    w = torch.randn(512, 256, device=DEV)
    ref = x @ w.t()
    try:
        y = F.linear(x.bfloat16(), w.bfloat16())
        r["bf16_linear_relerr"] = _relerr(y, ref)
    except Exception as ex:  # noqa: BLE001
        r["bf16_linear"] = repr(ex)[:200]
    x8, w8 = x.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
    ref8 = x8.float() @ w8.float().t()
    one = torch.ones((), device=DEV)
    for fast in (True, False):
        try:
            y = torch._scaled_mm(x8, w8.t(), one, one, out_dtype=torch.bfloat16,
                                 use_fast_accum=fast)
            r[f"fp8_tensor_fast{int(fast)}_relerr"] = _relerr(y, ref8)
        except Exception as ex:  # noqa: BLE001
            r[f"fp8_tensor_fast{int(fast)}"] = repr(ex)[:200]
    try:
        y = torch._scaled_mm(x8, w8.t(), torch.ones(64, 1, device=DEV), torch.ones(1, 512, device=DEV),
                             out_dtype=torch.bfloat16, use_fast_accum=True)
        r["fp8_rowwise_relerr"] = _relerr(y, ref8)
    except Exception as ex:  # noqa: BLE001
        r["fp8_rowwise"] = repr(ex)[:200]
    try:
        xs = torch.randn(40, 256, device=DEV, dtype=torch.bfloat16)
        W = torch.randn(4, 128, 256, device=DEV, dtype=torch.bfloat16)
        offs = torch.tensor([3, 3, 20, 40], device=DEV, dtype=torch.int32)
        y = torch._grouped_mm(xs, W.transpose(1, 2), offs=offs, out_dtype=torch.bfloat16)
        bounds = [0, 3, 3, 20, 40]
        ref = torch.cat([xs[bounds[i]:bounds[i + 1]].float() @ W[i].float().t() for i in range(4)])
        r["grouped_mm_relerr"] = _relerr(y, ref)
    except Exception as ex:  # noqa: BLE001
        r["grouped_mm"] = repr(ex)[:200]
    try:
        import triton  # noqa: F401
        xs = torch.randn(8, 5120, device=DEV, dtype=torch.bfloat16)
        wn = torch.randn(5120, device=DEV, dtype=torch.bfloat16)
        y = torch.empty_like(xs)
        rmsnorm(xs, wn, y)
        xf = xs.float()
        ref = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6) * wn.float()
        r["triton_rmsnorm_relerr"] = _relerr(y, ref)
    except Exception as ex:  # noqa: BLE001
        r["triton_rmsnorm"] = repr(ex)[:200]
    # attention probes: (B, H, S, D) layout for SDPA
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q = torch.randn(2, 8, 64, 128, device=DEV, dtype=torch.bfloat16)
    k = torch.randn(2, 2, 96, 128, device=DEV, dtype=torch.bfloat16)
    v = torch.randn(2, 2, 96, 128, device=DEV, dtype=torch.bfloat16)
    ke, ve = k.repeat_interleave(4, 1), v.repeat_interleave(4, 1)
    mask = torch.ones(64, 96, dtype=torch.bool, device=DEV).tril(96 - 64)  # bottom-right causal
    ref_br = F.scaled_dot_product_attention(q.float(), ke.float(), ve.float(), attn_mask=mask)
    for name, be in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)]:
        try:
            with sdpa_kernel(be):
                y = F.scaled_dot_product_attention(q, k[:, :, :64], v[:, :, :64], is_causal=True,
                                                   enable_gqa=True)
            refc = F.scaled_dot_product_attention(q.float(), ke[:, :, :64].float(),
                                                  ve[:, :, :64].float(), is_causal=True)
            r[f"sdpa_{name}_gqa_causal_relerr"] = _relerr(y, refc)
        except Exception as ex:  # noqa: BLE001
            r[f"sdpa_{name}_gqa_causal"] = repr(ex)[:200]
        try:
            from torch.nn.attention.bias import causal_lower_right
            with sdpa_kernel(be):
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(64, 96),
                                                   enable_gqa=True)
            r[f"sdpa_{name}_lower_right_gqa_relerr"] = _relerr(y, ref_br)
        except Exception as ex:  # noqa: BLE001
            r[f"sdpa_{name}_lower_right_gqa"] = repr(ex)[:200]
        try:
            from torch.nn.attention.bias import causal_lower_right
            with sdpa_kernel(be):
                y = F.scaled_dot_product_attention(q, ke, ve, attn_mask=causal_lower_right(64, 96))
            r[f"sdpa_{name}_lower_right_expanded_relerr"] = _relerr(y, ref_br)
        except Exception as ex:  # noqa: BLE001
            r[f"sdpa_{name}_lower_right_expanded"] = repr(ex)[:200]
    if FA3 is not None:
        try:
            qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
            y = fa3(qt, kt, vt, True)
            r["fa3_bf16_lower_right_relerr"] = _relerr(y.transpose(1, 2), ref_br)
            y = _unwrap(FA3.flash_attn_func(qt, kt, vt, causal=True))
            r["fa3_bf16_via_interface_relerr"] = _relerr(y.transpose(1, 2), ref_br)
            q8, k8, v8 = (t.to(torch.float8_e4m3fn) for t in (qt, kt, vt))
            ds = torch.ones(2, 2, device=DEV)
            y = fa3(q8, k8, v8, True, ds)
            ref8 = F.scaled_dot_product_attention(
                q8.float().transpose(1, 2), k8.float().transpose(1, 2).repeat_interleave(4, 1),
                v8.float().transpose(1, 2).repeat_interleave(4, 1), attn_mask=mask)
            r["fa3_fp8_lower_right_relerr"] = _relerr(y.float().transpose(1, 2), ref8)
            qd = torch.randn(2, 1, 8, 128, device=DEV, dtype=torch.bfloat16)
            y = fa3(qd, kt, vt, True, num_splits=0)
            refd = F.scaled_dot_product_attention(qd.float().transpose(1, 2), ke.float(), ve.float())
            r["fa3_decode_bf16_relerr"] = _relerr(y.transpose(1, 2), refd)
            qd8 = qd.to(torch.float8_e4m3fn)
            y = fa3(qd8, k8, v8, True, ds, num_splits=0)
            refd8 = F.scaled_dot_product_attention(
                qd8.float().transpose(1, 2), k8.float().transpose(1, 2).repeat_interleave(4, 1),
                v8.float().transpose(1, 2).repeat_interleave(4, 1))
            r["fa3_decode_fp8_relerr"] = _relerr(y.float().transpose(1, 2), refd8)
        except Exception as ex:  # noqa: BLE001
            r["fa3"] = repr(ex)[:300]
    return r


# ----------------------------------------------------------------------------------------------
# ceilings
# ----------------------------------------------------------------------------------------------

def section_ceilings(out, args, mon):
    sink = Sink(os.path.join(out, "ceilings.csv"))
    gib = 2**30 if not SMOKE else 2**20

    def emit(name, dtype, shape, res, nbytes=0, flops=0):
        t = res["time_us"] * 1e-6
        d = dict(name=name, dtype=dtype, shape=shape, time_us=res["time_us"], p10_us=res["p10_us"],
                 p90_us=res["p90_us"], bytes=nbytes, flops=flops,
                 tbytes_s=nbytes / t / 1e12 if nbytes else "",
                 tflops=flops / t / 1e12 if flops else "",
                 frac_datasheet=(nbytes / t / HBM_BW) if nbytes else
                 (flops / t / (PEAK_FP8 if "fp8" in dtype else PEAK_BF16)),
                 samples=res["samples"], calls=res["calls"], method=res["method"])
        sink.row(d)
        log(f"  {name:28s} {dtype:14s} {shape:22s} {res['time_us']:10.1f} us  "
            f"{d['tbytes_s'] or d['tflops']!s:.6} {'TB/s' if nbytes else 'TFLOP/s'}")

    # copy: 2 x 2 GiB buffers (bytes read + written)
    nel = 2 * gib // 2
    a, b = randn((nel,)), torch.empty(nel, dtype=torch.bfloat16, device=DEV)
    res = bench([lambda: b.copy_(a)], target_us=1, budget_us=60000, min_samples=10)
    emit("d2d_copy", "bf16", f"{nel}", res, nbytes=4 * nel)  # a memcpy node inside a graph
    res = bench([lambda: b.copy_(a)], budget_us=60000, min_samples=10, graph=False)
    res["method"] = "eager"
    emit("d2d_copy_eager", "bf16", f"{nel}", res, nbytes=4 * nel)
    try:
        res = bench([lambda: copy_kernel(a, b)], target_us=1, budget_us=60000, min_samples=10)
        emit("copy_triton", "bf16", f"{nel}", res, nbytes=4 * nel)
    except Exception as ex:  # noqa: BLE001
        log("  triton copy kernel failed:", repr(ex)[:200])
    # read-only: sum of a 4 GiB tensor (fp32 accumulation)
    big = torch.cat([a, b.copy_(a)]) if not SMOKE else a
    del b
    res = bench([lambda: big.sum(dtype=torch.float32)], target_us=1, budget_us=60000, min_samples=10)
    emit("read_sum", "bf16", f"{big.numel()}", res, nbytes=2 * big.numel())
    try:
        import triton  # noqa: F401
        res = bench([lambda: read_kernel(big)], target_us=1, budget_us=60000, min_samples=10)
        emit("read_triton", "bf16", f"{big.numel()}", res, nbytes=2 * big.numel())
    except Exception as ex:  # noqa: BLE001
        log("  triton read kernel failed:", repr(ex)[:200])
    res = bench([lambda: a.fill_(1.0)], target_us=1, budget_us=60000, min_samples=10)
    emit("write_fill", "bf16", f"{nel}", res, nbytes=2 * nel)
    del a, big
    torch.cuda.empty_cache() if DEV == "cuda" else None
    # GEMMs
    for n in ([8192, 16384] if not SMOKE else [128]):
        flops = 2 * n**3
        xs = [randn((n, n)) for _ in range(2)]
        ws = [randn((n, n)) for _ in range(2)]
        res = bench([lambda i=i: torch.mm(xs[i], ws[i].t()) for i in range(2)],
                    budget_us=200000, min_samples=5, max_samples=10)
        emit("gemm", "bf16", f"{n}x{n}x{n}", res, flops=flops)
        x8 = [x.to(torch.float8_e4m3fn) for x in xs]
        w8 = [w.to(torch.float8_e4m3fn) for w in ws]
        one = torch.ones((), device=DEV)
        for fast in (True, False):
            try:
                res = bench([lambda i=i: torch._scaled_mm(x8[i], w8[i].t(), one, one,
                                                          out_dtype=torch.bfloat16,
                                                          use_fast_accum=fast) for i in range(2)],
                            budget_us=200000, min_samples=5, max_samples=10)
                emit("gemm", f"fp8_tensor{'' if fast else '_nofast'}", f"{n}x{n}x{n}", res,
                     flops=flops)
            except Exception as ex:  # noqa: BLE001
                log("  fp8 gemm failed", repr(ex)[:200])
        try:
            sa, sb = torch.ones(n, 1, device=DEV), torch.ones(1, n, device=DEV)
            res = bench([lambda i=i: torch._scaled_mm(x8[i], w8[i].t(), sa, sb,
                                                      out_dtype=torch.bfloat16,
                                                      use_fast_accum=True) for i in range(2)],
                        budget_us=200000, min_samples=5, max_samples=10)
            emit("gemm", "fp8_rowwise", f"{n}x{n}x{n}", res, flops=flops)
        except Exception as ex:  # noqa: BLE001
            log("  fp8 rowwise gemm failed", repr(ex)[:200])
        del xs, ws, x8, w8
    sink.close()


# ----------------------------------------------------------------------------------------------
# GEMM sweep
# ----------------------------------------------------------------------------------------------

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
    if SMOKE:
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
    mlist = (args.m_list or M_LIST) if not SMOKE else [1, 16, 64]
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
                            sa = torch.ones((), device=DEV)
                            sb = torch.ones((), device=DEV)
                            extra = 8
                        else:
                            sa = torch.ones(M, 1, device=DEV)
                            sb = torch.ones(1, n, device=DEV)
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
        if DEV == "cuda":
            torch.cuda.empty_cache()
        log(f"  gemm {model:13s} tp{tp} {layer:8s} N={n:6d} K={k:6d} {dts} "
            f"{time.time() - t_grp:5.1f}s (rows {sink.n})")
    if bud.skipped:
        log(f"  gemm: budget exhausted, {bud.skipped} cases skipped")
    sink.close()


# ----------------------------------------------------------------------------------------------
# Triton elementwise kernels
# ----------------------------------------------------------------------------------------------

_TRITON = {}


def _triton_kernels():
    if _TRITON:
        return _TRITON
    import triton
    import triton.language as tl

    @triton.jit
    def _rms(x_ptr, w_ptr, y_ptr, N, eps, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        cols = tl.arange(0, BLOCK)
        msk = cols < N
        x = tl.load(x_ptr + row * N + cols, mask=msk, other=0.0).to(tl.float32)
        r = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / N + eps)
        w = tl.load(w_ptr + cols, mask=msk, other=0.0).to(tl.float32)
        tl.store(y_ptr + row * N + cols, (x * r * w).to(y_ptr.dtype.element_ty), mask=msk)

    @triton.jit
    def _add_rms(x_ptr, res_ptr, w_ptr, y_ptr, res_out_ptr, N, eps, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        cols = tl.arange(0, BLOCK)
        msk = cols < N
        h = tl.load(x_ptr + row * N + cols, mask=msk, other=0.0).to(tl.float32) + \
            tl.load(res_ptr + row * N + cols, mask=msk, other=0.0).to(tl.float32)
        tl.store(res_out_ptr + row * N + cols, h.to(res_out_ptr.dtype.element_ty), mask=msk)
        r = 1.0 / tl.sqrt(tl.sum(h * h, axis=0) / N + eps)
        w = tl.load(w_ptr + cols, mask=msk, other=0.0).to(tl.float32)
        tl.store(y_ptr + row * N + cols, (h * r * w).to(y_ptr.dtype.element_ty), mask=msk)

    @triton.jit
    def _silu_mul(x_ptr, y_ptr, I, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        msk = cols < I
        g = tl.load(x_ptr + row * 2 * I + cols, mask=msk, other=0.0).to(tl.float32)
        u = tl.load(x_ptr + row * 2 * I + I + cols, mask=msk, other=0.0).to(tl.float32)
        y = g / (1.0 + tl.exp(-g)) * u
        tl.store(y_ptr + row * I + cols, y.to(y_ptr.dtype.element_ty), mask=msk)

    @triton.jit
    def _quant(x_ptr, y_ptr, n, inv_scale, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        msk = offs < n
        x = tl.load(x_ptr + offs, mask=msk, other=0.0).to(tl.float32) * inv_scale
        x = tl.minimum(tl.maximum(x, -448.0), 448.0)
        tl.store(y_ptr + offs, x.to(y_ptr.dtype.element_ty), mask=msk)

    @triton.jit
    def _read(x_ptr, acc_ptr, n, BLOCK: tl.constexpr, ITERS: tl.constexpr):
        base = tl.program_id(0).to(tl.int64) * BLOCK * ITERS
        acc = tl.zeros([BLOCK], dtype=tl.float32)
        for i in range(ITERS):
            offs = base + i * BLOCK + tl.arange(0, BLOCK)
            acc += tl.load(x_ptr + offs, mask=offs < n, other=0.0).to(tl.float32)
        tl.atomic_add(acc_ptr, tl.sum(acc, axis=0))

    @triton.jit
    def _copy(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        msk = offs < n
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=msk), mask=msk)

    _TRITON.update(rms=_rms, add_rms=_add_rms, silu_mul=_silu_mul, quant=_quant, read=_read,
                   copy=_copy, triton=triton)
    return _TRITON


def _npow2(n):
    return 1 << (n - 1).bit_length()


def rmsnorm(x, w, y, eps=1e-6):
    k = _triton_kernels()
    M, N = x.shape
    k["rms"][(M,)](x, w, y, N, eps, BLOCK=_npow2(N), num_warps=8 if N >= 4096 else 4)
    return y


def add_rmsnorm(x, res, w, y, res_out, eps=1e-6):
    k = _triton_kernels()
    M, N = x.shape
    k["add_rms"][(M,)](x, res, w, y, res_out, N, eps, BLOCK=_npow2(N),
                       num_warps=8 if N >= 4096 else 4)
    return y


def silu_mul(x, y):
    k = _triton_kernels()
    M, I2 = x.shape
    I = I2 // 2
    B = 1024
    k["silu_mul"][(M, k["triton"].cdiv(I, B))](x, y, I, BLOCK=B, num_warps=4)
    return y


def quant_fp8(x, y, inv_scale=1.0):
    k = _triton_kernels()
    n = x.numel()
    B = 2048
    k["quant"][(k["triton"].cdiv(n, B),)](x, y, n, inv_scale, BLOCK=B, num_warps=4)
    return y


_ACC = {}


def copy_kernel(x, y):
    k = _triton_kernels()
    n = x.numel()
    B = 8192
    k["copy"][(k["triton"].cdiv(n, B),)](x, y, n, BLOCK=B, num_warps=8)
    return y


def read_kernel(x):
    k = _triton_kernels()
    if "a" not in _ACC:
        _ACC["a"] = torch.zeros(1, device=x.device, dtype=torch.float32)
    n = x.numel()
    B, IT = 4096, 16
    k["read"][(k["triton"].cdiv(n, B * IT),)](x, _ACC["a"], n, BLOCK=B, ITERS=IT, num_warps=8)
    return _ACC["a"]


def section_elementwise(out, args, mon):
    sink = Sink(os.path.join(out, "elementwise.csv"))
    bud = Budget(args.budget.get("elementwise", 60))
    mlist = M_LIST if not SMOKE else [1, 16, 64]
    ops = [("rmsnorm", 4096), ("rmsnorm", 5120), ("rmsnorm", 8192), ("add_rmsnorm", 4096),
           ("add_rmsnorm", 8192), ("silu_mul", 14336), ("silu_mul", 3584), ("fp8_quant", 8192),
           ("torch_add", 8192)]
    if SMOKE:
        ops = [(o, max(64, h // 64)) for o, h in ops]
    for op, h in ops:
        t_op = time.time()
        for M in mlist:
            if not bud.ok():
                break
            try:
                if op == "rmsnorm":
                    per = M * h * 2 * 2 + h * 2
                    nc = n_copies(per)
                    X, Y = randn((nc, M, h)), torch.empty((nc, M, h), dtype=torch.bfloat16, device=DEV)
                    w = randn((h,))
                    fns = [lambda i=i: rmsnorm(X[i], w, Y[i]) for i in range(nc)]
                elif op == "add_rmsnorm":
                    per = M * h * 2 * 4 + h * 2
                    nc = n_copies(per)
                    X, R = randn((nc, M, h)), randn((nc, M, h))
                    Y, RO = torch.empty_like(X), torch.empty_like(X)
                    w = randn((h,))
                    fns = [lambda i=i: add_rmsnorm(X[i], R[i], w, Y[i], RO[i]) for i in range(nc)]
                elif op == "silu_mul":
                    per = M * h * 2 * 2 + M * h * 2
                    nc = n_copies(per)
                    X, Y = randn((nc, M, 2 * h)), torch.empty((nc, M, h), dtype=torch.bfloat16, device=DEV)
                    fns = [lambda i=i: silu_mul(X[i], Y[i]) for i in range(nc)]
                elif op == "fp8_quant":
                    per = M * h * 3
                    nc = n_copies(per)
                    X = randn((nc, M, h))
                    Y = torch.empty((nc, M, h), dtype=torch.float8_e4m3fn, device=DEV)
                    fns = [lambda i=i: quant_fp8(X[i], Y[i]) for i in range(nc)]
                else:  # torch_add
                    per = M * h * 2 * 3
                    nc = n_copies(per)
                    X, R = randn((nc, M, h)), randn((nc, M, h))
                    Y = torch.empty_like(X)
                    fns = [lambda i=i: torch.add(X[i], R[i], out=Y[i]) for i in range(nc)]
                res = bench(fns, min_calls=nc, budget_us=8000)
                t = res["time_us"] * 1e-6
                sink.row(dict(op=op, M=M, hidden=h, dtype="bf16", time_us=res["time_us"],
                              p10_us=res["p10_us"], p90_us=res["p90_us"], bytes=per,
                              gbps=per / t / 1e9, frac_hbm=per / t / HBM_BW, copies=nc,
                              calls=res["calls"], samples=res["samples"], method=res["method"],
                              impl="torch" if op == "torch_add" else "triton"))
                del fns
            except Exception as ex:  # noqa: BLE001
                log(f"  elementwise {op} h={h} M={M} failed: {repr(ex)[:300]}")
        log(f"  elementwise {op:12s} h={h:6d} {time.time() - t_op:5.1f}s (rows {sink.n})")
    sink.close()


# ----------------------------------------------------------------------------------------------
# attention
# ----------------------------------------------------------------------------------------------

def _unwrap(y):
    return y[0] if isinstance(y, (tuple, list)) else y


def fa3(q, k, v, causal, descale=None, num_splits=1):
    """FlashAttention-3 forward through the raw op (layout (B, S, H, D); GQA native;
    causal is bottom-right aligned when S_q < S_k). num_splits=0 lets FA3 choose split-KV."""
    kw = {}
    if descale is not None:
        kw = dict(q_descale=descale, k_descale=descale, v_descale=descale)
    return torch.ops.fa3_fwd.fwd(q, k, v, softmax_scale=q.shape[-1] ** -0.5, is_causal=causal,
                                 num_splits=num_splits, **kw)[0]


def attn_fns(impl, dtype, B, sq, skv, hq, hkv, hd, causal_br, cap=64, splits=1):
    """Build rotating callables for one attention case.

    causal_br: causal mask aligned bottom-right (sq <= skv); sq == skv is ordinary causal.
    Returns (fns, kv_expanded, copies).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    per = 2 * B * (sq * hq + 2 * skv * hkv) * hd
    nc = n_copies(per, cap=cap)
    expanded = False
    if impl.startswith("sdpa"):
        be = SDPBackend.FLASH_ATTENTION if impl == "sdpa_flash" else SDPBackend.CUDNN_ATTENTION
        Q = randn((nc, B, hq, sq, hd))
        K = randn((nc, B, hkv, skv, hd))
        V = randn((nc, B, hkv, skv, hd))
        mask = None
        if causal_br and sq != skv:
            from torch.nn.attention.bias import causal_lower_right
            mask = causal_lower_right(sq, skv)
        is_causal = causal_br and sq == skv

        def mk(i):
            def f():
                with sdpa_kernel(be):
                    return F.scaled_dot_product_attention(Q[i], K[i], V[i], attn_mask=mask,
                                                          is_causal=is_causal, enable_gqa=True)
            return f
        fns = [mk(i) for i in range(nc)]
        try:
            fns[0]()
            _sync()
        except Exception as ex:  # noqa: BLE001
            log(f"    {impl} GQA failed ({repr(ex)[:120]}); expanding KV")
            expanded = True
            K = K.repeat_interleave(hq // hkv, 2)
            V = V.repeat_interleave(hq // hkv, 2)

            def mk2(i):
                def f():
                    with sdpa_kernel(be):
                        return F.scaled_dot_product_attention(Q[i], K[i], V[i], attn_mask=mask,
                                                              is_causal=is_causal)
                return f
            fns = [mk2(i) for i in range(nc)]
        return fns, expanded, nc
    # FA3: (B, S, H, D) layout
    if FA3 is None:
        raise RuntimeError("FA3 unavailable")
    dt = torch.float8_e4m3fn if dtype == "fp8" else torch.bfloat16
    Q = randn((nc, B, sq, hq, hd)).to(dt)
    K = randn((nc, B, skv, hkv, hd)).to(dt)
    V = randn((nc, B, skv, hkv, hd)).to(dt)
    ds = torch.ones(B, hkv, device=DEV) if dtype == "fp8" else None
    if impl == "fa3_decode":  # decode: split-KV heuristic as in flash_attn_with_kvcache
        fns = [lambda i=i: fa3(Q[i], K[i], V[i], True, ds, num_splits=0) for i in range(nc)]
    else:
        fns = [lambda i=i: fa3(Q[i], K[i], V[i], causal_br, ds, num_splits=splits)
               for i in range(nc)]
    return fns, expanded, nc


def head_configs():
    cfg = []
    for tp in (1, 2, 4, 8):
        cfg.append((64 // tp, max(1, 8 // tp)))
    for tp in (1, 2, 4, 8):
        cfg.append((32 // tp, max(1, 8 // tp)))
    return cfg


def attn_impls(args, fp8=True):
    imp = [("sdpa_flash", "bf16"), ("sdpa_cudnn", "bf16")]
    if FA3 is not None:
        imp += [("fa3", "bf16")] + ([("fa3", "fp8")] if fp8 else [])
    if args.attn_impls:
        imp = [x for x in imp if x[0] in args.attn_impls]
    return imp


def section_prefill(out, args, mon):
    if FA3 is None:
        try_fa3()
    sink = Sink(os.path.join(out, "attn_prefill.csv"))
    bud = Budget(args.budget.get("prefill", 90))
    hd = 128
    slist = [128, 256, 512, 1024, 2048, 4096, 8192, 16384] if not SMOKE else [32, 64]
    cases = []
    for hq, hkv in head_configs():
        for s in slist:
            for B in (1, 4, 16):
                if B > 1 and B * s > 32768:
                    continue
                cases.append((hq, hkv, s, B))
    for impl, dt in attn_impls(args):
        t_i = time.time()
        for hq, hkv, s, B in cases:
            if SMOKE and (impl != "sdpa_flash" or B > 1):
                continue
            if not bud.ok():
                break
            try:
                fns, expanded, nc = attn_fns(impl, dt, B, s, s, hq, hkv, hd, True)
                res = bench(fns, min_calls=1, budget_us=12000)
                flops = 2 * B * s * s * hq * hd  # causal: 4*s^2*H*hd/2
                t = res["time_us"] * 1e-6
                peak = PEAK_FP8 if dt == "fp8" else PEAK_BF16
                sink.row(dict(impl=impl, dtype=dt, batch=B, seq=s, q_heads=hq, kv_heads=hkv,
                              head_dim=hd, kv_expanded=int(expanded), time_us=res["time_us"],
                              p10_us=res["p10_us"], p90_us=res["p90_us"], flops=flops,
                              tflops=flops / t / 1e12, frac_peak=flops / t / peak,
                              frac_bf16_989=flops / t / PEAK_BF16, copies=nc,
                              calls=res["calls"], samples=res["samples"], method=res["method"]))
                del fns
            except Exception as ex:  # noqa: BLE001
                log(f"  prefill {impl} {dt} hq={hq} hkv={hkv} s={s} B={B} failed: {repr(ex)[:200]}")
        log(f"  prefill {impl} {dt}: {time.time() - t_i:5.1f}s (rows {sink.n})")
    if bud.skipped:
        log(f"  prefill: budget exhausted, {bud.skipped} cases skipped")
    sink.close()


def section_chunked(out, args, mon):
    if FA3 is None:
        try_fa3()
    sink = Sink(os.path.join(out, "attn_chunked.csv"))
    bud = Budget(args.budget.get("chunked", 40))
    hd = 128
    cases = []
    for hq, hkv in [(64, 8), (8, 1), (32, 8)]:
        for c in (256, 512, 1024, 2048):
            for p in (0, 2048, 8192, 16384):
                cases.append((hq, hkv, c, p))
    if SMOKE:
        cases = [(8, 2, 16, 32)]
    imps = [x for x in attn_impls(args) if x[0] != "sdpa_cudnn"]
    for impl, dt in imps:
        t_i = time.time()
        for hq, hkv, c, p in cases:
            if not bud.ok():
                break
            try:
                fns, expanded, nc = attn_fns(impl, dt, 1, c, p + c, hq, hkv, hd, True,
                                             splits=args.chunk_splits)
                res = bench(fns, budget_us=12000)
                flops = 2 * hq * hd * ((p + c) ** 2 - p ** 2)
                t = res["time_us"] * 1e-6
                peak = PEAK_FP8 if dt == "fp8" else PEAK_BF16
                sink.row(dict(impl=impl, dtype=dt, num_splits=args.chunk_splits
                              if impl == "fa3" else "", batch=1, chunk=c, prefix=p, q_heads=hq,
                              kv_heads=hkv, head_dim=hd, kv_expanded=int(expanded),
                              time_us=res["time_us"], p10_us=res["p10_us"], p90_us=res["p90_us"],
                              flops=flops, tflops=flops / t / 1e12, frac_peak=flops / t / peak,
                              frac_bf16_989=flops / t / PEAK_BF16, copies=nc,
                              calls=res["calls"], samples=res["samples"], method=res["method"]))
                del fns
            except Exception as ex:  # noqa: BLE001
                log(f"  chunked {impl} {dt} hq={hq} c={c} p={p} failed: {repr(ex)[:200]}")
        log(f"  chunked {impl} {dt}: {time.time() - t_i:5.1f}s (rows {sink.n})")
    sink.close()


def section_decode(out, args, mon):
    if FA3 is None:
        try_fa3()
    sink = Sink(os.path.join(out, "attn_decode.csv"))
    bud = Budget(args.budget.get("decode", 45))
    hd = 128
    imps = [("sdpa_flash", "bf16")]
    if FA3 is not None:
        imps += [("fa3_decode", "bf16"), ("fa3_decode", "fp8")]
    blist = [1, 8, 32, 64, 128, 256] if not SMOKE else [1, 4]
    clist = [512, 2048, 8192] if not SMOKE else [64]
    for impl, dt in imps:
        t_i = time.time()
        for hq, hkv in [(32, 8), (8, 1)]:
            for B in blist:
                for c in clist:
                    if not bud.ok():
                        break
                    try:
                        fns, expanded, nc = attn_fns(impl, dt, B, 1, c, hq, hkv, hd, False,
                                                     cap=MAX_COPIES)
                        res = bench(fns, min_calls=nc, budget_us=8000)
                        bkv = 1 if dt == "fp8" else 2
                        kv_bytes = 2 * B * c * hkv * hd * bkv
                        qo_bytes = B * hq * hd * (bkv + 2)
                        t = res["time_us"] * 1e-6
                        sink.row(dict(impl=impl, kv_dtype=dt, batch=B, ctx=c, q_heads=hq,
                                      kv_heads=hkv, head_dim=hd, kv_expanded=int(expanded),
                                      time_us=res["time_us"], p10_us=res["p10_us"],
                                      p90_us=res["p90_us"], kv_bytes=kv_bytes,
                                      bytes=kv_bytes + qo_bytes,
                                      gbps=(kv_bytes + qo_bytes) / t / 1e9,
                                      frac_hbm=(kv_bytes + qo_bytes) / t / HBM_BW,
                                      flops=4 * B * c * hq * hd, copies=nc, calls=res["calls"],
                                      samples=res["samples"], method=res["method"]))
                        del fns
                    except Exception as ex:  # noqa: BLE001
                        log(f"  decode {impl} {dt} hq={hq} B={B} c={c} failed: {repr(ex)[:200]}")
        log(f"  decode {impl} {dt}: {time.time() - t_i:5.1f}s (rows {sink.n})")
    sink.close()


# ----------------------------------------------------------------------------------------------
# MoE grouped GEMM
# ----------------------------------------------------------------------------------------------

def routing(T, E, k, gen):
    """Each of T tokens picks k distinct experts uniformly at random; returns counts (E,)."""
    sc = torch.rand(T, E, generator=gen)
    idx = sc.topk(k, dim=1).indices.reshape(-1)
    return torch.bincount(idx, minlength=E)


def section_moe(out, args, mon):
    sink = Sink(os.path.join(out, args.moe_csv))
    bud = Budget(args.budget.get("moe", 45))
    gen = torch.Generator().manual_seed(1234)
    tlist = [1, 4, 16, 64, 256, 1024, 4096, 16384] if not SMOKE else [1, 16]
    R = 4  # routings rotated per case
    models = dict(MOE_MODELS) if args.moe_set in ("base", "all") else {}
    if args.moe_set in ("sharded", "all"):
        models.update(MOE_SHARDED)
    for name, m in models.items():
        h, f, E_all, k = m["hidden"], m["ffn"], m["experts"], m["topk"]
        E = m.get("local", E_all)
        if SMOKE:
            h, f = 64, 32
        t_m = time.time()
        W1 = randn((E, 2 * f, h), scale=0.02)   # gate+up, stored (out, in) per expert
        W2 = randn((E, h, f), scale=0.02)       # down
        variants = [("grouped_mm", "bf16")]
        if hasattr(torch, "_scaled_grouped_mm") and not SMOKE:
            variants.append(("scaled_grouped_mm", "fp8_rowwise"))
        w8 = {}
        dead = set()
        for T in tlist:
            if not bud.ok():
                break
            counts = [routing(T, E_all, k, gen)[:E] for _ in range(R)]
            if any(int(c.sum()) == 0 for c in counts):
                continue  # expert parallel: no token reached a local expert
            rows_r = [int(c.sum()) for c in counts]
            rows = sum(rows_r) / R
            for impl, dt in variants:
                for gemm in ("gate_up", "down"):
                    if impl in dead:
                        continue
                    try:
                        W = W1 if gemm == "gate_up" else W2
                        n, kk = W.shape[1], W.shape[2]
                        xs = [randn((rr, kk)) for rr in rows_r]
                        offs = [torch.cumsum(c, 0).to(torch.int32).to(DEV) for c in counts]
                        if dt == "bf16":
                            Wt = W.transpose(1, 2)
                            fns = [lambda i=i: torch._grouped_mm(xs[i], Wt, offs=offs[i],
                                                                 out_dtype=torch.bfloat16)
                                   for i in range(R)]
                            bw = 2
                        else:
                            if gemm not in w8:
                                w8[gemm] = W.to(torch.float8_e4m3fn)
                            Wt = w8[gemm].transpose(1, 2)
                            x8 = [x.to(torch.float8_e4m3fn) for x in xs]
                            sa = [torch.ones(rr, device=DEV) for rr in rows_r]
                            sb = torch.ones(E, n, device=DEV)
                            fns = [lambda i=i: torch._scaled_grouped_mm(
                                x8[i], Wt, sa[i], sb, offs=offs[i], out_dtype=torch.bfloat16,
                                use_fast_accum=True) for i in range(R)]
                            bw = 1
                        res = bench(fns, budget_us=10000)
                        touched = [int((c > 0).sum()) for c in counts]
                        mx = [int(c.max()) for c in counts]
                        tch = sum(touched) / R
                        wbytes = tch * n * kk * bw
                        abytes = rows * kk * bw + rows * n * 2
                        flops = 2 * rows * n * kk
                        t = res["time_us"] * 1e-6
                        peak = PEAK_FP8 if bw == 1 else PEAK_BF16
                        sink.row(dict(model=name, hidden=h, expert_ffn=f, experts=E_all,
                                      local_experts=E, topk=k,
                                      tokens=T, routed_rows=rows, gemm=gemm, impl=impl, dtype=dt,
                                      N=n, K=kk, experts_touched=tch,
                                      max_tokens_per_expert=sum(mx) / R,
                                      mean_tokens_per_touched=rows / tch,
                                      time_us=res["time_us"], p10_us=res["p10_us"],
                                      p90_us=res["p90_us"], flops=flops,
                                      weight_bytes_read=wbytes, act_bytes=abytes,
                                      tflops=flops / t / 1e12,
                                      gbps=(wbytes + abytes) / t / 1e9,
                                      frac_peak=flops / t / peak,
                                      frac_hbm=(wbytes + abytes) / t / HBM_BW,
                                      calls=res["calls"], samples=res["samples"],
                                      method=res["method"]))
                        del fns
                    except Exception as ex:  # noqa: BLE001
                        log(f"  moe {name} {impl} {gemm} T={T} failed: {repr(ex)[:300]}")
                        if impl != "grouped_mm":
                            dead.add(impl)
        del W1, W2, w8
        if DEV == "cuda":
            torch.cuda.empty_cache()
        log(f"  moe {name}: {time.time() - t_m:5.1f}s (rows {sink.n})")
    sink.close()


# ----------------------------------------------------------------------------------------------
# power
# ----------------------------------------------------------------------------------------------

def step_kernels_70b_tp8(M, attn, Wl, pools):
    """Callables for one forward step of 80 Llama-3.1-70B layers with TP8 shard shapes on ONE GPU
    (no all-reduce): rmsnorm, QKV, attention (FA3), O, add+rmsnorm, gate_up, silu*mul, down.
    attn: 'decode' (B=M sequences, context 2048) or 'prefill' (one sequence of M tokens).
    Inputs of each op are fixed random tensors (data flow is not chained; shapes are)."""
    h, hq, hkv, hd = 8192, 8, 1, 128
    x = randn((M, h))
    wn = randn((h,))
    y, res_out = torch.empty_like(x), torch.empty_like(x)
    xr = randn((M, h))
    a_o = randn((M, hq * hd))
    gu = randn((M, 2 * 3584))
    act = torch.empty((M, 3584), dtype=torch.bfloat16, device=DEV)
    if attn == "decode":
        q = randn((M, 1, hq, hd))
    else:
        q = randn((1, M, hq, hd))
        kq = randn((1, M, hkv, hd))
        vq = randn((1, M, hkv, hd))
    fns = []
    for li, (wqkv, wo, wgu, wd) in enumerate(Wl):
        fns.append(lambda: rmsnorm(x, wn, y))
        fns.append(lambda w=wqkv: F.linear(y, w))
        if attn == "decode":
            K, V = pools[li]
            fns.append(lambda K=K, V=V: fa3(q, K, V, True, num_splits=0))
        else:
            fns.append(lambda: fa3(q, kq, vq, True))
        fns.append(lambda w=wo: F.linear(a_o, w))
        fns.append(lambda: add_rmsnorm(x, xr, wn, y, res_out))
        fns.append(lambda w=wgu: F.linear(y, w))
        fns.append(lambda: silu_mul(gu, act))
        fns.append(lambda w=wd: F.linear(act, w))
    return fns


def section_power(out, args, mon):
    if DEV != "cuda" or mon.nvml is None:
        log("  power: needs CUDA + NVML; skipped")
        return
    p = mon.nvml
    h = mon.h
    sink = Sink(os.path.join(out, "power.csv"))
    samp = Sink(os.path.join(out, "power_samples.csv"))
    try:
        limit = p.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3
    except Exception:  # noqa: BLE001
        limit = float("nan")

    def graph_of(fns, reps):
        for f in fns:
            f()
        _sync()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for r in range(reps):
                fns[r % len(fns)]()
        g.replay()
        _sync()
        return g

    # (a) compute: 8192^3 bf16 GEMMs; fp8 version
    n = 8192
    if args.power_only_steps:
        n = 256  # the compute/memory phases are skipped; keep their setup cheap
    xs = [randn((n, n)) for _ in range(2)]
    ws = [randn((n, n)) for _ in range(2)]
    g_bf16 = graph_of([lambda i=i: torch.mm(xs[i], ws[i].t()) for i in range(2)], 20)
    x8 = [x.to(torch.float8_e4m3fn) for x in xs]
    w8 = [w.to(torch.float8_e4m3fn) for w in ws]
    one = torch.ones((), device=DEV)
    g_fp8 = graph_of([lambda i=i: torch._scaled_mm(x8[i], w8[i].t(), one, one,
                                                   out_dtype=torch.bfloat16, use_fast_accum=True)
                      for i in range(2)], 40)
    # (b) memory-bound: M=8 GEMMs over 70B TP1 layer shapes, 6 layers of distinct weights
    m70 = MODELS["llama3.1-70b"]
    shapes = linear_shapes(m70, 1)
    Ws = [[randn((nn, kk), scale=0.02) for (_, nn, kk) in shapes]
          for _ in range(1 if args.power_only_steps else 6)]
    xk = {kk: randn((8, kk)) for (_, _, kk) in shapes}
    dec_fns = []
    for L in Ws:
        for (lay, nn, kk), w in zip(shapes, L):
            dec_fns.append(lambda w=w, kk=kk: F.linear(xk[kk], w))
    g_dec = graph_of(dec_fns, len(dec_fns))
    layer_bytes = sum(nn * kk * 2 for (_, nn, kk) in shapes)
    del Ws
    graphs, step_rows = [], []
    if args.power_steps and FA3 is None:
        try_fa3()
    if args.power_steps and FA3 is not None:
        # (c) whole decode / prefill steps of 80 layers with Llama-3.1-70B TP8 shard shapes
        sh8 = linear_shapes(m70, 8)
        Wl = [tuple(randn((nn, kk), scale=0.02) for (_, nn, kk) in sh8) for _ in range(80)]
        ctx = 2048
        steps = []
        for B in args.step_batches:
            pools = [(randn((B, ctx, 1, 128)), randn((B, ctx, 1, 128))) for _ in range(80)]
            f_dec = step_kernels_70b_tp8(B, "decode", Wl, pools)
            steps.append((f"decode_step_70b_tp8_b{B}_c{ctx}", graph_of(f_dec, len(f_dec)),
                          len(f_dec)))
        if not args.no_prefill_step:
            f_pre = step_kernels_70b_tp8(4096, "prefill", Wl, None)
            steps.append(("prefill_step_70b_tp8_s4096", graph_of(f_pre, len(f_pre)), len(f_pre)))
        # time one replay of each step (also a check of kernel additivity against the sweeps)
        for name, g, nk in steps:
            ts = []
            for _ in range(5):
                s0, e0 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s0.record()
                g.replay()
                e0.record()
                _sync()
                ts.append(s0.elapsed_time(e0) * 1e3)
            log(f"  step {name}: {nk} kernels, graph replay median {_pct(ts, .5):.1f} us "
                f"(p10 {_pct(ts, .1):.1f}, p90 {_pct(ts, .9):.1f})")
            graphs.append((name, g, _pct(ts, .5)))
            step_rows.append(dict(phase=f"steptime:{name}", duration_s=_pct(ts, .5) * 1e-6,
                                  n_samples=len(ts),
                                  work_unit=f"{nk} kernels; duration_s = one step"))

    def phase(name, g, work_per_replay, dur, unit=""):
        mon.section = f"power:{name}"
        s0 = mon.read()
        t0 = time.time()
        reps, rows, marks = 0, [], []
        next_s = t0
        while time.time() - t0 < dur:
            if g is not None:
                g.replay()
                _sync()
                reps += 1
            else:
                time.sleep(0.05)
            now = time.time()
            if now >= next_s:
                r = mon.read()
                r["phase"] = name
                r["replays"] = reps
                rows.append(r)
                marks.append((now - t0, reps))
                samp.row(r)
                next_s += 0.1
        t1 = time.time()
        s1 = mon.read()
        e = (s1.get("energy_j", 0) - s0.get("energy_j", 0))
        pw = [r["power_w"] for r in rows if "power_w" in r]
        sm = [r["sm_mhz"] for r in rows if "sm_mhz" in r]
        mem = [r["mem_mhz"] for r in rows if "mem_mhz" in r]
        tail = pw[len(pw) // 3:]  # last two thirds: past the ramp
        first = [m for m in marks if m[0] <= 1.0]
        half = [m for m in marks if m[0] >= (t1 - t0) / 2]
        wr1 = (first[-1][1] * work_per_replay / first[-1][0]) if first and first[-1][1] else ""
        wrh = ((reps - half[0][1]) * work_per_replay / ((t1 - t0) - half[0][0])
               if half and reps else "")
        d = dict(phase=name, duration_s=t1 - t0, energy_j=e,
                 mean_power_w_energy=e / (t1 - t0) if e else "",
                 mean_power_w_samples=sum(pw) / len(pw) if pw else "",
                 mean_power_w_last2of3=sum(tail) / len(tail) if tail else "",
                 max_power_w=max(pw) if pw else "", p50_power_w=_pct(pw, .5) if pw else "",
                 mean_sm_mhz=sum(sm) / len(sm) if sm else "",
                 min_sm_mhz=min(sm) if sm else "",
                 mean_mem_mhz=sum(mem) / len(mem) if mem else "", n_samples=len(pw),
                 enforced_power_limit_w=limit, replays=reps,
                 work_rate=(reps * work_per_replay / (t1 - t0)) if reps else "",
                 work_rate_first1s=wr1, work_rate_second_half=wrh, work_unit=unit,
                 throttle_last=s1.get("throttle", ""))
        sink.row(d)  # the first row fixes the CSV header: every row carries all columns
        log(f"  power {name:30s} {d['mean_power_w_energy'] or d['mean_power_w_samples']!s:.6} W "
            f"(samples {d['mean_power_w_samples']!s:.6}, max {d['max_power_w']!s:.5}) "
            f"sm {d['mean_sm_mhz']!s:.6} MHz work {d['work_rate']!s:.6} "
            f"(1st s {wr1!s:.6}, 2nd half {wrh!s:.6}) {unit}")

    ps = args.power_s
    phase("idle_before", None, 0, 3.0)
    for r in step_rows:  # after a full row fixed the header (extra keys would be dropped)
        sink.row({k: r.get(k, "") for k in sink.w.fieldnames})
    if not args.power_only_steps:
        phase("compute_bf16_gemm", g_bf16, 20 * 2 * n**3 / 1e12, ps, "TFLOP/s")
        phase("memory_decode_gemm_m8", g_dec, 6 * layer_bytes / 1e12, ps, "TB/s weights")
    for name, g, t_us in graphs:
        phase(name, g, 1.0, ps, "steps/s")
    if not args.power_only_steps:
        phase("compute_fp8_gemm", g_fp8, 40 * 2 * n**3 / 1e12, ps / 2, "TFLOP/s")
    del g_bf16, g_fp8, g_dec, xs, ws, x8, w8, graphs
    torch.cuda.empty_cache()
    phase("idle", None, 0, args.idle_s)
    mon.section = "power:done"
    sink.close()
    samp.close()


# ----------------------------------------------------------------------------------------------

def parse_budget(s):
    d = {}
    if s:
        for part in s.split(","):
            k, v = part.split("=")
            d[k.strip()] = float(v)
    return d


def main():
    global DEV, SMOKE, LOG
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
    SMOKE = args.smoke
    DEV = "cpu" if SMOKE or not torch.cuda.is_available() else "cuda"
    if DEV == "cpu" and not SMOKE:
        sys.exit("no CUDA device; use --smoke for a CPU logic check")
    os.makedirs(args.out, exist_ok=True)
    LOG = open(os.path.join(args.out, "log.txt"), "a")
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
                LOG.write(traceback.format_exc())
                LOG.flush()
                traceback.print_exc()
                done.append((sec, "FAILED", time.time() - t))
            if DEV == "cuda":
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
