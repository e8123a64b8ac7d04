"""Section env of the GPU microbenchmarks: torch / CUDA / driver / GPU facts, API availability
(written to env.json), with small correctness probes of the APIs the other sections use."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import gpu_attention as ga
import gpu_timing as gt
from gpu_attention import _unwrap, fa3, try_fa3
from gpu_elementwise import rmsnorm
from gpu_timing import log


def section_env(out, args, mon):
    env = dict(date_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               python=sys.version, platform=platform.platform(), torch=torch.__version__,
               cuda=torch.version.cuda, smoke=gt.SMOKE, argv=sys.argv)
    try:
        import triton
        env["triton"] = triton.__version__
    except Exception as ex:  # noqa: BLE001
        env["triton"] = repr(ex)
    if gt.DEV == "cuda":
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
    if gt.DEV == "cuda":
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
    x = torch.randn(64, 256, device=gt.DEV)
    w = torch.randn(512, 256, device=gt.DEV)
    ref = x @ w.t()
    try:
        y = F.linear(x.bfloat16(), w.bfloat16())
        r["bf16_linear_relerr"] = _relerr(y, ref)
    except Exception as ex:  # noqa: BLE001
        r["bf16_linear"] = repr(ex)[:200]
    x8, w8 = x.to(torch.float8_e4m3fn), w.to(torch.float8_e4m3fn)
    ref8 = x8.float() @ w8.float().t()
    one = torch.ones((), device=gt.DEV)
    for fast in (True, False):
        try:
            y = torch._scaled_mm(x8, w8.t(), one, one, out_dtype=torch.bfloat16,
                                 use_fast_accum=fast)
            r[f"fp8_tensor_fast{int(fast)}_relerr"] = _relerr(y, ref8)
        except Exception as ex:  # noqa: BLE001
            r[f"fp8_tensor_fast{int(fast)}"] = repr(ex)[:200]
    try:
        y = torch._scaled_mm(x8, w8.t(), torch.ones(64, 1, device=gt.DEV), torch.ones(1, 512, device=gt.DEV),
                             out_dtype=torch.bfloat16, use_fast_accum=True)
        r["fp8_rowwise_relerr"] = _relerr(y, ref8)
    except Exception as ex:  # noqa: BLE001
        r["fp8_rowwise"] = repr(ex)[:200]
    try:
        xs = torch.randn(40, 256, device=gt.DEV, dtype=torch.bfloat16)
        W = torch.randn(4, 128, 256, device=gt.DEV, dtype=torch.bfloat16)
        offs = torch.tensor([3, 3, 20, 40], device=gt.DEV, dtype=torch.int32)
        y = torch._grouped_mm(xs, W.transpose(1, 2), offs=offs, out_dtype=torch.bfloat16)
        bounds = [0, 3, 3, 20, 40]
        ref = torch.cat([xs[bounds[i]:bounds[i + 1]].float() @ W[i].float().t() for i in range(4)])
        r["grouped_mm_relerr"] = _relerr(y, ref)
    except Exception as ex:  # noqa: BLE001
        r["grouped_mm"] = repr(ex)[:200]
    try:
        import triton  # noqa: F401
        xs = torch.randn(8, 5120, device=gt.DEV, dtype=torch.bfloat16)
        wn = torch.randn(5120, device=gt.DEV, dtype=torch.bfloat16)
        y = torch.empty_like(xs)
        rmsnorm(xs, wn, y)
        xf = xs.float()
        ref = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6) * wn.float()
        r["triton_rmsnorm_relerr"] = _relerr(y, ref)
    except Exception as ex:  # noqa: BLE001
        r["triton_rmsnorm"] = repr(ex)[:200]
    # attention probes: (B, H, S, D) layout for SDPA
    from torch.nn.attention import SDPBackend, sdpa_kernel
    q = torch.randn(2, 8, 64, 128, device=gt.DEV, dtype=torch.bfloat16)
    k = torch.randn(2, 2, 96, 128, device=gt.DEV, dtype=torch.bfloat16)
    v = torch.randn(2, 2, 96, 128, device=gt.DEV, dtype=torch.bfloat16)
    ke, ve = k.repeat_interleave(4, 1), v.repeat_interleave(4, 1)
    mask = torch.ones(64, 96, dtype=torch.bool, device=gt.DEV).tril(96 - 64)  # bottom-right causal
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
    if ga.FA3 is not None:
        try:
            qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
            y = fa3(qt, kt, vt, True)
            r["fa3_bf16_lower_right_relerr"] = _relerr(y.transpose(1, 2), ref_br)
            y = _unwrap(ga.FA3.flash_attn_func(qt, kt, vt, causal=True))
            r["fa3_bf16_via_interface_relerr"] = _relerr(y.transpose(1, 2), ref_br)
            q8, k8, v8 = (t.to(torch.float8_e4m3fn) for t in (qt, kt, vt))
            ds = torch.ones(2, 2, device=gt.DEV)
            y = fa3(q8, k8, v8, True, ds)
            ref8 = F.scaled_dot_product_attention(
                q8.float().transpose(1, 2), k8.float().transpose(1, 2).repeat_interleave(4, 1),
                v8.float().transpose(1, 2).repeat_interleave(4, 1), attn_mask=mask)
            r["fa3_fp8_lower_right_relerr"] = _relerr(y.float().transpose(1, 2), ref8)
            qd = torch.randn(2, 1, 8, 128, device=gt.DEV, dtype=torch.bfloat16)
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
