"""Engine flags for one pool of a plan: vLLM and SGLang, standalone or as NVIDIA Dynamo workers.

The flags were checked against these sources (read through the project's search tool; see docs/deploy.md):

- vLLM v0.11 (`vllm/engine/arg_utils.py` at commit 99d7eb5, whose deprecations say "removed in v0.12.0"):
  `--tensor-parallel-size`, `--enable-expert-parallel`, `--max-num-seqs`, `--max-num-batched-tokens`,
  `--kv-cache-dtype {auto,fp8,...}`, `--gpu-memory-utilization`, `--quantization`, `--kv-transfer-config`;
  `vllm/config/kv_transfer.py` (kv_connector, kv_role in kv_producer | kv_consumer | kv_both) and
  `docs/features/nixl_connector_usage.md` (NixlConnector, VLLM_NIXL_SIDE_CHANNEL_HOST/PORT, the example
  proxy `tests/v1/kv_connector/nixl_integration/toy_proxy_server.py`).
- SGLang `python/sglang/srt/server_args.py` at commit 001067f (main after 0.5): `--tp-size`, `--ep-size`,
  `--max-running-requests`, `--chunked-prefill-size`, `--mem-fraction-static`, `--kv-cache-dtype
  {auto,fp8_e4m3,...}` (no plain "fp8"), `--enable-mixed-chunk`, `--quantization`, `--disaggregation-mode
  {null,prefill,decode}`, `--disaggregation-transfer-backend {mooncake,nixl,...}`,
  `--disaggregation-bootstrap-port` (default 8998); `docs/advanced_features/pd_disaggregation.md` for the
  router (`python -m sglang_router.launch_router --pd-disaggregation --prefill URL --decode URL`).
- NVIDIA Dynamo: `examples/backends/vllm/deploy/disagg.yaml` (commit 7893f26) and
  `examples/backends/sglang/deploy/disagg.yaml` (Dynamo 0.7.1 images); workers run `python3 -m dynamo.vllm`
  / `python3 -m dynamo.sglang` with the engine's own flags plus `--disaggregation-mode prefill|decode`
  (vLLM workers since ai-dynamo/dynamo PR #6483; older releases spell it `--is-prefill-worker`).
  `components/src/dynamo/vllm/args.py` (commit b6d5e48) accepts an explicit `--kv-transfer-config`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from splitplan.apps.deploy.plan_input import DeployPlan, PoolPlan, kv_is_fp8
from splitplan.errors import SplitplanError
from splitplan.serving.stack import BatchPolicy, KvPolicy, covers

ENGINES = ("vllm", "sglang")
KV_TRANSPORTS = ("nixl", "mooncake")
VLLM_PORT = 8000
SGLANG_PORT = 30000
NIXL_SIDE_CHANNEL_PORT = 5600  # vLLM's default (docs/features/nixl_connector_usage.md)
SGLANG_BOOTSTRAP_PORT = 8998  # server_args.py default
HIGH_MEMORY_FRACTION = 0.95
CHECKED_AGAINST = {  # what each target's flags and fields were read from (also in docs/deploy.md)
    "vllm": "vLLM v0.11: vllm/engine/arg_utils.py @99d7eb5, vllm/config/kv_transfer.py, "
            "docs/features/nixl_connector_usage.md",
    "sglang": "SGLang python/sglang/srt/server_args.py @001067f (main after 0.5), "
              "docs/advanced_features/pd_disaggregation.md",
    "dynamo": "NVIDIA Dynamo examples/backends/{vllm,sglang}/deploy/disagg.yaml (@7893f26; 0.7.1 images), "
              "components/src/dynamo/vllm/args.py @b6d5e48",
    "llm-d": "llm-d-modelservice chart v0.4.1: values.yaml, templates/_helpers.tpl, examples/values-pd.yaml",
}
CHECKED_VERSIONS = {"vllm": "0.11.0"}  # the release whose flags were read (SGLang: a main commit, no release)


@dataclass(frozen=True)
class EngineArgs:
    """One engine instance of a pool: its flags (no program, model or port) and what to know."""

    engine: str
    flags: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)  # environment the instance needs (values may be templates)
    notes: tuple[str, ...] = ()


STYLES = ("serve", "dynamo", "llm-d")  # vllm serve; python3 -m dynamo.vllm; llm-d chart (vllmServe + its sidecar)


def vllm_flags(plan: DeployPlan, pool: PoolPlan, *, style: str = "serve") -> EngineArgs:
    """`vllm serve MODEL` flags, or those of a Dynamo vLLM worker or an llm-d vLLM container (`style`).

    Standalone instances take NixlConnector's explicit producer/consumer roles (the multi-machine example of
    nixl_connector_usage.md); Dynamo and llm-d set kv_both, as their examples do, and route P/D themselves."""
    s = pool.scheduling
    flags = ["--tensor-parallel-size", str(pool.tp)]
    if pool.ep > 1:
        if pool.ep != pool.tp:
            raise SplitplanError(f"vLLM's expert parallelism spans the TP x DP GPUs of an instance: EP {pool.ep} "
                                 f"with TP {pool.tp} (pool {pool.role} {pool.machine}) cannot be expressed",
                                 field="--target")
        flags.append("--enable-expert-parallel")
    flags += ["--max-num-seqs", str(s.max_seqs), "--max-num-batched-tokens", str(s.max_batched_tokens),
              "--kv-cache-dtype", "fp8" if kv_is_fp8(plan) else "auto",
              "--gpu-memory-utilization", f"{pool.gpu_memory_fraction:g}"]
    if plan.quantization:
        flags += ["--quantization", plan.quantization]
    env: dict[str, str] = {}
    if pool.engine_role != "aggregated":
        role = "kv_both" if style != "serve" else {"prefill": "kv_producer", "decode": "kv_consumer"}[pool.engine_role]
        flags += ["--kv-transfer-config", json.dumps({"kv_connector": "NixlConnector", "kv_role": role},
                                                      separators=(",", ":"))]
        if style == "dynamo":
            flags += ["--disaggregation-mode", pool.engine_role]
        elif style == "serve":
            env = {"VLLM_NIXL_SIDE_CHANNEL_HOST": "${HOST_IP}",
                   "VLLM_NIXL_SIDE_CHANNEL_PORT": "${NIXL_PORT}", "UCX_NET_DEVICES": "all"}
    return EngineArgs("vllm", tuple(flags), env, tuple(common_notes(plan, pool, "vllm")))


def sglang_flags(plan: DeployPlan, pool: PoolPlan, *, kv_transport: str = "nixl") -> EngineArgs:
    """`python -m sglang.launch_server` (or `dynamo.sglang`) flags, model and port excluded."""
    s = pool.scheduling
    flags = ["--tp-size", str(pool.tp)]
    if pool.ep > 1:
        flags += ["--ep-size", str(pool.ep)]
    flags += ["--max-running-requests", str(s.max_seqs), "--chunked-prefill-size", str(s.max_batched_tokens),
              "--mem-fraction-static", f"{pool.gpu_memory_fraction:g}",
              "--kv-cache-dtype", "fp8_e4m3" if kv_is_fp8(plan) else "auto"]
    if plan.quantization:
        flags += ["--quantization", plan.quantization]
    if pool.engine_role == "aggregated" and s.policy is BatchPolicy.CHUNKED:
        flags.append("--enable-mixed-chunk")  # decodes and prompt chunks in one batch, as the plan simulated
    if pool.engine_role != "aggregated":
        flags += ["--disaggregation-mode", pool.engine_role, "--disaggregation-transfer-backend", kv_transport]
        if pool.engine_role == "prefill":
            flags += ["--disaggregation-bootstrap-port", str(SGLANG_BOOTSTRAP_PORT)]
    return EngineArgs("sglang", tuple(flags), {}, tuple(common_notes(plan, pool, "sglang")))


def engine_flags(engine: str, plan: DeployPlan, pool: PoolPlan, *, kv_transport: str = "nixl",
                 style: str = "serve") -> EngineArgs:
    if engine == "vllm":
        if kv_transport != "nixl" and plan.split:
            raise SplitplanError(f"vLLM's KV transfer is written for NixlConnector only, not '{kv_transport}' "
                                 "(use --kv-transport nixl)", field="--kv-transport")
        return vllm_flags(plan, pool, style=style)
    if engine == "sglang":
        return sglang_flags(plan, pool, kv_transport=kv_transport)
    raise SplitplanError(f"unknown engine '{engine}' (valid: {', '.join(ENGINES)})", field="--engine")


def default_engine(plan: DeployPlan) -> tuple[str, str]:
    """(engine, why) for targets that can run either: the plan's stack engine when it is one of them."""
    if plan.stack.engine in ENGINES:
        return plan.stack.engine, f"the plan's stack {plan.stack.name} is {plan.stack.engine}"
    return "vllm", f"the plan's stack {plan.stack.name} is {plan.stack.engine}, not vllm or sglang; vllm chosen"


