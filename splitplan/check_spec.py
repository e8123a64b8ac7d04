"""What `splitplan check` reads from a scenario file: its modes, expectations and `check:` section.

The scenario's optional `check:` section:

    check:
      slow: true                 # only with --all (make check-all); fast ones run in CI
      analytic:                  # the same study with the calibrated analytic perf model
        overrides: {min_throughput_rps: 47.5}   # Scenario.with_overrides keys for this mode
        expect: [...]            # expectations of the analytic answer
      robustness: [llama2-70b]   # re-measure each design's best cluster serving this model

Kept apart from the runner (check.py) so that reading specs, and declaring the CLI's `--mode` choices,
does not import the optimizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitplan.catalog import read_yaml
from splitplan.errors import SplitplanError
from splitplan.fields import FieldReader
from splitplan.perf.base import PerfSettings
from splitplan.resources import locate_bundled
from splitplan.scenario import (Expectation, ExpectationResult, PerfSection, Scenario, parse_expectation,
                                parse_scenario, perf_settings_of_section)

if TYPE_CHECKING:
    from splitplan.plan.result import PlanResult

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
    # (file, mode) of slow studies' pinned modes left out (their analytic side, outside --mode analytic /
    # reproduce): named in the summary, since nothing else re-checks them
    skipped_modes: list[tuple[Path, str]] = field(default_factory=list)

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
