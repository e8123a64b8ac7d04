"""Scale guards that are cheap to test: the ILP stays tiny with many machine types and large limits,
and the local search's neighbourhood stays polynomial in the number of machine-type slots."""

from __future__ import annotations

import itertools
import random
import time

from splitplan.plan.ilp import Limits, PoolOption, _build, solve_ilp
from splitplan.plan.search import DesignSpace, undominated, neighbours
from splitplan.scenario import Design

PROMPT = (("dgx-h100", 38.0, 10.2, 6.0), ("dgx-h200", 41.8, 10.2, 7.0), ("hgx-b200", 76.0, 14.3, 14.0),
          ("mi300x-x8", 22.6, 10.5, 5.0))
TOKEN = (("dgx-a100", 17.6, 6.5, 3.0), ("dgx-h100-pcap", 38.0, 7.14, 5.0), ("dgx-h100", 38.0, 10.2, 5.5),
         ("mi300x-x8", 22.6, 10.5, 4.0))


def space(max_per_pool: int = 40) -> DesignSpace:
    options = [PoolOption("prompt", m, cap, cost, kw) for m, cost, kw, cap in PROMPT]
    options += [PoolOption("token", m, cap, cost, kw) for m, cost, kw, cap in TOKEN]
    design = Design("S", "splitwise", prompt=tuple(m for m, *_ in PROMPT), token=tuple(m for m, *_ in TOKEN))
    return DesignSpace("llama2-70b", design, options, Limits(cost_usd_per_h=1500.0, max_per_pool=max_per_pool))


def test_ilp_size_does_not_grow_with_count_limits() -> None:
    for limit in (10, 1000, 100_000):
        s = space(limit)
        prob, *_ = _build(s.options, s.limits, "max_throughput", [])
        assert prob.numVariables() == 9 and prob.numConstraints() == 7
        start = time.perf_counter()
        best = solve_ilp(s.options, s.limits, "max_throughput", top=3)
        assert time.perf_counter() - start < 10 and len(best) == 3
        assert best[0].cost_usd_per_h <= 1500.0 + 1e-6


def test_neighbourhood_stays_polynomial_in_slots() -> None:
    """4 + 4 machine types: the full box at radius 3 is 7^8 = 5.7 million vectors."""
    s = space()
    v = (0, 0, 7, 33, 0, 0, 0, 8)
    start = time.perf_counter()
    for radius in (1, 2, 3, 5):
        near = neighbours(s, v, radius)
        assert 0 < len(near) <= 10_000 and all(s.valid(w) for w in near) and v not in near
        undominated(near + [v])
    assert time.perf_counter() - start < 15


def test_small_designs_keep_their_full_neighbourhood() -> None:
    """Two slots: every vector within the radius box (that is valid) is a neighbour, as before."""
    opts = [PoolOption("prompt", "dgx-h100", 6.0, 38.0, 10.2), PoolOption("token", "dgx-a100", 3.0, 17.6, 6.5)]
    s = DesignSpace("llama2-70b", Design("S", "splitwise", prompt=("dgx-h100",), token=("dgx-a100",)), opts,
                    Limits(cost_usd_per_h=1000.0))
    v = (5, 5)
    box = {(5 + a, 5 + b) for a, b in itertools.product(range(-2, 3), repeat=2) if (a, b) != (0, 0)}
    assert box <= set(neighbours(s, v, 2))


def test_vectorised_dominance_filter_matches_the_definition() -> None:
    rng = random.Random(0)
    vectors = [tuple(rng.randint(0, 3) for _ in range(5)) for _ in range(300)] + [(1, 1, 1, 1, 1)] * 2
    expected = [v for v in vectors if not any(w != v and all(a >= b for a, b in zip(w, v)) for w in vectors)]
    assert undominated(vectors) == expected
