"""Section moe of the GPU microbenchmarks: grouped expert GEMMs (torch._grouped_mm bf16,
torch._scaled_grouped_mm fp8)."""
from __future__ import annotations

import os
import time

import torch

import gpu_timing as gt
from gpu_specs import HBM_BW, MOE_MODELS, MOE_SHARDED, PEAK_BF16, PEAK_FP8
from gpu_timing import Budget, Sink, bench, log, randn


def routing(T, E, k, gen):
    """Each of T tokens picks k distinct experts uniformly at random; returns counts (E,)."""
    sc = torch.rand(T, E, generator=gen)
    idx = sc.topk(k, dim=1).indices.reshape(-1)
    return torch.bincount(idx, minlength=E)


def section_moe(out, args, mon):
    sink = Sink(os.path.join(out, args.moe_csv))
    bud = Budget(args.budget.get("moe", 45))
    gen = torch.Generator().manual_seed(1234)
    tlist = [1, 4, 16, 64, 256, 1024, 4096, 16384] if not gt.SMOKE else [1, 16]
    R = 4  # routings rotated per case
    models = dict(MOE_MODELS) if args.moe_set in ("base", "all") else {}
    if args.moe_set in ("sharded", "all"):
        models.update(MOE_SHARDED)
    for name, m in models.items():
        h, f, E_all, k = m["hidden"], m["ffn"], m["experts"], m["topk"]
        E = m.get("local", E_all)
        if gt.SMOKE:
            h, f = 64, 32
        t_m = time.time()
        W1 = randn((E, 2 * f, h), scale=0.02)   # gate+up, stored (out, in) per expert
        W2 = randn((E, h, f), scale=0.02)       # down
        variants = [("grouped_mm", "bf16")]
        if hasattr(torch, "_scaled_grouped_mm") and not gt.SMOKE:
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
                        offs = [torch.cumsum(c, 0).to(torch.int32).to(gt.DEV) for c in counts]
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
                            sa = [torch.ones(rr, device=gt.DEV) for rr in rows_r]
                            sb = torch.ones(E, n, device=gt.DEV)
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
        if gt.DEV == "cuda":
            torch.cuda.empty_cache()
        log(f"  moe {name}: {time.time() - t_m:5.1f}s (rows {sink.n})")
    sink.close()
