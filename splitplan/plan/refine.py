"""Refine the ILP's proposal with simulated pass/fail tests: one simulation answers each question.

A max rate costs a bisection (6-8 simulations); most questions a search asks need one simulation:
"does this neighbour beat the current plan?" is a pass/fail test at the next lattice rate, and "does this
plan reach the target?" a test at the target. Only the plan that wins is verified in full.

- `refine_max_throughput` (budget-bound): every undominated neighbour within the budget is tested one
  lattice step (2%) above the current plan's rate; the survivors are raised a step at a time until one
  is left (ties: the cheapest); it is verified in full, and the search moves there and repeats.
- `refine_to_target` (min cost / min power at a target): scale the proposal along its ray (all pools by
  the same factor) until it passes the target, bisect the factor, then search each pool's size on its
  own down towards one machine (the others kept; steps of 1, 2, 4, ... machines, then bisection), then
  walk to the cheapest passing neighbour, in cost order, until none is cheaper; the end point is
  verified in full. The ray climb reaches a target the capacity model under-estimated; the per-pool
  search reaches the smallest plan when it over-estimated one pool and not the other (a 2x error
  either way, tests/test_plan_refine.py), which a neighbourhood search of one or two machines cannot.
- When the model says no plan within the budgets reaches the target, that is not a verdict: the
  model is calibrated on its unbudgeted proposal, and the largest calibrated plan within the budgets
  is simulated (`ilp_search`).
Neighbours are tested in batches of fixed size, so the answer does not depend on the worker count.
"""

from __future__ import annotations

import math
from dataclasses import replace

from splitplan.plan.ilp import Limits, PoolOption, solve_ilp
from splitplan.plan.result import Candidate
from splitplan.plan.search import Evaluator, Vector, neighbours, undominated, vector_of
from splitplan.plan.studies import better, pick_best
from splitplan.plan.verify import lattice_index, lattice_rate

BATCH = 4  # neighbours tested per round trip (fixed: results must not depend on the worker count)
RAY_STEP = 1.08  # ray climb: each step scales every pool by 8%
RAY_STEPS = 12  # up to 1.08^12 = 2.5x the proposal
EPS = 1e-9


def ilp_search(ev: Evaluator, objective: str, top: int, radius: int, solver: str,
               calibration_rounds: int = 1) -> Candidate | None:
    """ILP proposals, re-solved with per-role capacities calibrated by (one-seed) simulation, then refined
    by simulated pass/fail tests (plan/refine.py).

    At a target (min cost / min power) the model's "no plan within the limits" is not a verdict: the
    model may be pessimistic. The proposal without the budgets is calibrated instead, and when the
    calibrated ILP still finds nothing within the limits, the in-budget plan of the highest calibrated
    rate is simulated, so an infeasible answer always rests on simulations."""
    space = ev.space
    options = list(space.options)
    previous: Vector | None = None
    for _ in range(calibration_rounds):
        sols = solve_ilp(options, space.limits, objective, solver) or _unbudgeted(options, space, objective, solver)
        if not sols:
            break
        v0 = space.vector(sols[0].counts)
        if v0 == previous:  # calibration no longer moves the answer
            break
        previous = v0
        scales = role_scales(ev, options, v0)
        if all(abs(x - 1) < 0.05 for x in scales.values()):
            break
        options = [replace(o, cap_rps=o.cap_rps * scales[o.role]) for o in options]
        ev.hint_options = options
    sols = solve_ilp(options, space.limits, objective, solver, top=top)
    if not sols and objective != "max_throughput":  # the largest calibrated plan the limits allow
        sols = solve_ilp(options, replace(space.limits, min_throughput_rps=None), "max_throughput", solver)
    if not sols:
        return None
    vectors = [space.vector(s.counts) for s in sols]
    if objective == "max_throughput":
        return refine_max_throughput(ev, ev.evaluate(vectors, "ilp"), objective, radius)
    found = refine_to_target(ev, vectors, objective, radius)
    # a plan verified on the way (the calibration's proposal) may beat where the refinement ended
    best = pick_best([c for c in (found, *ev.seen.values()) if c is not None], objective,
                     space.limits.min_throughput_rps)
    return best or found


