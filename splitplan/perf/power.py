"""GPU power per phase from the model's own utilization, and the slowdown a power cap causes.

Power (performance-model.md §4): a busy GPU draws
    P = P_idle + (TDP - P_idle) * min(1, busy_floor + a_c * U_c + a_m * U_m)
where U_c and U_m are the achieved fractions of peak FLOP/s and HBM bandwidth, computed from the
operator counts and the predicted step time. The spec weights (busy_floor 0.3, a_c 1.1, a_m 0.6) are
engineering estimates; calibration fits them where a profile has measured power (power_fit.py: the
A100 calibration, 3.7% MAPE on SplitwiseSim's measured request power).

Power cap: when a phase's demand exceeds the cap the clocks drop; the compute-bound part of the time
stretches by ((P_demand - P_idle) / (P_cap - P_idle))^k, memory-bound time barely changes (HBM does
not slow with SM clocks). The analytic model applies this to the compute time of every operator with
P_demand = TDP (what an unthrottled compute-bound kernel draws), so memory-bound decode stays ~1.0x
while prefill slows; k is calibrated so DGX-H100 at a 50% cap gives the paper's 1.30x prompt slowdown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from splitplan.errors import SplitplanError
from splitplan.perf import counts
from splitplan.perf.base import Instance
from splitplan.perf.params import StackParams

if TYPE_CHECKING:
    from splitplan.perf.base import PerfModel

PHASES = ("prefill", "decode", "mixed", "idle")
DEFAULT_PROMPT_TOKENS = 1024  # per prompt, when the caller gives no token count
DEFAULT_CONTEXT_TOKENS = 1024  # per decoding sequence, when the caller gives no token count


def cap_watts(instance: Instance) -> float:
    return instance.machine.power_cap_fraction * instance.gpu.tdp_w


def cap_stretch(instance: Instance, params: StackParams) -> float:
    """Factor on compute-bound time under the machine's power cap (1.0 when uncapped)."""
    gpu = instance.gpu
    cap = cap_watts(instance)
    if not instance.machine.is_power_capped or cap >= gpu.tdp_w:
        return 1.0
    if cap <= gpu.idle_w:
        raise SplitplanError(f"power cap {cap:.0f} W is at or below the GPU's idle power {gpu.idle_w:.0f} W",
                             field=f"machine '{instance.machine.name}'.power_cap_fraction")
    return ((gpu.tdp_w - gpu.idle_w) / (cap - gpu.idle_w)) ** params.cap_exponent


def _params_of(perf: PerfModel) -> StackParams:
    return getattr(perf, "params", None) or StackParams()


def _phase_counts(perf: PerfModel, phase: str, batch_size: int, tokens: float):
    """(flops, bytes, time_ms) per GPU of one step of the phase."""
    inst = perf.instance
    b = max(int(batch_size), 1)
    if phase == "prefill":
        total = tokens or DEFAULT_PROMPT_TOKENS * b
        sum_sq = total * total / b
        args = (b, total, sum_sq)
        return (counts.step_flops(inst, *args), counts.step_bytes(inst, *args), perf.prefill_ms(*args))
    if phase == "decode":
        ctx = tokens or DEFAULT_CONTEXT_TOKENS * b
        return (counts.step_flops(inst, 0, 0, 0, b, ctx), counts.step_bytes(inst, 0, 0, 0, b, ctx),
                perf.decode_ms(b, ctx))
    # mixed: one prompt of `tokens` tokens alongside `batch_size` decoding sequences
    prompt = tokens or DEFAULT_PROMPT_TOKENS
    ctx = DEFAULT_CONTEXT_TOKENS * b
    args = (1, prompt, prompt * prompt, b, ctx)
    return (counts.step_flops(inst, *args), counts.step_bytes(inst, *args), perf.mixed_ms(*args))


def utilization(perf: PerfModel, phase: str, batch_size: int = 1, tokens: float = 0) -> tuple[float, float]:
    """(U_c, U_m): achieved fraction of peak FLOP/s and of HBM bandwidth during one step."""
    inst = perf.instance
    flops, nbytes, time_ms = _phase_counts(perf, phase, batch_size, tokens)
    time_ms = float(time_ms)
    peak = inst.gpu.legacy_peak_tflops(inst.dtype) * 1e9
    bw = inst.gpu.hbm_gbps * 1e6
    return min(flops / (peak * time_ms), 1.0), min(nbytes / (bw * time_ms), 1.0)


def phase_power_w(perf: PerfModel, phase: str, batch_size: int = 1, tokens: int = 0) -> float:
    """Watts drawn by the instance's tp GPUs in a phase ("prefill", "decode", "mixed" or "idle").

    `tokens`: prompt tokens of the batch (prefill, mixed) or summed context (decode); 0 means 1024 per
    sequence. The host's own power (machine.idle_kw) is not included: the caller adds it per machine.
    """
    if phase not in PHASES:
        raise SplitplanError(f"unknown phase '{phase}' (valid: {', '.join(PHASES)})", field="phase")
    inst = perf.instance
    gpu = inst.gpu
    if phase == "idle":
        return gpu.idle_w * inst.tp
    p = _params_of(perf)
    u_c, u_m = utilization(perf, phase, batch_size, tokens)
    load = min(1.0, p.busy_floor + p.power_a_c * u_c + p.power_a_m * u_m)
    watts = gpu.idle_w + (gpu.tdp_w - gpu.idle_w) * load
    return min(watts, cap_watts(inst)) * inst.tp


def machine_power_w(perf: PerfModel, busy_instances: dict[str, int] | None = None) -> float:
    """One machine's power: host idle plus each instance's GPUs ({phase: instances in it}, rest idle)."""
    inst = perf.instance
    busy_instances = busy_instances or {}
    used = sum(busy_instances.values())
    if used > inst.per_machine:
        raise SplitplanError(f"{used} busy instances exceed the {inst.per_machine} per machine", field="busy_instances")
    watts = inst.machine.idle_kw * 1000.0
    for phase, count in busy_instances.items():
        watts += count * phase_power_w(perf, phase)
    return watts + (inst.per_machine - used) * phase_power_w(perf, "idle")


def request_energy_j(perf: PerfModel, prompt_tokens: int, output_tokens: int, decode_batch: int = 1) -> float:
    """GPU energy of one request: its prefill alone, then its share of decode steps at `decode_batch`."""
    prefill_j = phase_power_w(perf, "prefill", 1, prompt_tokens) * float(perf.prefill_ms(1, prompt_tokens, prompt_tokens**2)) / 1e3
    ctx = (prompt_tokens + output_tokens / 2.0) * decode_batch
    step_ms = float(perf.decode_ms(decode_batch, ctx))
    decode_j = phase_power_w(perf, "decode", decode_batch, ctx) * step_ms / 1e3 * max(output_tokens - 1, 0) / decode_batch
    return prefill_j + decode_j
