"""`splitplan perf`, `predict`, `calibrate`: outputs, determinism and one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from splitplan.cli.main import main
from splitplan.perf import clear_caches

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "profiles" / "measured" / "splitwisesim_perf_model.csv"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return int(info.value.code), captured.out, captured.err


def test_perf_json_has_time_kv_power_and_provenance(capsys):
    code, out, _ = run(["perf", "--model", "llama2-70b", "--machine", "dgx-h100", "--phase", "decode",
                        "--batch", "16", "--json"], capsys)
    assert code == 0
    result = json.loads(out)
    assert result["provenance"].startswith("stack vllm-2023 (vllm 0.1 - 0.2): calibrated on hopper")
    assert result["kv_bytes_per_token"] == 327_680 and result["kv_capacity_tokens"] > 0
    assert result["time_ms"] == pytest.approx(result["decode_base_ms"] + result["decode_ms_per_context_token"] * 16 * 1024)
    assert 8 * 75 < result["gpu_power_w"] <= 8 * 700


def test_perf_table_says_when_the_stack_is_extrapolated(capsys):
    # vllm-2023 is fitted on ampere and hopper; a Blackwell GPU gets its neutral values, and is told so
    code, out, _ = run(["perf", "--model", "llama3-70b", "--machine", "dgx-b200", "--tp", "4",
                        "--phase", "mixed", "--batch", "8"], capsys)
    assert code == 0 and "extrapolated to blackwell" in " ".join(out.split()) and "time_ms" in out
    code, out, _ = run(["perf", "--model", "llama3-70b", "--machine", "dgx-h200", "--tp", "4", "--json"], capsys)
    assert code == 0 and "calibrated on hopper" in json.loads(out)["provenance"]  # H200: same architecture


def test_perf_profile_compat(capsys):
    code, out, _ = run(["perf", "--model", "llama2-70b", "--machine", "dgx-a100", "--tp", "4", "--perf", "profile",
                        "--compat", "splitwisesim", "--json"], capsys)
    assert code == 0 and json.loads(out)["kv_bytes_per_token"] == 2 * 8192 * 80 * 2


@pytest.mark.parametrize("args,expected", [
    (["perf", "--model", "llama2-70x", "--machine", "dgx-h100"], "unknown model 'llama2-70x'"),
    (["perf", "--model", "llama2-70b", "--machine", "dgx-a100", "--tp", "1"], "does not fit dgx-a100 at tp=1"),
    (["perf", "--model", "llama2-70b", "--machine", "dgx-h100", "--batch", "0"], "batch: must be at least 1"),
    (["perf", "--model", "llama2-7b", "--machine", "dgx-h100", "--perf", "profile"], "no prefill and decode rows"),
    (["perf", "--model", "llama2-70b", "--machine", "dgx-h100", "--prompt-tokens", "5000000"],
     "prompt_tokens: 1 prompt(s) of 5000000 tokens need 5,000,000 tokens of KV cache"),
    (["perf", "--model", "llama2-70b", "--machine", "dgx-h100", "--phase", "decode", "--batch", "512",
      "--context-tokens", "100000"], "context_tokens: 512 sequence(s) of 100000 context tokens need"),
])
def test_perf_errors_are_one_line_exit_2(capsys, args, expected):
    code, _, err = run(args, capsys)
    assert code == 2 and expected in err and err.count("\n") == 1 and err.startswith("error: ")


def test_malformed_catalog_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "cat.yaml"
    bad.write_text("machines:\n  - name: x\n    gpu: h100-80gb\n")
    code, _, err = run(["perf", "--model", "llama2-70b", "--machine", "dgx-h100", "--catalog", str(bad)], capsys)
    assert code == 2 and "missing required field 'gpus'" in err and err.count("\n") == 1


def test_predict_adds_columns_reports_errors_and_is_deterministic(tmp_path, capsys):
    outs = []
    for name in ("a.csv", "b.csv"):
        code, out, _ = run(["predict", str(CSV), "--out", str(tmp_path / name)], capsys)
        assert code == 0 and "MAPE" in out and "h100-80gb-pcap" in out
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    frame = pd.read_csv(tmp_path / "a.csv")
    assert len(frame) == 1260 and {"predicted_prompt_ms", "predicted_token_ms"} <= set(frame.columns)
    rel = (frame.predicted_token_ms / frame.token_time - 1).abs()
    assert rel.median() < 0.05


def test_predict_long_format(tmp_path, capsys):
    path = tmp_path / "long.csv"
    path.write_text("model,gpu,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\n"
                    "llama2-70b,h100-80gb,8,prefill,1,2048,0,137\nllama2-70b,h100-80gb,8,decode,1,0,600,30\n")
    code, out, _ = run(["predict", str(path), "--out", str(tmp_path / "p.csv")], capsys)
    assert code == 0
    frame = pd.read_csv(tmp_path / "p.csv")
    assert (frame.predicted_ms / frame.time_ms - 1).abs().max() < 0.1


@pytest.mark.parametrize("text,expected", [
    ("model,hardware,prompt_size,batch_size\nllama2-70b,h100-80gb,1,1\n", "missing column 'token_size'"),
    ("", "file is empty"),
    ("model,gpu,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\nllama2-70b,x100,8,prefill,1,100,0,10\n",
     "hardware: 'x100' is neither a machine nor a GPU of the catalog"),
    ("model,gpu,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\nllama9,h100-80gb,8,prefill,1,100,0,10\n",
     "model: unknown model 'llama9'"),
])
def test_predict_and_calibrate_reject_malformed_profiles(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    for command in ("predict", "calibrate"):
        code, _, err = run([command, str(path), "--out", str(tmp_path / "o")], capsys)
        assert code == 2 and expected in err and err.count("\n") == 1


def test_calibrate_writes_a_loadable_stack(tmp_path, capsys):
    path = tmp_path / "long.csv"
    rows = ["model,gpu,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms"]
    for tp, scale in ((4, 1.0), (8, 0.7)):
        for batch in (1, 4, 16):
            for prompt in (256, 1024, 4096):
                rows.append(f"llama2-70b,h100-80gb,{tp},prefill,{batch},{prompt},0,{scale * (20 + 0.1 * batch * prompt):.3f}")
            rows.append(f"llama2-70b,h100-80gb,{tp},decode,{batch},0,1000,{scale * (25 + 0.3 * batch):.3f}")
            rows.append(f"llama2-70b,h100-80gb,{tp},decode,{batch},0,4000,{scale * (26 + 0.35 * batch):.3f}")
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "mine.yaml"
    code, stdout, _ = run(["calibrate", str(path), "--out", str(out), "--name", "mine"], capsys)
    assert code == 0 and "h100-80gb" in stdout and out.exists()
    clear_caches()
    code, stdout, _ = run(["perf", "--model", "llama2-70b", "--machine", "dgx-h100", "--tp", "4", "--stack",
                           str(out), "--json", "--prompt-tokens", "1024"], capsys)
    result = json.loads(stdout)
    assert result["provenance"].startswith("stack mine (vllm 0.1 - 0.2): calibrated on hopper (long.csv)")
    assert result["time_ms"] == pytest.approx(20 + 0.1 * 1024, rel=0.1)


def test_long_commands_make_their_output_folder_first_and_refuse_a_bad_one_at_once(tmp_path, capsys, monkeypatch):
    """predict writes into folders that do not exist yet; calibrate (a fit of minutes) and benchmark --rows
    refuse an output whose folder cannot be made before any work (one line, exit 2)."""
    code, _, _ = run(["predict", str(CSV), "--out", str(tmp_path / "new" / "sub" / "pred.csv")], capsys)
    assert code == 0 and (tmp_path / "new" / "sub" / "pred.csv").is_file()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    import splitplan.apps.calibrate_serving as cal
    import splitplan.apps.benchmark_rows as bench

    monkeypatch.setattr(cal, "calibrate_engine", lambda *a, **k: pytest.fail("fitted before checking --out"))
    monkeypatch.setattr(bench, "predict_rows", lambda *a, **k: pytest.fail("predicted before checking --out"))
    serving = Path(__file__).resolve().parent.parent / "profiles" / "measured" / "serving" / "h100.csv"
    for args in (["calibrate", "--serving", str(serving), "--engine", "sglang", "--out", str(blocker / "s.yaml")],
                 ["benchmark", "--rows", str(serving), "--out", str(blocker / "p.csv")],
                 ["predict", str(CSV), "--out", str(blocker / "p.csv")]):
        code, out, err = run(args, capsys)
        assert code == 2 and "cannot create the folder for --out" in out + err, args
        assert len((out + err).strip().splitlines()) == 1
