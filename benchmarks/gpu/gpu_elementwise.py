"""Section elementwise of the GPU microbenchmarks: Triton RMSNorm / fused add+RMSNorm / SiLU*mul / fp8
quant and a torch add, vs M; also the Triton copy and read kernels of the ceilings section."""
from __future__ import annotations

import os
import time

import torch

import gpu_timing as gt
from gpu_specs import HBM_BW, M_LIST
from gpu_timing import Budget, Sink, bench, log, n_copies, randn


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
    mlist = M_LIST if not gt.SMOKE else [1, 16, 64]
    ops = [("rmsnorm", 4096), ("rmsnorm", 5120), ("rmsnorm", 8192), ("add_rmsnorm", 4096),
           ("add_rmsnorm", 8192), ("silu_mul", 14336), ("silu_mul", 3584), ("fp8_quant", 8192),
           ("torch_add", 8192)]
    if gt.SMOKE:
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
                    X, Y = randn((nc, M, h)), torch.empty((nc, M, h), dtype=torch.bfloat16, device=gt.DEV)
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
                    X, Y = randn((nc, M, 2 * h)), torch.empty((nc, M, h), dtype=torch.bfloat16, device=gt.DEV)
                    fns = [lambda i=i: silu_mul(X[i], Y[i]) for i in range(nc)]
                elif op == "fp8_quant":
                    per = M * h * 3
                    nc = n_copies(per)
                    X = randn((nc, M, h))
                    Y = torch.empty((nc, M, h), dtype=torch.float8_e4m3fn, device=gt.DEV)
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
