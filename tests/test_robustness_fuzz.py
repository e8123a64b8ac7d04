"""Random mutations of valid inputs: the loaders only ever raise SplitplanError (one line), never
KeyError/TypeError/ValueError/AttributeError from deep inside.

Hypothesis runs derandomized (same examples every run) with modest example counts (the whole file
stays well under 20 s).
"""

from __future__ import annotations

import copy
import itertools
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from splitplan.catalog import default_catalog, load_catalog
from splitplan.errors import SplitplanError
from splitplan.scenario import check_names, load_scenario, parse_scenario
from splitplan.workload import load_trace

FUZZ = settings(derandomize=True, deadline=None, max_examples=60, suppress_health_check=list(HealthCheck),
                database=None)

VALID_SCENARIO: dict[str, Any] = {
    "name": "fuzz",
    "description": "a valid scenario that the tests mutate",
    "model": "llama2-70b",
    "workload": {"trace": "AzureLLMInferenceTrace_conv.csv", "generator": "poisson", "duration_s": 30, "seed": 0},
    "slos": [{"metric": "ttft", "percentile": 99, "slowdown": 6}, {"metric": "tbt", "percentile": 90,
                                                                    "limit_ms": 200}],
    "reference_machine": "dgx-a100",
    "designs": [
        {"name": "Baseline-H100", "kind": "baseline", "machines": ["dgx-h100"]},
        {"name": "Splitwise-HA", "kind": "splitwise", "prompt": ["dgx-h100"], "token": ["dgx-a100"], "tp": 8},
    ],
    "constraints": {"cost_usd_per_h": 400, "power_kw": 300, "max_machines": 40},
    "objective": "max_throughput",
    "search": {"method": "ilp", "seeds": 3, "verify_top": 2, "local_radius": 1, "workers": 2},
    "perf": {"backend": "analytic", "compat": "none"},
    "expect": [{"path": "best.design", "value": "Splitwise-HA"}, {"path": "best.throughput_rps", "min": 1}],
}

VALID_CATALOG: dict[str, Any] = {
    "gpus": [{"name": "fuzz-gpu", "arch": "hopper", "bf16_tflops": 500, "fp8_tflops": 1000, "hbm_gb": 96,
              "hbm_gbps": 4000, "nvlink_gbps": 450, "tdp_w": 700, "idle_w": 80}],
    "machines": [{"name": "fuzz-box", "gpu": "fuzz-gpu", "gpus": 8, "power_kw": 10, "cost_usd_per_h": 30,
                  "nic_gbps": 50, "power_cap_fraction": 0.8, "idle_kw": 1}],
    "models": [{"name": "fuzz-model", "layers": 32, "hidden": 4096, "heads": 32, "kv_heads": 8, "ffn": 14336,
                "vocab": 128256, "gated_mlp": True},
               {"name": "fuzz-moe", "layers": 8, "hidden": 1024, "heads": 16, "kv_heads": 16, "ffn": 4096,
                "vocab": 32000, "attention": "mla", "q_lora_rank": 256, "kv_lora_rank": 128, "qk_nope_head_dim": 32,
                "qk_rope_head_dim": 16, "v_head_dim": 32, "experts": 16, "experts_per_token": 2,
                "shared_experts": 1, "expert_ffn": 512, "dense_layers": 1, "sliding_window": 64,
                "sliding_layers": 4, "native_weights": "fp8_block", "card_params_b": 0.5, "aliases": ["x/fuzz-moe"]}],
}

# Replacement values: wrong types, signs, sizes, and garbage text.
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.sampled_from([-1, 0, -0.5, 1e308, math.inf, -math.inf,
                                                                              math.nan, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", " ", "dgx-h1000", "p101", "400 USD", "10 s", "llama2-70b", "[", "{}", "null", "\x00"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key/index path inside a nested mapping/list (the root excluded)."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        out.append(prefix + (key,))
        out += paths(child, prefix + (key,))
    return out


def mutate(data: Any, choices: list[tuple[int, str, Any]]) -> Any:
    """Apply (path index, action, value) mutations: drop, rename, replace, or negate a field."""
    data = copy.deepcopy(data)
    for index, action, value in choices:
        all_paths = paths(data)
        if not all_paths:
            break
        path = all_paths[index % len(all_paths)]
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if action == "drop":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[f"{key}{value if isinstance(value, str) else 'x'}"] = parent.pop(key)
        elif action == "negate" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = -parent[key] if parent[key] else -1
        else:
            parent[key] = value
    return data


MUTATIONS = st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(["drop", "rename", "replace", "negate"]), JUNK),
                     min_size=1, max_size=3)


def assert_one_line(exc: SplitplanError, source: str | None = None) -> None:
    text = str(exc)
    assert text and "\n" not in text
    if source is not None:
        assert text.startswith(source) or source in text, text


def test_the_unmutated_inputs_are_valid() -> None:
    scenario = parse_scenario(copy.deepcopy(VALID_SCENARIO), source="fuzz.yaml")
    check_names(scenario, default_catalog())
    assert len(scenario.designs) == 2 and len(paths(VALID_SCENARIO)) > 50
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(VALID_CATALOG))
        catalog = load_catalog([path])
        assert catalog.machine("fuzz-box").gpu == "fuzz-gpu" and catalog.model("x/fuzz-moe").is_moe


