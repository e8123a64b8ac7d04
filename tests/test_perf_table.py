"""Profile backend: SplitwiseSim interpolation semantics, compat quirks, long format, file errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import interp1d

from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model, clear_caches
from splitplan.perf.profile_io import read_profile
from splitplan.perf.table import Curve

ROOT = Path(__file__).resolve().parent.parent
CSV = ROOT / "profiles" / "measured" / "splitwisesim_perf_model.csv"
PROFILE = PerfSettings(backend="profile")
COMPAT = PerfSettings(backend="profile", compat="splitwisesim")
RAW = pd.read_csv(CSV)


def rows(model="llama2-70b", hardware="h100-80gb", tp=8) -> pd.DataFrame:
    return RAW[(RAW.model == model) & (RAW.hardware == hardware) & (RAW.tensor_parallel == tp)]


def test_curve_matches_scipy_interp1d_with_extrapolation():
    x = np.array([128.0, 256, 512, 2048, 8192])
    y = np.array([40.0, 41, 60, 130, 800])
    reference = interp1d(x, y, fill_value="extrapolate")
    probe = np.array([1.0, 17, 128, 300, 2048, 5000, 8192, 20000])
    curve = Curve(x, y)
    assert np.allclose(curve(probe), reference(probe))
    assert [curve(float(p)) for p in probe] == pytest.approx(list(reference(probe)))


@pytest.mark.parametrize("hardware,machine,tp", [("h100-80gb", "dgx-h100", 8), ("a100-80gb", "dgx-a100", 4),
                                                 ("h100-80gb-pcap", "dgx-h100-pcap", 2)])
def test_prompt_curve_goes_through_the_median_of_each_knot(hardware, machine, tp):
    perf = build_perf_model("llama2-70b", machine, tp, PROFILE)
    data = rows(hardware=hardware, tp=tp)
    medians = data.groupby(data.prompt_size * data.batch_size)["prompt_time"].median()
    for tokens, median in medians.items():
        assert perf.prefill_ms(1, float(tokens), 0.0) == pytest.approx(median)
    assert perf.provenance == "profile table: splitwisesim_perf_model.csv"


def test_compat_copies_splitwisesim_quirks():
    perf = build_perf_model("llama2-70b", "dgx-h100", 8, COMPAT)
    data = rows()
    token = data.groupby(data.prompt_size * data.batch_size)["token_time"].median()
    reference = interp1d(token.index.to_numpy(float), token.to_numpy(), fill_value="extrapolate")
    # the token curve is evaluated at the NUMBER of decoding requests, whatever their context
    for batch in (1, 4, 32, 200):
        assert perf.decode_ms(batch, 123456.0) == pytest.approx(float(reference(batch)))
        assert perf.decode_coeffs(batch) == (pytest.approx(float(reference(batch))), 0.0)
    prompt = data.groupby(data.prompt_size * data.batch_size)["prompt_time"].median()
    prompt_ref = interp1d(prompt.index.to_numpy(float), prompt.to_numpy(), fill_value="extrapolate")
    assert perf.mixed_ms(1, 1000, 1e6, 24, 5000) == pytest.approx(1.1 * float(prompt_ref(1024)))
    # KV as if full MHA (2 * hidden * layers * 2 bytes), capacity = tp * 80 GiB - 135 GB weights
    assert perf.kv_bytes_per_token() == 2 * 8192 * 80 * 2
    assert perf.kv_capacity_tokens() == int((8 * 80 * 2**30 - 135e9) // (2 * 8192 * 80 * 2))
    assert "compat" in perf.provenance


def test_sensible_profile_decode_is_linear_in_context_and_uses_real_kv():
    perf = build_perf_model("llama2-70b", "dgx-a100", 4, PROFILE)
    base, per = perf.decode_coeffs(8)
    assert per > 0
    assert perf.decode_ms(8, 8000.0) == pytest.approx(base + per * 8000)
    # batch-1 rows with 128..8192-token prompts: measured 42.4 .. 46.1 ms
    assert perf.decode_ms(1, 128 + 64) == pytest.approx(42.4, rel=0.05)
    assert perf.decode_ms(1, 8192 + 64) == pytest.approx(46.1, rel=0.05)
    assert perf.kv_bytes_per_token() == 327_680
    assert perf.mixed_ms(1, 1000, 1e6, 24, 5000) == pytest.approx(perf.prefill_ms(1, 1024, 0))


def test_missing_instance_names_what_the_table_has():
    with pytest.raises(SplitplanError) as info:
        build_perf_model("llama2-70b", "dgx-h200", 8, PROFILE)
    message = str(info.value)
    assert "splitwisesim_perf_model.csv" in message and "llama2-70b/a100-80gb/tp2" in message
    assert "\n" not in message


def _write(tmp_path: Path, text: str, name: str = "p.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LONG = """model,gpu,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms
llama3-8b,h100-80gb,1,prefill,1,512,0,20
llama3-8b,h100-80gb,1,prefill,1,1024,0,35
llama3-8b,h100-80gb,1,prefill,2,1024,0,70
llama3-8b,h100-80gb,1,decode,1,0,1000,8.0
llama3-8b,h100-80gb,1,decode,1,0,3000,9.0
llama3-8b,h100-80gb,1,decode,8,0,1000,10.0
"""


def test_long_format_is_read_and_interpolated(tmp_path):
    clear_caches()
    path = _write(tmp_path, LONG)
    perf = build_perf_model("llama3-8b", "dgx-h100", 1, PerfSettings(backend="profile", profile_path=str(path)))
    assert perf.prefill_ms(1, 1024, 1024**2) == pytest.approx(35.0)
    assert perf.prefill_ms(1, 768, 0) == pytest.approx(27.5)
    base, per = perf.decode_coeffs(1)
    assert per == pytest.approx(1.0 / 2000)  # 1 ms per 2000 context tokens at batch 1
    assert perf.decode_ms(1, 2000) == pytest.approx(8.5)
    assert perf.decode_ms(8, 8000) == pytest.approx(10.0)


@pytest.mark.parametrize("text,expected", [
    ("", "file is empty"),
    ("model,hardware,prompt_size\n", "missing column 'batch_size'"),
    (open(CSV).readline(), "no data rows"),
    ("a,b,c\n1,2,3\n", "unrecognized profile columns"),
    (LONG.replace("prefill,1,512,0,20", "prefill,1,512,0,fast"), "line 2, column time_ms: must be a positive number, got 'fast'"),
    (LONG.replace("decode,8,0", "decode,-8,0"), "line 7, column batch_size"),
    (LONG.replace("decode,1,0,1000", "decoding,1,0,1000"), "column phase: must be prefill or decode"),
    (LONG.replace("llama3-8b,h100-80gb,1,prefill,1,512", "llama3-8b,h100-80gb,1.5,prefill,1,512"), "column tp: must be a positive whole number"),
])
def test_malformed_profiles_are_one_line_errors(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(SplitplanError) as info:
        read_profile(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_missing_profile_file(tmp_path):
    with pytest.raises(SplitplanError, match="file not found"):
        build_perf_model("llama2-70b", "dgx-h100", 8, PerfSettings(backend="profile", profile_path=str(tmp_path / "x.csv")))
