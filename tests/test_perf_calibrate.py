"""Calibration: recover a known stack from synthetic measurements, write/read the stack YAML, reject bad
files, report parameters at a bound, and cross-validate without leaking held-out configurations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from splitplan.catalog import default_catalog
from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model, clear_caches
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.calibrate import (FIT_PARAMS, anomalous_rows, at_bounds, base_params, calibrate, gpu_rows,
                                      write_stack)
from splitplan.perf.profile_cv import config_labels, cross_validate, folds, training_rows
from splitplan.perf.profile_io import read_profile
from splitplan.perf.profile_rows import fit_rows
from splitplan.serving.kernels import arch_kernels
from splitplan.serving.params import SPECS, StackParams
from splitplan.serving.stack import get_stack, load_stack_file

CAT = default_catalog()
ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "profiles" / "measured" / "splitwisesim_perf_model.csv"
TRUE = replace(arch_kernels("hopper")[0], eta_c_bf16=0.6, eta_fa=0.3, ar_alpha_us=30.0, ar_alpha_log2_us=10.0,
               seq_us=100.0, prompt_seq_ms=2.0, launch_us=20.0, prompt_layer_us=150.0)


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
    from splitplan.serving.quant import BF16

    return make_instance("llama2-70b", "dgx-h100", tp, BF16, CAT)


def test_calibration_recovers_a_known_stack_and_round_trips(tmp_path):
    path = synthetic_profile(tmp_path)
    profile = read_profile(path)
    fits = calibrate(profile, CAT)
    fit = fits["h100-80gb"]
    assert fit.prefill.mape < 2.0 and fit.decode.mape < 2.0
    out = tmp_path / "synthetic-stack.yaml"
    write_stack(out, fits, CAT, base=get_stack("vllm-2023"), name="synthetic", description="test stack",
                source=path.name, date="2026-01-01", rows=fit_rows(profile, CAT))
    text = out.read_text()
    assert "date: '2026-01-01'" in text and "test stack" in text and "mape_percent" in text
    stack = load_stack_file(out)
    assert stack.fitted.archs == ("hopper",) and stack.fitted.ranges["tp"] == (2.0, 8.0)
    assert set(stack.arch_params["hopper"]) >= set(FIT_PARAMS)
    clear_caches()
    perf = build_perf_model("llama2-70b", "dgx-h100", 4, PerfSettings(stack=str(out)))
    assert perf.provenance.startswith("stack synthetic (vllm 0.1 - 0.2): calibrated on hopper (synthetic.csv)")
    truth = AnalyticPerfModel(default_instance(4), TRUE, "truth")
    assert perf.prefill_ms(3, 3000, 3e6) == pytest.approx(truth.prefill_ms(3, 3000, 3e6), rel=0.05)
    assert perf.decode_ms(12, 12000) == pytest.approx(truth.decode_ms(12, 12000), rel=0.05)
    # an architecture the file was not fitted on is extrapolated, and says so
    other = build_perf_model("llama2-70b", "dgx-a100", 4, PerfSettings(stack=str(out)))
    assert "extrapolated to ampere: fitted on hopper only" in other.provenance


def test_bundled_stack_records_its_fit_and_held_out_errors():
    stack = get_stack("vllm-2023")
    assert stack.calibrated and stack.fitted.archs == ("ampere", "hopper")
    assert stack.fitted.data == "splitwisesim_perf_model.csv"
    assert stack.fitted.ranges["batch"] == (1.0, 64.0) and stack.fitted.ranges["tp"] == (2.0, 8.0)
    for gpu in ("a100-80gb", "h100-80gb"):
        accuracy = stack.fitted.accuracy[gpu]
        for scheme in ("in_sample", "grouped", "leave_one_tp_out", "leave_one_model_out"):
            for phase in ("prefill", "decode"):
                assert 0 < accuracy[scheme][phase]["mape_percent"] < 30
        # held out is never better than in sample by more than noise
        for phase in ("prefill", "decode"):
            assert accuracy["grouped"][phase]["mape_percent"] >= accuracy["in_sample"][phase]["mape_percent"] - 0.05
        assert isinstance(accuracy["params_at_bound"], list)
    for arch in ("ampere", "hopper"):
        for name in FIT_PARAMS:
            spec = SPECS[name]
            assert spec.lo <= stack.arch_params[arch][name] <= spec.hi


def test_at_bound_values_are_reported():
    params = replace(StackParams(), eta_kv=1.0, launch_us=0.0, eta_c_bf16=0.7, ar_big_bw_fraction=0.01)
    notes = at_bounds(params)
    assert any(n.startswith("eta_kv=1 at its upper bound") for n in notes)
    assert any(n.startswith("launch_us=0 at its lower bound") for n in notes)
    assert any(n.startswith("ar_big_bw_fraction=0.01 at its lower bound") for n in notes)
    assert not any(n.startswith("eta_c_bf16") for n in notes)


def test_anomalous_rows_flag_the_batch_64_failures():
    rows = gpu_rows(read_profile(PROFILE).rows, CAT)
    flagged = rows[anomalous_rows(rows)]
    assert set(flagged["batch_size"]) == {64.0} and set(flagged["tp"]) == {2.0}
    assert set(flagged["hardware"]) == {"a100-80gb", "h100-80gb"} and len(flagged) == 20  # 5 lines x 2 phases x 2 GPUs


@pytest.mark.parametrize("mutation,expected", [
    ({"eta_cc": 0.5}, "arch.hopper: unknown parameter 'eta_cc' (did you mean eta_m, eta_c_wo, eta_kv?)"),
    ({"eta_m": "fast"}, "arch.hopper.eta_m: must be a finite number, got 'fast'"),
    ({"eta_m": -0.85}, "arch.hopper.eta_m: -0.85 is outside its physical range [0.3, 1]"),
    ({"launch_us": 500.0}, "arch.hopper.launch_us: 500.0 is outside its physical range [0, 200]"),
])
def test_bad_stack_files_are_one_line_errors(tmp_path, mutation, expected):
    data = yaml.safe_load((ROOT / "profiles" / "stacks" / "vllm-2023.yaml").read_text())
    data["arch"]["hopper"].update(mutation)
    data["name"] = "mutated"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    clear_caches()
    with pytest.raises(SplitplanError) as info:
        build_perf_model("llama2-70b", "dgx-h100", 8, PerfSettings(stack=str(path)))
    assert expected in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_malformed_stack_yaml_is_a_one_line_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\narch: [oops\n")
    clear_caches()
    with pytest.raises(SplitplanError) as info:
        build_perf_model("llama2-70b", "dgx-h100", 8, PerfSettings(stack=str(path)))
    assert "malformed YAML" in str(info.value) and "\n" not in str(info.value)


def test_parameters_change_predictions_in_the_expected_direction():
    base = AnalyticPerfModel(default_instance(8), StackParams(), "x")
    slower = AnalyticPerfModel(default_instance(8), replace(StackParams(), eta_c_bf16=0.37, seq_us=500.0), "x")
    assert slower.prefill_ms(1, 4096, 4096**2) > 1.3 * base.prefill_ms(1, 4096, 4096**2)
    assert slower.decode_ms(32, 32000) - base.decode_ms(32, 32000) == pytest.approx(32 * 0.5, rel=0.1)


def test_flagged_lines_are_file_line_numbers():
    from splitplan.perf.calibrate import flagged_lines

    lines = flagged_lines(read_profile(PROFILE), CAT)
    text = PROFILE.read_text().splitlines()
    assert len(lines) == 10
    for line in lines:
        fields = text[line - 1].split(",")
        assert fields[3] == "64" and fields[-1] == "2"  # batch 64 at TP2


def test_power_weights_fitted_on_a100_request_power():
    from splitplan.perf.power_fit import power_rows, predicted_average_fraction

    rows = power_rows(read_profile(PROFILE), CAT, "a100-80gb")
    assert len(rows) == 41 and rows["average_power"].min() > 0.3  # the three ~idle 8192-token rows are dropped
    assert power_rows(read_profile(PROFILE), CAT, "h100-80gb").empty  # SplitwiseSim has no H100 power
    calibrated = build_perf_model("llama2-70b", "dgx-a100", 8).params
    measured = rows["average_power"].to_numpy()
    fitted_error = np.abs(predicted_average_fraction(calibrated, rows, CAT) / measured - 1).mean()
    default_error = np.abs(predicted_average_fraction(replace(calibrated, busy_floor=0.3, power_a_c=1.1, power_a_m=0.6),
                                                      rows, CAT) / measured - 1).mean()
    assert fitted_error < 0.05 < default_error


# ------------------------------------------------------------------------------------ cross-validation

def _subset() -> pd.DataFrame:
    """Two instances of one GPU (fast): Llama2-70B on DGX-H100 at TP4 and TP8."""
    rows = fit_rows(read_profile(PROFILE), CAT)
    keep = (rows["gpu"] == "h100-80gb") & (rows["model"] == "llama2-70b") & rows["tp"].isin([4.0, 8.0])
    return rows[keep].reset_index(drop=True)


@pytest.mark.parametrize("scheme,column", [("grouped", None), ("leave_one_tp_out", "tp")])
def test_cross_validation_never_trains_on_a_held_out_configuration(scheme, column):
    """Every fold's training rows (as the fit receives them) share no configuration (model, hardware,
    tp, prompt, batch) with its test rows, and every row is held out exactly once."""
    rows = _subset()
    labels = config_labels(rows)
    seen: list[tuple[set, set]] = []

    def spy(train: pd.DataFrame, catalog, gpu: str):
        seen.append((set(config_labels(train)), set(train[column]) if column else set()))
        return base_params(gpu, catalog)

    result = cross_validate(rows, CAT, scheme, workers=1, fit=spy)
    assert len(seen) == len(result.folds) > 1
    held = np.zeros(len(rows), int)
    for fold, (train_configs, train_values) in zip(result.folds, seen):
        test_configs = set(labels[fold.test])
        assert test_configs and not test_configs & train_configs
        assert train_configs | test_configs == set(labels)
        if column:
            assert not set(rows.loc[fold.test, column]) & train_values
        held += fold.test
    assert np.all(held == 1) and not np.isnan(result.pred).any()
    if scheme == "grouped":  # one fold per configuration: all 5 repetitions (and output lengths) together
        assert len(result.folds) == labels.nunique() == 26
        sizes = [int(f.test.sum()) for f in result.folds]
        assert min(sizes) == 10 and max(sizes) == 90  # 5 lines x 2 phases; 512x1: 45 lines (7 output lengths)


def test_training_rows_drop_exactly_the_fold():
    rows = _subset()
    fold = next(folds(rows, "grouped"))
    train = training_rows(rows, fold)
    assert len(train) == len(rows) - int(fold.test.sum())
    assert not set(config_labels(train)) & set(config_labels(rows[fold.test]))


def test_held_out_predictions_come_from_refits_and_are_worse_than_in_sample():
    """A real grouped CV on the subset: held-out errors exceed the in-sample ones (a leak would not)."""
    rows = _subset()
    result = cross_validate(rows, CAT, "grouped", workers=1)
    fits = calibrate(None, CAT, rows=rows)
    held = result.errors(("phase",))
    assert held[("prefill",)].mape > fits["h100-80gb"].prefill.mape
    assert held[("decode",)].mape > fits["h100-80gb"].decode.mape
    assert held[("prefill",)].mape < 15 and held[("decode",)].mape < 10
