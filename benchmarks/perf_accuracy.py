"""Accuracy and speed of the performance model (acceptance figures of the perf issue, sections 3-4).

Prints:
1. Random 80/20 split (seed 0) of the uncapped lines of SplitwiseSim's measured profile: calibrate
   on 80%, MAPE / P90 / max on the held-out 20% for prompt and token time, next to SplitwiseSim's own
   interpolator (per-(model, hardware, TP) piece-wise linear curves over prompt_size * batch_size)
   trained on the same 80%. Shown with all held-out lines and without the failed measurements that
   `calibrate.anomalous_rows` flags (A100/H100 TP2 batch 64).
2. Leave-one-TP-degree-out: calibrate without TP t, test on TP t.
3. Spec defaults (no calibration) against TensorRT-LLM v0.9 batch-1 TTFT (performance-model.md §3.4,
   §5.1); FP8 rows use a 1-byte-weight variant of the model and FP8 compute.
4. 100,000 vectorized decode-step evaluations.
5. Power: mean per-GPU request power against SplitwiseSim's A100 `average_power` column, with the
   spec power weights and with the weights the bundled calibration fitted (in-sample).

Run: .venv/bin/python benchmarks/perf_accuracy.py [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from splitplan.catalog import default_catalog  # noqa: E402
from splitplan.perf import build_perf_model  # noqa: E402
from splitplan.perf.analytic import AnalyticPerfModel  # noqa: E402
from splitplan.perf.base import Instance  # noqa: E402
from splitplan.perf.calibrate import Errors, anomalous_rows, calibrate, gpu_rows, predict_with  # noqa: E402
from splitplan.perf.params import StackParams  # noqa: E402
from splitplan.perf.profile_io import read_profile  # noqa: E402
from splitplan.perf.table import median_curve  # noqa: E402

PROFILE = Path(__file__).resolve().parent.parent / "profiles" / "measured" / "splitwisesim_perf_model.csv"

# (machine, model, dtype, tp, prompt tokens, measured TTFT ms): TensorRT-LLM v0.9 batch 1
TRTLLM_TTFT = [
    ("dgx-h200", "llama2-70b", "fp8", 4, 128, 17.8), ("dgx-h200", "llama2-70b", "fp8", 4, 2048, 103.0),
    ("dgx-h100", "llama2-70b", "fp8", 4, 128, 19.6), ("dgx-h100", "llama2-70b", "fp8", 8, 2048, 85.1),
    ("dgx-a100", "llama2-70b", "bf16", 4, 128, 45.6), ("dgx-a100", "llama2-70b", "bf16", 8, 2048, 249.2),
    ("l40s-x8", "llama2-70b", "fp8", 8, 128, 70.4), ("l40s-x8", "llama2-70b", "fp8", 4, 2048, 673.3),
    ("dgx-h200", "llama2-7b", "fp8", 1, 128, 5.7), ("dgx-h200", "llama2-7b", "fp8", 1, 2048, 30.2),
    ("dgx-h100", "llama2-7b", "fp8", 1, 128, 6.3), ("dgx-h100", "llama2-7b", "fp8", 1, 2048, 30.8),
    ("dgx-a100", "llama2-7b", "bf16", 1, 128, 16.2), ("dgx-a100", "llama2-7b", "bf16", 1, 2048, 132.4),
]
SECTION_3_4_ROWS = 6  # the first six rows are the §3.4 whole-step check


def fmt(e: Errors) -> str:
    return f"MAPE {e.mape:5.2f}%  P90 {e.p90:5.2f}%  max {e.max:6.1f}%  (n={e.n})"


def analytic_predictions(train: pd.DataFrame, test: pd.DataFrame, catalog) -> np.ndarray:
    """Calibrate per GPU on `train` (anomalies removed), predict `test`."""
    fits = calibrate(None, catalog, rows=train[~anomalous_rows(train)])  # type: ignore[arg-type]
    pred = np.full(len(test), np.nan)
    for gpu, fit in fits.items():
        mask = (test["gpu"] == gpu).to_numpy()
        if mask.any():
            pred[mask] = predict_with(fit.params, test[mask], catalog, apply_cap=False)
    return pred


def interpolator_predictions(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """SplitwiseSim's DatabasePerformanceModel: curves over prompt_size * batch_size per phase."""
    pred = np.full(len(test), np.nan)
    for key, group in test.groupby(["model", "hardware", "tp", "phase"]):
        source = train[(train[["model", "hardware", "tp", "phase"]] == pd.Series(key, index=["model", "hardware", "tp", "phase"])).all(axis=1)]
        if source.empty:
            continue
        curve = median_curve(source["batch_size"] * source["prompt_tokens"], source["time_ms"])
        where = test.index.get_indexer(group.index)
        pred[where] = curve((group["batch_size"] * group["prompt_tokens"]).to_numpy(float))
    return pred


def report(label: str, test: pd.DataFrame, pred: np.ndarray, anomalous: pd.Series) -> None:
    print(f"  {label}")
    for name, mask in (("all held-out lines", np.ones(len(test), bool)), ("without flagged failures", ~anomalous.to_numpy())):
        for phase, title in (("prefill", "prompt"), ("decode", "token ")):
            sel = mask & (test["phase"] == phase).to_numpy() & ~np.isnan(pred)
            print(f"    {title} ({name:24s}): {fmt(Errors.of(pred[sel], test['time_ms'].to_numpy()[sel]))}")