def _unbudgeted(options: list[PoolOption], space, objective: str, solver: str) -> list:
    """At a target, the model's cheapest plan ignoring cost, power and machine budgets: something to
    calibrate the model on when it says nothing within the budgets reaches the target."""
    if objective == "max_throughput" or space.limits.min_throughput_rps is None:
        return []
    free = Limits(max_per_pool=space.limits.max_per_pool, min_throughput_rps=space.limits.min_throughput_rps)
    return solve_ilp(options, free, objective, solver)


def role_scales(ev: Evaluator, options: list[PoolOption], v: Vector) -> dict[str, float]:
    """Simulated / modelled rate of each role's pool at counts v: the correction the model needs.

    A one-pool design's v is simply verified (the ILP proposes it again, so the run is not wasted). With
    several pools, each is measured alone on the first seed (a screen) by over-provisioning the others
    (3x + 1 machines) so that it binds; these calibration clusters ignore the budgets and are not
    candidates."""
    space = ev.space
    roles = space.roles()
    modelled = {r: sum(o.cap_rps * n for o, n in zip(options, v) if o.role == r) for r in roles}
    if len(roles) == 1:
        measured = {roles[0]: ev.evaluate([v], "ilp")[0].throughput_rps}  # verified once: the ILP proposes v again
    else:
        fn = ev.screen_fn or ev.verify_fn
        tasks = []
        borrows = space.design.cluster_design == "splitwise" and set(roles) == {"prompt", "token"}
        for r in roles:
            w = tuple(n if o.role == r else 3 * n + 1 for o, n in zip(options, v))
            hint = (borrowing_screen_rps(options, w, modelled[r], space.borrowed_token_rps)
                    if borrows and r == "token" else modelled[r])
            tasks.append((ev.problem, space.cluster(w), hint))
        results = ev.map(fn, tasks)
        measured = {r: res.rate_rps for r, res in zip(roles, results)}
    return {r: (measured[r] / modelled[r] if measured[r] > 0 and modelled[r] > 0 else 1.0) for r in roles}


def borrowing_screen_rps(options: list[PoolOption], w: Vector, token_rps: float,
                         borrowed_rps: dict[tuple[str, int], float] | None = None) -> float:
    """Where a Splitwise token pool's screen starts: the rate at which the over-provisioned prompt pool's
    spare machines, borrowed, absorb the decodes the token pool cannot.

    At rate r the prompt pool (capacity Ptot = sum of P'_i p_i) is busy r / Ptot of the time; the rest
    of each machine decodes at its type's token rate t'_i, so r = T t + sum P'_i t'_i (1 - r / Ptot), or
    r = (T t + sum P'_i t'_i) / (1 + sum P'_i t'_i / Ptot). On the paper's conversation iso-cost screens
    this lands within 2% of the simulated edge, where the token pool's own rate (`token_rps`, T t) is
    2.3-2.4x low and the screen climbed 9 simulations (docs/optimizer.md). The screen's answer is still
    the simulation's; only its start moves. t'_i is the design's token option on that machine type,
    else `borrowed_rps` of the prompt slot (machine, tp) (DesignSpace.borrowed_token_rps); a prompt slot
    with neither keeps the token pool's own rate."""
    token_rate = {o.machine: o.cap_rps for o in options if o.role == "token"}
    borrowed_rps = borrowed_rps or {}
    prompt = [(o, n) for o, n in zip(options, w) if o.role == "prompt" and n > 0]
    spare_rate = [token_rate.get(o.machine, borrowed_rps.get((o.machine, o.tp))) for o, _ in prompt]
    if not prompt or any(t is None for t in spare_rate):
        return token_rps
    spare_decode = sum(n * t for (_, n), t in zip(prompt, spare_rate))
    prompt_rps = sum(n * o.cap_rps for o, n in prompt)
    if prompt_rps <= 0:
        return token_rps
    return (token_rps + spare_decode) / (1.0 + spare_decode / prompt_rps)


