"""--target vllm | sglang: one launch script per pool, plus the P/D router for split plans.

A script starts ONE engine instance; the pool's header says how many to start (the plan's machines x
instances per machine) and `INSTANCE` picks the GPUs of one instance on a machine. The router script
refuses to start unless it is given exactly as many prefill and decode addresses as the plan has.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from splitplan.apps.deploy.engines import (NIXL_SIDE_CHANNEL_PORT, SGLANG_PORT, VLLM_PORT, EngineArgs,
                                           engine_flags)
from splitplan.apps.deploy.plan_input import DeployPlan, PoolPlan


def pool_file_name(pool: PoolPlan, taken: set[str]) -> str:
    base = f"{pool.engine_role}-{pool.machine}"
    name, i = f"{base}.sh", 2
    while name in taken:
        name, i = f"{base}-{i}.sh", i + 1
    taken.add(name)
    return name


def _program(engine: str, plan: DeployPlan) -> list[str]:
    if engine == "vllm":
        return ["vllm", "serve", plan.hf_id, "--port", "${PORT}"]
    return ["python3", "-m", "sglang.launch_server", "--model-path", plan.hf_id, "--host", "0.0.0.0",
            "--port", "${PORT}"]


def _quote(word: str) -> str:
    """Shell-quote, leaving ${VAR} references to expand."""
    if word.startswith("${") and word.endswith("}"):
        return f'"{word}"'
    return shlex.quote(word)


def header_lines(plan: DeployPlan, target: str, what: str) -> list[str]:
    lines = [f"Written by splitplan deploy --target {target}: {what}",
             f"From {plan.origin()}",
             f"Model {plan.model}: {plan.hf_id}; weights {plan.quant.weights.value}, KV cache {plan.quant.kv.value}"]
    if plan.throughput_rps is not None:
        lines.append(f"The plan's verified throughput: {plan.throughput_rps:g} req/s (simulated)")
    return lines


def pool_lines(pool: PoolPlan) -> list[str]:
    return [f"Pool {pool.role} ({pool.engine_role}): {pool.machines} x {pool.machine} ({pool.gpus_per_machine} x "
            f"{pool.gpu}), TP {pool.tp}" + (f", EP {pool.ep}" if pool.ep > 1 else "")
            + f": {pool.instances} engine instances, {pool.instances_per_machine} per machine"]


def launch_script(plan: DeployPlan, pool: PoolPlan, args: EngineArgs, target: str) -> str:
    port0 = VLLM_PORT if args.engine == "vllm" else SGLANG_PORT
    head = header_lines(plan, target, f"one {args.engine} instance of the {pool.engine_role} pool")
    head += pool_lines(pool)
    if pool.instances_per_machine == 1:
        head += [f"Start it {pool.instances} times: once on each of the {pool.machines} machines (GPUs 0-{pool.tp - 1}, "
                 f"port {port0})."]
    else:
        head += [f"Start it {pool.instances} times: on each of the {pool.machines} machines with INSTANCE=0.."
                 f"{pool.instances_per_machine - 1} (instance i uses GPUs i*{pool.tp}..i*{pool.tp}+{pool.tp - 1}, "
                 f"port {port0}+i)."]
    head += [f"Note: {n}" for n in args.notes]
    lines = ["#!/usr/bin/env bash"] + [f"# {h}" for h in head] + [
        "set -euo pipefail",
        "INSTANCE=${INSTANCE:-0}",
        f"TP={pool.tp}",
        f"if [ \"$INSTANCE\" -ge {pool.instances_per_machine} ]; then echo \"INSTANCE must be below "
        f"{pool.instances_per_machine}\" >&2; exit 2; fi",
        "export CUDA_VISIBLE_DEVICES=$(seq -s, $((INSTANCE * TP)) $((INSTANCE * TP + TP - 1)))",
        f"PORT=$(({port0} + INSTANCE))",
    ]
    if args.env:
        lines += ["HOST_IP=${HOST_IP:-$(hostname -I | awk '{print $1}')}",
                  f"NIXL_PORT=$(({NIXL_SIDE_CHANNEL_PORT} + INSTANCE * TP))"]
        lines += [f"export {k}={_quote(v)}" for k, v in args.env.items()]
    words = _program(args.engine, plan) + list(args.flags)
    lines.append("exec " + " \\\n    ".join(_pairs(words)))
    return "\n".join(lines) + "\n"


def _pairs(words: list[str]) -> list[str]:
    """Group a flag with its value on one line of the script."""
    out: list[str] = [""]
    after_flag = False
    for w in words:
        q = _quote(w)
        if w.startswith("--"):
            out.append(q)
            after_flag = True
        elif after_flag:  # the flag's value
            out[-1] += " " + q
            after_flag = False
        else:  # the program and its positional words
            out[-1] = f"{out[-1]} {q}".strip()
    return out


def router_script(plan: DeployPlan, engine: str, target: str) -> str:
    """The P/D router: vLLM's example proxy, or SGLang's router, over the plan's instance addresses."""
    prefill = sum(p.instances for p in plan.pools if p.engine_role == "prefill")
    decode = sum(p.instances for p in plan.pools if p.engine_role == "decode")
    head = header_lines(plan, target, "the router in front of the prefill and decode instances")
    head += [f"PREFILL and DECODE: space-separated HOST:PORT of the {prefill} prefill and {decode} decode instances "
             "(the plan's counts; the script refuses other counts)."]
    if engine == "vllm":
        head += ["vLLM ships no production P/D router: this is its example proxy, from a vLLM source checkout",
                 "(tests/v1/kv_connector/nixl_integration/toy_proxy_server.py); for production use --target llm-d "
                 "or --target dynamo."]
    lines = ["#!/usr/bin/env bash"] + [f"# {h}" for h in head] + [
        "set -euo pipefail",
        ": \"${PREFILL:?set PREFILL to the prefill instances' HOST:PORT list}\"",
        ": \"${DECODE:?set DECODE to the decode instances' HOST:PORT list}\"",
        "read -r -a P <<< \"$PREFILL\"; read -r -a D <<< \"$DECODE\"",
        f"if [ ${{#P[@]}} -ne {prefill} ] || [ ${{#D[@]}} -ne {decode} ]; then",
        f"  echo \"the plan has {prefill} prefill and {decode} decode instances; got ${{#P[@]}} and ${{#D[@]}}\" >&2",
        "  exit 2", "fi",
    ]
    if engine == "vllm":
        lines += ["hosts() { for a in \"$@\"; do printf '%s ' \"${a%:*}\"; done; }",
                  "ports() { for a in \"$@\"; do printf '%s ' \"${a##*:}\"; done; }",
                  "exec python3 tests/v1/kv_connector/nixl_integration/toy_proxy_server.py --port 8192 \\",
                  "    --prefiller-hosts $(hosts \"${P[@]}\") --prefiller-ports $(ports \"${P[@]}\") \\",
                  "    --decoder-hosts $(hosts \"${D[@]}\") --decoder-ports $(ports \"${D[@]}\")"]
    else:
        lines += ["ARGS=()", "for a in \"${P[@]}\"; do ARGS+=(--prefill \"http://$a\"); done",
                  "for a in \"${D[@]}\"; do ARGS+=(--decode \"http://$a\"); done",
                  "exec python3 -m sglang_router.launch_router --pd-disaggregation \"${ARGS[@]}\" --host 0.0.0.0 --port 8000"]
    return "\n".join(lines) + "\n"


