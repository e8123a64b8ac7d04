"""`splitplan benchmark --rows` on the shipped H100 measurements with the bundled stacks: how long it
takes, and the error per engine and model (in-sample for these rows: the stacks were fitted on them;
the held-out figures are benchmarks/calibrate_stacks.py's).

    .venv/bin/python benchmarks/serving_rows.py [--workers 2] [--rows 400]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from splitplan.apps.benchmark_rows import error_table, predict_rows, read_rows  # noqa: E402
from splitplan.catalog import default_catalog  # noqa: E402

DATA = ROOT / "profiles" / "measured" / "serving" / "h100.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", type=int, default=0, help="only the first N modelable rows (0: all rows)")
    args = parser.parse_args()
    frame = read_rows(DATA)
    if args.rows:
        modelable = frame[(frame["mode"] == "agg") & (frame["ep"].isin(["", "1"]))
                          & ~frame["model"].str.contains("gpt-oss|MiniMax|A22B|DeepSeek")]
        frame = modelable.head(args.rows)
    catalog = default_catalog()
    t0 = time.perf_counter()
    out = predict_rows(frame, catalog, workers=args.workers)
    wall = time.perf_counter() - t0
    ok = int(out["status"].str.startswith("ok").sum())
    print(f"{len(out)} rows ({ok} predicted, {len(out) - ok} refused) in {wall:.1f} s with {args.workers} worker(s)")
    print(out["status"].str.split(" \\(").str[0].value_counts().to_string())
    print(error_table(out, ("engine", "model")).round(1).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
