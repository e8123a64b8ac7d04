"""`splitplan check`: scenario files with `expect:` blocks run as regression tests.

A study scenario pins its key results (throughputs, machine counts, ratios) with tolerances. `check`
re-runs it through the optimizer and compares; a result that leaves its tolerance is a regression (or an
intended change, which `--update` writes back into the file). The scenario's optional `check:` section:

    check:
      slow: true                 # only with --all (make check-all); fast ones run in CI
      analytic:                  # the same study with the calibrated analytic perf model
        overrides: {min_throughput_rps: 47.5}   # Scenario.with_overrides keys for this mode
        expect: [...]            # expectations of the analytic answer
      robustness: [llama2-70b]   # re-measure each design's best cluster serving this model
                                 # (the paper's "Llama2-70B on a cluster built for BLOOM-176B")

Robustness results appear in the expectation view as `robustness.<model>.<design>.throughput_rps` and
`.throughput_ratio` (against the first design). Each run calls `optimize` exactly as `splitplan optimize`
does, so a check reproduces what a planner would see.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from splitplan.catalog import Catalog, get_catalog, read_yaml
from splitplan.errors import SplitplanError
from splitplan.perf.base import PerfSettings
from splitplan.plan.optimize import optimize
from splitplan.plan.parallel import WorkerPool
from splitplan.plan.problem import make_problem
from splitplan.plan.result import PlanResult
from splitplan.plan.verify import verify_cluster
from splitplan.resources import locate_bundled
from splitplan.fields import FieldReader
from splitplan.scenario import (Expectation, ExpectationResult, PerfSection, Scenario, evaluate_expectations,
                                perf_settings_of_section,
                                parse_expectation, parse_scenario)

MODES = ("default", "analytic")


@dataclass(frozen=True)
class ModeSpec:
    """One way of running a study: the scenario's own perf settings ("default") or the analytic model."""

    name: str
    expect: tuple[Expectation, ...]
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class CheckSpec:
    """A scenario file read for checking: the scenario, its modes and its robustness models."""

    path: Path
    scenario: Scenario
    slow: bool
    modes: tuple[ModeSpec, ...]
    robustness: tuple[str, ...] = ()

    def mode(self, name: str) -> ModeSpec | None:
        return next((m for m in self.modes if m.name == name), None)


@dataclass
class ModeOutcome:
    """What one (scenario, mode) run gave: the plan, the view expectations address, and the verdicts."""

    spec: CheckSpec
    mode: str
    plan: PlanResult
    view: dict[str, Any]
    results: list[ExpectationResult]
    elapsed_s: float

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.passed]


@dataclass
class CheckReport:
    outcomes: list[ModeOutcome] = field(default_factory=list)
    skipped_slow: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(not o.failed for o in self.outcomes)

    def n_checks(self) -> tuple[int, int]:
        total = sum(len(o.results) for o in self.outcomes)
        return total - sum(len(o.failed) for o in self.outcomes), total


# ---------------------------------------------------------------- reading scenario files
def load_check_spec(path: str | Path) -> CheckSpec:
    """Read a scenario file and its `check:` section (one-line errors naming the field)."""
    path = Path(path)
    data = read_yaml(path)
    source = str(path)
    if not isinstance(data, dict):
        raise SplitplanError("a scenario file must be a mapping", source=source)
    scenario = parse_scenario(data, source=source, base_dir=path.resolve().parent)
    f = FieldReader(data.get("check") or {}, source, "check")
    slow = f.raw("slow", False)
    if not isinstance(slow, bool):
        raise f.error("slow", f"must be true or false, got {slow!r}")
    modes = [ModeSpec("default", scenario.expect)]
    analytic = f.raw("analytic")
    if analytic is not None:
        modes.append(_analytic_mode(analytic, source))
    robustness = f.raw("robustness", [])
    if isinstance(robustness, str):
        robustness = [robustness]
    if not isinstance(robustness, list) or not all(isinstance(m, str) and m for m in robustness):
        raise f.error("robustness", "must be a list of model names")
    f.done()
    return CheckSpec(path, scenario, slow, tuple(modes), tuple(robustness))


def _analytic_mode(data: Any, source: str) -> ModeSpec:
    f = FieldReader(data, source, "check.analytic")
    overrides = f.raw("overrides", {})
    if not isinstance(overrides, dict):
        raise f.error("overrides", "must be a mapping of override names to values")
    expect_raw = f.raw("expect", [])
    if not isinstance(expect_raw, list):
        raise f.error("expect", "must be a list of {path, value, rel_tol|abs_tol} or {path, min, max}")
    try:
        expect = tuple(parse_expectation(e, source, i) for i, e in enumerate(expect_raw))
    except SplitplanError as exc:  # name the field from the top of the file
        raise SplitplanError(exc.problem, source=source, field=f"check.analytic.{exc.field}") from None
    f.done()
    return ModeSpec("analytic", expect, tuple(sorted(overrides.items())))


