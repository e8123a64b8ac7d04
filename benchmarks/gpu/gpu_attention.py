"""Attention sections of the GPU microbenchmarks:

  prefill      causal prefill attention: SDPA FLASH (FA2), SDPA cuDNN, FlashAttention-3 (bf16/fp8)
  chunked      chunked-prefill attention: c new tokens over p cached + c (bottom-right causal)
  decode       decode attention, one query token per sequence: SDPA FLASH, FA3 bf16 / fp8 KV

FA3 comes from the `fa3-fwd` wheel (FlashAttention-3 forward, Hopper kernels) when importable
(`fa3_fwd_interface`); if not, FA3 rows are skipped and env.json says why. FA3 is set by
try_fa3(); other modules read it as gpu_attention.FA3.
"""
from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F

import gpu_timing as gt
from gpu_specs import HBM_BW, PEAK_BF16, PEAK_FP8
from gpu_timing import MAX_COPIES, Budget, Sink, _sync, bench, log, n_copies, randn

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
    ds = torch.ones(B, hkv, device=gt.DEV) if dtype == "fp8" else None
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
    slist = [128, 256, 512, 1024, 2048, 4096, 8192, 16384] if not gt.SMOKE else [32, 64]
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
            if gt.SMOKE and (impl != "sdpa_flash" or B > 1):
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
    if gt.SMOKE:
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
    blist = [1, 8, 32, 64, 128, 256] if not gt.SMOKE else [1, 4]
    clist = [512, 2048, 8192] if not gt.SMOKE else [64]
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
