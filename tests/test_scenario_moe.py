"""The Qwen3-235B-A22B chat example parses and every design's instance fits its machines (the full
optimize run, 4.7 s on the 2-core dev machine, is not part of the suite: scenarios/examples/qwen3_235b_chat.yaml)."""

from pathlib import Path

from splitplan.catalog import default_catalog
from splitplan.perf import build_perf_model
from splitplan.scenario import check_names, load_scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "examples" / "qwen3_235b_chat.yaml"


def test_qwen3_235b_chat_parses_and_its_designs_fit():
    catalog = default_catalog()
    scenario = load_scenario(SCENARIO)
    check_names(scenario, catalog)
    assert catalog.model(scenario.model).is_moe
    settings = scenario.perf_settings()
    assert settings.quant.weights.value == "fp8_block" and settings.stack == "vllm"
    machines = {m for d in scenario.designs for m in d.machines}
    assert {catalog.machine(m).gpu for m in machines} == {"h100-80gb", "h200", "b200"}
    for design in scenario.designs:
        for machine, tp in ((m, tp) for m in design.machines for tp in design.shapes("mixed")):
            perf = build_perf_model(scenario.model, machine, tp, settings, catalog)
            # room for at least 16 chat requests of 8k tokens on each instance
            assert perf.kv_capacity_tokens() > 16 * 8192, (design.name, machine)
            assert 5 < perf.decode_ms(32, 32 * 2000) < 80  # a decode step inside the 80 ms TBT budget
