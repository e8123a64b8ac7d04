"""`optimize(scenario)`: every design of a scenario sized under the same constraints, simulator-verified.

Per design: capacity model -> ILP proposals -> simulated verification (several seeds) -> local search
(method ilp), or the exhaustive simulated grid (method grid), or both (the grid's answer is reported and
the ILP's kept beside it as candidates). The best design's verified plan is the recommendation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from splitplan.catalog import Catalog, get_catalog
from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model
from splitplan.plan.steady import steady_warnings
from splitplan.plan.trust import stack_warnings
from splitplan.plan.capacity import CapacityParams, RequestSample
from splitplan.plan.ilp import solve_ilp
from splitplan.plan.diagnose import what_binds, why_no_ilp_solution, why_unverified
from splitplan.plan.parallel import WorkerPool
from splitplan.plan.preflight import check_inputs
from splitplan.plan.problem import (Problem, TimeUp, borrowed_token_rates, design_capacities, fits, make_problem,
                                    pool_options, request_sample, role_shapes)
from splitplan.plan.progress import Event, EventKind, emit, reporting, set_design
from splitplan.plan.unloaded import unloaded_line
from splitplan.plan.result import Candidate, DesignResult, PlanResult
from splitplan.plan.refine import ilp_search
from splitplan.plan.search import DesignSpace, Evaluator, grid_search
from splitplan.plan.sim_memo import SimMemo
from splitplan.plan.studies import comparisons, pick_best
from splitplan.plan.verify import screen_cluster, test_cluster, verify_cluster
from splitplan.scenario import Design, Scenario, check_names, load_scenario


@dataclass
class ProgressHooks:
    """Callbacks for a progress display: work discovered (add) and work finished (advance)."""

    add: Callable[[int], None] | None = None
    advance: Callable[[], None] | None = None
    stage: Callable[[str], None] | None = None  # what is being done now, e.g. "simulating Splitwise-HA"
    unit: Callable[[str], None] | None = None  # what add/advance count: "candidates" or "designs"


class OptimizeInterrupted(KeyboardInterrupt):
    """Ctrl-C during optimize: `partial` holds the designs that finished (status "interrupted")."""

    def __init__(self, partial: PlanResult):
        super().__init__("interrupted")
        self.partial = partial


def optimize(scenario: Scenario | str | Path, *, catalog: Catalog | None = None, catalog_files: tuple[str, ...] = (),
             perf: PerfSettings | None = None, params: CapacityParams | None = None,
             verify_fn: Callable[..., Any] | None = None, progress: ProgressHooks | None = None,
             time_limit_s: float | None = None, on_event: Callable[[Event], None] | None = None,
             sim_memo: str | Path | None = None, **overrides: Any) -> PlanResult:
    """Optimize every design of `scenario` (a Scenario or a YAML path); overrides as in `with_overrides`.

    time_limit_s: stop searching then; each design keeps its best verified plan so far and the result's
    status is "time_limit". on_event: progress events (plan/progress.py), from workers too. Ctrl-C
    raises OptimizeInterrupted carrying the designs that finished. sim_memo: a folder of simulation
    verdicts shared with other optimizations (plan/sim_memo.py; a sweep passes its own): the result is
    the same, runs found there are not simulated again."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scenario = scenario.with_overrides(**overrides)
    catalog = catalog or get_catalog(tuple(scenario.catalog_files) + tuple(catalog_files))
    check_names(scenario, catalog)
    if scenario.workload.generator != "poisson":
        raise SplitplanError(f"optimize searches over the request rate, which needs Poisson arrivals; generator "
                             f"'{scenario.workload.generator}' keeps the trace's own arrivals (use poisson)",
                             source=scenario.source, field="workload.generator")
    problem = make_problem(scenario, catalog, perf, params)
    check_inputs(problem)  # impossible inputs fail here, in one line, before any simulation
    if time_limit_s is not None:
        problem = replace(problem, deadline_monotonic=time.monotonic() + time_limit_s)
    if sim_memo is not None:
        problem = replace(problem, memo=SimMemo.for_problem(sim_memo, problem))
    sample = request_sample(problem)
    hooks = progress or ProgressHooks()
    finished: dict[int, DesignResult] = {}

    def collect(event: Event) -> None:
        if event.kind is EventKind.DESIGN_DONE:
            index, result = event.payload
            finished[index] = result
        if on_event is not None:
            on_event(event)

    workers = scenario.search.workers
    try:
        with reporting(collect, workers=True), WorkerPool(workers) as pool:
            if verify_fn is None and pool.workers > 1 and len(scenario.designs) > 1:
                results = _optimize_designs_in_parallel(problem, sample, pool, hooks)
            else:
                screen = screen_cluster if verify_fn is None else None  # custom verifiers verify every neighbour
                results = tuple(_finished(i, _optimize_design(problem, d, sample, pool, verify_fn or verify_cluster,
                                                              screen, hooks))
                                for i, d in enumerate(scenario.designs))
            notes = steady_warnings(problem, results, pool) if verify_fn is None else ()
    except KeyboardInterrupt:
        done = tuple(finished.get(i) or DesignResult(d.name, d.kind, "interrupted", None,
                                                     "interrupted before this design's search finished")
                     for i, d in enumerate(scenario.designs))
        raise OptimizeInterrupted(_plan_result(problem, done, interrupted=True)) from None
    return _plan_result(problem, results, notes=notes)


