"""splitplan benchmark: the closed-loop benchmark simulated, its rows mode, and the features that let
calibration fit stacks without re-simulating."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from splitplan.apps.benchmark import BenchmarkConfig, Protocol, measured_mask, request_sizes, run_benchmark
from splitplan.apps.benchmark_rows import error_table, predict_rows, read_rows
from splitplan.apps.serving_features import row_features
from splitplan.catalog import default_catalog
from splitplan.cli.main import main
from splitplan.errors import SplitplanError
from splitplan.serving.quant import Quant

CAT = default_catalog()
ROWS = Path(__file__).resolve().parent.parent / "profiles" / "measured" / "serving" / "h100.csv"


def config(c, isl=1024, osl=1024, stack="vllm", **kw):
    return BenchmarkConfig("llama3.1-70b", "dgx-h100", isl, osl, c, stack=stack, quant=Quant.parse("fp8"), tp=2,
                           protocol=Protocol(range_ratio=0.8, warmup=0), **kw)


def test_result_reports_the_client_metrics_and_where_they_come_from():
    r = run_benchmark(config(8, osl=256), CAT)
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        assert set(r[key]) == {"mean", "median", "p90", "p99"} and r[key]["mean"] > 0
    assert r["tpot_ms"]["median"] < r["ttft_ms"]["mean"] < r["e2e_ms"]["mean"]
    assert r["output_tokens_per_s_per_gpu"] == pytest.approx(r["output_tokens_per_s"] / 2)
    assert "calibrated on hopper" in r["provenance"] and r["stack"] == "vllm" and not r["extrapolated"]
    assert r["policy"] == "chunked" and r["kv_cache"]["policy"] == "paged"


def test_a_full_kv_cache_makes_ttft_jump_out_of_the_simulation():
    """Llama-3.1-70B FP8 on two H100s, 1k in / 8k out: 32 clients fit the KV cache, 64 do not; measured
    TTFT goes from 0.29 s to 30.8 s there (profiles/measured/serving/h100.csv). Nothing is fudged: requests
    wait for blocks, and decodes are preempted and recomputed."""
    fits = run_benchmark(config(32, osl=8192), CAT)
    full = run_benchmark(config(64, osl=8192), CAT)
    assert fits["ttft_ms"]["mean"] < 1000 and fits["preemptions"] <= 5
    assert full["ttft_ms"]["mean"] > 10_000 and full["preemptions"] > 0
    assert full["kv_cache"]["mean_fraction"] > 0.8


def test_features_reproduce_the_simulated_means_exactly():
    for stack, c in (("vllm", 16), ("sglang", 16), ("trtllm", 32)):
        cfg = config(c, isl=2048, osl=256, stack=stack)
        r = run_benchmark(cfg, CAT, record_segments=True)
        eng = r["_engine"]
        _, output = request_sizes(cfg)
        f = row_features(eng, output, measured_mask(len(output), 0))
        ttft, tpot = f.predict_ms(eng.insts[0].perf)
        assert ttft + eng.insts[0].perf.api_ms == pytest.approx(r["ttft_ms"]["mean"], rel=1e-9)
        assert tpot == pytest.approx(r["tpot_ms"]["mean"], rel=1e-9)


def test_impossible_benchmarks_are_refused():
    with pytest.raises(SplitplanError, match="does not fit the"):
        run_benchmark(config(1, isl=2_000_000, osl=10), CAT)
    with pytest.raises(SplitplanError, match="concurrency"):
        run_benchmark(config(0), CAT)
    with pytest.raises(SplitplanError, match="range_ratio"):
        run_benchmark(BenchmarkConfig("llama3.1-70b", "dgx-h100", 10, 10, 1, protocol=Protocol(range_ratio=0)), CAT)


def test_rows_mode_predicts_what_it_can_and_refuses_the_rest(tmp_path):
    frame = read_rows(ROWS)
    dense = frame[(frame["engine"] == "sglang") & (frame["mode"] == "agg")].head(3)
    unmodelled = pd.concat([dense.head(1).assign(pp="2"), dense.head(1).assign(tp="16")])
    sample = pd.concat([frame[frame["mode"] == "disagg"].head(2), frame[frame["model"].str.contains("gpt-oss")].head(2),
                        dense, unmodelled])
    out = predict_rows(sample, CAT, workers=1)
    status = out["status"].tolist()
    assert status[0].startswith("refused: a disaggregated row needs")
    assert all(s.startswith("ok") for s in status[2:7])  # mixture-of-experts rows are predicted
    assert status[7] == "refused: pipeline parallelism is not modelled"
    assert status[8] == "refused: instances spanning machines are not modelled (tp 16 > the 8 GPUs of one machine)"
    assert out["stack"].tolist()[4].startswith("sglang")
    assert list(out.columns[: len(sample.columns)]) == list(sample.columns)  # input columns kept in order
    table = error_table(out)
    assert len(table) == 2 and (table["ttft_median_pct"] >= 0).all()


def test_rows_mode_ignores_measured_columns():
    frame = read_rows(ROWS)
    rows = frame[(frame["engine"] == "vllm") & (frame["mode"] == "agg") & (frame["model"] == "Qwen/Qwen3-32B")].head(2)
    a = predict_rows(rows, CAT, workers=1)
    b = predict_rows(rows.assign(ttft_ms="1", tpot_ms="1"), CAT, workers=1)
    assert a["predicted_ttft_ms"].tolist() == b["predicted_ttft_ms"].tolist()


def test_cli_prints_json_and_one_line_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--model", "meta-llama/Llama-3.1-70B", "--machine", "H100", "--weights", "fp8", "--tp", "2",
              "--isl", "512", "--osl", "64", "--concurrency", "4", "--json"])
    assert exit_info.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "llama3.1-70b" and data["machine"] == "dgx-h100" and data["quant"]["weights"] == "fp8"
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--model", "llama3.1-70x", "--machine", "h100", "--isl", "1", "--osl", "1", "--concurrency", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "unknown model 'llama3.1-70x'" in err[0]


def test_a_quantized_label_on_gpt_oss_means_its_checkpoint():
    from splitplan.apps.benchmark_rows import checkpoint_formats

    gpt_oss, qwen = CAT.model("gpt-oss-120b"), CAT.model("qwen3-235b-a22b")
    assert checkpoint_formats(gpt_oss, "nvfp4", "nvfp4") == ("bf16", "mxfp4")  # BF16 attention, MXFP4 experts
    assert checkpoint_formats(gpt_oss, "fp8", "fp8") == ("bf16", "mxfp4")  # no FP8 gpt-oss checkpoint is published
    assert checkpoint_formats(gpt_oss, "bf16", "bf16") == ("bf16", "bf16")  # a dequantized copy: taken as given
    assert checkpoint_formats(qwen, "nvfp4", None) == ("nvfp4", None)  # a model with 4-bit checkpoints of all of it


def test_disaggregated_workers_move_kv_and_serve_every_request():
    from splitplan.apps.benchmark import Disagg

    cfg = BenchmarkConfig("qwen3-32b", "dgx-h100", 4000, 1000, 64, stack="vllm", quant=Quant.parse("fp8"),
                          protocol=Protocol(range_ratio=0.8, warmup=0), disagg=Disagg(8, 1, 2, 4))
    r = run_benchmark(cfg, CAT)
    assert r["disagg"] == "8 x prefill tp1 + 2 x decode tp4" and r["measured_requests"] == 640
    colocated = run_benchmark(BenchmarkConfig("qwen3-32b", "dgx-h100", 4000, 1000, 64, stack="vllm",
                                              quant=Quant.parse("fp8"), tp=4, protocol=cfg.protocol), CAT)
    # decode workers never stall for prompts: TPOT below a co-located TP4 instance carrying the same load
    assert r["tpot_ms"]["mean"] < colocated["tpot_ms"]["mean"]
    assert r["output_tokens_per_s_per_gpu"] == pytest.approx(r["output_tokens_per_s"] / 16)


def test_routers_are_registered_by_name():
    from splitplan.sim.routers import ROUTERS, make_router

    assert {"baseline", "splitwise", "disagg"} <= set(ROUTERS)
    with pytest.raises(SplitplanError, match="unknown router 'random'"):
        make_router("random", [], 0, None)


def _cli_json(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", *args, "--json"])
    assert exit_info.value.code == 0
    return json.loads(capsys.readouterr().out)


def test_one_configuration_runs_the_client_its_stack_was_calibrated_with(capsys):
    """`benchmark` on one configuration and `--rows` on the same row agree: both run the client the stack
    was calibrated with (vLLM's: InferenceX's lengths in [0.8 L, L], every request measured) unless a
    client flag says otherwise."""
    frame = read_rows(ROWS)
    row = frame[(frame["engine"] == "vllm") & (frame["model"] == "meta-llama/Llama-3.1-70B") & (frame["weights"] == "fp8")
                & (frame["tp"] == "4") & (frame["isl"] == "1024") & (frame["osl"] == "1024") & (frame["concurrency"] == "16")]
    assert len(row) == 1
    predicted = predict_rows(row, CAT, workers=1)
    one = _cli_json(capsys, "--model", "meta-llama/Llama-3.1-70B", "--machine", "h100", "--stack", "vllm",
                    "--weights", "fp8", "--tp", "4", "--isl", "1024", "--osl", "1024", "--concurrency", "16")
    assert one["client"]["calibrated"] and one["client"]["range_ratio"] == 0.8 and one["client"]["warmup"] == 0
    assert one["ttft_ms"]["mean"] == pytest.approx(float(predicted["predicted_ttft_ms"].iloc[0]), rel=1e-12)
    assert one["tpot_ms"]["mean"] == pytest.approx(float(predicted["predicted_tpot_ms"].iloc[0]), rel=1e-12)


def test_client_flags_change_the_client_and_say_it_is_not_the_calibrated_one(capsys):
    """Exact lengths with the first wave left out keep the 32 clients in lockstep waves: each new wave's
    prompts queue behind each other, so TTFT rises well above the calibrated client's."""
    args = ("--model", "llama3.1-70b", "--machine", "h100", "--stack", "vllm", "--weights", "fp8", "--tp", "4",
            "--isl", "1024", "--osl", "256", "--concurrency", "32")
    calibrated = _cli_json(capsys, *args)
    exact = _cli_json(capsys, *args, "--range-ratio", "1", "--warmup", "-1")
    assert not exact["client"]["calibrated"] and exact["client"]["description"].startswith("320 prompts, exact lengths")
    assert exact["measured_requests"] == 320 - 32 and calibrated["measured_requests"] == 320
    assert exact["ttft_ms"]["median"] > 2 * calibrated["ttft_ms"]["median"]


