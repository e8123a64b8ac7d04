"""The sizing ILP: integer machine counts per (pool, machine type) and a continuous served rate.

    n[p, m, s] in {0..ub[p]}, r >= 0                machines of type m in pool p, instances of shape s
    r <= sum_m,s cap[p, m, s] * n[p, m, s]          for every pool p (prompt and token, or mixed)
    sum_m n[p, m] >= 1                              every pool exists
    sum cost * n <= budget_cost,  sum power * n <= budget_power
    sum n <= max_machines,  sum_m n[p, m] <= max_per_pool
    objective: max r | min cost (r >= target) | min power (r >= target), ties to the cheaper plan

A pool may mix shapes (tp) as it may mix machine types: each (machine type, shape) is one option.
Integer counts with a continuous rate (not Melange's per-slice binaries) keep it to a handful of
variables per design, so CBC solves it in milliseconds. `solve_ilp(..., top=k)` returns the k best
distinct solutions by adding no-good cuts.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pulp

from splitplan.errors import SplitplanError


@dataclass(frozen=True)
class PoolOption:
    """One machine type in one instance shape allowed in one pool, with its modelled capacity and price."""

    role: str
    machine: str
    cap_rps: float
    cost_usd_per_h: float
    power_kw: float
    tp: int = 8

    @property
    def slot(self) -> tuple[str, str, int]:
        return (self.role, self.machine, self.tp)


@dataclass(frozen=True)
class Limits:
    cost_usd_per_h: float | None = None
    power_kw: float | None = None
    max_machines: int | None = None
    max_per_pool: int = 40
    min_throughput_rps: float | None = None


@dataclass(frozen=True)
class IlpSolution:
    counts: tuple[tuple[str, str, int, int], ...]  # (role, machine, tp, count), count > 0 only
    rate_rps: float  # modelled rate
    cost_usd_per_h: float
    power_kw: float

    def count(self, role: str, machine: str | None = None) -> int:
        return sum(c for r, m, _, c in self.counts if r == role and (machine is None or m == machine))

    def machines(self) -> int:
        return sum(c for *_, c in self.counts)


def _solver(name: str) -> pulp.LpSolver:
    if name == "highs":
        if "HiGHS" not in pulp.listSolvers(onlyAvailable=True):
            raise SplitplanError("solver 'highs' needs the highspy package (pip install highspy)",
                                 field="search.solver")
        return pulp.HiGHS(msg=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pulp.PULP_CBC_CMD(msg=False)


def solve_ilp(options: list[PoolOption], limits: Limits, objective: str, solver: str = "cbc",
              top: int = 1) -> list[IlpSolution]:
    """The `top` best distinct solutions, best first; [] when infeasible.

    Lexicographic: the objective first, then (among its optima) the cheaper plan, or the
    lower-power one for min_cost; a weighted tie-break would drown in the solver's tolerance."""
    excluded: list[dict[tuple[str, str, int], int]] = []
    solutions: list[IlpSolution] = []
    for _ in range(top):
        prob, n, goal, tie = _build(options, limits, objective, excluded)
        if not _solve(prob, solver):
            break
        best = pulp.value(goal)
        sense = 1 if objective == "max_throughput" else -1
        prob += sense * goal >= sense * best - 1e-6 * max(1.0, abs(best))
        prob.sense, prob.objective = pulp.LpMinimize, tie
        if not _solve(prob, solver):  # cannot happen (stage 1's optimum is feasible); keep stage 1's answer
            break
        values = {key: int(round(var.value() or 0)) for key, var in n.items()}
        solutions.append(_solution(options, values))
        excluded.append(values)
    return solutions


def _build(options: list[PoolOption], limits: Limits, objective: str, excluded: list[dict]):
    roles = sorted({o.role for o in options}, key=("prompt", "token", "mixed").index)
    prob = pulp.LpProblem("splitplan", pulp.LpMaximize if objective == "max_throughput" else pulp.LpMinimize)
    n = {o.slot: prob.add_variable(f"n_{o.role}_{i}", 0, limits.max_per_pool, cat="Integer")
         for i, o in enumerate(options)}
    r = prob.add_variable("rate", 0)
    cost = pulp.lpSum(o.cost_usd_per_h * n[o.slot] for o in options)
    power = pulp.lpSum(o.power_kw * n[o.slot] for o in options)
    goal = {"max_throughput": r, "min_cost": cost, "min_power": power}[objective]
    tie = power if objective == "min_cost" else cost
    prob += goal
    for role in roles:
        in_pool = [o for o in options if o.role == role]
        prob += r <= pulp.lpSum(o.cap_rps * n[o.slot] for o in in_pool)
        prob += pulp.lpSum(n[o.slot] for o in in_pool) >= 1
        prob += pulp.lpSum(n[o.slot] for o in in_pool) <= limits.max_per_pool
    if limits.cost_usd_per_h is not None:
        prob += cost <= limits.cost_usd_per_h
    if limits.power_kw is not None:
        prob += power <= limits.power_kw
    if limits.max_machines is not None:
        prob += pulp.lpSum(n.values()) <= limits.max_machines
    if limits.min_throughput_rps is not None:
        prob += r >= limits.min_throughput_rps
    for k, values in enumerate(excluded):
        _exclude(prob, n, values, k, limits.max_per_pool)
    return prob, n, goal, tie


def _solve(prob: pulp.LpProblem, solver: str) -> bool:
    with warnings.catch_warnings(), _stdout_fd_silenced(solver == "highs"):
        warnings.simplefilter("ignore", DeprecationWarning)  # PuLP 3.3 announces its 4.0 renames
        status = prob.solve(_solver(solver))
    return pulp.LpStatus[status] == "Optimal"


@contextlib.contextmanager
def _stdout_fd_silenced(active: bool) -> Iterator[None]:
    """HiGHS prints its banner from C++ straight to file descriptor 1 (msg=False does not stop it), which
    would corrupt `optimize --json`; point fd 1 at /dev/null while it runs."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _solution(options: list[PoolOption], values: dict[tuple[str, str, int], int]) -> IlpSolution:
    """Re-derive rate, cost and power from the integer counts (solver values are floats)."""
    roles = {o.role for o in options}
    rate = min(sum(o.cap_rps * values[o.slot] for o in options if o.role == role) for role in roles)
    return IlpSolution(
        counts=tuple((*o.slot, values[o.slot]) for o in options if values[o.slot]),
        rate_rps=rate,
        cost_usd_per_h=sum(o.cost_usd_per_h * values[o.slot] for o in options),
        power_kw=sum(o.power_kw * values[o.slot] for o in options))


def _exclude(prob: pulp.LpProblem, n: dict, values: dict, k: int, ub: int) -> None:
    """No-good cut: the next solution differs from `values` in at least one count."""
    moves = []
    for i, (key, var) in enumerate(n.items()):
        up = prob.add_variable(f"up_{k}_{i}", 0, ub)
        down = prob.add_variable(f"down_{k}_{i}", 0, ub)
        z = prob.add_variable(f"z_{k}_{i}", 0, 1, cat="Integer")
        prob += var - values[key] == up - down
        prob += up <= ub * z
        prob += down <= ub * (1 - z)
        moves += [up, down]
    prob += pulp.lpSum(moves) >= 1
