"""`sweep`: one scenario optimized at every point of a grid of varied fields, into one table.

A planner's question is rarely one optimization: it is the same scenario over budgets, models, traffic
levels or GPU generations. A sweep varies fields of the scenario file (`constraints.cost_usd_per_h=
200:2000:10`, `model=llama3.1-70b,qwen3-32b`), optimizes every point exactly as `splitplan optimize`
would, and writes one row per (point, design).

Resumable: each finished point is written at once, atomically, to `points/<key>.json` (the full
plan.json of that optimization), keyed by a hash of the point's parameters and the base scenario's
content; a rerun after an interruption loads those files and optimizes only what is missing. Points
run side by side on the worker pool (local processes or Ray, plan/parallel.py); each optimization is
deterministic, so the table is byte-identical for any worker count or executor.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from splitplan.atomic_io import write_atomic
from splitplan.errors import SplitplanError
from splitplan.resources import locate_bundled
from splitplan.scenario import parse_scenario
from splitplan.yaml_io import read_yaml

MAX_POINTS = 10_000  # a sweep is hours of optimizations per thousand points: far past this is a typo
POINT_FORMAT = 1  # bump when the point files' content changes meaning (old ones are then recomputed)


@dataclass(frozen=True)
class Vary:
    """One varied field: a dotted path into the scenario file and the values it takes, in order."""

    path: str
    values: tuple[Any, ...]

    @staticmethod
    def parse(text: str) -> Vary:
        """'FIELD=START:STOP:COUNT' (COUNT evenly spaced values, ends included) or 'FIELD=A,B,C'."""
        name, sep, spec = text.partition("=")
        name, spec = name.strip(), spec.strip()
        if not sep or not name or not spec:
            raise SplitplanError(f"'{text}' is not FIELD=START:STOP:COUNT or FIELD=A,B,...", field="--vary")
        parts = spec.split(":")
        if len(parts) == 3 and all(_number(p) is not None for p in parts):
            start, stop, count = (_number(p) for p in parts)
            if not float(count).is_integer() or not 1 <= count <= MAX_POINTS:
                raise SplitplanError(f"{name}: COUNT must be a whole number in [1, {MAX_POINTS}], got {parts[2]}",
                                     field="--vary")
            count = int(count)
            values = [start + (stop - start) * i / (count - 1) if count > 1 else start for i in range(count)]
            integral = all(isinstance(x, int) for x in (start, stop)) and all(float(v).is_integer() for v in values)
            return Vary(name, tuple(int(v) if integral else round(float(v), 9) for v in values))
        values = tuple(_scalar(v.strip()) for v in spec.split(","))
        if any(v == "" for v in values):
            raise SplitplanError(f"{name}: empty value in '{spec}'", field="--vary")
        return Vary(name, values)


def _number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _scalar(text: str) -> Any:
    number = _number(text)
    if number is not None:
        return number
    return {"true": True, "false": False, "null": None}.get(text.lower(), text)


def points_of(varies: Sequence[Vary]) -> list[dict[str, Any]]:
    """Every combination, the first vary slowest (so a table reads in the order the flags were given)."""
    names = [v.path for v in varies]
    if len(set(names)) != len(names):
        raise SplitplanError(f"field '{next(n for n in names if names.count(n) > 1)}' is varied twice",
                             field="--vary")
    count = math.prod(len(v.values) for v in varies)
    if count > MAX_POINTS:
        raise SplitplanError(f"{count:,} points; at most {MAX_POINTS:,} per sweep", field="--vary")
    return [dict(zip(names, combo)) for combo in itertools.product(*(v.values for v in varies))]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted field of the scenario mapping ('constraints.cost_usd_per_h'; list items by index)."""
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise SplitplanError(f"cannot set '{path}': '{part}' is not a section", field="--vary")
        node = node.setdefault(part, {})
        if node is None:
            node = {}
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SplitplanError(f"cannot set '{path}'", field="--vary")