def split_80_20(rows: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    lines = np.array(sorted(rows["row"].unique()))
    rng = np.random.default_rng(seed)
    test_lines = set(rng.choice(lines, size=int(round(0.2 * len(lines))), replace=False).tolist())
    is_test = rows["row"].isin(test_lines)
    return rows[~is_test].reset_index(drop=True), rows[is_test].reset_index(drop=True)


def accuracy_split(rows: pd.DataFrame, catalog, seed: int) -> None:
    train, test = split_80_20(rows, seed)
    print(f"1. Random 80/20 split of uncapped profile lines (seed {seed}): {train['row'].nunique()} train, "
          f"{test['row'].nunique()} test lines")
    anomalous = anomalous_rows(test)
    report("analytic, calibrated on the 80%", test, analytic_predictions(train, test, catalog), anomalous)
    report("SplitwiseSim interpolator on the same 80%", test, interpolator_predictions(train, test), anomalous)


def leave_one_tp_out(rows: pd.DataFrame, catalog) -> None:
    print("2. Leave one TP degree out (calibrate on the others, test on it; flagged failures excluded)")
    clean = rows[~anomalous_rows(rows)].reset_index(drop=True)
    for tp in sorted(clean["tp"].unique()):
        train, test = clean[clean["tp"] != tp], clean[clean["tp"] == tp].reset_index(drop=True)
        pred = analytic_predictions(train.reset_index(drop=True), test, catalog)
        for phase, title in (("prefill", "prompt"), ("decode", "token ")):
            sel = (test["phase"] == phase).to_numpy()
            print(f"    TP{int(tp)} {title}: {fmt(Errors.of(pred[sel], test['time_ms'].to_numpy()[sel]))}")


def trtllm_ttft(catalog) -> None:
    print("3. Spec defaults (uncalibrated) vs TensorRT-LLM v0.9 batch-1 TTFT")
    errors = []
    for machine, model_name, dtype, tp, prompt, measured in TRTLLM_TTFT:
        model = catalog.model(model_name)
        if dtype == "fp8":
            model = replace(model, name=f"{model.name}-fp8", dtype_bytes=1.0)
        mach = catalog.machine(machine)
        perf = AnalyticPerfModel(Instance(model, mach, catalog.gpu_of(mach), tp, dtype), StackParams(), "spec defaults")
        pred = perf.prefill_ms(1, prompt, prompt * prompt)
        errors.append(abs(pred / measured - 1) * 100)
        print(f"    {machine:9s} {model_name:10s} {dtype:4s} TP{tp} ISL {prompt:5d}: measured {measured:6.1f} ms, "
              f"predicted {pred:6.1f} ms ({(pred / measured - 1) * 100:+5.1f}%)")
    print(f"    MAPE {np.mean(errors[:SECTION_3_4_ROWS]):.1f}% on the 6 rows of §3.4, "
          f"{np.mean(errors):.1f}% on all {len(errors)} rows of §5.1")


def decode_speed() -> None:
    perf = build_perf_model("llama2-70b", "dgx-h100", 8)
    rng = np.random.default_rng(0)
    batch = rng.integers(1, 256, 100_000).astype(float)
    context = batch * rng.integers(100, 8000, 100_000)
    perf.decode_ms(batch, context)
    best = min(_timed(lambda: perf.decode_ms(batch, context)) for _ in range(5))
    fractional = batch + 0.5  # not whole batch sizes: no lookup table, every element computed
    generic = min(_timed(lambda: perf.decode_ms(fractional, context)) for _ in range(5))
    scalar = min(timeit.repeat(lambda: perf.decode_ms(16, 16000.0), number=20_000, repeat=5)) / 20_000
    prefill = min(timeit.repeat(lambda: perf.prefill_ms(1, 2048, 2048.0**2), number=20_000, repeat=5)) / 20_000
    print(f"4. 100,000 vectorized decode steps: {best * 1e3:.1f} ms (whole batch sizes, best of 5), "
          f"{generic * 1e3:.1f} ms (fractional batch sizes, no table); scalar decode_ms "
          f"{scalar * 1e6:.2f} us, prefill_ms {prefill * 1e6:.2f} us per call (best of 5 x 20,000)")


def power_accuracy(catalog) -> None:
    from splitplan.perf.power_fit import power_rows, predicted_average_fraction

    rows = power_rows(read_profile(PROFILE), catalog, "a100-80gb")
    measured = rows["average_power"].to_numpy()
    calibrated = build_perf_model("llama2-70b", "dgx-a100", 8).params
    spec = replace(calibrated, busy_floor=StackParams().busy_floor, power_a_c=StackParams().power_a_c,
                   power_a_m=StackParams().power_a_m)
    print(f"5. A100 mean request power vs SplitwiseSim average_power ({len(rows)} configurations, ~idle rows dropped)")
    for label, params in (("spec power weights", spec), ("fitted power weights", calibrated)):
        print(f"    {label:21s}: {fmt(Errors.of(predicted_average_fraction(params, rows, catalog), measured))}")


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    catalog = default_catalog()
    rows = gpu_rows(read_profile(PROFILE).rows, catalog)
    accuracy_split(rows, catalog, args.seed)
    leave_one_tp_out(rows, catalog)
    trtllm_ttft(catalog)
    decode_speed()
    power_accuracy(catalog)


if __name__ == "__main__":
    main()