def test_python_benchmarks_without_a_protocol_follow_the_stack():
    from splitplan.apps.benchmark import calibrated_protocol
    from splitplan.serving.stack import get_stack

    assert calibrated_protocol(get_stack("sglang")).range_ratio == 1.0  # its fixed-length sweeps fitted best
    assert calibrated_protocol(get_stack("vllm"), warmup=-1) == Protocol(range_ratio=0.8, warmup=-1)
    r = run_benchmark(BenchmarkConfig("llama3.1-8b", "dgx-h100", 512, 64, 4, stack="sglang", tp=1), CAT)
    assert r["client"]["calibrated"] and r["client"]["description"] == "40 prompts, exact lengths, every request measured"


def test_error_table_leaves_out_groups_without_measurements():
    out = pd.DataFrame({"engine": ["vllm", "vllm", "sglang"], "model": ["a", "a", "b"], "status": ["ok"] * 3,
                        "ttft_ms": ["100", "", ""], "tpot_ms": ["10", "", ""],
                        "predicted_ttft_ms": [110.0, 90.0, 80.0], "predicted_tpot_ms": [9.0, 9.0, 8.0]})
    table = error_table(out)
    assert table.to_dict("records") == [{"engine": "vllm", "model": "a", "rows": 1, "ttft_mape_pct": pytest.approx(10.0),
                                         "ttft_median_pct": pytest.approx(10.0), "tpot_mape_pct": pytest.approx(10.0),
                                         "tpot_median_pct": pytest.approx(10.0)}]
    assert error_table(out.assign(ttft_ms="", tpot_ms="")).empty