def _finished(index: int, result: DesignResult) -> DesignResult:
    """A design's search ended: tell the progress display (and keep it, should Ctrl-C follow)."""
    emit(EventKind.DESIGN_DONE, f"{result.name}: {result.status}", (index, result))
    return result


def _plan_result(problem: Problem, results: tuple[DesignResult, ...], interrupted: bool = False,
                 notes: tuple[str, ...] = ()) -> PlanResult:
    """The recommendation among the designs' answers, and the run's status; `notes`: warnings about the
    answers themselves (plan/steady.py), after those about what they rest on."""
    scenario = problem.scenario
    target = scenario.constraints.min_throughput_rps
    best = pick_best([d.best for d in results if d.best is not None], scenario.objective, target)
    if best is not None:
        binding = next(d.binding for d in results if d.best is best)
    else:
        binding = "; ".join(f"{d.name}: {d.binding}" for d in results)
    if interrupted:
        status = "interrupted"
    elif any(d.status == "time_limit" for d in results):
        status = "time_limit"
    else:
        status = "feasible" if best is not None else "infeasible"
    return PlanResult(scenario=scenario, objective=scenario.objective, designs=results, best=best, status=status,
                      binding=binding, provenance=_provenance(problem), comparisons=comparisons(results),
                      warnings=tuple(stack_warnings(problem)) + notes, method=scenario.search.method)


def _optimize_designs_in_parallel(problem: Problem, sample: RequestSample, pool: WorkerPool,
                                  hooks: ProgressHooks) -> tuple[DesignResult, ...]:
    """Each design's whole search in one worker, designs side by side.

    A design's search is mostly a sequence of single simulations (a bisection, a ray climb), so
    spreading one design's simulations over the workers leaves them idle much of the time; designs are
    independent, so running them side by side keeps every worker busy (about 1.5-1.8x faster on 2 cores).
    The designs with more pools, whose searches are longer, start first; results keep scenario order and
    are identical to a serial run (each search is deterministic and runs serially inside its worker)."""
    designs = problem.scenario.designs
    order = sorted(range(len(designs)), key=lambda i: (-len(designs[i].pools()), i))
    if hooks.unit:
        hooks.unit("designs")
    if hooks.stage:
        hooks.stage(f"optimizing {len(designs)} designs, {pool.workers} at a time")
    if hooks.add:
        hooks.add(len(designs))
    done = pool.map(_design_task, [(problem, designs[i], sample, i) for i in order], hooks.advance)
    by_index = dict(zip(order, done))
    return tuple(by_index[i] for i in range(len(designs)))


def _design_task(problem: Problem, design: Design, sample: RequestSample, index: int = 0) -> DesignResult:
    """One design's search, serial, in a worker process (module level: it is pickled by name)."""
    with WorkerPool(1) as serial:
        return _finished(index, _optimize_design(problem, design, sample, serial, verify_cluster, screen_cluster,
                                                 ProgressHooks()))


