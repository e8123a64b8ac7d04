"""optimize says in one line what a comparison rests on: mixed stacks, uncalibrated ones, extrapolation."""

from pathlib import Path

from splitplan.catalog import default_catalog
from splitplan.plan.problem import make_problem
from splitplan.plan.trust import stack_warnings
from splitplan.scenario import load_scenario, parse_scenario

ROOT = Path(__file__).resolve().parent.parent


def scenario(designs, stack="vllm"):
    return parse_scenario({"model": "llama3.1-70b", "workload": {"trace": "rr_conv_80_2min.csv"},
                           "perf": {"stack": stack, "weights": "fp8"}, "designs": designs,
                           "constraints": {"cost_usd_per_h": 300}}, source="t.yaml")


def test_the_mixed_stack_example_warns_that_software_differs():
    sc = load_scenario(ROOT / "scenarios" / "examples" / "mixed_stacks.yaml")
    lines = stack_warnings(make_problem(sc, default_catalog()))
    assert len(lines) == 1 and "different serving stacks" in lines[0]
    assert "vLLM-H100 on vllm" in lines[0] and "TRTLLM-H200 on trtllm" in lines[0]


def test_one_calibrated_stack_on_its_architecture_says_nothing():
    sc = scenario([{"name": "H100", "kind": "baseline", "machines": ["dgx-h100"]},
                   {"name": "H200", "kind": "baseline", "machines": ["dgx-h200"]}])
    assert stack_warnings(make_problem(sc, default_catalog())) == []


def test_extrapolated_architectures_and_uncalibrated_stacks_are_named():
    sc = scenario([{"name": "H100", "kind": "baseline", "machines": ["dgx-h100"]},
                   {"name": "B200", "kind": "baseline", "machines": ["hgx-b200"]}])
    lines = stack_warnings(make_problem(sc, default_catalog()))
    assert len(lines) == 1 and "extrapolated" in lines[0] and "blackwell" in lines[0] and "B200" in lines[0]
    lines = stack_warnings(make_problem(scenario([{"name": "X", "kind": "baseline", "machines": ["dgx-h100"]}],
                                                 stack="spec"), default_catalog()))
    assert lines and "not calibrated" in lines[0]
