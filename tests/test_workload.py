"""Trace readers, generators, specs and statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitplan.errors import SplitplanError
from splitplan.workload_io import workload_stats, write_trace
from splitplan.workload import (
    BUNDLED_TRACES_DIR,
    SizeDist,
    Workload,
    WorkloadSpec,
    build_workload,
    load_trace,
    poisson_workload,
    replay_workload,
    resolve_trace_path,
    synthetic_workload,
    with_seed,
)

CONV = BUNDLED_TRACES_DIR / "AzureLLMInferenceTrace_conv.csv"
CODE = BUNDLED_TRACES_DIR / "AzureLLMInferenceTrace_code.csv"
RR_CONV = BUNDLED_TRACES_DIR / "rr_conv_80_2min.csv"


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------- readers

def test_azure_trace_read_and_timestamps_relative_to_first():
    w = load_trace(CONV)
    assert len(w) == 19366
    assert w.arrival_s[0] == 0.0
    # second row 18:15:50.9951690 minus first 18:15:46.6805900
    assert w.arrival_s[1] == pytest.approx(4.314579, abs=1e-9)
    assert (w.prompt_tokens[:2] == [374, 396]).all() and (w.output_tokens[:2] == [44, 109]).all()
    assert w.arrival_s.dtype == np.float64 and w.prompt_tokens.dtype == np.int64
    assert np.all(np.diff(w.arrival_s) >= 0)
    assert w.name == "AzureLLMInferenceTrace_conv"


def test_splitwisesim_trace_keeps_arrivals():
    w = load_trace(RR_CONV)
    assert w.arrival_s[0] == pytest.approx(0.009948431352038876, rel=1e-15)
    assert (w.prompt_tokens[:2] == [394, 411]).all() and (w.output_tokens[:2] == [90, 85]).all()


def test_plain_trace_and_whitespace(tmp_path):
    w = load_trace(_write(tmp_path, "arrival_s, prompt_tokens, output_tokens\n0.5, 10, 2\n0.5,20,3\n1.25,5,1\n"))
    assert w.arrival_s.tolist() == [0.5, 0.5, 1.25]
    assert w.prompt_tokens.tolist() == [10, 20, 5] and w.output_tokens.tolist() == [2, 3, 1]


def test_reading_is_fast_and_cached():
    import time

    start = time.perf_counter()
    load_trace(CODE)
    assert time.perf_counter() - start < 0.5
    assert load_trace(CODE) is load_trace(CODE)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "file is empty"),
        ("a,b,c\n1,2,3\n", "header 'a,b,c' not recognised; accepted formats: Azure"),
        ("arrival_s,prompt_tokens,output_tokens\n", "trace has no requests"),
        ("arrival_s,prompt_tokens,output_tokens\n0,10,2\n1,abc,2\n", "line 3: prompt_tokens: 'abc' is not a number"),
        ("arrival_s,prompt_tokens,output_tokens\n0,10,0\n", "line 2: output_tokens: token count '0' must be"),
        ("arrival_s,prompt_tokens,output_tokens\n0,10.5,1\n", "line 2: prompt_tokens: token count '10.5'"),
        ("arrival_s,prompt_tokens,output_tokens\n0,-3,1\n", "line 2: prompt_tokens"),
        ("arrival_s,prompt_tokens,output_tokens\n-1,3,1\n", "line 2: arrival_s: arrival time -1 is negative"),
        ("arrival_s,prompt_tokens,output_tokens\n0,3,1\n2,3,1\n1,3,1\n", "line 4: arrival_s: arrival 1 s is before"),
        ("arrival_s,prompt_tokens,output_tokens\n0,,1\n", "line 2: prompt_tokens: '' is not a number"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,3,1\n", "line 2: TIMESTAMP: 'yesterday' is not a"),
    ],
)
def test_reader_errors_are_one_line_with_file_and_line(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(SplitplanError) as info:
        load_trace(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)) and expected in message


def test_missing_trace_file(tmp_path):
    with pytest.raises(SplitplanError, match="file not found"):
        load_trace(tmp_path / "nope.csv")


def test_write_and_read_back_both_formats(tmp_path):
    w = load_trace(RR_CONV)
    for fmt in ("plain", "splitwisesim"):
        path = tmp_path / f"{fmt}.csv"
        write_trace(w, path, fmt=fmt)
        back = load_trace(path)
        assert np.array_equal(back.arrival_s, w.arrival_s)  # repr round-trips floats exactly
        assert np.array_equal(back.prompt_tokens, w.prompt_tokens)
        assert np.array_equal(back.output_tokens, w.output_tokens)
    header = (tmp_path / "splitwisesim.csv").read_text().splitlines()[0]
    assert header == "request_id,request_type,application_id,arrival_timestamp,batch_size,prompt_size,token_size"
    with pytest.raises(SplitplanError, match="unknown trace format"):
        write_trace(w, tmp_path / "x.csv", fmt="json")


# ---------------------------------------------------------------------------------------- generators

def test_poisson_rate_sizes_and_determinism():
    sizes = load_trace(CONV)
    w = poisson_workload(sizes, 80.0, 120.0, seed=0)
    assert abs(len(w) - 9600) < 4 * np.sqrt(9600)  # Poisson count within 4 sigma
    assert w.arrival_s.min() >= 0 and w.arrival_s.max() < 120 and np.all(np.diff(w.arrival_s) >= 0)
    gaps = np.diff(w.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)  # exponential gaps
    # every size comes from the source trace, and the distribution matches it
    assert np.isin(w.prompt_tokens, sizes.prompt_tokens).all() and np.isin(w.output_tokens, sizes.output_tokens).all()
    assert w.prompt_tokens.mean() == pytest.approx(sizes.prompt_tokens.mean(), rel=0.05)
    assert np.median(w.output_tokens) == pytest.approx(np.median(sizes.output_tokens), rel=0.1)
    # prompt and output drawn independently: the pairs are not the source's rows
    assert abs(np.corrcoef(w.prompt_tokens, w.output_tokens)[0, 1]) < 0.05
    again = poisson_workload(sizes, 80.0, 120.0, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((w.arrival_s, w.prompt_tokens), (again.arrival_s, again.prompt_tokens)))
    other = poisson_workload(sizes, 80.0, 120.0, seed=1)
    assert not np.array_equal(other.prompt_tokens[:100], w.prompt_tokens[:100])


def test_poisson_common_random_numbers_across_rates():
    sizes = load_trace(CONV)
    slow, fast = poisson_workload(sizes, 40, 60, 3), poisson_workload(sizes, 80, 60, 3)
    n = min(len(slow), len(fast))
    assert np.array_equal(slow.prompt_tokens[:n], fast.prompt_tokens[:n])
    assert np.allclose(slow.arrival_s[: n // 3], 2 * fast.arrival_s[: n // 3])


def test_poisson_rejects_bad_rate_and_accepts_numpy_numbers():
    for bad in (0, -1.0, float("nan"), True, "5"):
        with pytest.raises(SplitplanError, match="rate_rps: must be a positive number"):
            poisson_workload(load_trace(RR_CONV), bad, 10, 0)
    assert len(poisson_workload(load_trace(RR_CONV), np.int64(10), np.float32(5), np.int64(3))) > 0


@settings(max_examples=40, deadline=None)
@given(rate=st.floats(0.01, 500), duration=st.floats(0.01, 50), seed=st.integers(0, 2**32 - 1),
       replay=st.booleans())
def test_generators_invariants(rate, duration, seed, replay):
    sizes = load_trace(RR_CONV)
    w = (replay_workload(sizes, rate_rps=rate, duration_s=duration) if replay
         else poisson_workload(sizes, rate, duration, seed))
    assert np.all(np.diff(w.arrival_s) >= 0) and np.all(w.arrival_s >= 0) and np.all(w.arrival_s < duration)
    assert np.isin(w.prompt_tokens, sizes.prompt_tokens).all() and (w.output_tokens >= 1).all()
    if replay:
        assert len(w) <= max(round(rate * duration), 1)


def test_replay_hits_rate_exactly_and_keeps_burstiness():
    code = load_trace(CODE)
    w = replay_workload(code, rate_rps=50, duration_s=60)
    assert len(w) == 3000 and w.arrival_s.max() < 60
    gaps = np.diff(w.arrival_s)
    assert gaps.std() / gaps.mean() > 3  # the code trace is very bursty; Poisson would give 1
    # sizes are the trace's own rows, in order
    assert np.array_equal(w.prompt_tokens, code.prompt_tokens[:3000])


def test_replay_tiles_short_traces_and_time_scale():
    tiny = Workload(np.array([0.0, 1.0, 3.0]), np.array([10, 20, 30]), np.array([1, 2, 3]), "tiny")
    w = replay_workload(tiny, rate_rps=1.0, duration_s=8)
    assert len(w) == 8 and w.prompt_tokens.tolist() == [10, 20, 30] * 2 + [10, 20]
    scaled = replay_workload(tiny, time_scale=0.5)
    assert scaled.arrival_s.tolist() == [0.0, 0.5, 1.5]
    windowed = replay_workload(tiny, time_scale=0.5, duration_s=5)  # period 3 s + mean gap 1.5 s, halved
    assert windowed.arrival_s.tolist() == [0.0, 0.5, 1.5, 2.25, 2.75, 3.75, 4.5]
    started = replay_workload(tiny, time_scale=1.0, start_s=0.5)
    assert started.arrival_s.tolist() == [0.0, 2.0] and started.prompt_tokens.tolist() == [20, 30]
    with pytest.raises(SplitplanError, match="exactly one of rate_rps and time_scale"):
        replay_workload(tiny)
    with pytest.raises(SplitplanError, match="before start_s"):
        replay_workload(tiny, time_scale=1, start_s=10)


@pytest.mark.parametrize("arrivals, cv", [("poisson", 1.0), ("uniform", 0.0), ("gamma", 3.0)])
def test_synthetic_arrival_processes(arrivals, cv):
    w = synthetic_workload(100, 100, SizeDist("fixed", (512,)), SizeDist("uniform", (10, 20)), seed=2,
                           arrivals=arrivals, cv=cv if cv > 0 else 1.0)
    gaps = np.diff(w.arrival_s)
    assert len(w) == pytest.approx(10000, rel=0.1 if arrivals == "gamma" else 0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, abs=0.25 if arrivals == "gamma" else 0.05)
    assert (w.prompt_tokens == 512).all() and w.output_tokens.min() == 10 and w.output_tokens.max() == 20


def test_size_distributions_moments_and_clipping():
    rng = np.random.default_rng(0)
    lognormal = SizeDist.parse("lognormal:1000,800").sample(rng, 200_000)
    assert lognormal.mean() == pytest.approx(1000, rel=0.02) and lognormal.std() == pytest.approx(800, rel=0.05)
    normal = SizeDist.parse("normal:5,10").sample(rng, 10_000)
    assert normal.min() == 1 and normal.dtype == np.int64
    assert str(SizeDist.parse("300")) == "fixed:300"
    for bad, message in [("zipf:1", "unknown size distribution 'zipf'"), ("uniform:5", "takes 2 parameter"),
                         ("uniform:9,3", "high 3 is below low 9"), ("normal:a,b", "is not KIND:P1"),
                         ("fixed:0", "first > 0")]:
        with pytest.raises(SplitplanError, match=message):
            SizeDist.parse(bad, source="--prompt")


# ----------------------------------------------------------------------------------- spec and stats

def test_build_workload_resolves_bundled_names_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = WorkloadSpec(trace="AzureLLMInferenceTrace_conv.csv", generator="poisson", rate_rps=20, duration_s=30)
    first, second = build_workload(spec), build_workload(spec)
    assert np.array_equal(first.arrival_s, second.arrival_s)
    assert not np.array_equal(build_workload(with_seed(spec, 1)).arrival_s[:10], first.arrival_s[:10])
    local = _write(tmp_path, "arrival_s,prompt_tokens,output_tokens\n0,1,1\n", "rr_conv_80_2min.csv")
    assert resolve_trace_path("rr_conv_80_2min.csv") == tmp_path / "rr_conv_80_2min.csv"  # CWD before bundled
    other = tmp_path / "sub"
    other.mkdir()
    _write(other, "arrival_s,prompt_tokens,output_tokens\n0,2,2\n5,3,3\n", "mine.csv")
    assert len(build_workload(WorkloadSpec(trace="mine.csv"), base_dir=other)) == 2
    assert len(build_workload(WorkloadSpec(trace="mine.csv", duration_s=1), base_dir=other)) == 1
    assert local.exists()


@pytest.mark.parametrize(
    "spec, expected",
    [
        (WorkloadSpec(trace="rr_conv_80_2min.csv", generator="posson"), "unknown generator 'posson' (did you mean poisson"),
        (WorkloadSpec(trace="rr_conv_80_2min.csv", generator="poisson", duration_s=5), "needs rate_rps"),
        (WorkloadSpec(trace="rr_conv_80_2min.csv", generator="poisson", rate_rps=-1, duration_s=5), "rate_rps: must be a positive"),
        (WorkloadSpec(trace="rr_conv_80_2min.csv", generator="replay"), "replay needs rate_rps or time_scale"),
        (WorkloadSpec(trace="rr_conv_80_2min.csv", rate_rps=5), "use generator poisson or replay"),
        (WorkloadSpec(trace="rr_conv_80_2min.csv", duration_s=0.001), "no request arrives within duration_s"),
        (WorkloadSpec(trace="rr_conv_80_2min.cvs"), "trace file not found (did you mean rr_conv_80_2min.csv"),
        (WorkloadSpec(generator="poisson", rate_rps=1, duration_s=1), "needs a trace file"),
        (WorkloadSpec(generator="synthetic", rate_rps=1, duration_s=1), "need prompt and output"),
        (WorkloadSpec(trace="rr_conv_80_2min.csv", seed=-1), "seed: must be a non-negative integer"),
        (WorkloadSpec(trace="rr_conv_80_2min.csv", generator="poisson", rate_rps=1, duration_s=1, start_s=5),
         "start_s: time_scale and start_s apply to the replay generator only"),
    ],
)
def test_build_workload_errors(spec, expected):
    with pytest.raises(SplitplanError) as info:
        build_workload(spec)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_spec_from_mapping():
    spec = WorkloadSpec.from_mapping({"generator": "synthetic", "rate_rps": 5, "duration_s": 10,
                                      "prompt": "lognormal:1000,800", "output": 64}, source="s.yaml")
    assert spec.prompt == SizeDist("lognormal", (1000, 800)) and spec.output == SizeDist("fixed", (64,))
    assert len(build_workload(spec)) > 0
    with pytest.raises(SplitplanError, match=r"s.yaml: workload: unknown key 'rate' \(did you mean .*rate_rps"):
        WorkloadSpec.from_mapping({"rate": 5}, source="s.yaml")


def test_stats_hand_values():
    w = Workload(np.array([0.0, 1.0, 2.0, 4.0]), np.array([1, 2, 3, 10]), np.array([5, 5, 5, 5]), "hand")
    stats = workload_stats(w)
    assert stats["requests"] == 4 and stats["span_s"] == 4.0 and stats["rate_rps"] == 0.75
    gaps = np.array([1.0, 1.0, 2.0])
    assert stats["interarrival_cv"] == pytest.approx(gaps.std() / gaps.mean())
    assert stats["prompt_p50"] == 2.5 and stats["prompt_mean"] == 4.0 and stats["prompt_max"] == 10
    assert stats["prompt_p90"] == pytest.approx(np.percentile([1, 2, 3, 10], 90))
    assert stats["total_prompt_tokens"] == 16 and stats["total_output_tokens"] == 20


def test_stats_of_bundled_traces_match_published_figures():
    # SplitwiseSim's generate_trace.py documents conv prompt mean 1155 / token mean 211, code 2048 / 28.
    conv, code = workload_stats(load_trace(CONV)), workload_stats(load_trace(CODE))
    assert round(conv["prompt_mean"]) == 1155 and round(conv["output_mean"]) == 211
    assert round(code["prompt_mean"]) == 2048 and round(code["output_mean"]) == 28
    assert code["interarrival_cv"] > 10 > 2 > conv["interarrival_cv"]  # paper: code CV 13, conv 1.1


# ------------------------------------------------------------------------------------------------ CLI

def _run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    from splitplan.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(args)
    captured = capsys.readouterr()
    return int(info.value.code), captured.out, captured.err


def test_cli_generate_is_deterministic_and_readable(tmp_path, capsys):
    outs = []
    for name in ("a.csv", "b.csv"):
        code, out, _ = _run_cli(["trace", "generate", "--from", "AzureLLMInferenceTrace_conv.csv", "--rate", "20",
                                 "--duration", "30", "--seed", "4", "--out", str(tmp_path / name)], capsys)
        assert code == 0 and "requests over" in out
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    expected = poisson_workload(load_trace(CONV), 20, 30, 4)
    assert np.array_equal(load_trace(tmp_path / "a.csv").prompt_tokens, expected.prompt_tokens)


def test_cli_generate_replay_and_synthetic_splitwisesim(tmp_path, capsys):
    code, _, _ = _run_cli(["trace", "generate", "--from", "AzureLLMInferenceTrace_code.csv", "--replay", "--rate",
                           "50", "--duration", "10", "--out", str(tmp_path / "r.csv")], capsys)
    assert code == 0 and len(load_trace(tmp_path / "r.csv")) == 500
    code, _, _ = _run_cli(["trace", "generate", "--prompt", "uniform:100,200", "--output", "fixed:7", "--rate", "5",
                           "--duration", "20", "--format", "splitwisesim", "--out", str(tmp_path / "s.csv")], capsys)
    synthetic = load_trace(tmp_path / "s.csv")
    assert code == 0 and (synthetic.output_tokens == 7).all()
    assert (tmp_path / "s.csv").read_text().startswith("request_id,request_type,application_id")


def test_cli_stats_table_and_json(capsys):
    import json

    code, out, _ = _run_cli(["trace", "stats", "rr_code_80_2min.csv"], capsys)
    assert code == 0 and "inter-arrival CV" in out and "9736" in out
    code, out, _ = _run_cli(["trace", "stats", "rr_code_80_2min.csv", "--json"], capsys)
    assert code == 0 and json.loads(out)["requests"] == 9736


@pytest.mark.parametrize(
    "args, expected",
    [
        (["trace", "stats", "missing.csv"], "error: missing.csv: trace: trace file not found"),
        (["trace", "generate", "--from", "rr_conv_80_2min.csv", "--rate", "0", "--duration", "5", "--out", "X"],
         "rate_rps: must be a positive number"),
        (["trace", "generate", "--prompt", "zipf:2", "--output", "fixed:1", "--rate", "1", "--duration", "5",
          "--out", "X"], "error: --prompt: kind: unknown size distribution 'zipf'"),
        (["trace", "generate", "--rate", "1", "--duration", "5", "--out", "X"], "need prompt and output"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run_cli(args, capsys)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_cli_bad_trace_file_exits_2(tmp_path, capsys):
    bad = _write(tmp_path, "arrival_s,prompt_tokens,output_tokens\n0,1,1\n0,x,1\n")
    code, _, err = _run_cli(["trace", "stats", str(bad)], capsys)
    assert code == 2 and err.strip() == f"error: {bad}: line 3: prompt_tokens: 'x' is not a number"
