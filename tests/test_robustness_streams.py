"""Machine-readable output stays machine-readable: --json stdout parses, nothing else leaks onto it
(solver banners, warnings), and warnings never reach stderr for ordinary inputs."""

from __future__ import annotations

import json

import pytest

from splitplan.cli.main import main
from splitplan.plan.ilp import Limits, PoolOption, solve_ilp


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    assert info.value.code in (0, None), out.err
    assert out.err.strip() == "", out.err
    return json.loads(out.out)


@pytest.mark.parametrize("argv", [
    ["catalog", "machines", "--json"],
    ["trace", "stats", "rr_code_80_2min.csv", "--json"],
    ["perf", "--model", "llama2-70b", "--machine", "dgx-a100", "--phase", "decode", "--batch", "16", "--json"],
    ["simulate", "--model", "llama2-70b", "--machines", "dgx-h100:2", "--trace", "AzureLLMInferenceTrace_code.csv",
     "--rate", "2", "--duration", "10", "--json"],
], ids=["catalog", "trace-stats", "perf", "simulate"])
def test_json_stdout_parses_and_stderr_is_silent(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(argv, capsys)


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_ilp_solvers_print_nothing(solver: str, capfd: pytest.CaptureFixture[str]) -> None:
    """The solver runs inside `optimize --json`: a banner on file descriptor 1 would corrupt plan.json."""
    options = [PoolOption("prompt", "dgx-h100", 5.0, 38.0, 10.2), PoolOption("token", "dgx-a100", 4.0, 17.6, 6.5)]
    capfd.readouterr()
    solutions = solve_ilp(options, Limits(cost_usd_per_h=200.0), "max_throughput", solver)
    out = capfd.readouterr()
    assert solutions and solutions[0].rate_rps > 0
    assert out.out == "" and out.err == ""
