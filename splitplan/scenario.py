"""Scenario files: the question a capacity planner asks, validated by hand into dataclasses.

A scenario names a model, a workload, SLOs, the cluster designs to compare, budgets, an objective and
search settings (see docs/scenarios.md). Validation is hand-written (no jsonschema dependency) so that
every problem is one line naming the file and the dotted field, e.g.
"scenarios/x.yaml: constraints.powr_kw: unknown field (did you mean power_kw?)".
The optional `expect:` block turns a scenario into a regression check (`evaluate_expectations`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from splitplan.catalog import BUNDLED_PROFILES_DIR, read_yaml
from splitplan.errors import SplitplanError, nearest_names
from splitplan.fields import FieldReader
from splitplan.fields import describe_kind
from splitplan.limits import (MAX_DURATION_S, MAX_PER_POOL, MAX_SEEDS, MAX_VERIFY_TOP, MAX_WORKERS,
                              check_request_estimate)
from splitplan.resources import locate_bundled, scenarios_dir, traces_dir
from splitplan.scenario_designs import (DESIGN_KINDS, Design, ServingSection, parse_design,  # noqa: F401  (re-exported)
                                        parse_serving)

BUNDLED_SCENARIOS_DIR = scenarios_dir()
BUNDLED_DATA_DIRS = (traces_dir(), BUNDLED_SCENARIOS_DIR, BUNDLED_PROFILES_DIR / "measured", BUNDLED_PROFILES_DIR)
OBJECTIVES = ("max_throughput", "min_cost", "min_power")
METHODS = ("ilp", "grid", "both")
GENERATORS = ("poisson", "replay", "trace")


@dataclass(frozen=True)
class WorkloadSection:
    """Where request sizes come from and how arrivals are generated for each simulated seed."""

    trace: str  # resolved path of the size/arrival trace (Azure CSV format)
    generator: str = "poisson"  # poisson: sizes from the trace, Poisson arrivals at the tested rate
    duration_s: float = 60.0  # length of each simulated run
    seed: int = 0  # first seed; seeds used are seed, seed+1, ...
    seeds: tuple[int, ...] = ()  # explicit seeds (overrides seed + search.seeds)


@dataclass(frozen=True)
class Constraints:
    """Hard limits every reported plan satisfies. None = unconstrained."""

    cost_usd_per_h: float | None = None
    power_kw: float | None = None
    max_machines: int | None = None
    max_machines_per_pool: int | None = None
    min_throughput_rps: float | None = None


@dataclass(frozen=True)
class SearchSettings:
    """How hard the optimizer looks, and how it verifies what it finds."""

    method: str = "ilp"  # ilp (capacity model + ILP + simulated local search) | grid | both
    max_per_pool: int = 40  # search-space bound per pool when no budget limits it
    seeds: int = 3  # independent simulated seeds per verified candidate
    require_fraction: float = 1.0  # fraction of seeds that must meet every SLO
    verify_top: int = 3  # ILP solutions (best first) verified by simulation
    local_radius: int = 1  # machines either way explored around each verified plan
    workers: int | None = None  # parallel processes (default min(2, cpus))
    rate_tol_rps: float = 0.25  # smallest rate tested (rates are resolved on a 2% lattice above it)
    solver: str = "cbc"  # cbc | highs


@dataclass(frozen=True)
class PerfSection:
    """Which performance backend, serving stack and quantization every design runs with (unless a
    design names its own stack)."""

    backend: str = "analytic"
    profile: str | None = None
    stack: str | None = None  # bundled stack name or a resolved stack file path; None: the default stack
    compat: str | None = None
    weights: str | None = None  # dense weight format (bf16, fp8, fp8_block, nvfp4, mxfp4, int4_wo)
    moe_weights: str | None = None
    kv: str | None = None  # KV-cache format (bf16, fp8); None: the stack's default for the weights


@dataclass(frozen=True)
class Expectation:
    """One regression check on a plan result: a value with tolerance, or a [min, max] range."""

    path: str
    value: Any = None
    rel_tol: float | None = None
    abs_tol: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ExpectationResult:
    expectation: Expectation
    actual: Any
    passed: bool
    message: str


@dataclass(frozen=True)
class Scenario:
    name: str
    model: str
    workload: WorkloadSection
    designs: tuple[Design, ...]
    slos: tuple = ()  # splitplan.slo.SLO objects ("paper" expands to the paper's nine)
    reference_machine: str = "dgx-a100"
    reference_tp: int | None = None  # GPUs of the SLO reference instance (None: all of the machine's)
    constraints: Constraints = field(default_factory=Constraints)
    objective: str = "max_throughput"
    search: SearchSettings = field(default_factory=SearchSettings)
    perf: PerfSection = field(default_factory=PerfSection)
    serving: ServingSection = field(default_factory=ServingSection)
    expect: tuple[Expectation, ...] = ()
    description: str = ""
    source: str = "<scenario>"
    catalog_files: tuple[str, ...] = ()  # extra catalog YAMLs (resolved paths), before any --catalog

    def perf_settings(self) -> Any:
        """The scenario's perf section as PerfSettings, with the serving section's scheduling overrides
        (CLI flags may override it)."""
        settings = perf_settings_of_section(self.perf)
        return replace(settings, scheduling=self.serving.scheduling) if self.serving.scheduling else settings

    def simulation_inputs(self) -> dict[str, Any]:
        """What `splitplan simulate --scenario` takes from the file (flags given on the command line win)."""
        return {"model": self.model, "trace": self.workload.trace, "duration_s": self.workload.duration_s,
                "seed": self.seed_list()[0], "slos": tuple(self.slos), "reference_machine": self.reference_machine,
                "reference_tp": self.reference_tp, "transfer": self.serving.transfer,
                "perf": self.perf_settings(), "catalog_files": self.catalog_files}

    def seed_list(self) -> tuple[int, ...]:
        """The simulated seeds, in order."""
        if self.workload.seeds:
            return self.workload.seeds
        return tuple(self.workload.seed + i for i in range(self.search.seeds))

    def design(self, name: str) -> Design:
        for design in self.designs:
            if design.name == name:
                return design
        raise SplitplanError(f"unknown design '{name}'{nearest_names(name, [d.name for d in self.designs])}",
                             source=self.source, field="designs")

    def with_overrides(self, **overrides: Any) -> Scenario:
        """A copy with CLI-style overrides applied (None = keep), validated like the file's own fields."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for key in given:
            if key not in OVERRIDES and key != "objective":
                raise SplitplanError(f"unknown override '{key}'{nearest_names(key, [*OVERRIDES, 'objective'])}")
        sections = {"constraints": asdict(self.constraints), "search": asdict(self.search)}
        for key, value in given.items():
            if key in OVERRIDES:
                section, name = OVERRIDES[key]
                sections[section][name] = value
        f = FieldReader({"objective": given.get("objective", self.objective)}, "overrides", "")
        scen = replace(self, objective=f.string("objective", choices=OBJECTIVES),
                       constraints=_constraints(sections["constraints"], "overrides"),
                       search=_search(sections["search"], "overrides"),
                       workload=replace(self.workload, seeds=()) if "seeds" in given else self.workload)
        _check_consistency(scen)
        return scen


