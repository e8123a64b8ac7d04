"""One performance query (library side of `splitplan perf`): time, throughput, KV and power of a step."""

from __future__ import annotations

from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError
from splitplan.perf.base import PerfSettings
from splitplan.perf.build import build_perf_model
from splitplan.perf.power import phase_power_w


def perf_query(model: str, machine: str, tp: int, phase: str, batch: int, prompt_tokens: int, context_tokens: int,
               settings: PerfSettings, catalog: Catalog) -> dict:
    """A flat dict describing one iteration of `phase` (prefill, decode or mixed)."""
    for name, value in (("batch", batch), ("prompt_tokens", prompt_tokens), ("context_tokens", context_tokens)):
        if value < 1:
            raise SplitplanError(f"must be at least 1, got {value}", field=name)
    perf = build_perf_model(model, machine, tp, settings, catalog)
    inst = perf.instance
    _check_kv(perf.kv_capacity_tokens(), phase, batch, prompt_tokens, context_tokens,
              f"{inst.model.name} on {inst.machine.name} at tp={tp}")
    result: dict = {"model": inst.model.name, "machine": inst.machine.name, "gpu": inst.gpu.name, "tp": tp,
                    "phase": phase, "batch": batch}
    if phase == "prefill":
        tokens = batch * prompt_tokens
        time_ms = float(perf.prefill_ms(batch, tokens, batch * prompt_tokens**2))
        result |= {"prompt_tokens": prompt_tokens, "time_ms": time_ms, "prompt_tokens_per_s": tokens / time_ms * 1e3}
        power = phase_power_w(perf, "prefill", batch, tokens)
    elif phase == "decode":
        ctx = batch * context_tokens
        time_ms = float(perf.decode_ms(batch, ctx))
        base, per = perf.decode_coeffs(batch)
        result |= {"context_tokens": context_tokens, "time_ms": time_ms, "output_tokens_per_s": batch / time_ms * 1e3,
                   "decode_base_ms": base, "decode_ms_per_context_token": per}
        power = phase_power_w(perf, "decode", batch, ctx)
    else:
        ctx = batch * context_tokens
        time_ms = float(perf.mixed_ms(1, prompt_tokens, prompt_tokens**2, batch, ctx))
        result |= {"prompt_tokens": prompt_tokens, "context_tokens": context_tokens, "time_ms": time_ms}
        power = phase_power_w(perf, "mixed", batch, prompt_tokens)
    result |= {
        "gpu_power_w": power,
        "machine_power_w_if_all_instances_busy": power * inst.per_machine + inst.machine.idle_kw * 1e3,
        "energy_per_step_j": power * time_ms / 1e3,
        "kv_bytes_per_token": perf.kv_bytes_per_token(),
        "kv_capacity_tokens": perf.kv_capacity_tokens(),
        "provenance": perf.provenance,
    }
    return result


def _check_kv(capacity: int, phase: str, batch: int, prompt_tokens: int, context_tokens: int, where: str) -> None:
    """A step whose tokens do not fit the KV cache cannot run; say so instead of printing a time."""
    if phase == "prefill":
        need, field, what = batch * prompt_tokens, "prompt_tokens", f"{batch} prompt(s) of {prompt_tokens} tokens"
    elif phase == "decode":
        need, field, what = batch * context_tokens, "context_tokens", f"{batch} sequence(s) of {context_tokens} context tokens"
    else:
        need, field, what = (prompt_tokens + batch * context_tokens, "context_tokens",
                             f"a {prompt_tokens}-token prompt plus {batch} sequence(s) of {context_tokens} context tokens")
    if need > capacity:
        raise SplitplanError(f"{what} need {need:,} tokens of KV cache; {where} holds {capacity:,}", field=field)