def write_scripts(plan: DeployPlan, target: str, out: Path, kv_transport: str) -> tuple[list[Path], list[dict]]:
    """Write the launch scripts (and router); return the files and the per-pool records for deploy.json."""
    engine = target
    files, records, taken = [], [], set()
    for pool in plan.pools:
        args = engine_flags(engine, plan, pool, kv_transport=kv_transport)
        name = pool_file_name(pool, taken)
        path = out / name
        path.write_text(launch_script(plan, pool, args, target))
        path.chmod(0o755)
        files.append(path)
        records.append(pool_record(pool, args, name, _program(engine, plan)))
    if plan.split:
        path = out / "router.sh"
        path.write_text(router_script(plan, engine, target))
        path.chmod(0o755)
        files.append(path)
    return files, records


def pool_record(pool: PoolPlan, args: EngineArgs, file: str, program: list[str] | None = None) -> dict:
    record = {"role": pool.role, "engine_role": pool.engine_role, "machine": pool.machine,
              "machines": pool.machines, "instances": pool.instances, "tp": pool.tp, "ep": pool.ep,
              "engine": args.engine, "flags": list(args.flags), "env": dict(args.env), "notes": list(args.notes),
              "file": file}
    if program:
        record["command"] = program + list(args.flags)
    if pool.power_cap_w is not None:
        record["gpu_power_limit_w"] = round(pool.power_cap_w)
    return record
