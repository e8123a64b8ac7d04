"""How long the whole reproduction takes: `splitplan check scenarios/ --all`, per study and mode, wall and CPU.

Acceptance: `make check-all` under 10 minutes on 2 cores. On a shared machine the wall time depends on the
other load, so this also prints the CPU seconds used (this process and its worker processes): CPU / 2 is
the wall time two idle cores would need.

Run: .venv/bin/python benchmarks/repro_check_time.py [PATHS...] [--fast-only]
"""

from __future__ import annotations

import argparse
import resource
import time

from splitplan.check import run_check


def cpu_s() -> float:
    """User + system CPU of this process and of its finished children (the optimizer's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=["scenarios"])
    ap.add_argument("--fast-only", action="store_true", help="what CI runs (no --all)")
    args = ap.parse_args()
    marks = {"t": time.perf_counter(), "cpu": cpu_s()}
    print(f"{'scenario':36} {'mode':9} {'checks':>7} {'wall s':>7} {'cpu s':>7}")

    def done(o) -> None:
        now, cpu = time.perf_counter(), cpu_s()
        ok = len(o.results) - len(o.failed)
        print(f"{o.spec.path.stem:36} {o.mode:9} {ok:>3}/{len(o.results):<3} {now - marks['t']:7.1f} "
              f"{cpu - marks['cpu']:7.1f}", flush=True)
        marks.update(t=now, cpu=cpu)

    t0, c0 = time.perf_counter(), cpu_s()
    report = run_check(args.paths, include_slow=not args.fast_only, on_done=done)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    ok, total = report.n_checks()
    print(f"total: {ok}/{total} expectations hold; wall {wall:.0f} s, CPU {cpu:.0f} s "
          f"(= {cpu / 2:.0f} s on 2 idle cores; target < 600 s)")


if __name__ == "__main__":
    main()