def refine_max_throughput(ev: Evaluator, start: list[Candidate], objective: str, radius: int,
                          max_rounds: int = 10) -> Candidate | None:
    """Climb from the best verified start to neighbours that sustain a higher rate, until none does."""
    space, target = ev.space, ev.space.limits.min_throughput_rps
    best = None
    for c in start:
        if better(c, best, objective, target):
            best = c
    for _ in range(max_rounds):
        if best is None or radius <= 0:
            break
        v = vector_of(space, best)
        near = [w for w in undominated(neighbours(space, v, radius) + [v]) if w != v and w not in ev.seen]
        k = lattice_index(best.throughput_rps) + 1 if best.throughput_rps > 0 else _floor_k(ev)
        winner, level = _highest_passing(ev, near, k)
        if winner is None:
            break
        c = ev.evaluate([winner], "local", passed_k={winner: level})[0]
        if not better(c, best, objective, target):
            break
        best = c
    return best


def _highest_passing(ev: Evaluator, vectors: list[Vector], k: int) -> tuple[Vector | None, int]:
    """The vector passing the highest lattice rate from k up (ties: the cheapest), and that rate's index."""
    alive, winners, level = sorted(vectors, key=lambda w: (ev.space.cost(w), ev.space.power(w), w)), [], k
    while alive:
        passing = [w for w, ok in zip(alive, ev.passes(alive, level)) if ok]
        if not passing:
            break
        winners, alive = passing, passing if len(passing) > 1 else []
        level += 1
    return (winners[0], level - 1) if winners else (None, k)


def refine_to_target(ev: Evaluator, proposals: list[Vector], objective: str, radius: int,
                     max_rounds: int = 8) -> Candidate | None:
    """The cheapest (or lowest-power) plan found that meets every SLO at the target rate, verified."""
    space = ev.space
    kt = max(_floor_k(ev), math.ceil(math.log(space.limits.min_throughput_rps) / math.log(lattice_rate(1)) - EPS))
    key = space.cost if objective == "min_cost" else space.power
    start = next((v for v in proposals if space.valid(v)), None)
    if start is None:
        return None
    current, largest = _ray_to_target(ev, start, kt)
    if current is None:  # the limits stop the climb: measure the largest plan tried, for the diagnosis
        ev.evaluate([largest], "local")
        return _closest(ev, objective)
    current = _descend(ev, _shrink_pools(ev, current, kt), kt, key, radius, max_rounds)
    for _ in range(3):  # the full verification (every seed) must agree; else grow along the ray
        c = ev.evaluate([current], "local", passed_k={current: kt})[0]
        if c.verified and c.throughput_rps >= space.limits.min_throughput_rps - EPS:
            return c
        bigger = _scaled(current, RAY_STEP)
        if not space.valid(bigger):
            break
        current = bigger
    return _closest(ev, objective)


def _ray_to_target(ev: Evaluator, v: Vector, kt: int) -> tuple[Vector | None, Vector]:
    """The smallest scaling of v (every pool by one factor) that passes the target (None if the limits
    stop the climb first), and the largest vector tried."""
    space = ev.space
    if ev.passes([v], kt)[0]:
        lo, hi, direction = None, v, 1 / RAY_STEP  # passes: shrink until it fails
    else:
        lo, hi, direction = v, None, RAY_STEP  # fails: grow until it passes
    f = 1.0
    for _ in range(RAY_STEPS):
        f *= direction
        w = _scaled(v, f)
        if w in (lo, hi):
            continue
        if not space.valid(w):
            break
        if ev.passes([w], kt)[0]:
            hi = w
            if direction > 1:
                break
        else:
            lo = w
            if direction < 1:
                break
    if hi is None:
        return None, lo
    return (hi if lo is None else _bisect_ray(ev, lo, hi, kt)), hi


