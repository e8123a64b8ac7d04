"""--target dynamo | llm-d: a DynamoGraphDeployment, or values for llm-d's modelservice Helm chart.

Field names were checked against NVIDIA Dynamo's example graph deployments
(`examples/backends/vllm/deploy/disagg.yaml` at commit 7893f26, `examples/backends/sglang/deploy/disagg.yaml`
of the 0.7.1 images: apiVersion nvidia.com/v1alpha1, spec.services.<name>.componentType frontend|worker,
subComponentType prefill|decode, replicas, resources.limits.gpu, envFromSecret,
extraPodSpec.mainContainer.{image,workingDir,command,args}) and against llm-d-incubation/llm-d-modelservice
chart v0.4.1 (`charts/llm-d-modelservice/values.yaml`, `templates/_helpers.tpl`, `examples/values-pd.yaml`:
modelArtifacts.{name,uri,size}, routing.{servicePort,proxy}, decode|prefill.{create,replicas,parallelism.tensor,
acceleratorTypes.{labelKey,labelValues},containers[].{name,image,modelCommand: vllmServe,args,env,ports}};
with modelCommand vllmServe the chart itself adds `vllm serve MODEL --port --tensor-parallel-size
--served-model-name` and requests tensor x dataLocal GPUs per pod).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from splitplan.apps.deploy.engines import NIXL_SIDE_CHANNEL_PORT, EngineArgs, engine_flags
from splitplan.apps.deploy.plan_input import DeployPlan, PoolPlan
from splitplan.apps.deploy.scripts import header_lines, pool_lines, pool_record

MACHINE_LABEL = "splitplan.io/machine"  # node label the pods select: kubectl label node N splitplan.io/machine=M
DYNAMO_IMAGE = "nvcr.io/nvidia/ai-dynamo/{engine}-runtime:${{DYNAMO_VERSION}}"
LLMD_IMAGE = "vllm/vllm-openai:v0.11.0"  # the vLLM release whose flags engines.py was checked against
LLMD_VLLM_PORT = 8200  # routing.proxy.targetPort: decode pods' vLLM listens here behind the sidecar
SERVICE_PORT = 8000


def dump_yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=10_000, allow_unicode=True)


def dns_name(*parts: str) -> str:
    """A DNS-1123 label from the scenario and design names."""
    name = re.sub(r"[^a-z0-9-]+", "-", "-".join(p for p in parts if p).lower()).strip("-")
    return (name[:63].rstrip("-")) or "splitplan"


def annotations(plan: DeployPlan, engine: str) -> dict[str, str]:
    out = {"splitplan.io/plan": plan.source, "splitplan.io/scenario": plan.scenario,
           "splitplan.io/design": plan.design, "splitplan.io/label": plan.label,
           "splitplan.io/stack": f"{plan.stack.name} ({plan.stack.engine} {plan.stack.versions})",
           "splitplan.io/engine": engine, "splitplan.io/model": plan.hf_id}
    for pool in plan.pools:
        out[f"splitplan.io/{pool.engine_role}-replicas"] = str(pool.instances)
        if pool.power_cap_w is not None:
            out[f"splitplan.io/{pool.engine_role}-gpu-power-limit-w"] = str(round(pool.power_cap_w))
    return out


def _comment(lines: list[str]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def _notes(plan: DeployPlan, pools: list[tuple[PoolPlan, EngineArgs]], target: str, what: str,
           extra: list[str]) -> str:
    head = header_lines(plan, target, what)
    for pool, args in pools:
        head += pool_lines(pool) + [f"Note ({pool.engine_role}): {n}" for n in args.notes]
    head += [f"Nodes: label each node with its catalog machine: kubectl label node NODE {MACHINE_LABEL}=MACHINE"]
    return _comment(head + extra)


# ------------------------------------------------------------------------------------------ Dynamo
def _dynamo_service(plan: DeployPlan, pool: PoolPlan, args: EngineArgs, image: str) -> dict[str, Any]:
    if args.engine == "vllm":
        command, model = ["python3", "-m", "dynamo.vllm"], ["--model", plan.hf_id]
    else:
        command, model = ["python3", "-m", "dynamo.sglang"], ["--model-path", plan.hf_id,
                                                            "--served-model-name", plan.hf_id]
    service: dict[str, Any] = {"envFromSecret": "hf-token-secret", "componentType": "worker"}
    if pool.engine_role != "aggregated":
        service["subComponentType"] = pool.engine_role
    service["replicas"] = pool.instances
    service["resources"] = {"limits": {"gpu": str(pool.tp)}}
    service["extraPodSpec"] = {
        "nodeSelector": {MACHINE_LABEL: pool.machine},
        "mainContainer": {"image": image, "workingDir": f"/workspace/examples/backends/{args.engine}",
                          "command": command, "args": model + list(args.flags)}}
    return service


def dynamo_document(plan: DeployPlan, engine: str, kv_transport: str, image: str | None) -> tuple[dict, list]:
    image = image or DYNAMO_IMAGE.format(engine=engine)
    prefix = {"vllm": "Vllm", "sglang": "SGLang"}[engine]
    services: dict[str, Any] = {"Frontend": {"componentType": "frontend", "replicas": 1,
                                             "extraPodSpec": {"mainContainer": {"image": image}}}}
    pools = []
    for pool in plan.pools:
        args = engine_flags(engine, plan, pool, kv_transport=kv_transport, style="dynamo")
        name = f"{prefix}{'Prefill' if pool.engine_role == 'prefill' else 'Decode'}Worker"
        services[name] = _dynamo_service(plan, pool, args, image)
        pools.append((pool, args, name))
    doc = {"apiVersion": "nvidia.com/v1alpha1", "kind": "DynamoGraphDeployment",
           "metadata": {"name": dns_name(plan.scenario, plan.design), "annotations": annotations(plan, engine)},
           "spec": {"services": services}}
    return doc, pools


def write_dynamo(plan: DeployPlan, out: Path, engine: str, kv_transport: str, image: str | None):
    doc, pools = dynamo_document(plan, engine, kv_transport, image)
    extra = ["Image: set DYNAMO_VERSION (envsubst) or pass --image; the HF token comes from secret hf-token-secret.",
             "Dynamo releases before ai-dynamo/dynamo PR #6483 spell '--disaggregation-mode prefill' as "
             "'--is-prefill-worker' for vLLM workers (and take no decode flag)."]
    return _write_document(plan, out / "dynamo-graph.yaml", doc, pools, "service",
                           ("dynamo", "NVIDIA Dynamo graph deployment", extra))


# ------------------------------------------------------------------------------------------ llm-d
def _llmd_role(plan: DeployPlan, pool: PoolPlan, args: EngineArgs, image: str) -> dict[str, Any]:
    split = pool.engine_role != "aggregated"
    flags = list(args.flags)
    i = flags.index("--tensor-parallel-size")  # the chart adds it from parallelism.tensor
    del flags[i:i + 2]
    container: dict[str, Any] = {"name": "vllm", "image": image, "modelCommand": "vllmServe", "args": flags}
    port = LLMD_VLLM_PORT if pool.engine_role == "decode" else SERVICE_PORT  # decode: behind the routing sidecar
    container["ports"] = [{"containerPort": port, "protocol": "TCP"}]
    if split:
        container["env"] = [{"name": "VLLM_NIXL_SIDE_CHANNEL_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                            {"name": "VLLM_NIXL_SIDE_CHANNEL_PORT", "value": str(NIXL_SIDE_CHANNEL_PORT)}]
        container["ports"].append({"containerPort": NIXL_SIDE_CHANNEL_PORT, "protocol": "TCP"})
    container["mountModelVolume"] = True
    return {"create": True, "replicas": pool.instances, "parallelism": {"tensor": pool.tp},
            "acceleratorTypes": {"labelKey": MACHINE_LABEL, "labelValues": [pool.machine]},
            "containers": [container]}


def llmd_document(plan: DeployPlan, catalog_model, image: str | None) -> tuple[dict, list]:
    image = image or LLMD_IMAGE
    size_gi = math.ceil(catalog_model.weight_bytes * 1.1 / 2**30)
    values: dict[str, Any] = {
        "multinode": False,
        "modelArtifacts": {"name": plan.hf_id, "uri": f"hf://{plan.hf_id}", "size": f"{size_gi}Gi",
                           "labels": {"llm-d.ai/inferenceServing": "true", "llm-d.ai/model": dns_name(plan.model)}},
        "accelerator": {"type": "nvidia"},
        "routing": {"servicePort": SERVICE_PORT,
                    "proxy": {"enabled": plan.split, "connector": "nixlv2", "targetPort": LLMD_VLLM_PORT}},
    }
    pools = []
    for pool in plan.pools:
        args = engine_flags("vllm", plan, pool, style="llm-d")
        key = "prefill" if pool.engine_role == "prefill" else "decode"
        values[key] = _llmd_role(plan, pool, args, image)
        pools.append((pool, args, key))
    if "prefill" not in values:
        values["prefill"] = {"create": False, "replicas": 0}
    return values, pools


def write_llmd(plan: DeployPlan, out: Path, catalog_model, image: str | None):
    values, pools = llmd_document(plan, catalog_model, image)
    extra = ["Install: helm install NAME llm-d-modelservice/llm-d-modelservice -f llm-d-values.yaml (chart v0.4.1);",
             "the gateway, InferencePool and scheduler (routing.inferencePool, routing.httpRoute, routing.epp) come "
             "from the llm-d guide you deploy with and are not written here."]
    return _write_document(plan, out / "llm-d-values.yaml", values, pools, "values_key",
                           ("llm-d", "values for the llm-d modelservice Helm chart", extra))


def _write_document(plan: DeployPlan, path: Path, doc: dict, pools: list, key: str, notes: tuple):
    """Write the notes header and the YAML document; one record per pool, naming its entry under `key`."""
    kind, title, extra = notes
    path.write_text(_notes(plan, [(p, a) for p, a, _ in pools], kind, title, extra) + dump_yaml(doc))
    return [path], [pool_record(p, a, path.name) | {key: name} for p, a, name in pools]
