"""The flags a "does not fit" error names exist on the commands that run a model, and an SLO reference
that cannot hold the model is refused before any run, naming the reference and how to choose another."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from splitplan.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
TRACE = "AzureLLMInferenceTrace_conv.csv"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return int(info.value.code), captured.out, captured.err


def hinted_flags(err: str) -> list[str]:
    """The flags of the error's "published checkpoint ... (--weights X --moe-weights Y, ...)" hint."""
    m = re.search(r"\((--weights [^,]+),", err)
    assert m, err
    return m.group(1).split()


def test_perf_runs_the_checkpoint_the_error_names(capsys):
    base = ["perf", "--model", "kimi-k2.5", "--machine", "dgx-h200", "--phase", "decode", "--batch", "8"]
    code, _, err = run(base, capsys)
    assert code == 2 and "does not fit" in err and "--moe-weights int4_wo" in err
    code, out, err = run(base + hinted_flags(err) + ["--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["kv_capacity_tokens"] > 0


def test_simulate_takes_the_weight_flags_and_refuses_a_reference_that_cannot_hold_the_model(capsys):
    base = ["simulate", "--model", "deepseek-r1", "--machines", "dgx-h200:2", "--trace", TRACE, "--rate", "1",
            "--duration", "20", "--json"]
    code, _, err = run(base, capsys)  # BF16 DeepSeek-R1 does not fit: the hint names --weights fp8_block
    assert code == 2 and "--machines" in err and "--weights fp8_block" in err
    code, _, err = run(base + hinted_flags(err), capsys)  # fits now; the default A100 reference does not
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--reference-machine" in err and "dgx-a100 is the SLO reference" in err
    assert "e.g. --reference-machine dgx-h200" in err and "Traceback" not in err
    code, out, err = run(base + ["--weights", "fp8_block", "--reference-machine", "dgx-h200"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["perf"]["reference_machine"] == "dgx-h200" and summary["completed"] > 0
    code, _, err = run(base + ["--weights", "fp8_block", "--reference-machine", "dgx-h900"], capsys)
    assert code == 2 and "unknown machine 'dgx-h900'" in err


def test_optimize_refuses_a_scenario_whose_reference_cannot_hold_the_model(tmp_path, capsys):
    scenario = tmp_path / "r1.yaml"
    scenario.write_text(f"""name: r1
model: deepseek-r1
workload: {{trace: {TRACE}, duration_s: 30}}
designs: [{{name: H200, kind: baseline, machines: [dgx-h200]}}]
constraints: {{cost_usd_per_h: 200}}
perf: {{weights: fp8_block}}
""")
    code, _, err = run(["optimize", str(scenario), "--quiet"], capsys)
    assert code == 2 and str(scenario) in err and "reference_machine" in err
    assert "dgx-a100 is the SLO reference" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["optimize", str(scenario), "--quiet", "--weights", "bf16"], capsys)  # the flag wins
    assert code == 2 and "weights bf16" in err
