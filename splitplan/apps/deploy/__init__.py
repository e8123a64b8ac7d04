"""`splitplan deploy`: turn a verified plan into what an engine or an orchestrator needs to run it.

Targets: `vllm` and `sglang` (a launch script per pool, and the P/D router for split plans), `dynamo`
(an NVIDIA Dynamo DynamoGraphDeployment) and `llm-d` (values for llm-d's modelservice Helm chart).
Every file starts with the plan, design and stack it came from, and a deploy.json records the same
per pool (replicas = the plan's machines x instances per machine, TP, flags, notes). The engine flags
and manifest fields were checked against the versions named in engines.py and k8s.py (docs/deploy.md).
A plan the target cannot express is refused with one line saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from splitplan.apps.deploy.engines import ENGINES, KV_TRANSPORTS, default_engine
from splitplan.apps.deploy.plan_input import DeployPlan, deploy_plan
from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError

TARGETS = ("vllm", "sglang", "dynamo", "llm-d")


@dataclass(frozen=True)
class DeployResult:
    plan: DeployPlan
    target: str
    engine: str
    out_dir: Path
    files: tuple[Path, ...]
    summary: dict


def check_expressible(plan: DeployPlan, target: str, engine: str) -> None:
    """Refuse, in one line, a design the target cannot express."""
    where = f"--target {target}"
    roles = [p.engine_role for p in plan.pools]
    if plan.split and "aggregated" in roles:
        raise SplitplanError(f"cannot express design {plan.design}: a Splitwise plan with a mixed (overflow) pool; "
                             "no target routes requests between split and mixed instances", field=where)
    if target in ("dynamo", "llm-d"):
        for role in dict.fromkeys(roles):
            machines = [p.machine for p in plan.pools if p.engine_role == role]
            if len(machines) > 1:
                raise SplitplanError(f"cannot express design {plan.design}: {target} gets one worker group per role "
                                     f"here, and the {role} pool spans machines {', '.join(machines)}", field=where)
    if target == "llm-d" and engine != "vllm":
        raise SplitplanError("cannot express an sglang deployment: the llm-d modelservice chart is written with "
                             "modelCommand vllmServe (vLLM only)", field=where)


def deploy(plan_path: str | Path, target: str, out_dir: str | Path, catalog: Catalog, *, design: str | None = None,
           model_id: str | None = None, engine: str | None = None, kv_transport: str = "nixl",
           image: str | None = None) -> DeployResult:
    """Write the target's files for the plan's verified best (or `design`'s) into `out_dir`, atomically."""
    if target not in TARGETS:
        raise SplitplanError(f"unknown target '{target}' (valid: {', '.join(TARGETS)})", field="--target")
    if kv_transport not in KV_TRANSPORTS:
        raise SplitplanError(f"unknown KV transport '{kv_transport}' (valid: {', '.join(KV_TRANSPORTS)})",
                             field="--kv-transport")
    plan = deploy_plan(plan_path, catalog, design=design, model_id=model_id)
    if target in ENGINES:
        if engine and engine != target:
            raise SplitplanError(f"--engine {engine} contradicts --target {target}", field="--engine")
        chosen, why = target, f"--target {target}"
    elif engine:
        if engine not in ENGINES:
            raise SplitplanError(f"unknown engine '{engine}' (valid: {', '.join(ENGINES)})", field="--engine")
        chosen, why = engine, f"--engine {engine}"
    else:
        chosen, why = default_engine(plan)
    check_expressible(plan, target, chosen)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "deploy.json").is_file())):
        raise SplitplanError("exists and is not a folder splitplan deploy wrote (no deploy.json); choose another --out",
                             source=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)
        files, records = _write_target(plan, target, chosen, tmp, kv_transport, image, catalog)
        summary = _summary(plan, target, chosen, why, kv_transport, records, [f.name for f in files])
        (tmp / "deploy.json").write_text(json.dumps(summary, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    paths = tuple(out / f.name for f in files) + (out / "deploy.json",)
    return DeployResult(plan, target, chosen, out, paths, summary)


def _write_target(plan: DeployPlan, target: str, engine: str, out: Path, kv_transport: str, image: str | None,
                  catalog: Catalog):
    if target in ENGINES:
        from splitplan.apps.deploy.scripts import write_scripts

        return write_scripts(plan, target, out, kv_transport)
    if target == "dynamo":
        from splitplan.apps.deploy.k8s import write_dynamo

        return write_dynamo(plan, out, engine, kv_transport, image)
    from splitplan.apps.deploy.k8s import write_llmd

    return write_llmd(plan, out, catalog.model(plan.model), image)


def _summary(plan: DeployPlan, target: str, engine: str, why: str, kv_transport: str, records: list[dict],
             files: list[str]) -> dict:
    from splitplan.apps.deploy.engines import CHECKED_AGAINST

    return {"written_by": f"splitplan deploy --target {target}", "plan": plan.source, "scenario": plan.scenario,
            "design": plan.design, "kind": plan.kind, "label": plan.label, "throughput_rps": plan.throughput_rps,
            "stack": {"name": plan.stack.name, "engine": plan.stack.engine, "versions": plan.stack.versions,
                      "calibrated": plan.stack.calibrated},
            "engine": engine, "engine_chosen_by": why, "kv_transport": kv_transport if plan.split else None,
            "model": {"catalog": plan.model, "hf_id": plan.hf_id, "hf_id_from": "--model-id" if plan.hf_id_given
                      else "catalog alias"},
            "quant": plan.quant.to_dict(), "quantization_flag": plan.quantization,
            "pools": records, "files": files,
            "checked_against": [CHECKED_AGAINST[engine]] + ([CHECKED_AGAINST[target]] if target not in ENGINES else [])}
