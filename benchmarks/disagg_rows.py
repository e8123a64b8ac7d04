"""The measured disaggregated H100 rows that splitplan can model, predicted as far as the rows allow.

profiles/measured/serving/h100.csv has 73 disaggregated rows. DeepSeek rows run decode workers of 16 GPUs
(two machines) with expert parallelism, which splitplan's instances do not span; Qwen3-235B rows are
MoE; the five Qwen3-32B rows (SGLang and vLLM, prefill and decode worker counts and TP degrees given)
lack the benchmark's concurrency, so no closed loop can be replayed as is. For those five this script
asks the one question the data can answer without the missing number: with the concurrency chosen so
that the predicted mean TTFT equals the measured one (the unknown fitted on one quantity, log-linear
between grid points), how close is the predicted TPOT, a quantity the choice did not see? A row whose
measured TTFT no concurrency in 1..4096 reaches is reported as such.

    python benchmarks/disagg_rows.py            # about a minute on one core
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from splitplan.apps.benchmark import run_benchmark  # noqa: E402
from splitplan.apps.benchmark_rows import plan_row  # noqa: E402
from splitplan.catalog import get_catalog  # noqa: E402
from splitplan.errors import SplitplanError  # noqa: E402

GRID = [int(round(2 ** (k / 2))) for k in range(0, 25)]  # 1 .. 4096 clients, x1.41 steps


def sweep(row: pd.Series, catalog) -> list[tuple[int, float, float]]:
    out = []
    for c in dict.fromkeys(GRID):
        at_c = row.copy()
        at_c["concurrency"] = c
        at_c["tp"] = max(int(row.prefill_tp), int(row.decode_tp))  # the row leaves it blank
        job = plan_row(0, at_c, catalog, None, None)
        if job.config is None:
            raise SplitplanError(job.refusal)
        r = run_benchmark(job.config, catalog)
        out.append((c, r["ttft_ms"]["mean"], r["tpot_ms"]["mean"]))
        if r["ttft_ms"]["mean"] > 3 * float(row["ttft_ms"]):
            break
    return out


def at_measured_ttft(points: list[tuple[int, float, float]], ttft_ms: float) -> tuple[float, float] | None:
    """(concurrency, predicted TPOT) where the predicted TTFT crosses the measured one."""
    for (c0, t0, p0), (c1, t1, p1) in zip(points, points[1:]):
        if t0 <= ttft_ms <= t1 and t1 > t0:
            w = (math.log(ttft_ms) - math.log(t0)) / (math.log(t1) - math.log(t0))
            return math.exp(math.log(c0) + w * (math.log(c1) - math.log(c0))), p0 + w * (p1 - p0)
    return None


def main() -> None:
    catalog = get_catalog()
    rows = pd.read_csv(ROOT / "profiles" / "measured" / "serving" / "h100.csv")
    disagg = rows[rows["mode"] == "disagg"]
    print(f"{len(disagg)} disaggregated rows; by model: "
          + ", ".join(f"{m} {n}" for m, n in disagg["model"].value_counts().items()))
    dense = disagg[disagg["model"] == "Qwen/Qwen3-32B"]
    errors = []
    for _, row in dense.iterrows():
        shape = (f"{int(row.prefill_workers)} x P tp{int(row.prefill_tp)} + {int(row.decode_workers)} x D "
                 f"tp{int(row.decode_tp)}")
        points = sweep(row, catalog)
        hit = at_measured_ttft(points, float(row["ttft_ms"]))
        head = f"{row.engine:6s} {int(row.isl)}/{int(row.osl)} {shape:26s} measured TTFT {row.ttft_ms:8.0f} ms TPOT " \
               f"{row.tpot_ms:6.1f} ms"
        if hit is None:
            lo, hi = points[0][1], points[-1][1]
            print(f"{head}: predicted TTFT spans {lo:.0f}-{hi:.0f} ms over 1-{points[-1][0]} clients, never the measured")
            continue
        c, tpot = hit
        err = tpot / float(row["tpot_ms"]) - 1
        errors.append(err)
        print(f"{head}: TTFT matched at {c:6.1f} clients -> predicted TPOT {tpot:6.1f} ms ({err:+.0%})")
    if errors:
        print(f"TPOT at the TTFT-matched concurrency: median |error| {np.median(np.abs(errors)):.0%} over "
              f"{len(errors)} rows (MAPE {np.mean(np.abs(errors)):.0%})")


if __name__ == "__main__":
    main()
