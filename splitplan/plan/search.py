"""Search over machine counts of one design: ILP proposals refined by simulated local search, or a grid.

A design's search space is a vector of counts, one per (role, machine type, instance shape) "slot". The capacity model
+ ILP propose the best vectors; the simulator measures them; a local search (a few machines either way
per slot) moves to any better neighbour until none is better, which corrects the capacity model's
errors. `grid_search` simulates every relevant vector instead (the paper's method, for checking).
Both rely on monotonicity (more machines never lower the simulated max rate) only to skip vectors that
cannot win: dominated ones under max_throughput, those below a known failure under min cost/power.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from splitplan.cluster import ClusterSpec, PoolSpec
from splitplan.plan.ilp import Limits, PoolOption
from splitplan.plan.parallel import WorkerPool
from splitplan.plan.progress import EventKind, emit
from splitplan.plan.result import Candidate, Verification
from splitplan.plan.verify import lattice_rate
from splitplan.plan.studies import pick_best, sort_key
from splitplan.scenario import Design

Vector = tuple[int, ...]
FULL_BOX_LIMIT = 20_000  # neighbourhoods larger than this move at most two slots at a time
VerifyFn = Callable[..., Verification]  # (problem, cluster, hint_rps) -> Verification, picklable


@dataclass
class DesignSpace:
    """Slots, prices and modelled capacities of one design, plus the limits every vector must respect.

    `templates`: the pool spec of each slot (its serving settings; count ignored), as Problem.pool
    builds it, so the clusters simulated are the ones the capacity model priced."""

    model: str
    design: Design
    options: list[PoolOption]  # one per slot, in slot order
    limits: Limits
    templates: dict[tuple[str, str, int], PoolSpec] = field(default_factory=dict)
    # modelled decode rate (req/s per machine) of each prompt slot's machine when a Splitwise router borrows
    # it, for prompt machine types with no token slot (Problem.borrowed_token_rates): screens start there
    borrowed_token_rps: dict[tuple[str, int], float] = field(default_factory=dict)

    @property
    def slots(self) -> list[tuple[str, str, int]]:
        return [o.slot for o in self.options]

    def roles(self) -> list[str]:
        return list(dict.fromkeys(o.role for o in self.options))

    def cluster(self, v: Vector) -> ClusterSpec:
        pools = tuple(replace(self.templates[o.slot], count=n) if o.slot in self.templates
                      else PoolSpec(o.role, o.machine, n, o.tp) for o, n in zip(self.options, v) if n > 0)
        return ClusterSpec(self.model, self.design.cluster_design, pools, self.design.stack)

    def cost(self, v: Vector) -> float:
        return sum(o.cost_usd_per_h * n for o, n in zip(self.options, v))

    def power(self, v: Vector) -> float:
        return sum(o.power_kw * n for o, n in zip(self.options, v))

    def model_rate(self, v: Vector) -> float:
        return min(sum(o.cap_rps * n for o, n in zip(self.options, v) if o.role == r) for r in self.roles())

    def role_count(self, v: Vector, role: str) -> int:
        return sum(n for o, n in zip(self.options, v) if o.role == role)

    def within_budget(self, v: Vector) -> bool:
        lim, eps = self.limits, 1e-9
        return ((lim.cost_usd_per_h is None or self.cost(v) <= lim.cost_usd_per_h + eps)
                and (lim.power_kw is None or self.power(v) <= lim.power_kw + eps)
                and (lim.max_machines is None or sum(v) <= lim.max_machines))

    def valid(self, v: Vector) -> bool:
        """Every pool has a machine, no pool is over its limit, and every budget holds."""
        counts = [self.role_count(v, r) for r in self.roles()]
        return (min(v) >= 0 and all(1 <= c <= self.limits.max_per_pool for c in counts)
                and self.within_budget(v))

    def vector(self, counts: tuple[tuple[str, str, int, int], ...]) -> Vector:
        """The vector of (role, machine, tp, count) tuples."""
        found = {(r, m, tp): c for r, m, tp, c in counts}
        return tuple(found.get(slot, 0) for slot in self.slots)

    def shape_groups(self) -> list[list[int]]:
        """Slot indices grouped by (role, machine): the shapes one machine type can take in one pool."""
        groups: dict[tuple[str, str], list[int]] = {}
        for i, o in enumerate(self.options):
            groups.setdefault((o.role, o.machine), []).append(i)
        return list(groups.values())


@dataclass
class Evaluator:
    """Simulates vectors of one design (in parallel, each once) and turns them into Candidates."""

    problem: object
    space: DesignSpace
    verify_fn: VerifyFn
    pool: WorkerPool
    on_done: Callable[[], None] | None = None
    on_total: Callable[[int], None] | None = None
    seen: dict[Vector, Candidate] = field(default_factory=dict)
    hint_options: list[PoolOption] | None = None  # capacities calibrated by simulation, for bisection brackets

    def hint(self, v: Vector) -> float:
        """Expected max rate of v: the calibrated model when there is one (tight brackets save simulations)."""
        options = self.hint_options or self.space.options
        roles = self.space.roles()
        return min(sum(o.cap_rps * n for o, n in zip(options, v) if o.role == r) for r in roles)

    screen_fn: VerifyFn | None = None  # one-seed max rate (None: verify fully instead)
    test_fn: VerifyFn | None = None  # one-simulation pass/fail at a rate (None: verify fully instead)
    tests: dict[tuple[Vector, int], bool] = field(default_factory=dict)
    tested: dict[Vector, Candidate] = field(default_factory=dict)

    def evaluate(self, vectors: list[Vector], source: str, passed_k: dict[Vector, int] | None = None) -> list[Candidate]:
        """Full verification (all seeds, re-checked), each vector once; `passed_k`: lattice indices the
        vectors are known to pass on the first seed (their bisection starts there)."""
        passed_k = passed_k or {}
        extra = None
        if self.test_fn is not None and passed_k:  # the default verifier takes the known pass; custom ones may not
            extra = {v: (lattice_rate(passed_k[v]),) if v in passed_k else (None,) for v in vectors}
        return self._run(vectors, source, self.seen, self.verify_fn, extra)

    def map(self, fn: VerifyFn, tasks: list[tuple]) -> list[Verification]:
        """Run simulation tasks on the worker pool, in order, reporting them to the progress hooks."""
        self.check_deadline()
        if tasks and self.on_total:
            self.on_total(len(tasks))
        if tasks:
            what = "verifying" if fn is self.verify_fn else "testing" if fn is self.test_fn else "measuring"
            emit(EventKind.STAGE, f"{what} {len(tasks)} candidate(s): " + ", ".join(
                _short_label(task[1]) for task in tasks[:3]) + (", ..." if len(tasks) > 3 else ""))
        return self.pool.map(fn, tasks, self.on_done)

    def check_deadline(self) -> None:
        check = getattr(self.problem, "check_deadline", None)  # test doubles of Problem may have none
        if check is not None:
            check()

    def passes(self, vectors: list[Vector], k: int) -> list[bool]:
        """Does each vector meet every SLO at lattice rate k on the first seed? One simulation per new
        (vector, k); answers known from a full verification or an earlier test are reused."""
        rate = lattice_rate(k)
        if self.test_fn is None:
            return [c.throughput_rps >= rate * (1 - 1e-9) for c in self.evaluate(vectors, "local")]
        todo = [v for v in dict.fromkeys(vectors) if (v, k) not in self.tests and v not in self.seen]
        if todo:
            tasks = [(self.problem, self.space.cluster(v), rate) for v in todo]
            for v, verification in zip(todo, self.map(self.test_fn, tasks)):
                self.tests[v, k] = verification.rate_rps > 0
                old = self.tested.get(v)
                if old is None or verification.rate_rps > old.throughput_rps:
                    self.tested[v] = self._candidate(v, verification, "screen")
        return [self.tests[v, k] if (v, k) in self.tests else self.seen[v].throughput_rps >= rate * (1 - 1e-9)
                for v in vectors]

    def _run(self, vectors: list[Vector], source: str, cache: dict, fn: VerifyFn,
             extra: dict[Vector, tuple] | None = None) -> list[Candidate]:
        todo = [v for v in dict.fromkeys(vectors) if v not in cache]
        if todo:
            tasks = [(self.problem, self.space.cluster(v), self.hint(v), *(extra or {}).get(v, ())) for v in todo]
            for v, verification in zip(todo, self.map(fn, tasks)):
                cache[v] = self._candidate(v, verification, source)
        return [cache[v] for v in vectors]

    def _candidate(self, v: Vector, verification: Verification, source: str) -> Candidate:
        return Candidate(design=self.space.design.name, kind=self.space.design.kind, cluster=self.space.cluster(v),
                         cost_usd_per_h=self.space.cost(v), power_kw=self.space.power(v),
                         model_rate_rps=self.space.model_rate(v), verification=verification, source=source,
                         within_budget=self.space.within_budget(v))

    def candidates(self) -> list[Candidate]:
        """Every simulated candidate (pass/fail tests of vectors never fully verified included), stable order."""
        out = dict(self.tested) | self.seen
        return sorted(out.values(), key=lambda c: c.key())


def _short_label(cluster: ClusterSpec) -> str:
    """'prompt 2 x dgx-h100 + token 1 x dgx-h100' without the design word."""
    return cluster.label().split(": ", 1)[-1]


def _target(space: DesignSpace) -> float | None:
    return space.limits.min_throughput_rps


def neighbours(space: DesignSpace, v: Vector, radius: int) -> list[Vector]:
    """Valid vectors within `radius` machines of v in every active slot, excluding v, plus budget-neutral
    swaps (k <= radius machines more in one slot paid for by the fewest machines less in another), plus
    shape moves (one machine type of a pool re-cut into another instance shape).

    Active slots: per (role, machine type), the shapes v uses, or the best-modelled one when it uses
    none; with one shape per machine type (a fixed tp) that is every slot, as before shapes were
    searched. Counting every shape as a free slot would multiply the neighbourhood (and its
    simulations) by the shapes squared; a shape change is one move instead."""
    active = _active_slots(space, v)
    steps = range(-radius, radius + 1)
    if (2 * radius + 1) ** len(active) <= FULL_BOX_LIMIT:
        deltas = itertools.product(steps, repeat=len(active))
    else:  # the full box is exponential in the slots (4 + 4 machine types at radius 3: 5.7M vectors)
        deltas = _two_slot_deltas(len(active), steps)
    out = {_moved(v, active, delta) for delta in deltas if any(delta)}
    for i, j in itertools.permutations(active, 2):
        for k in range(1, radius + 1):
            for m in range(1, v[j] + 1):
                w = tuple(a + k * (x == i) - m * (x == j) for x, a in enumerate(v))
                if space.valid(w):
                    out.add(w)
                    break
    out |= set(shape_moves(space, v))
    return sorted(w for w in out if space.valid(w))


def _active_slots(space: DesignSpace, v: Vector) -> list[int]:
    active = []
    for group in space.shape_groups():
        used = [i for i in group if v[i] > 0]
        active += used or [max(group, key=lambda i: (space.options[i].cap_rps, -i))]
    return sorted(active)


def _moved(v: Vector, slots: list[int], delta: tuple[int, ...]) -> Vector:
    w = list(v)
    for i, d in zip(slots, delta):
        w[i] += d
    return tuple(w)


def shape_moves(space: DesignSpace, v: Vector) -> list[Vector]:
    """Each used (role, machine type) slot moved whole to another shape of that machine type: with the
    same machines (same cost), one fewer (the move a cost descent needs when the new shape is better),
    and with the machines the model says give the same capacity."""
    out = []
    for group in space.shape_groups():
        for i in (i for i in group if v[i] > 0):
            for j in (j for j in group if j != i):
                ratio = space.options[i].cap_rps / max(space.options[j].cap_rps, 1e-12)
                for n in {v[i], v[i] - 1, max(1, math.ceil(v[i] * ratio - 1e-9))} - {0}:
                    w = list(v)
                    w[i], w[j] = 0, w[j] + n
                    out.append(tuple(w))
    return out


def _two_slot_deltas(slots: int, steps: range) -> list[tuple[int, ...]]:
    """Moves of at most two slots at once: O(slots^2 radius^2) instead of (2 radius + 1)^slots."""
    out = []
    for i, j in itertools.combinations(range(slots), 2):
        for di, dj in itertools.product(steps, repeat=2):
            out.append(tuple(di if x == i else dj if x == j else 0 for x in range(slots)))
    return out


def undominated(vectors: list[Vector]) -> list[Vector]:
    """Drop vectors with another vector >= in every slot (they cannot have a higher max rate).
    Vectorised in blocks: thousands of neighbours would take minutes as a Python double loop."""
    if len(vectors) < 2:
        return list(vectors)
    a = np.asarray(vectors)
    keep = np.ones(len(a), dtype=bool)
    for lo in range(0, len(a), 256):
        block = a[lo:lo + 256, None, :]
        dominated = ((a[None, :, :] >= block).all(axis=2) & (a[None, :, :] != block).any(axis=2)).any(axis=1)
        keep[lo:lo + 256] = ~dominated
    return [v for v, k in zip(vectors, keep) if k]


def grid_vectors(space: DesignSpace) -> list[Vector]:
    """Every valid vector (each slot 0..max_per_pool), in a stable order."""
    ub = space.limits.max_per_pool
    return [v for v in itertools.product(range(ub + 1), repeat=len(space.options)) if space.valid(v)]


def grid_search(ev: Evaluator, objective: str, batch: int = 4) -> Candidate | None:
    """The paper's exhaustive method: simulate every vector that could be the answer."""
    space, target = ev.space, _target(ev.space)
    vectors = grid_vectors(space)
    if objective == "max_throughput":
        maximal = [v for v in vectors if not any(space.valid(tuple(a + (i == j) for j, a in enumerate(v)))
                                                  for i in range(len(v)))]
        return pick_best(ev.evaluate(maximal, "grid"), objective, target)
    key = space.cost if objective == "min_cost" else space.power
    vectors.sort(key=lambda v: (round(key(v), 9), v))
    failed: list[Vector] = []
    best: Candidate | None = None
    i = 0
    while i < len(vectors):
        if best is not None and key(vectors[i]) > round(key(vector_of(space, best)), 9) + 1e-9:
            break
        chunk = []
        while i < len(vectors) and len(chunk) < batch:
            v = vectors[i]
            i += 1
            if not any(all(a <= b for a, b in zip(v, f)) for f in failed):  # below a failure: fails too
                chunk.append(v)
        for v, c in zip(chunk, ev.evaluate(chunk, "grid")):
            if c.verified and c.throughput_rps >= (target or 0) - 1e-9:
                if best is None or sort_key(c, objective) < sort_key(best, objective):
                    best = c
            else:
                failed.append(v)
    return best


def vector_of(space: DesignSpace, c: Candidate) -> Vector:
    return space.vector(tuple((p.role, p.machine, p.tp, p.count) for p in c.cluster.pools))
