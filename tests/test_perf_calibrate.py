"""Calibration: recover a known stack from synthetic measurements, write/read YAML, reject bad files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from splitplan.catalog import default_catalog
from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model, clear_caches
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.calibrate import anomalous_rows, calibrate, gpu_rows, write_calibration
from splitplan.perf.correction import FactorCurve, enforce_monotone, knots_for_tp
from splitplan.perf.params import StackParams, load_calibration
from splitplan.perf.profile_io import read_profile

CAT = default_catalog()
TRUE = StackParams(eta_c=0.6, eta_fa=0.3, ar_alpha_us=30.0, ar_alpha_log2_us=10.0, seq_ms=0.1, prompt_seq_ms=2.0,
                   step_ms=3.0, step_log2tp_ms=0.0)


def synthetic_profile(tmp_path: Path, params: StackParams = TRUE) -> Path:
    """Long-format measurements of Llama2-70B on DGX-H100 made by the model itself under `params`."""
    records = []
    for tp in (2, 4, 8):
        perf = AnalyticPerfModel(default_instance(tp), params, "truth", apply_cap=False)
        for batch in (1, 2, 4, 8, 16):
            for prompt in (128, 512, 2048):
                records.append(("llama2-70b", "h100-80gb", tp, "prefill", batch, prompt, 0,
                                perf.prefill_ms(batch, batch * prompt, batch * prompt**2)))
            for context in (256, 2048):
                records.append(("llama2-70b", "h100-80gb", tp, "decode", batch, 0, context,
                                perf.decode_ms(batch, batch * context)))
    frame = pd.DataFrame(records, columns=["model", "gpu", "tp", "phase", "batch_size", "prompt_tokens",
                                           "context_tokens", "time_ms"])
    path = tmp_path / "synthetic.csv"
    frame.to_csv(path, index=False)
    return path


def default_instance(tp: int):
    from splitplan.perf import make_instance

    return make_instance("llama2-70b", "dgx-h100", tp, "bf16", CAT)


def test_calibration_recovers_a_known_stack_and_round_trips(tmp_path):
    path = synthetic_profile(tmp_path)
    fits = calibrate(read_profile(path), CAT)
    fit = fits["h100-80gb"]
    assert fit.prefill.mape < 2.0 and fit.decode.mape < 2.0
    out = tmp_path / "calib.yaml"
    write_calibration(out, fits, name="synthetic", description="test stack", source=path.name, date="2026-01-01")
    text = out.read_text()
    assert "fit_date: '2026-01-01'" in text and "test stack" in text and "mape" in text
    clear_caches()
    perf = build_perf_model("llama2-70b", "dgx-h100", 4, PerfSettings(calibration_paths=(str(out),)))
    assert perf.provenance == "calibrated: synthetic (calib.yaml)"
    truth = AnalyticPerfModel(default_instance(4), TRUE, "truth")
    assert perf.prefill_ms(3, 3000, 3e6) == pytest.approx(truth.prefill_ms(3, 3000, 3e6), rel=0.05)
    assert perf.decode_ms(12, 12000) == pytest.approx(truth.decode_ms(12, 12000), rel=0.05)
    # a GPU the file does not name keeps the bundled calibration / spec defaults
    assert build_perf_model("llama2-70b", "dgx-a100", 4, PerfSettings(calibration_paths=(str(out),))).provenance.startswith("calibrated: vllm-2023")


def test_bundled_calibrations_describe_their_fit():
    for gpu, short in (("a100-80gb", "a100"), ("h100-80gb", "h100")):
        path = Path(__file__).resolve().parent.parent / "profiles" / "calibrations" / f"vllm-2023-{short}.yaml"
        text = path.read_text()
        assert "vLLM 2023 stack, fitted on SplitwiseSim's measured profile" in text and "fit_date" in text
        calibration = load_calibration(path)
        assert calibration.name == "vllm-2023" and gpu in calibration.per_gpu


def test_anomalous_rows_flag_the_batch_64_failures():
    rows = gpu_rows(read_profile(Path(__file__).resolve().parent.parent / "profiles" / "measured" / "splitwisesim_perf_model.csv").rows, CAT)
    flagged = rows[anomalous_rows(rows)]
    assert set(flagged["batch_size"]) == {64.0} and set(flagged["tp"]) == {2.0}
    assert set(flagged["hardware"]) == {"a100-80gb", "h100-80gb"} and len(flagged) == 20  # 5 lines x 2 phases x 2 GPUs


def test_monotone_enforcement_and_tp_interpolation():
    knots = ((128.0, 1.3), (256.0, 1.0), (512.0, 1.1))
    flat = FactorCurve(enforce_monotone(knots))
    xs = np.array([128.0, 200, 256, 400, 512])
    assert np.all(np.diff(flat(xs)) >= 0) and flat(512.0) == pytest.approx(1.1)
    per_tp = ((2, ((1.0, 1.0), (64.0, 1.0))), (8, ((1.0, 2.0), (64.0, 2.0))), ("bloom-176b@8", ((1.0, 3.0),)))
    assert FactorCurve(knots_for_tp(per_tp, 4))(10.0) == pytest.approx(1.5)  # halfway in log2(tp)
    assert FactorCurve(knots_for_tp(per_tp, 8, "bloom-176b"))(10.0) == 3.0
    assert FactorCurve(knots_for_tp(per_tp, 16))(10.0) == 2.0  # clamped beyond the fitted TP degrees


@pytest.mark.parametrize("text,expected", [
    ("name: x\n", "needs a mapping 'gpus'"),
    ("gpus:\n  h100-80gb: {eta_cc: 0.5}\n", "unknown parameter 'eta_cc' (did you mean eta_c"),
    ("gpus:\n  h100-80gb: {eta_c: fast}\n", "gpus.h100-80gb.eta_c: must be a finite number"),
    ("gpus:\n  h100-80gb: {prefill_corr: {2: [[128, -1]]}}\n", "pairs of positive numbers"),
    ("gpus: [oops\n", "malformed YAML"),
])
def test_bad_calibration_files_are_one_line_errors(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    clear_caches()
    with pytest.raises(SplitplanError) as info:
        build_perf_model("llama2-70b", "dgx-h100", 8, PerfSettings(calibration_paths=(str(path),)))
    assert expected in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_parameters_change_predictions_in_the_expected_direction():
    base = AnalyticPerfModel(default_instance(8), StackParams(), "x")
    slower = AnalyticPerfModel(default_instance(8), replace(StackParams(), eta_c=0.37, seq_ms=0.5), "x")
    assert slower.prefill_ms(1, 4096, 4096**2) > 1.3 * base.prefill_ms(1, 4096, 4096**2)
    assert slower.decode_ms(32, 32000) - base.decode_ms(32, 32000) == pytest.approx(32 * 0.5, rel=0.1)


def test_flagged_lines_are_file_line_numbers():
    from splitplan.perf.calibrate import flagged_lines

    path = Path(__file__).resolve().parent.parent / "profiles" / "measured" / "splitwisesim_perf_model.csv"
    lines = flagged_lines(read_profile(path), CAT)
    text = path.read_text().splitlines()
    assert len(lines) == 10
    for line in lines:
        fields = text[line - 1].split(",")
        assert fields[3] == "64" and fields[-1] == "2"  # batch 64 at TP2


def test_power_weights_fitted_on_a100_request_power():
    from splitplan.perf.power_fit import power_rows, predicted_average_fraction

    path = Path(__file__).resolve().parent.parent / "profiles" / "measured" / "splitwisesim_perf_model.csv"
    rows = power_rows(read_profile(path), CAT, "a100-80gb")
    assert len(rows) == 41 and rows["average_power"].min() > 0.3  # the three ~idle 8192-token rows are dropped
    assert power_rows(read_profile(path), CAT, "h100-80gb").empty  # SplitwiseSim has no H100 power
    calibrated = build_perf_model("llama2-70b", "dgx-a100", 8).params
    measured = rows["average_power"].to_numpy()
    fitted_error = np.abs(predicted_average_fraction(calibrated, rows, CAT) / measured - 1).mean()
    default_error = np.abs(predicted_average_fraction(replace(calibrated, busy_floor=0.3, power_a_c=1.1, power_a_m=0.6),
                                                      rows, CAT) / measured - 1).mean()
    assert fitted_error < 0.05 < default_error
