"""Section power of the GPU microbenchmarks: NVML power / clocks during a compute-bound, a memory-bound
and an idle phase (and, with --power-steps, whole 80-layer decode / prefill steps)."""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

import gpu_attention as ga
import gpu_timing as gt
from gpu_attention import fa3, try_fa3
from gpu_elementwise import add_rmsnorm, rmsnorm, silu_mul
from gpu_gemm import linear_shapes
from gpu_specs import MODELS
from gpu_timing import Sink, _pct, _sync, log, randn


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
    act = torch.empty((M, 3584), dtype=torch.bfloat16, device=gt.DEV)
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
    if gt.DEV != "cuda" or mon.nvml is None:
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
    one = torch.ones((), device=gt.DEV)
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
    if args.power_steps and ga.FA3 is None:
        try_fa3()
    if args.power_steps and ga.FA3 is not None:
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