@dataclass(frozen=True)
class BaseScenario:
    """The scenario file as read (the mapping every point starts from), and its identity."""

    data: dict[str, Any]
    source: str
    base_dir: str
    digest: str  # sha256 of the canonical mapping: a changed file never reuses old points

    @staticmethod
    def load(path: str | Path) -> BaseScenario:
        path = locate_bundled(path)
        data = read_yaml(path)
        if not isinstance(data, dict):
            raise SplitplanError("a scenario file must be a mapping", source=str(path))
        data = {k: v for k, v in data.items() if k not in ("expect", "check")}  # a sweep checks nothing
        digest = hashlib.sha256(_canonical(data).encode()).hexdigest()
        return BaseScenario(data, str(path), str(path.resolve().parent), digest)

    def point_data(self, params: dict[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(self.data)
        for path, value in params.items():
            set_path(data, path, value)
        label = ",".join(f"{k}={v}" for k, v in params.items())
        data["name"] = f"{data.get('name') or Path(self.source).stem}[{label}]"
        return data

    def key(self, params: dict[str, Any]) -> str:
        return hashlib.sha256(_canonical({"format": POINT_FORMAT, "scenario": self.digest,
                                          "params": params}).encode()).hexdigest()[:20]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def run_point(base: BaseScenario, params: dict[str, Any], seeds: int | None, workers: int,
              sim_memo: str | None = None) -> dict[str, Any]:
    """Optimize one point (module level: worker processes and Ray tasks run it); its plan.json mapping.
    `sim_memo`: the sweep's folder of simulation verdicts, shared by its points (plan/sim_memo.py)."""
    from splitplan.catalog import get_catalog
    from splitplan.plan.optimize import optimize

    scenario = parse_scenario(base.point_data(params), source=base.source, base_dir=Path(base.base_dir))
    catalog = get_catalog(tuple(scenario.catalog_files))
    return optimize(scenario, catalog=catalog, workers=workers, seeds=seeds, sim_memo=sim_memo).to_dict()


@dataclass
class SweepResult:
    varies: tuple[Vary, ...]
    points: list[dict[str, Any]]  # per point: params, key, plan (plan.json mapping)
    reused: int = 0  # points loaded from an earlier, interrupted run
    rows: list[dict[str, Any]] = field(default_factory=list)


class PointStore:
    """points/<key>.json under the output folder, each written atomically (temp file, then rename)."""

    def __init__(self, out_dir: Path):
        self.dir = out_dir / "points"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            record = json.loads((self.dir / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None  # missing or torn by a crash outside the atomic write: recompute
        return record if record.get("key") == key and "plan" in record else None

    def save(self, record: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.dir / f"{record['key']}.json", json.dumps(record, indent=1, sort_keys=True) + "\n")


def sweep(scenario_path: str | Path, varies: Sequence[Vary], out_dir: str | Path, *, workers: int | None = None,
          seeds: int | None = None, on_total: Callable[[int], None] | None = None,
          on_point: Callable[[dict[str, Any]], None] | None = None) -> SweepResult:
    """Optimize every point not already in `out_dir/points/`, saving each as it finishes."""
    from splitplan.plan.parallel import WorkerPool

    base = BaseScenario.load(scenario_path)
    grid = points_of(varies)
    for params in grid[:1] + grid[-1:]:  # a bad field or value fails now, in one line, not in a worker
        parse_scenario(base.point_data(params), source=base.source, base_dir=Path(base.base_dir))
    store = PointStore(Path(out_dir))
    records: list[dict[str, Any] | None] = []
    for params in grid:
        key = base.key(params)
        found = store.load(key)
        records.append(found)
    todo = [i for i, r in enumerate(records) if r is None]
    if on_total:
        on_total(len(todo))
    with WorkerPool(workers) as pool:
        side_by_side = len(todo) >= pool.workers > 1  # else each point's designs use the workers
        inner = 1 if side_by_side else pool.workers
        memo = str(Path(out_dir).resolve() / "sims")  # absolute: Ray workers may start elsewhere
        tasks = [(base, grid[i], seeds, inner, memo) for i in todo]

        def finished(j: int, plan: dict[str, Any]) -> None:
            i = todo[j]
            records[i] = {"key": base.key(grid[i]), "params": grid[i], "plan": plan}
            store.save(records[i])
            if on_point:
                on_point(records[i])

        if side_by_side:
            pool.map(run_point, tasks, on_result=finished)
        else:
            for j, task in enumerate(tasks):
                finished(j, run_point(*task))
    done = [r for r in records if r is not None]
    return SweepResult(tuple(varies), done, reused=len(grid) - len(todo))