def discover(paths: Sequence[str | Path], require_expect: bool = True) -> list[CheckSpec]:
    """Scenario files under `paths` (files or folders, recursively) that have expectations, sorted."""
    files: list[Path] = []
    for raw in paths:
        p = locate_bundled(raw)  # the default "scenarios" is the bundled folder outside a checkout
        if p.is_dir():
            files += sorted(q for q in p.rglob("*.yaml") if "traces" not in q.parts)
        elif p.is_file():
            files.append(p)
        else:
            raise SplitplanError("no such file or folder", source=str(raw))
    specs = []
    for path in dict.fromkeys(files):
        data = read_yaml(path)
        if not isinstance(data, dict) or "designs" not in data:
            continue  # catalogs, calibrations and other YAML living beside scenarios
        spec = load_check_spec(path)
        if any(m.expect for m in spec.modes) or not require_expect:
            specs.append(spec)
    return specs


# ---------------------------------------------------------------- running
@dataclass(frozen=True)
class PerfFlags:
    """Command-line perf overrides applied to every mode (None / empty = keep the mode's own)."""

    backend: str | None = None
    profile: str | None = None
    stack: str | None = None
    compat: str | None = None  # "none" turns compatibility off, "splitwisesim" on


def mode_perf(spec: CheckSpec, mode: str, flags: PerfFlags | None = None) -> PerfSection:
    """The perf section a mode runs with; CLI flags (--profile, --stack, ...) override it.

    A perturbed profile therefore reaches the profile-backed default mode and a perturbed stack the
    analytic mode, which is how a regression in either is caught."""
    scenario_perf = spec.scenario.perf
    own = scenario_perf if mode == "default" else PerfSection(backend="analytic", stack=scenario_perf.stack,
                                                               weights=scenario_perf.weights,
                                                               moe_weights=scenario_perf.moe_weights,
                                                               kv=scenario_perf.kv)
    if flags is None:
        return own
    compat = own.compat if flags.compat is None else (None if flags.compat == "none" else flags.compat)
    backend = flags.backend or own.backend
    profile = flags.profile or own.profile
    if backend == "profile" and profile is None:
        raise SplitplanError("--perf profile needs --profile CSV (or a scenario perf.profile)", field="perf")
    return replace(own, backend=backend, profile=profile, stack=flags.stack or own.stack, compat=compat)


def settings_of(perf: PerfSection) -> PerfSettings:
    return perf_settings_of_section(perf)


def run_mode(spec: CheckSpec, mode: str, *, catalog_files: tuple[str, ...] = (), flags: PerfFlags | None = None,
             workers: int | None = None) -> ModeOutcome:
    """Optimize the study in one mode, add robustness measurements, and compare with its expectations.

    The catalog is the scenario's own `catalog:` files plus `catalog_files` (--catalog), as in optimize."""
    t0 = time.perf_counter()
    ms = spec.mode(mode)
    if ms is None:
        raise SplitplanError(f"no '{mode}' mode (add check.{mode})", source=str(spec.path), field="check")
    perf = mode_perf(spec, mode, flags)
    scenario = replace(spec.scenario, perf=perf).with_overrides(**dict(ms.overrides), workers=workers)
    catalog = get_catalog(tuple(scenario.catalog_files) + tuple(catalog_files))
    plan = optimize(scenario, catalog=catalog, perf=settings_of(perf))  # exactly what `splitplan optimize` does
    view = plan.expectation_view()
    view["robustness"] = {m: robustness(plan, scenario, m, catalog, workers) for m in spec.robustness}
    results = evaluate_expectations(view, ms.expect)
    return ModeOutcome(spec, mode, plan, view, results, time.perf_counter() - t0)


def robustness(plan: PlanResult, scenario: Scenario, model: str, catalog: Catalog,
               workers: int | None = None) -> dict[str, Any]:
    """Each design's best cluster (sized for the scenario's model) measured serving `model` instead."""
    try:
        catalog.model(model)
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=scenario.source, field="check.robustness") from None
    problem = make_problem(replace(scenario, model=model), catalog, settings_of(scenario.perf))
    sized = [d for d in plan.designs if d.best is not None]
    tasks = [(problem, replace(d.best.cluster, model=model), d.best.throughput_rps) for d in sized]
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
    or `check --all --mode analytic`, which keeps `make check-all` within its time budget."""
    modes = tuple(modes)
    slow = modes if slow_modes is None else tuple(m for m in modes if m in tuple(slow_modes))
    for m in modes:
        if m not in MODES:
            raise SplitplanError(f"unknown mode '{m}' (valid: {', '.join(MODES)})", field="mode")
    specs = discover(paths, require_expect)
    if not specs:
        raise SplitplanError("no scenario with an expect: block found", source=", ".join(map(str, paths)))
    report = CheckReport()
    for spec in specs:
        if spec.slow and not include_slow:
            report.skipped_slow.append(spec.path)
            continue
        for m in (slow if spec.slow else modes):
            ms = spec.mode(m)
            if ms is None or (require_expect and not ms.expect):
                continue
            if on_start:
                on_start(spec, m)
            outcome = run_mode(spec, m, catalog_files=catalog_files, flags=flags, workers=workers)
            report.outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return report


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
