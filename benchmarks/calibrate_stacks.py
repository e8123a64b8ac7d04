"""Fit the bundled serving stacks (vllm, sglang, trtllm) on the shipped H100 measurements (aggregated
rows of dense and mixture-of-experts models, fitted in two stages unless --joint: serving_fit.fit) and print
the grouped cross-validation tables, for all rows and per model (docs/stacks.md quotes them).

    .venv/bin/python benchmarks/calibrate_stacks.py            # fit, cross-validate, print
    .venv/bin/python benchmarks/calibrate_stacks.py --write    # and rewrite profiles/stacks/{vllm,sglang,trtllm}.yaml

Each engine's rows are simulated once per candidate client protocol; the fit and the cross-validation
then reuse the recorded iterations (splitplan/apps/serving_fit.py); `--workers N` runs the
simulations and the cross-validation folds on N processes (results do not depend on N).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from splitplan.apps.benchmark_rows import read_rows  # noqa: E402
from splitplan.apps.calibrate_serving import base_header, calibrate_engine, write_stacks  # noqa: E402
from splitplan.catalog import default_catalog  # noqa: E402
from splitplan.serving.stack import get_stack  # noqa: E402

DATA = ROOT / "profiles" / "measured" / "serving" / "h100.csv"
ENGINES = ("vllm", "sglang", "trtllm")


def cal_models(cal) -> str:
    """'dense and MoE', 'dense' or 'MoE': which kinds of models the engine's fitted rows hold."""
    kinds = {row.instance.model.is_moe for row in cal.data.rows}
    return "dense and MoE" if len(kinds) == 2 else ("MoE" if True in kinds else "dense")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the bundled stack files")
    parser.add_argument("--engine", action="append", help="only these engines")
    parser.add_argument("--workers", type=int, default=2, help="processes for the simulations and CV folds")
    parser.add_argument("--joint", action="store_true", help="fit dense and MoE rows together (default: staged)")
    args = parser.parse_args()
    rows = read_rows(DATA)
    catalog = default_catalog()
    print(f"{'engine':8} {'protocol':11} {'rows':>5} {'grouping':9} {'TTFT MAPE':>10} {'TTFT med':>9} "
          f"{'TPOT MAPE':>10} {'TPOT med':>9}")
    for engine in args.engine or ENGINES:
        t0 = time.perf_counter()
        stack = get_stack(engine)
        cal = calibrate_engine(rows, catalog, engine, base_stack=stack, workers=args.workers, staged=not args.joint)
        for key, errs in [("in-sample", cal.in_sample), *cal.cv.items()]:
            t, p = errs["ttft"], errs["tpot"]
            print(f"{engine:8} {cal.protocol:11} {t['rows']:5d} {key:9} {t['mape']:9.1f}% {t['median']:8.1f}% "
                  f"{p['mape']:9.1f}% {p['median']:8.1f}%")
        scores = ", ".join(f"{k} {v:.4f}" for k, v in (cal.protocol_scores or {}).items())
        print(f"  {engine}: {time.perf_counter() - t0:.0f} s; protocol scores (held-out, lower is better): {scores}; "
              f"at a bound: {', '.join(cal.at_bound) or 'none'}")
        print(f"  values: {cal.values}")
        for key, models in (cal.per_model or {}).items():
            for model, errs in models.items():
                t, p = errs["ttft"], errs["tpot"]
                print(f"  {key:9} {model:34} {t['rows']:4d} rows  TTFT {t['mape']:6.2f}% / {t['median']:6.2f}%  "
                      f"TPOT {p['mape']:6.2f}% / {p['median']:6.2f}%")
        if args.write:
            path = Path(stack.source)
            source = f"profiles/measured/serving/h100.csv ({engine} agg rows: {cal_models(cal)})"
            write_stacks(path, [cal], source=source,
                         header=base_header(stack))
            print(f"  wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
