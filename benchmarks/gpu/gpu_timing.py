"""Timing machinery of the GPU microbenchmarks (benchmarks/gpu/kernels.py): run state, log, CSV sink,
per-section budget, the CUDA-graph timer `bench`, rotating operand pools and the NVML monitor.

Method (see profiles/measured/h200-kernels/README.md):
  * random (never zero) inputs; every case is warmed up, then captured into a CUDA graph of
    `calls` back-to-back launches (as an engine with CUDA graphs would run them) and the graph is
    replayed `samples` times, each replay timed with CUDA events; time_us = median(replay)/calls,
    p10_us/p90_us the 10th/90th percentiles. Kernels longer than 4 ms are timed eagerly.
  * memory-bound operands rotate through copies (a pool) whose total exceeds ~4x the 60 MB L2,
    so weights/KV are re-read from HBM as in a real layer-by-layer step.
  * CSV rows are flushed as they are measured, so a killed run still leaves data.

DEV, SMOKE and LOG are set by kernels.py's main(); other modules read them as gpu_timing.DEV etc.
"""
from __future__ import annotations

import csv
import math
import subprocess
import threading
import time

import torch

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
