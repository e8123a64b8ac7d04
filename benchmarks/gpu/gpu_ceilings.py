"""Section ceilings of the GPU microbenchmarks: copy and read bandwidth, 8192^3 bf16 and fp8 GEMM rate."""
from __future__ import annotations

import os

import torch

import gpu_timing as gt
from gpu_elementwise import copy_kernel, read_kernel
from gpu_specs import HBM_BW, PEAK_BF16, PEAK_FP8
from gpu_timing import Sink, bench, log, randn


def section_ceilings(out, args, mon):
    sink = Sink(os.path.join(out, "ceilings.csv"))
    gib = 2**30 if not gt.SMOKE else 2**20

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
    a, b = randn((nel,)), torch.empty(nel, dtype=torch.bfloat16, device=gt.DEV)
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
    big = torch.cat([a, b.copy_(a)]) if not gt.SMOKE else a
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
    torch.cuda.empty_cache() if gt.DEV == "cuda" else None
    # GEMMs
    for n in ([8192, 16384] if not gt.SMOKE else [128]):
        flops = 2 * n**3
        xs = [randn((n, n)) for _ in range(2)]
        ws = [randn((n, n)) for _ in range(2)]
        res = bench([lambda i=i: torch.mm(xs[i], ws[i].t()) for i in range(2)],
                    budget_us=200000, min_samples=5, max_samples=10)
        emit("gemm", "bf16", f"{n}x{n}x{n}", res, flops=flops)
        x8 = [x.to(torch.float8_e4m3fn) for x in xs]
        w8 = [w.to(torch.float8_e4m3fn) for w in ws]
        one = torch.ones((), device=gt.DEV)
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
            sa, sb = torch.ones(n, 1, device=gt.DEV), torch.ones(1, n, device=gt.DEV)
            res = bench([lambda i=i: torch._scaled_mm(x8[i], w8[i].t(), sa, sb,
                                                      out_dtype=torch.bfloat16,
                                                      use_fast_accum=True) for i in range(2)],
                        budget_us=200000, min_samples=5, max_samples=10)
            emit("gemm", "fp8_rowwise", f"{n}x{n}x{n}", res, flops=flops)
        except Exception as ex:  # noqa: BLE001
            log("  fp8 rowwise gemm failed", repr(ex)[:200])
        del xs, ws, x8, w8
    sink.close()
