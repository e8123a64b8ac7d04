"""Scenario files: loading, one-line errors naming the field, overrides and expectations."""

from pathlib import Path

import pytest
import yaml

from splitplan.catalog import default_catalog
from splitplan.errors import SplitplanError
from splitplan.scenario import Expectation, check_names, evaluate_expectations, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parent.parent

BASE = {
    "model": "llama2-70b",
    "workload": {"trace": "rr_conv_80_2min.csv", "duration_s": 10},
    "designs": [{"name": "Baseline-H100", "kind": "baseline", "machines": ["dgx-h100"]},
                {"name": "Splitwise-HA", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a100"]}],
    "constraints": {"power_kw": 100},
}


def write(tmp_path, data, name="x.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def patched(**changes):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return data


def error_of(tmp_path, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(SplitplanError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_quickstart_loads_with_defaults():
    s = load_scenario(REPO / "scenarios" / "quickstart.yaml")
    assert s.model == "llama2-70b" and s.objective == "max_throughput"
    assert [d.name for d in s.designs] == ["Baseline-H100", "Splitwise-HA", "Splitwise-HHcap"]
    assert len(s.slos) == 9 and s.seed_list() == (0, 1, 2)
    assert Path(s.workload.trace).is_file()
    check_names(s, default_catalog())


def test_every_bundled_scenario_loads():
    paths = [REPO / "scenarios" / "quickstart.yaml", *sorted((REPO / "scenarios" / "examples").glob("*.yaml"))]
    for path in paths:
        check_names(load_scenario(path), default_catalog())


def test_unknown_field_suggests(tmp_path):
    message = error_of(tmp_path, patched(constraints__powr_kw=10))
    assert "constraints.powr_kw: unknown field (did you mean power_kw?)" in message


@pytest.mark.parametrize("change,expected", [
    ({"constraints__power_kw": -5}, "constraints.power_kw: must be > 0"),
    ({"constraints__cost_usd_per_h": 0}, "constraints.cost_usd_per_h: must be > 0"),
    ({"constraints__power_kw": "lots"}, "constraints.power_kw: must be a number"),
    ({"objective": "max_thruput"}, "objective: 'max_thruput' is not one of"),
    ({"search__method": "anneal"}, "search.method"),
    ({"search__require_fraction": 1.5}, "search.require_fraction: must be <= 1.0"),
    ({"workload__generator": "possion"}, "did you mean poisson"),
    ({"workload__trace": "nope.csv"}, "workload.trace: file 'nope.csv' not found"),
    ({"slos": [{"metric": "ttft", "percentile": 100, "slowdown": 2}]}, "slos[0].percentile"),
    ({"slos": [{"metric": "ttft", "percentile": 0, "slowdown": 2}]}, "slos[0].percentile"),
    ({"constraints__min_throughput_rps": 5, "constraints__max_machines": 0}, "constraints.max_machines"),
    ({"objective": "min_cost"}, "needs a target: set constraints.min_throughput_rps"),
    ({"designs": []}, "designs: must be a non-empty list"),
])
def test_bad_values_name_the_field(tmp_path, change, expected):
    assert expected in error_of(tmp_path, patched(**change))


def test_design_errors(tmp_path):
    bad = patched(designs=[{"name": "S", "kind": "splitwise", "prompt": ["dgx-h100"]}])
    assert "designs.S.token: required field is missing" in error_of(tmp_path, bad)
    bad = patched(designs=[{"name": "B", "kind": "baseline", "machines": ["dgx-h100"], "tp": 3}])
    assert "designs.B.tp: must be a power of two" in error_of(tmp_path, bad)
    bad = patched(designs=[BASE["designs"][0], BASE["designs"][0]])
    assert "used twice" in error_of(tmp_path, bad)


def test_unknown_machine_is_reported_with_field(tmp_path):
    data = patched(designs=[{"name": "S", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a10"]}])
    scenario = load_scenario(write(tmp_path, data))
    with pytest.raises(SplitplanError, match=r"designs\.S\.token: unknown machine 'dgx-a10'"):
        check_names(scenario, default_catalog())


def test_relative_trace_resolves_next_to_scenario(tmp_path):
    (tmp_path / "mine.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,10,5\n")
    s = load_scenario(write(tmp_path, patched(workload__trace="mine.csv")))
    assert Path(s.workload.trace) == tmp_path / "mine.csv"


def test_overrides_apply_and_recheck(tmp_path):
    s = load_scenario(write(tmp_path, BASE))
    t = s.with_overrides(objective="min_power", min_throughput_rps=3.0, seeds=2, workers=1)
    assert t.objective == "min_power" and t.constraints.min_throughput_rps == 3.0 and t.seed_list() == (0, 1)
    with pytest.raises(SplitplanError, match="needs a target"):
        s.with_overrides(objective="min_cost")


def test_expectations():
    view = {"best": {"throughput_rps": 10.0, "design": "Splitwise-HA"},
            "designs": {"Splitwise-HA": {"prompt_machines": 3}}}
    checks = [Expectation("best.throughput_rps", value=10.5, rel_tol=0.1),
              Expectation("best.throughput_rps", value=12.0, abs_tol=1.0),
              Expectation("designs.Splitwise-HA.prompt_machines", min=2, max=3),
              Expectation("best.design", value="Splitwise-HA"),
              Expectation("designs.Splitwise-HB.prompt_machines", value=3, abs_tol=0)]
    results = evaluate_expectations(view, checks)
    assert [r.passed for r in results] == [True, False, True, True, False]
    assert "did you mean Splitwise-HA" in results[4].message


def test_expect_block_validation(tmp_path):
    assert "give 'value'" in error_of(tmp_path, patched(expect=[{"path": "best.throughput_rps"}]))
    assert "min 5 is above max 1" in error_of(tmp_path, patched(expect=[{"path": "a", "min": 5, "max": 1}]))


def test_catalog_files_resolve_next_to_scenario(tmp_path):
    (tmp_path / "extra.yaml").write_text("machines: []\n")
    s = load_scenario(write(tmp_path, patched(catalog=["extra.yaml"])))
    assert s.catalog_files == (str(tmp_path / "extra.yaml"),)


def test_overrides_are_validated(tmp_path):
    s = load_scenario(write(tmp_path, BASE))
    with pytest.raises(SplitplanError, match="overrides: constraints.power_kw: must be > 0"):
        s.with_overrides(max_power_kw=-1)
    with pytest.raises(SplitplanError, match="unknown override 'max_powr_kw'"):
        s.with_overrides(max_powr_kw=5)
