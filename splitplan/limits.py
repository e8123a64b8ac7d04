"""Bounds that make an absurd size an input error before any work starts, not hours of simulation.

Each is far beyond what a planning question needs, so it only ever catches a typo or a unit slip
(milliseconds written as seconds, an extra 000): one line naming the field, instead of a run that
never ends or an allocation that cannot succeed.
"""

from __future__ import annotations

from splitplan.errors import SplitplanError

# Requests in one generated workload: about 10-30 min of simulation at 30-90 us/request
# (docs/simulator.md), and ~14 GB of per-request result arrays; `rate 1e300` must not allocate 745 GiB.
MAX_GENERATED_REQUESTS = 20_000_000
# Tokens in one request (prompt or output): far past any model's context; keeps sums inside int64.
MAX_TOKENS_PER_REQUEST = 100_000_000
# Simulated seconds per run: one day. The bundled studies use 40-120 s; more seeds narrow a confidence
# interval faster than longer runs, and 1e9 s (31 years) is a unit slip.
MAX_DURATION_S = 86_400
# Simulated seeds per candidate (search.seeds, workload.seeds, --seeds): the 95% interval across 100
# seeds is already 1/6 of that across 3; every seed multiplies the whole search's simulation time.
MAX_SEEDS = 100
# search.max_per_pool: 10,000 machines (80,000 GPUs) in one pool; the bundled studies use up to 1,000.
MAX_PER_POOL = 10_000
# search.verify_top: each verified ILP solution costs a rate bisection (10-20 simulations per seed).
MAX_VERIFY_TOP = 100
# Worker processes (search.workers, --workers): beyond the largest hosts' cores they only add memory.
MAX_WORKERS = 256


def check_request_estimate(rate_rps: float, duration_s: float, source: str | None, field: str) -> None:
    """Refuse a rate and duration whose product (the requests each simulated run generates) is absurd,
    before any workload is generated."""
    expected = rate_rps * duration_s
    if not expected <= MAX_GENERATED_REQUESTS:
        raise SplitplanError(f"{rate_rps:g} req/s for {duration_s:g} s is about {expected:.3g} requests per "
                             f"simulated run (limit {MAX_GENERATED_REQUESTS:,}); lower the rate or the duration",
                             source=source, field=field)