OVERRIDES = {"max_cost_usd_per_h": ("constraints", "cost_usd_per_h"), "max_power_kw": ("constraints", "power_kw"),
             "min_throughput_rps": ("constraints", "min_throughput_rps"),
             "max_machines": ("constraints", "max_machines"), "seeds": ("search", "seeds"),
             "method": ("search", "method"), "workers": ("search", "workers"),
             "max_per_pool": ("search", "max_per_pool"), "solver": ("search", "solver")}


# ---------------------------------------------------------------- sections
def resolve_data_path(raw: str, base_dir: Path | None, source: str, field_name: str) -> str:
    """A relative path resolves against the scenario's folder, then the bundled data folders."""
    path = Path(raw).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = ([base_dir / path] if base_dir else []) + [Path.cwd() / path] + [d / path for d in
                                                                                      BUNDLED_DATA_DIRS]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is not None:
        raise SplitplanError(f"'{raw}' is a directory ({folder}), expected a file", source=source, field=field_name)
    raise SplitplanError(f"file '{raw}' not found (looked next to the scenario and in the bundled "
                         "scenarios/traces and profiles folders)", source=source, field=field_name)


def _workload(data: Any, source: str, base_dir: Path | None) -> WorkloadSection:
    f = FieldReader(data, source, "workload")
    trace = resolve_data_path(f.string("trace", required=True), base_dir, source, "workload.trace")
    seeds_raw = f.raw("seeds")
    seeds: tuple[int, ...] = ()
    if seeds_raw is not None:
        if isinstance(seeds_raw, list) and len(seeds_raw) > MAX_SEEDS:
            raise f.error("seeds", f"lists {len(seeds_raw):,} seeds; at most {MAX_SEEDS} (each one multiplies "
                                   "the simulation time)")
        if not isinstance(seeds_raw, list) or not seeds_raw or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds_raw):
            raise f.error("seeds", "must be a non-empty list of non-negative integers (or use search.seeds: N)")
        if len(set(seeds_raw)) != len(seeds_raw):
            raise f.error("seeds", "repeats a seed; seeds must be independent")
        seeds = tuple(seeds_raw)
    section = WorkloadSection(
        trace=trace,
        generator=f.string("generator", "poisson", choices=GENERATORS),
        duration_s=float(f.number("duration_s", 60.0, positive=True, hi=MAX_DURATION_S,
                                  hi_why="one simulated day; seconds, not milliseconds")),
        seed=int(f.number("seed", 0, integer=True, lo=0)),
        seeds=seeds,
    )
    f.done()
    return section