def _bisect_ray(ev: Evaluator, fail: Vector, ok: Vector, kt: int) -> Vector:
    """Between a failing and a passing vector on one ray, the smallest passing one (by total machines)."""
    while True:
        mid = tuple((a + b) // 2 if a != b else a for a, b in zip(fail, ok))
        if mid in (fail, ok) or not ev.space.valid(mid):
            return ok
        if ev.passes([mid], kt)[0]:
            ok = mid
        else:
            fail = mid


def _descend(ev: Evaluator, v: Vector, kt: int, key, radius: int, max_rounds: int) -> Vector:
    """Move to the cheapest passing neighbour (tested cheapest first) until no cheaper one passes."""
    for _ in range(max_rounds):
        cheaper = sorted((w for w in neighbours(ev.space, v, max(1, radius)) if key(w) < key(v) - EPS),
                         key=lambda w: (round(key(w), 9), w))
        found = None
        for i in range(0, len(cheaper), BATCH):
            batch = cheaper[i:i + BATCH]
            found = next((w for w, ok in zip(batch, ev.passes(batch, kt)) if ok), None)
            if found is not None:
                break
        if found is None:
            return v
        v = found
    return v


def _shrink_pools(ev: Evaluator, v: Vector, kt: int) -> Vector:
    """Each pool searched down on its own, the others kept, to the fewest machines that still pass.

    A plan meets the target only when every pool keeps up, so a pool can be shrunk while the others
    stay as they are. Its size (all its machine types scaled together) is searched downwards from the
    present size in steps of 1, 2, 4, ... machines until a test fails, then bisected: after the ray's
    bisection most pools are at or next to their smallest passing size, which one or two tests
    confirm, and a pool the model over-provisioned k-fold is still reached in about 2 log2(size) tests
    however pessimistic the model was for it, whatever it was for the other pools. Smaller plans below
    the ray's are thereby always simulated, not inferred."""
    space = ev.space
    for role in space.roles():
        slots = [i for i, o in enumerate(space.options) if o.role == role and v[i] > 0]
        top = max((v[i] for i in slots), default=0)
        lo, hi = _gallop_down(ev, v, slots, top, kt)  # size index m / top: hi passes, lo fails (0: none)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            w = _role_scaled(v, slots, mid, top)
            if space.valid(w) and ev.passes([w], kt)[0]:
                hi = mid
            else:
                lo = mid
        v = _role_scaled(v, slots, hi, top)
    return v


def _gallop_down(ev: Evaluator, v: Vector, slots: list[int], top: int, kt: int) -> tuple[int, int]:
    """(a failing size index, a passing one above it) found by stepping down 1, 2, 4, ... from top."""
    hi, step = top, 1
    while hi - step > 0:
        w = _role_scaled(v, slots, hi - step, top)
        if not (ev.space.valid(w) and ev.passes([w], kt)[0]):
            return hi - step, hi
        hi, step = hi - step, 2 * step
    return 0, hi


def _role_scaled(v: Vector, slots: list[int], m: int, top: int) -> Vector:
    """v with the given slots scaled by m / top (rounded up; a slot in use keeps at least one machine
    while m > 0)."""
    return tuple(max(1, math.ceil(n * m / top - EPS)) if i in slots and m > 0 else (0 if i in slots else n)
                 for i, n in enumerate(v))


def _scaled(v: Vector, factor: float) -> Vector:
    """Every non-empty slot times factor, rounded up (never below one machine)."""
    return tuple(max(1, math.ceil(n * factor - EPS)) if n > 0 else 0 for n in v)


def _floor_k(ev: Evaluator) -> int:
    tol = ev.problem.scenario.search.rate_tol_rps
    return math.ceil(math.log(tol) / math.log(lattice_rate(1)))


def _closest(ev: Evaluator, objective: str) -> Candidate | None:
    """No plan reached the target: the fully verified candidate closest to it (for the diagnosis)."""
    best = None
    for c in ev.seen.values():
        if better(c, best, objective, ev.space.limits.min_throughput_rps):
            best = c
    return best
