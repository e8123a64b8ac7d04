"""read_results: vLLM bench serve, AIPerf and GenAI-Perf outputs become measured-serving rows; what a file
lacks comes from options; missing fields are one-line errors naming file, field and option. The fixtures
(tests/data/results, README there) are written from each client's documented format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from splitplan.apps.benchmark_rows import read_rows
from splitplan.apps.serving_results import COLUMNS, read_results
from splitplan.errors import SplitplanError

DATA = Path(__file__).parent / "data" / "results"
OPTS = {"gpu": "h100-80gb", "tp": 8, "engine": "vllm", "engine_version": "0.11.0", "weights": "bf16"}


def test_vllm_folder_reads_every_result_and_skips_companions():
    frame = read_results(DATA / "vllm-runs")
    assert list(frame.columns[:len(COLUMNS)]) == list(COLUMNS)
    assert sorted(frame["source_id"]) == ["run-c16.json", "run-c32-detailed.json"]  # no .pytorch.json
    row = frame.set_index("source_id").loc["run-c16.json"]
    assert row["model"] == "meta-llama/Llama-3.1-70B-Instruct" and row["engine"] == "vllm"
    assert (row["gpu"], row["tp"], row["engine_version"], row["weights"]) == ("h100-80gb", "8", "0.11.0", "bf16")
    assert (row["concurrency"], row["isl"], row["osl"]) == ("16", "1024", "1024")  # totals / completed
    assert (row["ttft_ms"], row["tpot_ms"], row["num_prompts"]) == ("182.5", "9.25", "160")
    assert (row["mode"], row["pp"], row["ep"], row["moe_weights"]) == ("agg", "1", "1", "bf16")


def test_vllm_detailed_lengths_give_nominal_and_range_ratio():
    row = read_results(DATA / "vllm-runs" / "run-c32-detailed.json").iloc[0]
    assert (row["isl"], row["osl"], row["range_ratio"]) == ("1000", "128", "0.8")


def test_vllm_appended_file_needs_options_for_what_it_lacks():
    path = DATA / "vllm-appended.json"
    given = {k: v for k, v in OPTS.items() if k != "engine"}
    with pytest.raises(SplitplanError) as exc:
        read_results(path, **given)
    assert str(exc.value) == f"{path}: engine: missing (pass --engine)"  # backend "openai" names no engine
    frame = read_results(path, **OPTS)
    assert list(frame["concurrency"]) == ["4", "8"] and list(frame["ttft_ms"]) == ["90", "120"]


@pytest.mark.parametrize("field", ["gpu", "tp", "engine_version", "weights"])
def test_each_missing_field_names_file_field_and_option(tmp_path, field):
    data = json.loads((DATA / "vllm-runs" / "run-c16.json").read_text())
    data.pop(field)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SplitplanError) as exc:
        read_results(path)
    option = "--" + field.replace("_", "-")
    assert str(exc.value) == f"{path}: {field}: missing (pass {option})"
    assert read_results(path, **{field: OPTS[field]}).iloc[0][field] == str(OPTS[field])


def test_option_contradicting_the_file_is_an_error():
    with pytest.raises(SplitplanError, match="tp: the file says 8, --tp says 4"):
        read_results(DATA / "vllm-runs" / "run-c16.json", tp=4)


def test_aiperf_json_records_layout():
    row = read_results(DATA / "aiperf" / "profile_export_aiperf.json", **OPTS).iloc[0]
    assert row["model"] == "openai/gpt-oss-120b" and row["concurrency"] == "100"
    assert (row["isl"], row["osl"], row["range_ratio"]) == ("550", "100", "1")  # configured, stddev 0
    assert (row["ttft_ms"], row["tpot_ms"], row["num_prompts"]) == ("1588.8", "51.76", "200")


def test_aiperf_units_are_converted_from_what_the_file_says():
    row = read_results(DATA / "aiperf-old-ns.json", **OPTS).iloc[0]
    assert (row["ttft_ms"], row["tpot_ms"]) == ("250", "12.5")  # 250e6 ns, 12.5e6 ns
    assert (row["model"], row["concurrency"], row["isl"], row["osl"]) == ("Qwen/Qwen3-32B", "8", "2048", "256")
    assert "range_ratio" not in row.index or row["range_ratio"] == ""  # measured mean: the spread is unknown


def test_unknown_time_unit_is_refused(tmp_path):
    data = json.loads((DATA / "aiperf-old-ns.json").read_text())
    data["time_to_first_token"]["unit"] = "tokens"
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SplitplanError, match="time_to_first_token: unit 'tokens' is not a time unit"):
        read_results(path, **OPTS)


def test_per_user_throughput_gives_tpot_when_itl_is_absent(tmp_path):
    data = json.loads((DATA / "aiperf" / "profile_export_aiperf.json").read_text())
    del data["records"]["inter_token_latency"]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    assert float(read_results(path, **OPTS).iloc[0]["tpot_ms"]) == pytest.approx(1000 / 19.3, rel=1e-6)


def test_genai_perf_json():
    row = read_results(DATA / "profile_export_genai_perf.json", **OPTS).iloc[0]
    assert (row["model"], row["concurrency"], row["isl"], row["osl"]) == ("meta-llama/Llama-3.1-8B-Instruct", "8",
                                                                          "1024", "256")
    assert (row["ttft_ms"], row["tpot_ms"], row["num_prompts"], row["range_ratio"]) == ("210.4", "11.8", "64", "1")


@pytest.mark.parametrize("name, ttft, tpot, isl, osl", [
    ("aiperf/profile_export_aiperf.csv", "1588.8", "51.76", "550", "97"),
    ("profile_export_genai_perf.csv", "210.4", "11.8", "1024", "256"),  # "1,024.00" thousands separator
])
def test_export_csv_needs_model_and_concurrency(name, ttft, tpot, isl, osl):
    path = DATA / name
    with pytest.raises(SplitplanError, match="model: missing \\(pass --model\\)"):
        read_results(path, **OPTS)
    row = read_results(path, model="m/x", concurrency=4, **OPTS).iloc[0]
    assert (row["ttft_ms"], row["tpot_ms"], row["isl"], row["osl"], row["concurrency"]) == (ttft, tpot, isl, osl, "4")


def test_table_csv_is_read_as_is():
    table = Path(__file__).parents[1] / "profiles" / "measured" / "serving" / "h100.csv"
    assert read_results(table).equals(read_rows(table))


def test_read_rows_dispatches_json_and_folders(tmp_path):
    shutil.copy(DATA / "vllm-runs" / "run-c16.json", tmp_path / "a.json")
    assert read_rows(tmp_path / "a.json").iloc[0]["ttft_ms"] == "182.5"
    assert len(read_rows(tmp_path)) == 1 and len(read_rows(str(DATA / "vllm-runs" / "*.json"))) == 2


def test_not_a_result_is_one_line(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(SplitplanError, match="not a vllm bench serve result"):
        read_results(tmp_path / "x.json")
    with pytest.raises(SplitplanError, match="no benchmark result files"):
        read_results(tmp_path / "empty*.json")


def test_result_options_supply_what_the_file_lacks(tmp_path):
    import click
    from click.testing import CliRunner

    from splitplan.cli.result_options import given_fields, result_options

    @click.command()
    @click.argument("path")
    @result_options(skip=("model",))
    def cmd(path, **kwargs):
        frame = read_results(path, **given_fields(kwargs))
        click.echo(",".join(frame.iloc[0][["engine", "gpu", "tp", "concurrency"]]))

    runner = CliRunner()
    ok = runner.invoke(cmd, [str(DATA / "vllm-appended.json"), "--engine", "vllm", "--gpu", "h100-80gb", "--tp", "8",
                             "--engine-version", "0.11.0", "--weights", "bf16"])
    assert ok.exit_code == 0 and ok.output.strip() == "vllm,h100-80gb,8,4"
    assert runner.invoke(cmd, [str(DATA / "vllm-appended.json"), "--model", "x"]).exit_code == 2  # skipped option
