"""Checks before any search: inputs no plan can ever satisfy are the user's to fix.

A design whose pool has no machine the model fits on, a request larger than every instance's KV
cache, or an absolute SLO that every candidate machine misses even unloaded: each is one line naming
the scenario (or trace) field, reported before minutes of simulation, instead of an "infeasible"
answer the user has to decode afterwards.
"""

from __future__ import annotations

import numpy as np

from splitplan.errors import SplitplanError
from splitplan.plan.problem import Problem, fits, role_shapes
from splitplan.slo import reference_latencies, unmeetable_slos


def check_inputs(problem: Problem) -> None:
    """Raise SplitplanError for the first input that makes every plan impossible."""
    instances = _fitting_instances(problem)
    _check_request_sizes(problem, instances)
    _check_unmeetable_slos(problem, instances)


def _fitting_instances(problem: Problem) -> dict[tuple, object]:
    """Perf model of every (machine, shape, role settings) some design may use; a pool with no shape
    that fits, or a searched design asked for the exhaustive grid, is an error."""
    sc = problem.scenario
    out: dict[tuple, object] = {}
    for design in sc.designs:
        if design.searched and sc.search.method != "ilp":
            raise SplitplanError(f"method {sc.search.method} simulates every count of every slot, which with "
                                 f"searched instance shapes ({design.shape_text()}) is too many; fix the shape "
                                 f"(tp: 8) or use method ilp", source=sc.source, field=f"designs.{design.name}.tp")
        for role, machines in design.pools().items():
            shapes = {m: role_shapes(problem, design, role, m) for m in machines}
            if not any(shapes.values()):
                field = f"designs.{design.name}.{'machines' if role == 'mixed' else role}"
                raise SplitplanError(f"{sc.model} does not fit any {role} machine at {design.shape_text(role)} "
                                     f"({_why_not(problem, design, role, machines[0])})", source=sc.source,
                                     field=field)
            for m, tps in shapes.items():
                for tp in tps:
                    perf = problem.pool_perf(design, role, m, tp)
                    out.setdefault((m, tp, id(perf)), perf)
    return out


def _why_not(problem: Problem, design, role: str, machine: str) -> str:
    """'dgx-h100: <reason>' at the largest of the role's shapes the machine can be cut into."""
    gpus = problem.catalog.machine(machine).gpus
    cut = [tp for tp in design.shapes(role) if problem.catalog.machine(machine).packs(tp)]
    if not cut:
        return f"{machine}: no shape of {design.shape_text(role)} divides its {gpus} GPUs"
    return f"{machine}: {fits(problem, machine, max(cut), design, role)}"


def _check_request_sizes(problem: Problem, instances: dict) -> None:
    """Workloads resample the trace's requests: one larger than every KV cache saturates every plan."""
    capacity = max(int(perf.kv_capacity_tokens()) for perf in instances.values())
    need = problem.sizes.prompt_tokens + problem.sizes.output_tokens
    worst = int(np.argmax(need))
    if need[worst] > capacity:
        raise SplitplanError(f"a request needs {int(need[worst]):,} tokens of KV cache (prompt "
                             f"{int(problem.sizes.prompt_tokens[worst]):,} + output "
                             f"{int(problem.sizes.output_tokens[worst]):,}); no instance of any design holds "
                             f"more than {capacity:,}", source=problem.scenario.workload.trace,
                             field=f"line {worst + 2}")


def _check_unmeetable_slos(problem: Problem, instances: dict) -> None:
    """An absolute SLO missed unloaded on every candidate machine cannot be met by any plan."""
    absolute = tuple(s for s in problem.slos if s.kind == "absolute")
    if not absolute:
        return
    compat = problem.perf.compat == "splitwisesim"
    common: set[str] | None = None
    for perf in instances.values():
        refs = reference_latencies(problem.sizes.prompt_tokens, problem.sizes.output_tokens, perf, compat=compat)
        missed = set(unmeetable_slos(absolute, refs))
        common = missed if common is None else common & missed
    if common:
        raise SplitplanError(sorted(common)[0], source=problem.scenario.source, field="slos")
