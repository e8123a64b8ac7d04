"""`splitplan check`: scenario files with `expect:` blocks run as regression tests.

A study scenario pins its key results (throughputs, machine counts, ratios) with tolerances. `check`
re-runs it through the optimizer and compares; a result that leaves its tolerance is a regression (or an
intended change, which `--update` writes back into the file). What a file's `check:` section may hold is
read by check_spec.py.

Robustness results appear in the expectation view as `robustness.<model>.<design>.throughput_rps` and
`.throughput_ratio` (against the first design). Each run calls `optimize` exactly as `splitplan optimize`
does, so a check reproduces what a planner would see.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from splitplan.catalog import Catalog, get_catalog
from splitplan.cluster import ClusterSpec
from splitplan.check_spec import (MODES, CheckReport, CheckSpec, ModeOutcome, ModeSpec, PerfFlags, discover,
                                  load_check_spec, mode_perf, settings_of)
from splitplan.errors import SplitplanError
from splitplan.plan.optimize import optimize
from splitplan.plan.parallel import WorkerPool
from splitplan.plan.problem import Problem, make_problem
from splitplan.plan.result import PlanResult
from splitplan.plan.verify import sim_config, verify_cluster
from splitplan.sim.maxrate import capacity_estimate_rps
from splitplan.scenario import Scenario, evaluate_expectations

__all__ = ["MODES", "CheckReport", "CheckSpec", "ModeOutcome", "ModeSpec", "PerfFlags", "discover", "load_check_spec",
           "mode_perf", "run_check", "run_mode", "settings_of", "update_file"]  # the spec names stay importable here


def run_mode(spec: CheckSpec, mode: str, *, catalog_files: tuple[str, ...] = (), flags: PerfFlags | None = None,
             workers: int | None = None, sim_memo: str | Path | None = None) -> ModeOutcome:
    """Optimize the study in one mode, add robustness measurements, and compare with its expectations.

    The catalog is the scenario's own `catalog:` files plus `catalog_files` (--catalog), as in optimize.
    sim_memo: simulation verdicts shared with the other studies of the run (optimize's sim_memo)."""
    t0 = time.perf_counter()
    ms = spec.mode(mode)
    if ms is None:
        raise SplitplanError(f"no '{mode}' mode (add check.{mode})", source=str(spec.path), field="check")
    perf = mode_perf(spec, mode, flags)
    scenario = replace(spec.scenario, perf=perf).with_overrides(**dict(ms.overrides), workers=workers)
    catalog = get_catalog(tuple(scenario.catalog_files) + tuple(catalog_files))
    plan = optimize(scenario, catalog=catalog, perf=settings_of(perf), sim_memo=sim_memo)  # as `splitplan optimize`
    view = plan.expectation_view()
    view["robustness"] = {m: robustness(plan, scenario, m, catalog, workers) for m in spec.robustness}
    results = evaluate_expectations(view, ms.expect)
    return ModeOutcome(spec, mode, plan, view, results, time.perf_counter() - t0)


def _model_scale(sized_for: Problem, serving: Problem) -> Callable[[ClusterSpec], float]:
    """Rough capacity of a cluster serving the other model over its capacity serving the one it was sized
    for (sim/maxrate.py's estimate): where the max-rate search of the other model starts. Starting at the
    sized model's rate instead cost the paper's robustness runs twice the simulations (Llama2-70B
    sustains about twice BLOOM-176B's rate on the same machines); the answer does not depend on it."""
    def scale(cluster: ClusterSpec) -> float:
        est = [capacity_estimate_rps(replace(cluster, model=p.scenario.model), p.sizes, p.perf, p.catalog,
                                     sim_config(p)) for p in (sized_for, serving)]
        return est[1] / est[0] if est[0] > 0 and est[1] > 0 else 1.0
    return scale


def robustness(plan: PlanResult, scenario: Scenario, model: str, catalog: Catalog,
               workers: int | None = None) -> dict[str, Any]:
    """Each design's best cluster (sized for the scenario's model) measured serving `model` instead."""
    try:
        catalog.model(model)
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=scenario.source, field="check.robustness") from None
    problem = make_problem(replace(scenario, model=model), catalog, settings_of(scenario.perf))
    sized = [d for d in plan.designs if d.best is not None]
    scale = _model_scale(make_problem(scenario, catalog, settings_of(scenario.perf)), problem)
    tasks = [(problem, replace(d.best.cluster, model=model), d.best.throughput_rps * scale(d.best.cluster))
             for d in sized]
    with WorkerPool(workers or scenario.search.workers) as pool:
        measured = pool.map(verify_cluster, tasks)
    out: dict[str, Any] = {d.name: {"throughput_rps": None, "label": None} for d in plan.designs}
    for d, (_, cluster, _), v in zip(sized, tasks, measured):
        out[d.name] = {"throughput_rps": round(v.rate_rps, 6), "label": cluster.label()}
    ref = next(iter(out.values()), {}).get("throughput_rps")
    for row in out.values():
        t = row["throughput_rps"]
        row["throughput_ratio"] = round(t / ref, 4) if t is not None and ref else None
    return out


