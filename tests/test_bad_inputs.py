"""Bad input -> ONE stderr line "error: <file>: <field>: <problem>", exit status 2, never a traceback.

A corpus of bad files (tests/bad_inputs/) and bad flags, run through the real entry point
`splitplan.cli.main.main` in-process (fast), plus a few through a subprocess (the installed script).
Each case also names a fragment the message must contain (the file, field or value at fault), so a
vague error counts as a failure too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from splitplan.cli.main import main

BAD = Path(__file__).resolve().parent / "bad_inputs"
SIM = ["simulate", "--model", "llama2-70b", "--trace", "rr_conv_80_2min.csv", "--quiet"]
PERF = ["perf", "--model", "llama2-70b", "--machine", "dgx-h100"]
GEN = ["trace", "generate", "--from", "AzureLLMInferenceTrace_conv.csv", "--out", "unused.csv"]


def bad(name: str) -> str:
    return str(BAD / name)


# (id, argv, fragments the one error line must contain)
CASES: list[tuple[str, list[str], tuple[str, ...]]] = [
    # ---- catalog YAML
    ("catalog-malformed", ["catalog", "gpus", "--catalog", bad("catalog_malformed.yaml")],
     ("catalog_malformed.yaml", "malformed YAML")),
    ("catalog-empty", ["catalog", "gpus", "--catalog", bad("catalog_empty.yaml")], ("catalog_empty.yaml", "empty")),
    ("catalog-missing-file", ["catalog", "gpus", "--catalog", bad("no_such_catalog.yaml")],
     ("no_such_catalog.yaml", "not found")),
    ("catalog-not-mapping", ["catalog", "gpus", "--catalog", bad("catalog_not_mapping.yaml")],
     ("catalog_not_mapping.yaml", "mapping")),
    ("catalog-unknown-section", ["catalog", "gpus", "--catalog", bad("catalog_unknown_section.yaml")],
     ("catalog_unknown_section.yaml", "'gpu'", "did you mean gpus")),
    ("catalog-wrong-type", ["catalog", "gpus", "--catalog", bad("catalog_wrong_type.yaml")],
     ("catalog_wrong_type.yaml", "bf16_tflops", "number")),
    ("catalog-units-in-number", ["catalog", "gpus", "--catalog", bad("catalog_units_in_number.yaml")],
     ("catalog_units_in_number.yaml", "tdp_w", "700W")),
    ("catalog-negative-power", ["catalog", "machines", "--catalog", bad("catalog_negative_power.yaml")],
     ("catalog_negative_power.yaml", "power_kw", "-10.2")),
    ("catalog-zero-cost", ["catalog", "machines", "--catalog", bad("catalog_zero_cost.yaml")],
     ("catalog_zero_cost.yaml", "cost_usd_per_h", "positive")),
    ("catalog-unknown-gpu", ["catalog", "machines", "--catalog", bad("catalog_unknown_gpu.yaml")],
     ("catalog_unknown_gpu.yaml", "m1", "h100-80gbx", "did you mean")),
    ("catalog-cap-above-one", ["catalog", "machines", "--catalog", bad("catalog_cap_above_one.yaml")],
     ("catalog_cap_above_one.yaml", "power_cap_fraction", "1.5")),
    ("catalog-missing-field", ["catalog", "models", "--catalog", bad("catalog_missing_field.yaml")],
     ("catalog_missing_field.yaml", "tiny", "ffn")),
    ("catalog-fractional-layers", ["catalog", "models", "--catalog", bad("catalog_fractional_layers.yaml")],
     ("catalog_fractional_layers.yaml", "layers", "whole number")),
    ("catalog-unknown-kind", ["catalog", "gpu"], ("command line", "'gpu'", "gpus")),
    ("catalog-kv-heads-exceed-heads", ["catalog", "models", "--catalog", bad("catalog_kv_heads.yaml")],
     ("catalog_kv_heads.yaml", "model 'tiny'.kv_heads", "exceed")),
    ("catalog-duplicate-alias", ["catalog", "models", "--catalog", bad("catalog_duplicate_alias.yaml")],
     ("catalog_duplicate_alias.yaml", "duplicate model alias 'org/tiny'", "tiny-moe")),
    ("catalog-gpu-without-arch", ["catalog", "gpus", "--catalog", bad("catalog_gpu_without_arch.yaml")],
     ("catalog_gpu_without_arch.yaml", "gpu 'x1'", "'arch'")),
    # ---- trace CSV
    ("trace-empty", ["trace", "stats", bad("trace_empty.csv")], ("trace_empty.csv", "empty")),
    ("trace-header-only", ["trace", "stats", bad("trace_header_only.csv")], ("trace_header_only.csv", "no requests")),
    ("trace-bad-header", ["trace", "stats", bad("trace_bad_header.csv")], ("trace_bad_header.csv", "header")),
    ("trace-unsorted", ["trace", "stats", bad("trace_unsorted.csv")],
     ("trace_unsorted.csv", "line 3", "arrival_s", "sorted")),
    ("trace-negative-tokens", ["trace", "stats", bad("trace_negative_tokens.csv")],
     ("trace_negative_tokens.csv", "line 3", "prompt_tokens", "-100")),
    ("trace-fractional-tokens", ["trace", "stats", bad("trace_fractional_tokens.csv")],
     ("trace_fractional_tokens.csv", "output_tokens", "10.5")),
    ("trace-not-number", ["trace", "stats", bad("trace_not_number.csv")],
     ("trace_not_number.csv", "output_tokens", "'ten'")),
    ("trace-extra-fields", ["trace", "stats", bad("trace_extra_fields.csv")], ("trace_extra_fields.csv", "fields")),
    ("trace-huge-tokens", ["trace", "stats", bad("trace_huge_tokens.csv")],
     ("trace_huge_tokens.csv", "prompt_tokens", "1e30")),
    ("trace-binary", ["trace", "stats", bad("trace_binary.csv")], ("trace_binary.csv", "CSV")),
    ("trace-bad-timestamp", ["trace", "stats", bad("trace_bad_timestamp.csv")],
     ("trace_bad_timestamp.csv", "line 3", "TIMESTAMP", "yesterday")),
    ("trace-negative-arrival", ["trace", "stats", bad("trace_negative_arrival.csv")],
     ("trace_negative_arrival.csv", "arrival_s", "negative")),
    ("trace-missing-file", ["trace", "stats", "no_such_trace.csv"], ("no_such_trace.csv", "not found")),
    # ---- trace generate flags
    ("generate-negative-rate", GEN + ["--rate", "-1", "--duration", "10"], ("rate_rps", "-1")),
    ("generate-zero-duration", GEN + ["--rate", "1", "--duration", "0"], ("duration_s", "0")),
    ("generate-rate-not-number", GEN + ["--rate", "fast", "--duration", "10"], ("--rate", "'fast'")),
    ("generate-rate-nan", GEN + ["--rate", "nan", "--duration", "10"], ("rate_rps", "nan")),
    ("generate-absurd-count", GEN + ["--rate", "1e300", "--duration", "10"], ("rate_rps", "requests")),
    ("generate-bad-dist", ["trace", "generate", "--prompt", "lognormal:1000", "--output", "fixed:10", "--rate", "1",
                           "--duration", "10", "--out", "unused.csv"], ("--prompt", "lognormal", "2 parameter")),
    ("generate-unknown-dist", ["trace", "generate", "--prompt", "zipf:2", "--output", "fixed:10", "--rate", "1",
                               "--duration", "10", "--out", "unused.csv"], ("--prompt", "zipf")),
    ("generate-huge-size", ["trace", "generate", "--prompt", "fixed:1e30", "--output", "fixed:10", "--rate", "1",
                            "--duration", "10", "--out", "unused.csv"], ("--prompt", "at most")),
    ("generate-zero-cv", ["trace", "generate", "--prompt", "fixed:10", "--output", "fixed:10", "--rate", "1",
                          "--duration", "10", "--arrivals", "gamma", "--cv", "0", "--out", "unused.csv"], ("cv", "0")),
    ("generate-unwritable", ["trace", "generate", "--from", "AzureLLMInferenceTrace_conv.csv", "--rate", "1",
                             "--duration", "10", "--out", "/nonexistent-dir/x.csv"],
     ("/nonexistent-dir/x.csv", "write")),
    ("generate-no-such-option", GEN + ["--rat", "1"], ("command line", "--rat")),
    # ---- scenarios (optimize)
    ("scenario-malformed", ["optimize", bad("scenario_malformed.yaml")], ("scenario_malformed.yaml", "malformed YAML")),
    ("scenario-empty", ["optimize", bad("scenario_empty.yaml")], ("scenario_empty.yaml", "empty")),
    ("scenario-missing-file", ["optimize", bad("no_such_scenario.yaml")], ("no_such_scenario.yaml", "not found")),
    ("scenario-not-mapping", ["optimize", bad("scenario_not_mapping.yaml")], ("scenario_not_mapping.yaml", "mapping")),
    ("scenario-unknown-model", ["optimize", bad("scenario_unknown_model.yaml")],
     ("scenario_unknown_model.yaml", "model", "llama2-7b0", "did you mean")),
    ("scenario-unknown-machine", ["optimize", bad("scenario_unknown_machine.yaml")],
     ("scenario_unknown_machine.yaml", "designs.B.machines", "dgx-h1000", "did you mean")),
    ("scenario-negative-budget", ["optimize", bad("scenario_negative_budget.yaml")],
     ("scenario_negative_budget.yaml", "constraints.cost_usd_per_h", "-100")),
    ("scenario-zero-power", ["optimize", bad("scenario_zero_power.yaml")],
     ("scenario_zero_power.yaml", "constraints.power_kw", "0")),
    ("scenario-budget-with-units", ["optimize", bad("scenario_budget_with_units.yaml")],
     ("scenario_budget_with_units.yaml", "constraints.cost_usd_per_h", "400 USD")),
    ("scenario-negative-rate", ["optimize", bad("scenario_negative_rate.yaml")],
     ("scenario_negative_rate.yaml", "constraints.min_throughput_rps", "-5")),
    ("scenario-percentile-100", ["optimize", bad("scenario_percentile_100.yaml")],
     ("scenario_percentile_100.yaml", "percentile", "100")),
    ("scenario-percentile-0", ["optimize", bad("scenario_percentile_0.yaml")],
     ("scenario_percentile_0.yaml", "percentile", "0")),
    ("scenario-slowdown-below-one", ["optimize", bad("scenario_slowdown_below_one.yaml")],
     ("scenario_slowdown_below_one.yaml", "slowdown", "unloaded")),
    ("scenario-unmeetable-slo", ["optimize", bad("scenario_unmeetable_slo.yaml")],
     ("scenario_unmeetable_slo.yaml", "slos", "unloaded")),
    ("scenario-wrong-type", ["optimize", bad("scenario_wrong_type.yaml")],
     ("scenario_wrong_type.yaml", "workload.duration_s", "ten seconds")),
    ("scenario-negative-duration", ["optimize", bad("scenario_negative_duration.yaml")],
     ("scenario_negative_duration.yaml", "workload.duration_s", "-10")),
    ("scenario-missing-trace", ["optimize", bad("scenario_missing_trace.yaml")],
     ("scenario_missing_trace.yaml", "workload.trace", "no_such_trace.csv")),
    ("scenario-empty-trace", ["optimize", bad("scenario_empty_trace.yaml")], ("trace_header_only.csv", "no requests")),
    ("scenario-prompt-too-long", ["optimize", bad("scenario_prompt_too_long.yaml")],
     ("trace_prompt_too_long.csv", "KV")),
    ("scenario-model-does-not-fit", ["optimize", bad("scenario_model_does_not_fit.yaml")],
     ("scenario_model_does_not_fit.yaml", "designs.B", "bloom-176b", "fit")),
    ("scenario-model-does-not-fit-tp1", ["optimize", bad("scenario_model_does_not_fit_tp1.yaml")],
     ("scenario_model_does_not_fit_tp1.yaml", "designs.B", "llama2-70b", "fit")),
    ("scenario-contradictory-objective", ["optimize", bad("scenario_contradictory_objective.yaml")],
     ("scenario_contradictory_objective.yaml", "objective", "min_throughput_rps")),
    ("scenario-contradictory-max-machines", ["optimize", bad("scenario_contradictory_max_machines.yaml")],
     ("scenario_contradictory_max_machines.yaml", "constraints.max_machines")),
    ("scenario-typo-field", ["optimize", bad("scenario_typo_field.yaml")],
     ("scenario_typo_field.yaml", "objectve", "did you mean objective")),
    ("scenario-duplicate-design", ["optimize", bad("scenario_duplicate_design.yaml")],
     ("scenario_duplicate_design.yaml", "designs", "twice")),
    ("scenario-tp-not-power-of-two", ["optimize", bad("scenario_tp_not_power_of_two.yaml")],
     ("scenario_tp_not_power_of_two.yaml", "designs.B.tp", "3")),
    ("scenario-zero-seeds", ["optimize", bad("scenario_zero_seeds.yaml")],
     ("scenario_zero_seeds.yaml", "search.seeds", "0")),
    ("optimize-negative-budget-flag", ["optimize", "scenarios/quickstart.yaml", "--max-cost-usd-per-h", "-5"],
     ("command line", "--max-cost-usd-per-h")),
    ("optimize-unwritable-out", ["optimize", "scenarios/quickstart.yaml", "--out", "/proc/no/plan"], ("/proc/no",)),
    ("optimize-zero-workers", ["optimize", "scenarios/quickstart.yaml", "--workers", "0"],
     ("command line", "--workers")),
    # ---- simulate flags
    ("simulate-unknown-machine", SIM + ["--machines", "dgx-h10:4"], ("--machines", "dgx-h10", "did you mean")),
    ("simulate-unknown-model", ["simulate", "--model", "llama2-7b0", "--trace", "rr_conv_80_2min.csv",
                                "--machines", "dgx-h100:4"], ("--model", "llama2-7b0", "did you mean")),
    ("simulate-negative-count", SIM + ["--machines", "dgx-h100:-4"], ("--machines", "-4")),
    ("simulate-count-not-number", SIM + ["--machines", "dgx-h100:x"], ("--machines", "'x'")),
    ("simulate-no-machines", SIM + ["--machines", "dgx-h100:0"], ("command line", "no machines")),
    ("simulate-bad-tp", SIM + ["--machines", "dgx-h100:4:tp3"], ("command line", "tp 3")),
    ("simulate-model-does-not-fit", SIM + ["--machines", "l40s-x8:1:tp1"], ("command line", "llama2-70b", "fit")),
    ("simulate-absurd-count", SIM + ["--machines", "dgx-h100:100000000"], ("command line", "100,000,000 machines")),
    ("simulate-no-token-pool", SIM + ["--prompt", "dgx-h100:4"], ("command line", "token")),
    ("simulate-percentile-100", SIM + ["--machines", "dgx-h100:4", "--slo", "ttft:p100:6x"], ("--slo", "100")),
    ("simulate-slo-no-unit", SIM + ["--machines", "dgx-h100:4", "--slo", "ttft:p99:5"], ("--slo", "unit")),
    ("simulate-unknown-metric", SIM + ["--machines", "dgx-h100:4", "--slo", "ttfb:p99:5x"], ("--slo", "ttfb")),
    ("simulate-unmeetable-slo", SIM + ["--machines", "dgx-h100:4", "--slo", "ttft:p99:1ms"], ("--slo", "unloaded")),
    ("simulate-zero-seeds", SIM + ["--machines", "dgx-h100:4", "--seeds", "0"], ("--seeds",)),
    ("simulate-negative-rate", SIM + ["--machines", "dgx-h100:4", "--rate", "-3"], ("rate", "-3")),
    ("simulate-zero-duration", SIM + ["--machines", "dgx-h100:4", "--rate", "3", "--duration", "0"], ("duration", "0")),
    ("simulate-empty-trace", ["simulate", "--model", "llama2-70b", "--trace", bad("trace_header_only.csv"),
                              "--machines", "dgx-h100:1"], ("trace_header_only.csv", "no requests")),
    ("simulate-missing-profile", SIM + ["--machines", "dgx-h100:4", "--perf", "profile", "--profile",
                                        bad("no_such_profile.csv")], ("no_such_profile.csv", "not found")),
    ("simulate-bad-profile", SIM + ["--machines", "dgx-h100:4", "--perf", "profile", "--profile",
                                    bad("trace_bad_header.csv")], ("trace_bad_header.csv", "columns")),
    ("simulate-malformed-stack", SIM + ["--machines", "dgx-h100:4", "--stack", bad("catalog_malformed.yaml")],
     ("catalog_malformed.yaml", "malformed YAML")),
    ("simulate-stack-param-out-of-bounds", SIM + ["--machines", "dgx-h100:4", "--stack",
                                                  bad("stack_param_out_of_bounds.yaml")],
     ("stack_param_out_of_bounds.yaml", "arch.hopper.eta_m", "outside its physical range [0.3, 1]")),
    ("perf-stack-unknown-param", PERF + ["--stack", bad("stack_unknown_param.yaml")],
     ("stack_unknown_param.yaml", "params", "unknown parameter 'lauch_us'", "launch_us")),
    ("perf-stack-not-a-number", PERF + ["--stack", bad("stack_not_a_number.yaml")],
     ("stack_not_a_number.yaml", "arch.ampere.seq_us", "must be a finite number")),
    ("simulate-unwritable-out", SIM + ["--machines", "dgx-h100:2", "--duration", "5", "--out", "/proc/no/out"],
     ("/proc/no", "No such file")),
    ("simulate-out-under-a-file", SIM + ["--machines", "dgx-h100:2", "--duration", "5", "--out",
                                         bad("catalog_empty.yaml") + "/out"], ("catalog_empty.yaml",)),
    # ---- perf queries
    ("perf-prompt-beyond-kv", PERF + ["--prompt-tokens", "5000000"], ("prompt", "KV")),
    ("perf-decode-beyond-kv", PERF + ["--phase", "decode", "--batch", "512", "--context-tokens", "100000"],
     ("context", "KV")),
    ("perf-zero-batch", PERF + ["--batch", "0"], ("batch", "0")),
    ("perf-bad-tp", PERF + ["--tp", "3"], ("tp", "3")),
    ("perf-does-not-fit", ["perf", "--model", "llama2-70b", "--machine", "l40s-x8", "--tp", "1"], ("l40s-x8", "fit")),
    # ---- check, reproduce
    ("check-missing", ["check", bad("no_such_scenario.yaml")], ("no_such_scenario.yaml", "no such")),
    ("check-malformed", ["check", bad("scenario_malformed.yaml")], ("scenario_malformed.yaml", "malformed YAML")),
    ("reproduce-not-results", ["reproduce", "--from-results", bad("results_not_splitplan.json"), "--out", "r.md"],
     ("results_not_splitplan.json", "not a results file")),
    ("reproduce-results-not-json", ["reproduce", "--from-results", bad("trace_empty.csv"), "--out", "r.md"],
     ("trace_empty.csv", "cannot read")),
    # ---- report
    ("report-missing-dir", ["report", bad("no_such_dir")], ("no_such_dir", "no such directory")),
    ("report-not-an-output", ["report", str(BAD)], ("bad_inputs", "plan.json")),
    # ---- hostile YAML: refused while reading, before anything walks the value
    ("scenario-alias-bomb", ["optimize", bad("scenario_alias_bomb.yaml")],
     ("scenario_alias_bomb.yaml", "aliases expand", "926,177,")),
    ("catalog-alias-bomb", ["catalog", "gpus", "--catalog", bad("catalog_alias_bomb.yaml")],
     ("catalog_alias_bomb.yaml", "aliases expand")),
    ("scenario-recursive-alias", ["optimize", bad("scenario_recursive_alias.yaml")],
     ("scenario_recursive_alias.yaml", "refers to itself")),
    ("scenario-deep-nesting", ["optimize", bad("scenario_deep_nesting.yaml")],
     ("scenario_deep_nesting.yaml", "nested too deeply")),
    ("scenario-binary", ["optimize", bad("scenario_binary.yaml")], ("scenario_binary.yaml", "not UTF-8 text")),
    ("catalog-binary", ["catalog", "gpus", "--catalog", bad("catalog_binary.yaml")],
     ("catalog_binary.yaml", "malformed YAML")),
    ("scenario-is-directory", ["optimize", str(BAD)], ("command line", "bad_inputs", "is a directory")),
    ("scenario-trace-is-directory", ["optimize", bad("scenario_trace_is_directory.yaml")],
     ("scenario_trace_is_directory.yaml", "workload.trace", "'traces' is a directory")),
    # ---- NaN and infinities in numeric fields
    ("scenario-nan-duration", ["optimize", bad("scenario_nan_duration.yaml")],
     ("scenario_nan_duration.yaml", "workload.duration_s", "nan")),
    ("scenario-inf-budget", ["optimize", bad("scenario_inf_budget.yaml")],
     ("scenario_inf_budget.yaml", "constraints.cost_usd_per_h", "inf")),
    ("scenario-neg-inf-power", ["optimize", bad("scenario_neg_inf_power.yaml")],
     ("scenario_neg_inf_power.yaml", "constraints.power_kw", "-inf")),
    ("scenario-nan-rate", ["optimize", bad("scenario_nan_rate.yaml")],
     ("scenario_nan_rate.yaml", "constraints.min_throughput_rps", "nan")),
    ("scenario-inf-slo-limit", ["optimize", bad("scenario_inf_slo_limit.yaml")],
     ("scenario_inf_slo_limit.yaml", "slos[0].limit_ms", "inf")),
    ("scenario-nan-slowdown", ["optimize", bad("scenario_nan_slowdown.yaml")],
     ("scenario_nan_slowdown.yaml", "slos[0].slowdown", "nan")),
    ("simulate-infinite-duration", SIM + ["--machines", "dgx-h100:4", "--duration", "inf"], ("--duration", "inf")),
    # ---- absurd sizes: refused before any workload is generated or simulated
    ("scenario-million-seeds", ["optimize", bad("scenario_million_seeds.yaml")],
     ("scenario_million_seeds.yaml", "search.seeds", "1,000,000", "<= 100")),
    ("scenario-seed-list-too-long", ["optimize", bad("scenario_seed_list_too_long.yaml")],
     ("scenario_seed_list_too_long.yaml", "workload.seeds", "101 seeds")),
    ("scenario-huge-duration", ["optimize", bad("scenario_huge_duration.yaml")],  # 1e9: a number (YAML 1.2)
     ("scenario_huge_duration.yaml", "workload.duration_s", "<= 86,400", "1,000,000,000")),
    ("scenario-huge-max-per-pool", ["optimize", bad("scenario_huge_max_per_pool.yaml")],
     ("scenario_huge_max_per_pool.yaml", "search.max_per_pool", "<= 10,000")),
    ("scenario-huge-verify-top", ["optimize", bad("scenario_huge_verify_top.yaml")],
     ("scenario_huge_verify_top.yaml", "search.verify_top", "<= 100")),
    ("scenario-huge-workers", ["optimize", bad("scenario_huge_workers.yaml")],
     ("scenario_huge_workers.yaml", "search.workers", "<= 256")),
    ("scenario-absurd-request-count", ["optimize", bad("scenario_absurd_request_count.yaml")],
     ("scenario_absurd_request_count.yaml", "constraints.min_throughput_rps", "6e+07 requests")),
    ("optimize-million-seeds", ["optimize", "scenarios/quickstart.yaml", "--seeds", "1000000"],
     ("command line", "--seeds", "1000000")),
    ("optimize-huge-workers", ["optimize", "scenarios/quickstart.yaml", "--workers", "100000"],
     ("command line", "--workers", "100000")),
    ("simulate-absurd-rate", SIM + ["--machines", "dgx-h100:4", "--rate", "1e12"],
     ("command line", "--rate", "1.2e+14 requests")),
    ("simulate-huge-duration", SIM + ["--machines", "dgx-h100:4", "--rate", "1", "--duration", "1e9"],
     ("command line", "--duration", "86,400")),
    ("simulate-million-seeds", SIM + ["--machines", "dgx-h100:4", "--rate", "1", "--seeds", "1000000"],
     ("command line", "--seeds", "1000000")),
    ("simulate-negative-seed", SIM + ["--machines", "dgx-h100:4", "--rate", "1", "--seed", "-1"],
     ("command line", "--seed", "-1")),
    ("check-huge-workers", ["check", bad("scenario_typo_field.yaml"), "--workers", "100000"],
     ("command line", "--workers")),
    # ---- traces and profiles: bad rows and headers
    ("trace-zero-tokens", ["trace", "stats", bad("trace_zero_tokens.csv")],
     ("trace_zero_tokens.csv", "line 3", "output_tokens", "'0'")),
    ("scenario-zero-tokens", ["optimize", bad("scenario_zero_tokens.yaml")],
     ("trace_zero_tokens.csv", "output_tokens", "'0'")),
    ("trace-azure-unsorted", ["trace", "stats", bad("trace_azure_unsorted.csv")],
     ("trace_azure_unsorted.csv", "line 3", "TIMESTAMP", "sorted")),
    ("trace-missing-column", ["trace", "stats", bad("trace_missing_column.csv")],
     ("trace_missing_column.csv", "missing column 'output_tokens'")),
    ("trace-is-directory", ["trace", "stats", str(BAD)], ("bad_inputs", "is a directory")),
    ("profile-missing-column", ["predict", bad("profile_missing_column.csv"), "--out", "unused.csv"],
     ("profile_missing_column.csv", "missing column 'token_time'")),
    ("profile-empty", ["predict", bad("profile_empty.csv"), "--out", "unused.csv"], ("profile_empty.csv", "empty")),
    ("profile-binary", ["calibrate", bad("profile_binary.csv"), "--out", "unused.yaml"],
     ("profile_binary.csv", "malformed CSV")),
    ("scenario-typo-nested", ["optimize", bad("scenario_typo_nested.yaml")],
     ("scenario_typo_nested.yaml", "constraints.powr_kw", "did you mean power_kw")),
]

# Spreadsheet and Windows-editor exports that must be ACCEPTED (exit 0): UTF-8 byte-order mark, CRLF line
# ends. (id, argv, a fragment stdout must contain)
ACCEPTED: list[tuple[str, list[str], str]] = [
    ("trace-bom", ["trace", "stats", bad("ok_trace_bom.csv")], "ok_trace_bom"),
    ("trace-crlf", ["trace", "stats", bad("ok_trace_crlf.csv")], "ok_trace_crlf"),
    ("scenario-bom-crlf", ["simulate", "--scenario", bad("ok_scenario_bom_crlf.yaml"), "--machines", "dgx-h100:2",
                           "--rate", "1", "--duration", "5", "--json"], '"all_slos_met"'),
    ("catalog-bom-crlf", ["catalog", "gpus", "--catalog", bad("ok_catalog_bom_crlf.yaml")], "bom-gpu"),
    ("profile-bom-crlf-predict", ["predict", bad("ok_profile_bom_crlf.csv"), "--out", "pred.csv"], "wrote pred.csv"),
    ("profile-bom-crlf-calibrate", ["calibrate", bad("ok_profile_bom_crlf.csv"), "--out", "cal.yaml"],
     "wrote cal.yaml"),
]


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), captured.out, captured.err


def assert_one_error_line(code: int, err: str, fragments: tuple[str, ...]) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert code == 2, f"exit status {code}, stderr: {err!r}"
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} missing from {lines[0]!r}"


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 30
    files = sorted(p.name for p in BAD.iterdir())
    assert len(files) >= 30
    used = " ".join(" ".join(argv) for _, argv, _ in CASES)
    assert [f for f in files if f.startswith(("catalog_", "scenario_", "profile_", "stack_")) and f not in used] == []
    accepted = " ".join(" ".join(argv) for _, argv, _ in ACCEPTED)
    assert [f for f in files if f.startswith("ok_") and f not in accepted] == []


@pytest.mark.parametrize("case_id, argv, fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_error_line_and_exit_2(case_id: str, argv: list[str], fragments: tuple[str, ...],
                                                   capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parent.parent
    argv = [str(root / a) if a.startswith(("scenarios/", "profiles/")) else a for a in argv]
    monkeypatch.chdir(tmp_path)  # nothing a case writes lands in the repository
    code, _, err = run_main(argv, capsys)
    assert_one_error_line(code, err, fragments)
    assert not (tmp_path / "unused.csv").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["optimize", bad("scenario_typo_field.yaml")], "objectve"),
    (["simulate", "--model", "llama2-70b", "--machines", "dgx-h100:4", "--trace", "rr_conv_80_2min.csv", "--tp", "x"],
     "--tp"),
])
def test_installed_entry_point_answers_with_one_line(argv: list[str], fragment: str, tmp_path: Path) -> None:
    """The console script itself (a fresh interpreter), not just `main` in-process."""
    proc = subprocess.run([sys.executable, "-m", "splitplan.cli.main", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert_one_error_line(proc.returncode, proc.stderr, (fragment,))
    assert proc.stdout == ""


@pytest.mark.parametrize("case_id, argv, fragment", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_spreadsheet_exports_are_accepted(case_id: str, argv: list[str], fragment: str,
                                          capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    assert "error" not in err and fragment in out


def _plain_copy(name: str, folder: Path) -> Path:
    """The same file without byte-order mark and with LF line ends."""
    text = (BAD / name).read_bytes().removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\n")
    (folder / name).write_bytes(text)
    return folder / name


def test_spreadsheet_exports_read_exactly_like_plain_files(tmp_path: Path) -> None:
    """Accepted is not enough: the BOM and CR must not leak into a column name, a value or a field."""
    from dataclasses import replace

    from splitplan.catalog import parse_catalog_file
    from splitplan.perf.profile_io import read_profile
    from splitplan.scenario import load_scenario
    from splitplan.workload import load_trace

    for name in ("ok_trace_bom.csv", "ok_trace_crlf.csv"):
        assert b"\xef\xbb\xbf" in (BAD / name).read_bytes()[:3] or b"\r\n" in (BAD / name).read_bytes()
        ours, plain = load_trace(BAD / name), load_trace(_plain_copy(name, tmp_path))
        assert len(ours) == 30
        for field in ("arrival_s", "prompt_tokens", "output_tokens"):
            assert (getattr(ours, field) == getattr(plain, field)).all()
    ours, plain = (load_scenario(p) for p in (BAD / "ok_scenario_bom_crlf.yaml",
                                             _plain_copy("ok_scenario_bom_crlf.yaml", tmp_path)))
    assert ours.name == "bom_crlf" and replace(ours, source="") == replace(plain, source="")
    assert parse_catalog_file(BAD / "ok_catalog_bom_crlf.yaml") == parse_catalog_file(
        _plain_copy("ok_catalog_bom_crlf.yaml", tmp_path))
    ours, plain = (read_profile(p) for p in (BAD / "ok_profile_bom_crlf.csv",
                                            _plain_copy("ok_profile_bom_crlf.csv", tmp_path)))
    assert list(ours.raw.columns) == list(plain.raw.columns) and ours.rows.equals(plain.rows)


def test_oversized_yaml_is_refused_before_parsing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A million explicit seeds (a 7.5 MiB list): refused by size in milliseconds, not parsed for a minute."""
    import time

    path = tmp_path / "million_seed_list.yaml"
    path.write_text("workload: {seeds: [" + ", ".join(map(str, range(1_000_000))) + "]}\n")
    start = time.perf_counter()
    code, _, err = run_main(["optimize", str(path)], capsys)
    assert time.perf_counter() - start < 5
    assert_one_error_line(code, err, ("million_seed_list.yaml", "7.5 MiB", "at most 512 KiB"))