def _optimize_design(problem: Problem, design: Design, sample: RequestSample, pool: WorkerPool,
                     verify_fn: Callable[..., Any], screen_fn: Callable[..., Any] | None,
                     hooks: ProgressHooks) -> DesignResult:
    sc = problem.scenario
    set_design(design.name)
    if hooks.stage:
        hooks.stage(f"simulating {design.name}")
    emit(EventKind.STAGE, "capacity model and ILP")
    missing = _unfit_roles(problem, design)
    if missing:
        return DesignResult(design.name, design.kind, "infeasible", None, missing)
    caps, space = _sized_space(problem, design, sample)
    cap_rows = tuple({"role": c.role, "machine": c.machine, "tp": c.tp, "rate_rps": round(c.rate_rps, 6),
                      "bound": c.bound, "instances": c.instances} for c in caps)
    ev = Evaluator(problem, space, verify_fn, pool, on_done=hooks.advance, on_total=hooks.add,
                   screen_fn=screen_fn, test_fn=test_cluster if screen_fn is not None else None)
    s = sc.search
    ilp_best = grid_best = None
    timed_out = False
    try:
        ev.check_deadline()
        if s.method in ("ilp", "both"):
            ilp_best = ilp_search(ev, sc.objective, s.verify_top, s.local_radius, s.solver)
        if s.method in ("grid", "both"):
            grid_best = grid_search(ev, sc.objective, batch=max(4, pool.workers))
    except TimeUp:
        timed_out = True
    found = ev.candidates()
    target = space.limits.min_throughput_rps
    if timed_out:  # the best plan verified so far, if any
        return _timed_out(design, space, found, cap_rows, sc.objective)
    best = pick_best([c for c in (grid_best, ilp_best) if c is not None], sc.objective, target)
    if best is None:
        if not found:
            reason = why_no_ilp_solution(space, sc.objective, s.solver)
        else:
            reason = why_unverified(space, found, unloaded_line(problem, design))
        return DesignResult(design.name, design.kind, "infeasible", None, reason, cap_rows, tuple(found))
    return DesignResult(design.name, design.kind, "feasible", best, what_binds(space, best, sc.objective),
                        cap_rows, tuple(found), ilp_best=ilp_best if s.method == "both" else None,
                        grid_best=grid_best if s.method == "both" else None)


def _timed_out(design: Design, space, found: list[Candidate], cap_rows, objective: str) -> DesignResult:
    """Time limit: the best plan verified so far (marked as such), or why there is none yet."""
    best = pick_best(found, objective, space.limits.min_throughput_rps)
    if best is None:
        return DesignResult(design.name, design.kind, "time_limit", None,
                            f"time limit reached before any {design.name} plan was verified "
                            f"({len(found)} simulated)", cap_rows, tuple(found))
    return DesignResult(design.name, design.kind, "time_limit", best,
                        f"time limit: best verified plan so far ({what_binds(space, best, objective)})",
                        cap_rows, tuple(found))


def _sized_space(problem: Problem, design: Design, sample: RequestSample, rounds: int = 4):
    """Capacities depend on pool size (queue pooling), pool sizes on the ILP: iterate to a fixed point."""
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        caps = design_capacities(problem, design, sample, sizes)
        options = pool_options(problem, caps)
        templates = {o.slot: problem.pool(design, o.role, o.machine, o.tp) for o in options}
        space = DesignSpace(problem.scenario.model, design, options, problem.limits(), templates)
        sols = solve_ilp(space.options, space.limits, problem.scenario.objective, problem.scenario.search.solver)
        if not sols:
            break
        new = {role: max(1, sols[0].count(role)) for role in space.roles()}
        if new == sizes:
            break
        sizes = new
    space.borrowed_token_rps = borrowed_token_rates(problem, design, sample, space.options)
    return caps, space


def _unfit_roles(problem: Problem, design: Design) -> str:
    """Reason if some pool of the design has no machine the model fits on; '' otherwise."""
    for role, machines in design.pools().items():
        if not any(role_shapes(problem, design, role, m) for m in machines):
            return f"{problem.scenario.model} does not fit any {role} machine at {design.shape_text(role)}"
    return ""


def _provenance(problem: Problem) -> dict[str, str]:
    """Provenance line of every (machine, tp, stack) the scenario uses: its designs' instances (every shape
    searched) and the SLO reference."""
    sc = problem.scenario
    perfs = []
    if fits(problem, sc.reference_machine, sc.reference_tp) is None:
        perfs.append(build_perf_model(sc.model, sc.reference_machine, sc.reference_tp, problem.perf, problem.catalog))
    for d in sc.designs:
        for role, machines in d.pools().items():
            for name in machines:
                machine = problem.catalog.machine(name).name
                perfs += [problem.pool_perf(d, role, machine, tp) for tp in role_shapes(problem, d, role, machine)]
    out = {}
    for perf in perfs:
        out.setdefault(f"{perf.instance.machine.name}/tp{perf.instance.tp}/{perf.stack.name}", perf.provenance)
    return dict(sorted(out.items()))