def _constraints(data: Any, source: str) -> Constraints:
    f = FieldReader(data or {}, source, "constraints")
    c = Constraints(
        cost_usd_per_h=f.number("cost_usd_per_h", positive=True),
        power_kw=f.number("power_kw", positive=True),
        max_machines=f.number("max_machines", integer=True, lo=0),
        max_machines_per_pool=f.number("max_machines_per_pool", integer=True, lo=0),
        min_throughput_rps=f.number("min_throughput_rps", positive=True),
    )
    f.done()
    return c


def _search(data: Any, source: str) -> SearchSettings:
    f = FieldReader(data or {}, source, "search")
    s = SearchSettings(
        method=f.string("method", "ilp", choices=METHODS),
        max_per_pool=int(f.number("max_per_pool", 40, integer=True, positive=True, hi=MAX_PER_POOL,
                                  hi_why="machines in one pool")),
        seeds=int(f.number("seeds", 3, integer=True, positive=True, hi=MAX_SEEDS,
                           hi_why="each seed multiplies the simulation time")),
        require_fraction=float(f.number("require_fraction", 1.0, positive=True, hi=1.0)),
        verify_top=int(f.number("verify_top", 3, integer=True, positive=True, hi=MAX_VERIFY_TOP,
                                hi_why="each verified solution is a rate bisection")),
        local_radius=int(f.number("local_radius", 1, integer=True, lo=0, hi=5)),
        workers=f.number("workers", None, integer=True, positive=True, hi=MAX_WORKERS, hi_why="processes"),
        rate_tol_rps=float(f.number("rate_tol_rps", 0.25, positive=True)),
        solver=f.string("solver", "cbc", choices=("cbc", "highs")),
    )
    f.done()
    return s


def _perf(data: Any, source: str, base_dir: Path | None) -> PerfSection:
    f = FieldReader(data or {}, source, "perf")
    backend = f.string("backend", "analytic", choices=("analytic", "profile"))
    profile = f.string("profile")
    if profile:
        profile = resolve_data_path(profile, base_dir, source, "perf.profile")
    elif backend == "profile":
        profile = resolve_data_path("splitwisesim_perf_model.csv", None, source, "perf.profile")
    for old, new in (("calibration", "stack"), ("dtype", "weights")):
        if f.raw(old) is not None:
            raise f.error(old, f"was replaced by perf.{new} (see docs/stacks.md)")
    compat = f.string("compat", None, choices=("none", "splitwisesim"))
    section = PerfSection(backend=backend, profile=profile, stack=resolve_stack_name(f.string("stack"), base_dir, source),
                          compat=None if compat == "none" else compat, weights=f.string("weights"),
                          moe_weights=f.string("moe_weights"), kv=f.string("kv"))
    f.done()
    perf_settings_of_section(section, source)  # unknown stacks and formats are errors now, not at run time
    return section


def resolve_stack_name(raw: str | None, base_dir: Path | None, source: str, field_name: str = "perf.stack") -> str | None:
    """A bundled stack name stays a name; anything that looks like a file resolves like other data paths."""
    if raw is None:
        return None
    if raw.endswith((".yaml", ".yml")) or "/" in raw:
        return resolve_data_path(raw, base_dir, source, field_name)
    from splitplan.serving.stack import get_stack

    try:
        return get_stack(raw).name
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=source, field=field_name) from None