def run_check(paths: Sequence[str | Path], *, include_slow: bool = False, modes: Iterable[str] = MODES,
              catalog_files: tuple[str, ...] = (), flags: PerfFlags | None = None,
              workers: int | None = None, require_expect: bool = True,
              slow_modes: Iterable[str] | None = ("default",),
              on_start: Callable[[CheckSpec, str], None] | None = None,
              on_done: Callable[[ModeOutcome], None] | None = None) -> CheckReport:
    """Run every scenario with expectations under `paths` (slow ones only with include_slow).

    A mode runs when it has expectations (or, with require_expect=False, whenever the file defines it).
    Slow studies run only their `slow_modes` (default: the scenario's own perf settings, which is what
    pins the paper's numbers; None = every mode): their analytic runs belong to `splitplan reproduce`
    or `check --all --mode analytic`, which keeps `make check-all` within its time budget.

    The studies share one temporary folder of simulation verdicts (plan/sim_memo.py), removed at the
    end: the paper's iso-cost and iso-power studies, for one, search the same clusters of the same
    designs, and a quarter of `check --all`'s simulations were repeats. Results are the same."""
    modes = tuple(modes)
    slow = modes if slow_modes is None else tuple(m for m in modes if m in tuple(slow_modes))
    for m in modes:
        if m not in MODES:
            raise SplitplanError(f"unknown mode '{m}' (valid: {', '.join(MODES)})", field="mode")
    specs = discover(paths, require_expect)
    if not specs:
        raise SplitplanError("no scenario with an expect: block found", source=", ".join(map(str, paths)))
    report = CheckReport()
    with tempfile.TemporaryDirectory(prefix="splitplan-sims-") as memo:
        _run_specs(specs, report, include_slow, modes, slow, require_expect, on_start, on_done,
                   dict(catalog_files=catalog_files, flags=flags, workers=workers, sim_memo=memo))
    return report


def _run_specs(specs: Sequence[CheckSpec], report: CheckReport, include_slow: bool, modes: tuple[str, ...],
               slow: tuple[str, ...], require_expect: bool, on_start: Callable[[CheckSpec, str], None] | None,
               on_done: Callable[[ModeOutcome], None] | None, options: dict[str, Any]) -> None:
    for spec in specs:
        if spec.slow and not include_slow:
            report.skipped_slow.append(spec.path)
            continue
        if spec.slow:
            report.skipped_modes += [(spec.path, m) for m in modes if m not in slow and _has_expect(spec, m)]
        for m in (slow if spec.slow else modes):
            ms = spec.mode(m)
            if ms is None or (require_expect and not ms.expect):
                continue
            if on_start:
                on_start(spec, m)
            outcome = run_mode(spec, m, **options)
            report.outcomes.append(outcome)
            if on_done:
                on_done(outcome)


def _has_expect(spec: CheckSpec, mode: str) -> bool:
    ms = spec.mode(mode)
    return ms is not None and bool(ms.expect)


# ---------------------------------------------------------------- --update: write measured values back
def update_file(path: Path, outcomes: Sequence[ModeOutcome]) -> int:
    """Rewrite the `value:` of every value-expectation of `path` to what was measured; returns the count.

    Only the number on the expectation's own line changes, so comments, tolerances and layout stay."""
    lines = path.read_text().splitlines(keepends=True)
    changed = 0
    for outcome in outcomes:
        lo, hi = _expect_block(lines, outcome.mode)
        for r in outcome.results:
            e = r.expectation
            if e.value is None or r.actual is None or _same(r.actual, e.value):
                continue
            pat = re.compile(r"path:\s*['\"]?" + re.escape(e.path) + r"['\"]?\s*[,}]")
            for i in range(lo, hi):
                if pat.search(lines[i]) and "value:" in lines[i]:
                    new = re.sub(r"value:\s*(\"[^\"]*\"|'[^']*'|[^,}]+)", f"value: {_yaml_scalar(r.actual)}",
                                 lines[i], count=1)
                    changed += new != lines[i]
                    lines[i] = new
                    break
    if changed:
        path.write_text("".join(lines))
    return changed


def _expect_block(lines: list[str], mode: str) -> tuple[int, int]:
    """Line range of a mode's expect list: top-level `expect:` or `check: analytic: expect:`."""
    start, indent = None, 0
    if mode == "default":
        start = next((i + 1 for i, ln in enumerate(lines) if re.match(r"^expect:\s*(#.*)?$", ln)), None)
    else:
        in_check = in_mode = False
        for i, ln in enumerate(lines):
            if re.match(r"^\S", ln) and not ln.startswith("#"):
                in_check = ln.startswith("check:")
            elif in_check and re.match(rf"^\s+{mode}:", ln):
                in_mode = True
            elif in_check and in_mode and re.match(r"^\s+expect:\s*(#.*)?$", ln):
                start, indent = i + 1, len(ln) - len(ln.lstrip())
                break
    if start is None:
        return 0, 0
    end = start
    while end < len(lines):
        ln = lines[end]
        stripped = ln.strip()
        width = len(ln) - len(ln.lstrip())
        if stripped and not stripped.startswith("#") and not (width > indent or (width == indent
                                                                                 and stripped.startswith("-"))):
            break
        end += 1
    return start, end


def _same(actual: Any, value: Any) -> bool:
    if isinstance(actual, (int, float)) and isinstance(value, (int, float)):
        return math.isclose(actual, value, rel_tol=1e-3, abs_tol=1e-9)  # pinned values keep 4 digits
    return actual == value


def _yaml_scalar(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.6g}"
    return '"' + str(x).replace("\\", "\\\\").replace('"', '\\"') + '"'