@FUZZ
@given(MUTATIONS)
def test_mutated_scenarios_raise_only_splitplan_error(choices: list[tuple[int, str, Any]]) -> None:
    data = mutate(VALID_SCENARIO, choices)
    try:
        scenario = parse_scenario(data, source="fuzz.yaml")
        check_names(scenario, default_catalog())
    except SplitplanError as exc:
        assert_one_line(exc, "fuzz.yaml")


@FUZZ
@given(MUTATIONS)
def test_mutated_catalogs_raise_only_splitplan_error(choices: list[tuple[int, str, Any]]) -> None:
    data = mutate(VALID_CATALOG, choices)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        try:
            load_catalog([path])
        except SplitplanError as exc:
            assert_one_line(exc)


_SCENARIO_TEXT = yaml.safe_dump(VALID_SCENARIO, sort_keys=False)


@FUZZ
@given(st.integers(0, len(_SCENARIO_TEXT)), st.integers(0, 20),
       st.text(alphabet=st.sampled_from(list(":-[]{}#&*!|>'\"%@` \n\tx0.9")), max_size=6))
def test_corrupted_scenario_text_raises_only_splitplan_error(at: int, cut: int, insert: str) -> None:
    """Byte-level damage to the YAML text (unbalanced brackets, tabs, anchors, stray colons)."""
    text = _SCENARIO_TEXT[:at] + insert + _SCENARIO_TEXT[at + cut:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scenario.yaml"
        path.write_text(text)
        try:
            check_names(load_scenario(path), default_catalog())
        except SplitplanError as exc:
            assert_one_line(exc, str(path))


_TRACE_COUNTER = itertools.count()
CELL = st.one_of(st.integers(-5, 10**6).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.sampled_from(["", " ", "x", "1e30", "2023-11-16 18:15:46.6805900", '"', "1,2", "nan"]))


@FUZZ
@given(st.sampled_from(["arrival_s,prompt_tokens,output_tokens", "TIMESTAMP,ContextTokens,GeneratedTokens",
                        "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size",
                        "arrival_s,prompt_tokens", "a,b,c", ""]),
       st.lists(st.lists(CELL, min_size=0, max_size=4), max_size=5))
def test_random_trace_files_raise_only_splitplan_error(header: str, rows: list[list[str]]) -> None:
    text = header + "\n" + "".join(",".join(row) + "\n" for row in rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trace{next(_TRACE_COUNTER)}.csv"  # a fresh name: load_trace caches by file
        path.write_text(text)
        try:
            w = load_trace(path)
        except SplitplanError as exc:
            assert_one_line(exc, str(path))
            return
        assert len(w) >= 1 and (w.prompt_tokens >= 1).all() and (w.output_tokens >= 1).all()
        assert (w.arrival_s >= 0).all() and (w.arrival_s[1:] >= w.arrival_s[:-1]).all()


_STACK = yaml.safe_load((Path(__file__).resolve().parent.parent / "profiles" / "stacks" / "vllm-2023.yaml").read_text())
_STACK["name"] = "fuzzed"  # never confused with the bundled vllm-2023 in provenance or caches
_STACK_COUNTER = itertools.count()


@FUZZ
@given(MUTATIONS)
def test_mutated_stack_files_raise_only_splitplan_error(choices: list[tuple[int, str, Any]]) -> None:
    """A user's stack YAML (from `splitplan calibrate`, then hand-edited) feeds every perf model."""
    from splitplan.perf import build_perf_model
    from splitplan.perf.base import PerfSettings

    data = mutate(_STACK, choices)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"stack{next(_STACK_COUNTER)}.yaml"  # fresh name: models and stacks are cached by path
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        try:
            perf = build_perf_model("llama2-70b", "dgx-h100", 8, PerfSettings(stack=str(path)), default_catalog())
        except SplitplanError as exc:
            assert_one_line(exc)
            return
        assert math.isfinite(float(perf.prefill_ms(1, 1000, 1000**2))) and perf.prefill_ms(1, 1000, 1000**2) > 0
        assert math.isfinite(float(perf.decode_ms(8, 8000))) and perf.decode_ms(8, 8000) > 0


@pytest.mark.parametrize("key, value, expected", [
    ("eta_m", -0.85, "-0.85 is outside its physical range [0.3, 1]"),   # a negative efficiency: complex times
    ("eta_c_bf16", 0.0, "0.0 is outside its physical range [0.2, 1]"),  # zero efficiency: division by zero
    ("launch_us", -1.0, "-1.0 is outside its physical range [0, 200]"),
    ("eta_cm", 0.5, "unknown parameter 'eta_cm'"),
    ("seq_us", "0.3 ms", "must be a finite number, got '0.3 ms'"),
    ("ar_big_tokens", float("nan"), "must be a finite number, got nan"),
])
def test_impossible_stack_parameter_is_an_input_error(key: str, value: Any, expected: str, tmp_path: Path) -> None:
    """Found by the property above: a negative efficiency made prefill times complex numbers (TypeError)."""
    from splitplan.perf import build_perf_model
    from splitplan.perf.base import PerfSettings

    data = copy.deepcopy(_STACK)
    data["arch"]["hopper"][key] = value
    path = tmp_path / f"stack-{key}.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SplitplanError, match=key) as info:
        build_perf_model("llama2-70b", "dgx-h100", 8, PerfSettings(stack=str(path)), default_catalog())
    assert expected in str(info.value)
    assert_one_line(info.value, str(path))