def perf_settings_of_section(p: PerfSection, source: str | None = None) -> Any:
    """PerfSettings of a perf section (the stack's KV default applies when no KV format is given)."""
    from splitplan.perf.base import PerfSettings
    from splitplan.serving.stack import get_stack

    try:
        quant = get_stack(p.stack).default_quant(p.weights, p.moe_weights, p.kv)
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=source, field=f"perf.{exc.field or 'weights'}") from None
    return PerfSettings(backend=p.backend, profile_path=p.profile, stack=p.stack, compat=p.compat, quant=quant)


def parse_expectation(data: Any, source: str, index: int) -> Expectation:
    f = FieldReader(data, source, f"expect[{index}]")
    e = Expectation(path=f.string("path", required=True), value=f.raw("value"),
                    rel_tol=f.number("rel_tol", lo=0), abs_tol=f.number("abs_tol", lo=0),
                    min=f.number("min"), max=f.number("max"))
    f.done()
    if e.value is None and e.min is None and e.max is None:
        raise f.error("value", "give 'value' (with rel_tol or abs_tol) or 'min'/'max'")
    if e.value is not None and (e.min is not None or e.max is not None):
        raise f.error("value", "give either 'value' or 'min'/'max', not both")
    if e.min is not None and e.max is not None and e.min > e.max:
        raise f.error("min", f"min {e.min} is above max {e.max}")
    return e


def _slos(raw: Any, source: str) -> tuple:
    """"paper" or a list of {metric, percentile, slowdown | limit_ms | limit_s} (see splitplan.slo)."""
    from splitplan.slo import parse_slos

    return parse_slos("paper" if raw is None else raw, source)


