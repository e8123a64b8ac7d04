"""Run the acceptance benchmarks in turn (`make bench`), each in its own process, and print their figures.

The long ones (1M requests, the paper's studies, the 10,000-candidate search, check-all timing) are
left out; run them by name: scale_sim.py, scale_search.py, opt_iso_power.py, opt_vs_grid.py,
repro_check_time.py, sim_speed_compare.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = ["perf_accuracy.py", "slo_reference_check.py", "sim_fidelity.py", "ssim_heavy.py", "sim_speed.py",
         "opt_single.py"]


def main() -> int:
    failed = []
    for name in QUICK:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        status = subprocess.call([sys.executable, str(HERE / name)])
        print(f"=== {name}: exit {status}, {time.perf_counter() - start:.1f} s wall ===", flush=True)
        if status != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