def common_notes(plan: DeployPlan, pool: PoolPlan, engine: str) -> list[str]:
    """What differs between what was simulated and what these flags give."""
    notes = []
    s, stack = pool.scheduling, plan.stack
    if stack.engine != engine:
        notes.append(f"the plan was simulated with stack {stack.name} ({stack.engine} {stack.versions}); these "
                     f"flags carry its scheduling settings to {engine}, whose latencies were not modelled")
    elif engine in CHECKED_VERSIONS and not covers(stack, CHECKED_VERSIONS[engine]):
        notes.append(f"the stack describes {engine} {stack.versions}; these flags are {engine} "
                     f"{CHECKED_VERSIONS[engine]}'s")
    if not stack.calibrated:
        notes.append(f"stack {stack.name} is not calibrated: the plan's latencies are uncalibrated estimates")
    if plan.compat:
        notes.append(f"the plan ran in compat mode '{plan.compat}': its KV capacity and step times are that "
                     "simulator's, not the engine's")
    if pool.gpu_memory_fraction >= HIGH_MEMORY_FRACTION:
        notes.append(f"the stack models {pool.gpu_memory_fraction:.0%} of GPU memory for weights and KV cache; "
                     f"{engine} may fail to start that high: lower it, and the KV pool shrinks by the same share")
    if pool.engine_role == "aggregated":
        native = {"vllm": BatchPolicy.CHUNKED, "sglang": BatchPolicy.PREFILL_FIRST}[engine]
        if s.policy not in (native, BatchPolicy.CHUNKED):
            notes.append(f"the plan simulated '{s.policy.value}' batching; {engine} batches as "
                         f"'{native.value}' (no flag selects the simulated policy)")
    if s.kv_policy is KvPolicy.RESERVE:
        notes.append(f"the plan reserved each request's whole KV cache at admission; {engine} allocates KV blocks "
                     "as tokens are computed and preempts when full")
    if plan.quantization:
        notes.append(f"weights are quantized to {plan.quantization} on load from the 16-bit checkpoint")
    if pool.power_cap_w is not None:
        notes.append(f"machine {pool.machine} is power-capped: set every GPU to {pool.power_cap_w:.0f} W "
                     f"(nvidia-smi -pl {pool.power_cap_w:.0f}) before starting")
    return notes
