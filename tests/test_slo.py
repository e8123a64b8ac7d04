"""SLO forms, parsing, reference latencies and evaluation against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitplan.errors import SplitplanError
from splitplan.slo import (
    SLO,
    ReferenceLatencies,
    evaluate_slos,
    paper_slos,
    parse_slo,
    parse_slos,
    percentile,
    reference_latencies,
    unmeetable_slos,
)


class FakePerf:
    """A linear PerfModel with round numbers, so reference latencies can be checked by hand."""

    provenance = "test"
    instance = None

    def prefill_ms(self, n_prompts, sum_tokens, sum_sq_tokens):
        return 10.0 * n_prompts + 0.1 * sum_tokens + 1e-5 * sum_sq_tokens

    def decode_coeffs(self, batch_size):
        return 20.0 + 0.5 * batch_size, 0.001

    def decode_ms(self, batch_size, sum_context):
        base, per = 20.0 + 0.5 * np.asarray(batch_size, dtype=float), 0.001
        return base + per * sum_context


# ------------------------------------------------------------------------------------------ forms

def test_paper_slos_are_table_vi():
    slos = paper_slos()
    assert len(slos) == 9 and all(s.kind == "slowdown" for s in slos)
    table = {s.name: s.limit for s in slos}
    assert table == {"ttft_p50": 2, "ttft_p90": 3, "ttft_p99": 6, "tbt_p50": 1.25, "tbt_p90": 1.5, "tbt_p99": 5,
                     "e2e_p50": 1.25, "e2e_p90": 1.5, "e2e_p99": 5}
    assert slos[2].describe() == "TTFT P99 <= 6x unloaded"


@pytest.mark.parametrize(
    "text, metric, p, limit, kind, described",
    [
        ("ttft:p99:6x", "ttft", 99, 6, "slowdown", "TTFT P99 <= 6x unloaded"),
        ("tbt:p90:200ms", "tbt", 90, 0.2, "absolute", "TBT P90 <= 200 ms"),
        ("e2e:p50:1.25x", "e2e", 50, 1.25, "slowdown", "E2E P50 <= 1.25x unloaded"),
        ("itl:p99:0.3s", "itl", 99, 0.3, "absolute", "ITL P99 <= 300 ms"),
        ("E2E:99.9:20s", "e2e", 99.9, 20, "absolute", "E2E P99.9 <= 20 s"),
    ],
)
def test_parse_slo(text, metric, p, limit, kind, described):
    slo = parse_slo(text)
    assert (slo.metric, slo.percentile, slo.kind) == (metric, p, kind)
    assert slo.limit == pytest.approx(limit) and slo.describe() == described
    assert parse_slo(slo.to_text()) == slo


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ttft:p100:6x", "percentile 100 is outside (0, 100)"),
        ("ttft:p0:6x", "percentile 0 is outside (0, 100)"),
        ("tfft:p99:6x", "unknown metric 'tfft' (did you mean ttft"),
        ("ttft:p99:0ms", "limit must be a positive number"),
        ("ttft:p99:0.5x", "no machine meets a slowdown below 1x even unloaded"),
        ("ttft:p99:6", "needs a unit"),
        ("ttft:p99", "is not METRIC:PERCENTILE:LIMIT"),
        ("ttft:pxx:6x", "percentile 'pxx' is not a number"),
        ("itl:p99:2x", "itl SLOs need an absolute limit"),
    ],
)
def test_parse_slo_errors(text, expected):
    with pytest.raises(SplitplanError) as info:
        parse_slo(text)
    assert expected in str(info.value) and str(info.value).startswith("--slo") and "\n" not in str(info.value)


def test_parse_slos_from_yaml_forms():
    slos = parse_slos([{"metric": "ttft", "percentile": 99, "slowdown": 6},
                       {"metric": "tbt", "percentile": "p90", "limit_ms": 200},
                       {"metric": "e2e", "percentile": 50, "limit_s": 30}, "itl:p99:300ms"], source="s.yaml")
    assert [s.describe() for s in slos] == ["TTFT P99 <= 6x unloaded", "TBT P90 <= 200 ms", "E2E P50 <= 30 s",
                                            "ITL P99 <= 300 ms"]
    assert parse_slos("paper") == paper_slos()
    assert len(parse_slos(["paper", "tbt:p99:100ms"])) == 10


@pytest.mark.parametrize(
    "items, expected",
    [
        ([{"metric": "ttft", "percentile": 99}], "s.yaml: slos[0]: give exactly one of slowdown, limit_ms, limit_s"),
        ([{"metric": "ttft", "percentile": 99, "slowdown": 6, "limit_ms": 5}], "give exactly one of"),
        ([{"metric": "tft", "percentile": 99, "slowdown": 6}], "slos[0].metric: unknown metric 'tft'"),
        ([{"metric": "ttft", "percentile": 120, "slowdown": 6}], "slos[0].percentile: percentile 120 is outside"),
        ([{"metric": "ttft", "percentile": 99, "slowdown": 0.9}], "slos[0].slowdown: slowdown 0.9x: no machine"),
        ([{"metric": "ttft", "percentile": 99, "limit_ms": -5}], "slos[0].limit_ms: limit must be a positive"),
        ([{"metric": "ttft", "percentile": 99, "slowdonw": 6}], "unknown key 'slowdonw' (did you mean slowdown"),
        ([{"percentile": 99, "slowdown": 6}], "missing 'metric'"),
        (["paper", "ttft:p99:4x"], "ttft_p99 is given twice"),
        ([], "slos must be \"paper\" or a non-empty list"),
        ([5], "slos[0]: expected a mapping"),
    ],
)
def test_parse_slos_errors(items, expected):
    with pytest.raises(SplitplanError) as info:
        parse_slos(items, source="s.yaml")
    assert expected in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------- references

def test_reference_latencies_hand_values():
    refs = reference_latencies([1000, 10], [11, 1], FakePerf())
    # TTFT = 10 + 0.1*1000 + 1e-5*1000^2 = 120 ms; TBT = 20.5 + 0.001*(1000 + 10/2) = 21.505 ms
    assert refs.ttft_s == pytest.approx([0.120, (10 + 1 + 1e-3) / 1000])
    assert refs.tbt_s == pytest.approx([0.021505, (20.5 + 0.01) / 1000])
    assert refs.e2e_s == pytest.approx([0.120 + 10 * 0.021505, refs.ttft_s[1]])  # one token: E2E = TTFT


def test_reference_latencies_splitwisesim_compat():
    refs = reference_latencies(np.array([1000]), np.array([11]), FakePerf(), compat=True)
    assert refs.tbt_s == pytest.approx([(20 + 0.5 * 1000) / 1000])  # decode_ms(batch=prompt size, 0)
    assert refs.e2e_s == pytest.approx([0.120 + 10 * 0.520])


# ------------------------------------------------------------------------------------------ evaluation

def test_percentile_matches_numpy_and_handles_inf_and_weights():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 100):
        values = rng.random(n)
        weights = rng.integers(1, 5, n)
        for q in (1, 50, 90, 99, 99.9):
            assert percentile(values, q) == pytest.approx(np.percentile(values, q), abs=1e-12)
            assert percentile(values, q, weights) == pytest.approx(np.percentile(np.repeat(values, weights), q),
                                                                   abs=1e-12)
    assert percentile([1.0, 2.0, np.nan], 99) == math.inf  # unfinished request binds the tail
    assert percentile([1.0, 2.0, np.nan], 50) == 2.0
    assert percentile([1.0, 2.0, np.inf], 50) == 2.0  # numpy's lerp would give nan at exact positions


def test_evaluate_slowdown_and_absolute_by_hand():
    refs = ReferenceLatencies(ttft_s=np.array([1.0, 1.0, 2.0, 2.0]), tbt_s=np.full(4, 0.1), e2e_s=np.full(4, 10.0))
    ttft = np.array([1.0, 3.0, 2.0, 4.0])  # slowdowns 1, 3, 1, 2 -> P50 1.5
    slos = [SLO("ttft", 50, 2.0), SLO("ttft", 99, 2.5), SLO("tbt", 90, 0.25, "absolute"),
            SLO("e2e", 50, 1.25)]
    results = evaluate_slos(slos, ttft_s=ttft, tbt_s=np.array([0.1, 0.2, 0.1, 0.3]),
                            e2e_s=np.array([10.0, 12.0, 11.0, 30.0]), refs=refs)
    p50, p99, tbt, e2e = results
    assert p50.value == pytest.approx(1.5) and p50.met and p50.margin == pytest.approx(0.25) and p50.unit == "x"
    assert p99.value == pytest.approx(np.percentile([1, 3, 1, 2], 99)) and not p99.met and p99.margin < 0
    assert tbt.value == pytest.approx(np.percentile([0.1, 0.2, 0.1, 0.3], 90)) and tbt.unit == "s"
    assert tbt.met == (tbt.value <= 0.25)
    assert e2e.value == pytest.approx(1.15) and e2e.met
    assert "TTFT P50 <= 2x unloaded: 1.5x (met" in p50.describe()


def test_unfinished_requests_are_violations_not_dropped():
    refs = ReferenceLatencies(ttft_s=np.ones(100), tbt_s=np.ones(100), e2e_s=np.ones(100))
    ttft = np.ones(100)
    ttft[-2:] = np.nan  # 2% unfinished
    p99, p50 = evaluate_slos([SLO("ttft", 99, 6.0), SLO("ttft", 50, 2.0)], ttft_s=ttft, tbt_s=ttft, e2e_s=ttft,
                             refs=refs)
    assert p99.value == math.inf and not p99.met and p99.margin == -math.inf
    assert p50.met and p50.value == 1.0


def test_itl_weighted_and_missing_inputs():
    slo = SLO("itl", 90, 0.05, "absolute")
    (result,) = evaluate_slos([slo], ttft_s=[], tbt_s=[], e2e_s=[], refs=None,
                              itl_s=np.array([0.01, 0.2]), itl_weights=np.array([95, 5]))
    assert result.value == pytest.approx(np.percentile([0.01] * 95 + [0.2] * 5, 90)) and result.met
    with pytest.raises(SplitplanError, match="per-token samples"):
        evaluate_slos([slo], ttft_s=[], tbt_s=[], e2e_s=[], refs=None)
    with pytest.raises(SplitplanError, match="need reference latencies"):
        evaluate_slos([SLO("ttft", 50, 2)], ttft_s=[1.0], tbt_s=[1.0], e2e_s=[1.0], refs=None)


def test_unmeetable_absolute_slos():
    refs = reference_latencies(np.array([1000, 1000, 2000]), np.array([11, 11, 11]), FakePerf())
    slos = [SLO("ttft", 50, 0.1, "absolute"), SLO("ttft", 50, 0.2, "absolute"), SLO("ttft", 50, 1.0),
            SLO("itl", 50, 0.02, "absolute"), SLO("itl", 50, 0.03, "absolute")]
    problems = unmeetable_slos(slos, refs)
    assert len(problems) == 2
    assert problems[0] == "TTFT P50 <= 100 ms cannot be met: even unloaded the P50 TTFT is 120 ms"
    assert problems[1].startswith("ITL P50 <= 20 ms cannot be met: even unloaded the P50 ITL is 21.5")


def test_reference_latencies_with_the_real_profile_model():
    from splitplan.perf import PerfSettings, build_perf_model
    from splitplan.workload import BUNDLED_TRACES_DIR, load_trace

    profile = BUNDLED_TRACES_DIR.parent.parent / "profiles" / "measured" / "splitwisesim_perf_model.csv"
    perf = build_perf_model("llama2-70b", "dgx-a100", 8,
                            PerfSettings(backend="profile", profile_path=str(profile), compat="splitwisesim"))
    trace = load_trace(BUNDLED_TRACES_DIR / "rr_code_80_2min.csv")
    refs = reference_latencies(trace.prompt_tokens, trace.output_tokens, perf, compat=True)
    assert refs.ttft_s.shape == (len(trace),) and (refs.ttft_s > 0).all() and (refs.tbt_s > 0).all()
    order = np.argsort(trace.prompt_tokens)
    assert np.all(np.diff(refs.ttft_s[order]) >= -1e-12)  # longer prompts never prefill faster
    scalar = perf.prefill_ms(1, int(trace.prompt_tokens[0]), int(trace.prompt_tokens[0]) ** 2) / 1000
    assert refs.ttft_s[0] == pytest.approx(scalar)
    plain = reference_latencies(trace.prompt_tokens, trace.output_tokens, perf)
    assert np.array_equal(plain.ttft_s, refs.ttft_s) and (plain.tbt_s > 0).all()
