"""`splitplan deploy PLAN.json --target vllm|sglang|dynamo|llm-d`: the files that run a verified plan."""

from __future__ import annotations

import click

from splitplan.cli.common import catalog_option, console, load_catalog_from


@click.command("deploy")
@click.argument("plan_path", metavar="PLAN.json", type=click.Path(dir_okay=False))
@click.option("--target", required=True, type=click.Choice(["vllm", "sglang", "dynamo", "llm-d"]),
              help="vllm / sglang: launch scripts; dynamo: a DynamoGraphDeployment; llm-d: Helm chart values.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder to write (default: deploy-TARGET next to PLAN.json); a previous deploy output there is replaced.")
@click.option("--design", default=None, help="Deploy this design's verified plan instead of the recommended one.")
@click.option("--model-id", "model_id", default=None,
              help="Hugging Face repository to serve (default: the catalog's id for the plan's model).")
@click.option("--engine", type=click.Choice(["vllm", "sglang"]), default=None,
              help="Dynamo workers' engine (default: the plan's stack engine, else vllm); llm-d runs vllm.")
@click.option("--kv-transport", "kv_transport", type=click.Choice(["nixl", "mooncake"]), default="nixl",
              show_default=True, help="KV-cache transfer of split plans (mooncake: SGLang only).")
@click.option("--image", default=None, help="Container image for dynamo / llm-d (default: see docs/deploy.md).")
@catalog_option
def deploy_command(plan_path: str, target: str, out_dir: str | None, design: str | None, model_id: str | None,
                   engine: str | None, kv_transport: str, image: str | None, catalog_files: tuple[str, ...]) -> None:
    """Write what a verified plan needs to run on an engine or an orchestrator.

    Per pool: the engine's launch flags (model, TP and EP, running-sequence limit, batched-token budget,
    KV-cache dtype, GPU memory fraction, and the prefill/decode KV transfer of split plans), as launch
    scripts (vllm, sglang), an NVIDIA Dynamo graph deployment (dynamo) or llm-d Helm values (llm-d).
    Replica counts are the plan's; every file names the plan and stack it came from; deploy.json
    records it all. A plan without a verified best, a design the target cannot express, or a model
    without a Hugging Face id is refused.

    \b
    Examples:
      splitplan optimize scenarios/quickstart.yaml --out out/quickstart
      splitplan deploy out/quickstart/plan.json --target vllm --out out/deploy-vllm
      splitplan deploy out/quickstart/plan.json --target dynamo --engine sglang
    """
    from pathlib import Path

    from splitplan.apps.deploy import deploy

    out = Path(out_dir) if out_dir else Path(plan_path).parent / f"deploy-{target}"
    result = deploy(plan_path, target, out, load_catalog_from(catalog_files), design=design, model_id=model_id,
                    engine=engine, kv_transport=kv_transport, image=image)
    plan = result.plan
    console.print(f"{plan.design}: {plan.label} -> {result.engine} ({result.summary['engine_chosen_by']})")
    for pool in result.summary["pools"]:
        console.print(f"  {pool['engine_role']}: {pool['instances']} x {pool['machine']} instance(s), TP {pool['tp']}"
                      f" -> {pool['file']}")
    console.print(f"wrote {', '.join(p.name for p in result.files)} in {result.out_dir}")