def test_disaggregated_workers_with_expert_and_attention_dp_shapes():
    """TensorRT-LLM's DeepSeek-V3 rows: a prefill worker of 'tp 1, ep 16, attention_dp 16' (16 GPUs: 16
    attention groups, experts over all) and decode workers of tp 16, ep 16. On H100 machines a 16-GPU
    worker spans two machines (refused); in one GB200 NVL72 rack it is predicted."""
    from splitplan.apps.benchmark_rows import worker_gpus

    assert worker_gpus(1, 16, 16) == 16 and worker_gpus(4, 4, 4) == 4 and worker_gpus(8, 1, 1) == 8
    row = {"model": "deepseek-ai/DeepSeek-V3", "engine": "trtllm", "engine_version": "1.0.0rc3", "mode": "disagg",
           "weights": "fp8", "moe_weights": "fp8", "isl": "1024", "osl": "256", "concurrency": "16", "tp": "", "pp": "1",
           "prefill_workers": "1", "prefill_tp": "1", "prefill_ep": "16", "prefill_attention_dp": "16",
           "decode_workers": "2", "decode_tp": "16", "decode_ep": "16", "decode_attention_dp": "1"}
    out = predict_rows(pd.DataFrame([row | {"gpu": "h100-80gb"}, row | {"gpu": "gb200"}]), CAT, workers=1)
    h100, gb200 = out.to_dict("records")
    assert h100["status"] == "refused: instances spanning machines are not modelled (tp 16 > the 8 GPUs of one machine)"
    assert gb200["status"].startswith("ok") and gb200["predicted_tpot_ms"] > 0
    bad = predict_rows(pd.DataFrame([row | {"gpu": "gb200", "decode_ep": "3"}]), CAT, workers=1)
    assert bad["status"].iloc[0] == "refused: decode_ep 3 must divide decode_tp 16 (it splits the worker's GPUs)"