def parse_scenario(data: Any, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    """Validate a scenario mapping (already read from YAML) into a `Scenario`."""
    f = FieldReader(data, source, "")
    designs_raw = f.raw("designs", required=True)
    if not isinstance(designs_raw, list) or not designs_raw:
        raise f.error("designs", "must be a non-empty list of designs")
    designs = tuple(parse_design(d, source, i, base_dir) for i, d in enumerate(designs_raw))
    names = [d.name for d in designs]
    if len(set(names)) != len(names):
        raise f.error("designs", f"design name '{next(n for n in names if names.count(n) > 1)}' is used twice")
    catalogs = f.raw("catalog", [])
    if isinstance(catalogs, str):
        catalogs = [catalogs]
    if not isinstance(catalogs, list) or not all(isinstance(c, str) for c in catalogs):
        raise f.error("catalog", "must be a list of catalog YAML paths")
    expect_raw = f.raw("expect", [])
    f.raw("check")  # the `check:` section (slow flag, per-mode expectations) is validated by splitplan.check
    if not isinstance(expect_raw, list):
        raise f.error("expect", "must be a list of {path, value, rel_tol|abs_tol} or {path, min, max}")
    scenario = Scenario(
        name=f.string("name", Path(source).stem),
        description=f.string("description") or "",
        model=f.string("model", required=True),
        workload=_workload(f.raw("workload", required=True), source, base_dir),
        designs=designs,
        slos=_slos(f.raw("slos", "paper"), source),
        reference_machine=f.string("reference_machine", "dgx-a100"),
        reference_tp=f.number("reference_tp", None, integer=True, positive=True),
        constraints=_constraints(f.raw("constraints"), source),
        objective=f.string("objective", "max_throughput", choices=OBJECTIVES),
        search=_search(f.raw("search"), source),
        perf=_perf(f.raw("perf"), source, base_dir),
        serving=parse_serving(f.raw("serving"), source, base_dir),
        expect=tuple(parse_expectation(e, source, i) for i, e in enumerate(expect_raw)),
        source=source,
        catalog_files=tuple(resolve_data_path(c, base_dir, source, "catalog") for c in catalogs),
    )
    f.done()
    _check_consistency(scenario)
    return scenario


def _check_consistency(s: Scenario) -> None:
    """Contradictions between sections, each named by the field that cannot hold."""
    c, src = s.constraints, s.source
    if s.objective in ("min_cost", "min_power") and c.min_throughput_rps is None:
        raise SplitplanError(f"objective {s.objective} needs a target: set constraints.min_throughput_rps",
                             source=src, field="objective")
    if s.objective == "max_throughput" and c.cost_usd_per_h is None and c.power_kw is None \
            and c.max_machines is None and c.max_machines_per_pool is None:
        raise SplitplanError("max_throughput needs a budget: set constraints.cost_usd_per_h, power_kw or "
                             "max_machines", source=src, field="constraints")
    needed = 2 if any(d.split for d in s.designs) else 1
    if c.min_throughput_rps is not None:
        if c.max_machines == 0 or c.max_machines_per_pool == 0:
            raise SplitplanError(f"min_throughput_rps {c.min_throughput_rps} cannot be served with 0 machines",
                                 source=src, field="constraints.max_machines")
    if c.max_machines is not None and c.max_machines < needed and all(d.split for d in s.designs):
        raise SplitplanError(f"{c.max_machines} machine(s) cannot hold a prompt and a token pool (needs 2)",
                             source=src, field="constraints.max_machines")
    if c.min_throughput_rps is not None:  # the target rate is simulated: its request count is known now
        check_request_estimate(c.min_throughput_rps, s.workload.duration_s, src, "constraints.min_throughput_rps")
    if s.search.seeds < 1:
        raise SplitplanError(f"must be >= 1, got {s.search.seeds}", source=src, field="search.seeds")
    if s.search.workers is not None and s.search.workers < 1:
        raise SplitplanError(f"must be >= 1, got {s.search.workers}", source=src, field="search.workers")


def check_names(scenario: Scenario, catalog: Any) -> None:
    """Model, reference and design machines must exist in the catalog (which --catalog may extend)."""
    checks = [("model", scenario.model, catalog.model), ("reference_machine", scenario.reference_machine,
                                                         catalog.machine)]
    for d in scenario.designs:
        for role, names in d.pools().items():
            where = f"designs.{d.name}.{'machines' if role == 'mixed' else role}"
            checks += [(where, name, catalog.machine) for name in names]
    for where, name, lookup in checks:
        try:
            lookup(name)
        except SplitplanError as exc:  # re-raise with the scenario file and field in front
            raise SplitplanError(exc.problem, source=scenario.source, field=where) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file; paths inside resolve against its folder.

    A relative path that does not exist may name a bundled scenario ("quickstart.yaml")."""
    path = locate_bundled(path)
    return parse_scenario(read_yaml(path), source=str(path), base_dir=path.resolve().parent)


# ---------------------------------------------------------------- expectations
def lookup_path(data: Any, path: str) -> Any:
    """Follow a dotted path ("designs.Splitwise-HH.prompt_machines") through mappings and lists."""
    node = data
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            options = list(node) if isinstance(node, Mapping) else []
            raise KeyError(f"'{part}' not found{nearest_names(part, options) if options else ''}")
    return node


def evaluate_expectations(plan_result: Any, expect: Sequence[Expectation]) -> list[ExpectationResult]:
    """Check each expectation against a plan result (a PlanResult or its plan.json mapping)."""
    data = plan_result.expectation_view() if hasattr(plan_result, "expectation_view") else plan_result
    results = []
    for e in expect:
        try:
            actual = lookup_path(data, e.path)
        except KeyError as exc:
            results.append(ExpectationResult(e, None, False, f"{e.path}: {exc.args[0]}"))
            continue
        results.append(_check_one(e, actual))
    return results


def _check_one(e: Expectation, actual: Any) -> ExpectationResult:
    if e.value is not None and (not isinstance(e.value, (int, float)) or isinstance(e.value, bool)):
        ok = actual == e.value
        return ExpectationResult(e, actual, ok, f"{e.path} = {actual!r}, expected {e.value!r}")
    if not isinstance(actual, (int, float)) or isinstance(actual, bool) or actual is None:
        return ExpectationResult(e, actual, False, f"{e.path} = {actual!r} is not a number")
    if e.value is not None:
        tol = max(e.abs_tol or 0.0, (e.rel_tol or 0.0) * abs(e.value))
        ok = abs(actual - e.value) <= tol
        return ExpectationResult(e, actual, ok, f"{e.path} = {actual:.6g}, expected {e.value:.6g} ± {tol:.3g}")
    ok = (e.min is None or actual >= e.min) and (e.max is None or actual <= e.max)
    lo = "-inf" if e.min is None else f"{e.min:g}"
    hi = "inf" if e.max is None else f"{e.max:g}"
    return ExpectationResult(e, actual, ok, f"{e.path} = {actual:.6g}, expected in [{lo}, {hi}]")
