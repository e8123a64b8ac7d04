"""`splitplan deploy`: every file written parses, holds the plan's counts and TP, names its plan and stack;
engine flags are the expected ones for a baseline and a split plan; what cannot be deployed is refused."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from splitplan.apps.deploy import deploy
from splitplan.apps.deploy.plan_input import hf_id_of
from splitplan.catalog import get_catalog
from splitplan.cli.main import main
from splitplan.errors import SplitplanError

PLAN = Path(__file__).parent / "data" / "deploy" / "quickstart-plan.json"
HF = "meta-llama/Llama-2-70b-hf"


@pytest.fixture(scope="module")
def plan() -> dict:
    return json.loads(PLAN.read_text())


def expected_pools(plan: dict, design: str | None = None) -> dict[str, tuple[int, int]]:
    """engine role -> (replicas, tp) from plan.json itself: machines x GPUs per machine / TP."""
    cat = get_catalog()
    best = plan["best"] if design is None else plan["designs"][design]["best"]
    role = {"prompt": "prefill", "token": "decode", "mixed": "aggregated"}
    return {role[p["role"]]: (p["count"] * cat.machine(p["machine"]).gpus // p["tp"], p["tp"])
            for p in best["pools"] if p["count"]}


def command_of(script: Path) -> list[str]:
    """The engine command of a launch script (its `exec` line, continuation lines joined)."""
    text = script.read_text()
    body = text[text.index("exec "):].replace("\\\n", " ")
    return shlex.split(body.split("\n", 1)[0])[1:]


def flag(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def run(tmp_path: Path, target: str, **kw):
    return deploy(PLAN, target, tmp_path / target, get_catalog(), **kw)


def test_vllm_split_plan_has_producer_and_consumer(tmp_path, plan):
    res = run(tmp_path, "vllm")
    want = expected_pools(plan)
    assert set(want) == {"prefill", "decode"}
    files = {p["engine_role"]: res.out_dir / p["file"] for p in res.summary["pools"]}
    for role, (replicas, tp) in want.items():
        argv = command_of(files[role])
        assert argv[:3] == ["vllm", "serve", HF]
        assert flag(argv, "--tensor-parallel-size") == str(tp)
        assert flag(argv, "--max-num-seqs") == "512"  # vllm-2023's scheduling (the plan's stack)
        assert flag(argv, "--max-num-batched-tokens") == "2048"
        assert flag(argv, "--kv-cache-dtype") == "auto"
        assert 0 < float(flag(argv, "--gpu-memory-utilization")) <= 1
        kv = json.loads(flag(argv, "--kv-transfer-config"))
        assert kv == {"kv_connector": "NixlConnector", "kv_role": {"prefill": "kv_producer", "decode": "kv_consumer"}[role]}
        text = files[role].read_text()
        assert f"{replicas} engine instances" in text and "VLLM_NIXL_SIDE_CHANNEL_HOST" in text
        assert str(PLAN) in text and "stack vllm-2023" in text
        assert [p["instances"] for p in res.summary["pools"] if p["engine_role"] == role] == [replicas]
    router = (res.out_dir / "router.sh").read_text()
    assert "-ne 8 ]" in router and "-ne 2 ]" in router and "toy_proxy_server.py" in router
    assert "350 W" in files["decode"].read_text()  # the power-capped token machines


def test_vllm_baseline_has_no_transfer(tmp_path, plan):
    res = run(tmp_path, "vllm", design="Baseline-H100")
    (replicas, tp), = expected_pools(plan, "Baseline-H100").values()
    (pool,) = res.summary["pools"]
    argv = command_of(res.out_dir / pool["file"])
    assert flag(argv, "--tensor-parallel-size") == str(tp) and pool["instances"] == replicas == 10
    assert "--kv-transfer-config" not in argv and not (res.out_dir / "router.sh").exists()


def test_sglang_flags_for_split_and_baseline(tmp_path, plan):
    res = run(tmp_path, "sglang")
    for p in res.summary["pools"]:
        argv = command_of(res.out_dir / p["file"])
        assert argv[:3] == ["python3", "-m", "sglang.launch_server"] and flag(argv, "--model-path") == HF
        assert flag(argv, "--tp-size") == "8" and flag(argv, "--max-running-requests") == "512"
        assert flag(argv, "--chunked-prefill-size") == "2048" and flag(argv, "--kv-cache-dtype") == "auto"
        assert flag(argv, "--disaggregation-mode") == p["engine_role"]
        assert flag(argv, "--disaggregation-transfer-backend") == "nixl"
        assert ("--disaggregation-bootstrap-port" in argv) == (p["engine_role"] == "prefill")
    assert "sglang_router.launch_router --pd-disaggregation" in (res.out_dir / "router.sh").read_text()
    base = run(tmp_path / "b", "sglang", design="Baseline-H100", kv_transport="mooncake")
    argv = command_of(base.out_dir / base.summary["pools"][0]["file"])
    assert "--disaggregation-mode" not in argv and flag(argv, "--mem-fraction-static")


def test_dynamo_graph_parses_with_counts_and_tp(tmp_path, plan):
    for engine in ("vllm", "sglang"):
        res = run(tmp_path / engine, "dynamo", engine=engine)
        doc = yaml.safe_load((res.out_dir / "dynamo-graph.yaml").read_text())
        assert doc["apiVersion"] == "nvidia.com/v1alpha1" and doc["kind"] == "DynamoGraphDeployment"
        assert doc["metadata"]["annotations"]["splitplan.io/plan"] == str(PLAN)
        assert doc["metadata"]["annotations"]["splitplan.io/stack"].startswith("vllm-2023")
        services = doc["spec"]["services"]
        assert services["Frontend"]["componentType"] == "frontend"
        workers = {s["subComponentType"]: s for s in services.values() if s["componentType"] == "worker"}
        for role, (replicas, tp) in expected_pools(plan).items():
            w = workers[role]
            assert w["replicas"] == replicas and w["resources"]["limits"]["gpu"] == str(tp)
            args = w["extraPodSpec"]["mainContainer"]["args"]
            assert flag(args, "--disaggregation-mode") == role
            assert flag(args, "--tensor-parallel-size" if engine == "vllm" else "--tp-size") == str(tp)
            assert w["extraPodSpec"]["mainContainer"]["command"] == ["python3", "-m", f"dynamo.{engine}"]


def test_dynamo_baseline_is_one_aggregated_worker(tmp_path, plan):
    res = run(tmp_path, "dynamo", design="Baseline-H100")
    services = yaml.safe_load((res.out_dir / "dynamo-graph.yaml").read_text())["spec"]["services"]
    (worker,) = [s for s in services.values() if s["componentType"] == "worker"]
    assert "subComponentType" not in worker and worker["replicas"] == 10
    assert "--kv-transfer-config" not in worker["extraPodSpec"]["mainContainer"]["args"]


def test_llmd_values_parse_with_counts_and_tp(tmp_path, plan):
    res = run(tmp_path, "llm-d")
    text = (res.out_dir / "llm-d-values.yaml").read_text()
    assert text.startswith("# Written by splitplan deploy --target llm-d") and str(PLAN) in text
    values = yaml.safe_load(text)
    assert values["modelArtifacts"]["name"] == HF and values["modelArtifacts"]["uri"] == f"hf://{HF}"
    for role, (replicas, tp) in expected_pools(plan).items():
        v = values[role]
        assert v["create"] is True and v["replicas"] == replicas and v["parallelism"]["tensor"] == tp
        (c,) = v["containers"]
        assert c["modelCommand"] == "vllmServe" and "--tensor-parallel-size" not in c["args"]  # the chart adds it
        assert json.loads(flag(c["args"], "--kv-transfer-config"))["kv_connector"] == "NixlConnector"
    base = yaml.safe_load((run(tmp_path / "b", "llm-d", design="Baseline-H100").out_dir / "llm-d-values.yaml").read_text())
    assert base["prefill"]["create"] is False and base["decode"]["replicas"] == 10
    assert base["routing"]["proxy"]["enabled"] is False
    assert base["decode"]["containers"][0]["ports"][0]["containerPort"] == base["routing"]["servicePort"]


def test_deploy_json_records_every_file(tmp_path):
    res = run(tmp_path, "vllm")
    summary = json.loads((res.out_dir / "deploy.json").read_text())
    assert summary["plan"] == str(PLAN) and summary["stack"]["name"] == "vllm-2023"
    assert sorted(summary["files"]) == sorted(p.name for p in res.files if p.name != "deploy.json")
    assert summary["checked_against"] and "v0.11" in summary["checked_against"][0]


def test_hf_id_is_the_canonical_spelling():
    cat = get_catalog()
    assert hf_id_of(cat.model("llama2-70b"), None) == HF
    assert hf_id_of(cat.model("llama2-70b"), "org/Other") == "org/Other"
    with pytest.raises(SplitplanError, match="no Hugging Face id"):
        hf_id_of(cat.model("bloom-176b"), None)


def _write_plan(tmp_path: Path, plan: dict, **scenario) -> Path:
    data = json.loads(json.dumps(plan))
    data["scenario"].update({k: v for k, v in scenario.items() if k != "perf"})
    data["scenario"]["perf"].update(scenario.get("perf", {}))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("args, message", [
    (["--target", "vllm", "--design", "Nope"], "no design 'Nope'"),
    (["--target", "vllm", "--kv-transport", "mooncake"], "NixlConnector only"),
    (["--target", "llm-d", "--engine", "sglang"], "cannot express an sglang deployment"),
])
def test_refusals_are_one_line_exit_2(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["deploy", str(PLAN), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_refuses_plan_without_verified_best(tmp_path, plan, capsys):
    data = dict(plan, best=None, status="infeasible", binding="cost budget $1/h")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SystemExit) as exc:
        main(["deploy", str(path), "--target", "vllm", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "no verified best plan" in err and "cost budget" in err


def test_refuses_model_without_hf_id_unless_given(tmp_path, plan, capsys):
    path = _write_plan(tmp_path, plan, model="bloom-176b")
    with pytest.raises(SystemExit):
        main(["deploy", str(path), "--target", "vllm", "--out", str(tmp_path / "o")])
    assert "no Hugging Face id" in capsys.readouterr().err
    res = deploy(path, "vllm", tmp_path / "o2", get_catalog(), model_id="bigscience/bloom")
    assert command_of(res.out_dir / res.summary["pools"][0]["file"])[2] == "bigscience/bloom"


def test_refuses_split_plan_with_mixed_pool(tmp_path, plan):
    data = json.loads(json.dumps(plan))
    data["best"]["pools"].append({"role": "mixed", "machine": "dgx-h100", "count": 1, "tp": 8})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SplitplanError, match="mixed \\(overflow\\) pool"):
        deploy(path, "dynamo", tmp_path / "o", get_catalog())


def test_quantization_follows_the_plan(tmp_path, plan):
    fp8 = _write_plan(tmp_path, plan, perf={"weights": "fp8", "moe_weights": "fp8", "kv": "fp8"})
    res = deploy(fp8, "vllm", tmp_path / "o", get_catalog())
    argv = command_of(res.out_dir / res.summary["pools"][0]["file"])
    assert flag(argv, "--quantization") == "fp8" and flag(argv, "--kv-cache-dtype") == "fp8"
    sg = deploy(fp8, "sglang", tmp_path / "s", get_catalog())
    assert flag(command_of(sg.out_dir / sg.summary["pools"][0]["file"]), "--kv-cache-dtype") == "fp8_e4m3"
    nvfp4 = _write_plan(tmp_path, plan, perf={"weights": "nvfp4", "moe_weights": "nvfp4"})
    with pytest.raises(SplitplanError, match="--model-id"):
        deploy(nvfp4, "vllm", tmp_path / "n", get_catalog())


def test_never_replaces_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(SplitplanError, match="not a folder splitplan deploy wrote"):
        deploy(PLAN, "vllm", mine, get_catalog())
    assert (mine / "notes.txt").read_text() == "keep me"
    first = run(tmp_path, "vllm")
    again = run(tmp_path, "vllm", design="Baseline-H100")  # its own output: replaced
    assert first.out_dir == again.out_dir and not (again.out_dir / "router.sh").exists()


def test_flags_carry_the_scheduling_the_plan_was_simulated_with(tmp_path, plan):
    tuned = json.loads(json.dumps(plan))
    tuned["scenario"]["serving"] = {"max_batched_tokens": 4096}
    for pool in tuned["best"]["pools"]:
        if pool["role"] == "token":
            pool["max_seqs"] = 96  # a pool's own setting (serving.token) as plan.json records it
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(tuned))
    res = deploy(path, "vllm", tmp_path / "o", get_catalog())
    files = {p["engine_role"]: res.out_dir / p["file"] for p in res.summary["pools"]}
    decode, prefill = command_of(files["decode"]), command_of(files["prefill"])
    assert flag(decode, "--max-num-seqs") == "96" and flag(prefill, "--max-num-seqs") == "512"
    assert flag(decode, "--max-num-batched-tokens") == flag(prefill, "--max-num-batched-tokens") == "4096"