def test_attention_dp_decode_workers_beat_tensor_parallel_ones_on_an_mla_model(capsys):
    """DeepSeek-R1's latent KV cache is replicated on every GPU of a TP group; with attention DP each
    group holds its own sequences, so the same 16 GPUs decode a large batch faster."""
    base = ("--model", "deepseek-r1", "--machine", "gb200", "--stack", "sglang", "--weights", "fp8", "--isl", "1024",
            "--osl", "256", "--concurrency", "128", "--prefill-workers", "1", "--prefill-tp", "8", "--decode-workers",
            "1", "--decode-tp", "16", "--decode-ep", "16")
    tp_only = _cli_json(capsys, *base)
    with_dp = _cli_json(capsys, *base, "--decode-attention-dp", "16")
    assert with_dp["disagg"] == "1 x prefill tp8 + 1 x decode tp16 ep16 dp16"
    assert with_dp["tpot_ms"]["mean"] < tp_only["tpot_ms"]["mean"]


def test_a_power_of_two_tp_packs_a_rack_scale_machine():
    from splitplan.perf.build import build_perf_model
    from splitplan.perf.base import PerfSettings

    assert build_perf_model("deepseek-r1", "gb200-nvl72", 16, PerfSettings(stack="vllm")).instance.tp == 16
    from types import SimpleNamespace

    from splitplan.perf.memory import check_fit

    with pytest.raises(SplitplanError, match="tp=3 is not a divisor of the 8 GPUs of dgx-h100"):
        check_fit(SimpleNamespace(model=None, machine=CAT.machine("dgx-h100"), tp=3))  # odd on an 8-GPU box: a typo
    with pytest.raises(SplitplanError, match="tp=20 is not a divisor of the 72 GPUs of gb200-nvl72"):
        check_fit(SimpleNamespace(model=None, machine=CAT.machine("gb200-nvl72"), tp=20))
    rack = CAT.machine("gb200-nvl72")
    assert [tp for tp in range(1, 73) if rack.packs(tp)] == [1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 32, 36, 64, 72]
    assert [tp for tp in range(1, 9) if CAT.machine("dgx-h100").packs(tp)] == [1, 2, 4, 8]


def test_one_configuration_defaults_to_the_current_vllm_and_takes_ep_and_attention_dp(capsys):
    r = _cli_json(capsys, "--model", "deepseek-r1", "--machine", "b200", "--weights", "fp8", "--tp", "8", "--ep", "8",
                  "--attention-dp", "8", "--isl", "1024", "--osl", "128", "--concurrency", "8")
    assert r["stack"] == "vllm" and (r["tp"], r["ep"], r["dp"]) == (8, 8, 8)  # not the paper's 2023 vLLM
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--model", "qwen3-32b", "--machine", "h100", "--tp", "4", "--ep", "2", "--isl", "64",
              "--osl", "8", "--concurrency", "1"])
    assert exit_info.value.code == 2 and "is dense: it has no experts to split over ep 2" in capsys.readouterr().err
