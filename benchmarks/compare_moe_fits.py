"""Compare the two ways to fit an engine's stack on dense and MoE rows together, by grouped
cross-validation, with the errors of dense and MoE rows read apart (docs/stacks.md quotes the tables).

    .venv/bin/python benchmarks/compare_moe_fits.py --engine vllm --workers 2

- joint: every parameter (FIT_PARAMS and the grouped-GEMM moe_* the rows see) on all rows at once;
- staged: FIT_PARAMS on the dense rows alone, then moe_* on the MoE rows with the dense values fixed,
  moe_eta_m at most the dense stage's eta_m (serving_fit._fit_staged);
- staged-uncapped: the same without the moe_eta_m <= eta_m bound (what the data alone says).

Each engine's rows are simulated once, under the client protocol its bundled stack records
(fitted.protocol), and every variant is fitted and cross-validated on those recorded iterations:
held-out configuration (every concurrency of one curve together) and leave one model out.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from splitplan.apps import serving_fit  # noqa: E402
from splitplan.apps.benchmark import Protocol  # noqa: E402
from splitplan.apps.benchmark_rows import read_rows  # noqa: E402
from splitplan.apps.calibrate_serving import prepare  # noqa: E402
from splitplan.apps.serving_fit import FitData, errors, fit, grouped_cv  # noqa: E402
from splitplan.catalog import default_catalog  # noqa: E402
from splitplan.serving.kernels import arch_kernels, gpu_arch  # noqa: E402
from splitplan.serving.stack import get_stack  # noqa: E402

DATA = ROOT / "profiles" / "measured" / "serving" / "h100.csv"
VARIANTS = ("joint", "staged", "staged-uncapped")


def _run(variant: str, fn, *args, **kwargs):
    """`fn` under a variant: joint (staged=False), staged, or staged without the moe_eta_m cap."""
    cap = serving_fit.CAP_MOE_ETA_M
    serving_fit.CAP_MOE_ETA_M = variant != "staged-uncapped"
    try:
        return fn(*args, staged=variant != "joint", **kwargs)
    finally:
        serving_fit.CAP_MOE_ETA_M = cap


def _line(label: str, rows: np.ndarray, ttft: np.ndarray, tpot: np.ndarray, data: FitData) -> str:
    t, p = errors(ttft[rows], data.ttft[rows]), errors(tpot[rows], data.tpot[rows])
    return (f"    {label:28} {t['rows']:4d} rows  TTFT MAPE {t['mape']:6.2f}% median {t['median']:6.2f}%  "
            f"TPOT MAPE {p['mape']:6.2f}% median {p['median']:6.2f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", help="engines (default vllm, trtllm: those with both kinds)")
    parser.add_argument("--variant", action="append", choices=VARIANTS, help="variants (default all)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the simulations and CV folds")
    args = parser.parse_args()
    frame = read_rows(DATA)
    catalog = default_catalog()
    for engine in args.engine or ("vllm", "trtllm"):
        t0 = time.perf_counter()
        stack = get_stack(engine)
        recorded = stack.fitted.protocol
        protocol = Protocol(range_ratio=recorded["range_ratio"], warmup=int(recorded["warmup"]))
        rows, refused = prepare(frame[frame["engine"].astype(str).str.strip().str.lower() == engine], catalog,
                                stack, protocol, args.workers)
        data = FitData(rows)
        kernels, _ = arch_kernels(gpu_arch(rows[0].instance.gpu))
        base = kernels.with_values(stack.params)
        moe = np.array([r.instance.model.is_moe for r in rows])
        models = np.array([r.groups["model"] for r in rows])
        print(f"{engine}: {len(rows)} rows ({moe.sum()} MoE), {refused} refused, protocol {stack.fitted.protocol}, "
              f"simulated in {time.perf_counter() - t0:.0f} s")
        for variant in args.variant or VARIANTS:
            t1 = time.perf_counter()
            result = _run(variant, fit, data, base, prior=kernels)
            params = replace(base, **result.values)
            preds = {"in-sample": data.predict(lambda _instance: params)}
            for key in ("config", "model"):
                preds[key] = _run(variant, grouped_cv, data, key, base, prior=kernels, workers=args.workers)
            print(f"  {variant} ({time.perf_counter() - t1:.0f} s): at bound {', '.join(result.at_bound) or 'none'}")
            print(f"    values {result.values}")
            for key, (ttft, tpot) in preds.items():
                print(f"   {key}")
                print(_line("dense models", ~moe, ttft, tpot, data))
                print(_line("moe models", moe, ttft, tpot, data))
                for model in sorted(set(models)):
                    print(_line(model, models == model, ttft, tpot, data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
