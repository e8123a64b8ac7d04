"""Reading an output folder back: which command wrote it, and its files as dicts and DataFrames.

The report is built from files, not from live objects, so a planner can render a report for an output
folder copied from another machine, long after the run. Every problem with the folder (missing, empty,
not an output, a file that does not parse) becomes one `SplitplanError` line naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from splitplan.errors import SplitplanError

SIM_FILES = ("summary.json", "requests.csv", "machines.csv", "timeline.csv")
PLAN_FILES = ("plan.json", "candidates.csv", "pareto.csv")
# Where an optimize output may keep the simulation of its best plan (first match wins).
BEST_SIM_DIRS = ("best", "best_sim", "best_simulation", "simulation", "sim")


@dataclass(frozen=True)
class SimOutput:
    """A `splitplan simulate --out DIR` folder. Tables missing from the folder are empty frames."""

    path: Path
    summary: dict[str, Any]
    requests: pd.DataFrame
    machines: pd.DataFrame
    timeline: pd.DataFrame


@dataclass(frozen=True)
class PlanOutput:
    """A `splitplan optimize --out DIR` folder, with the simulation of its best plan when saved."""

    path: Path
    plan: dict[str, Any]
    candidates: pd.DataFrame
    pareto: pd.DataFrame
    best_sim: SimOutput | None


ReportInput = SimOutput | PlanOutput


def load_output(out_dir: str | Path) -> ReportInput:
    """Detect what wrote `out_dir` (optimize or simulate) and load its files."""
    path = Path(out_dir)
    if not path.exists():
        raise SplitplanError("no such directory", source=str(path))
    if not path.is_dir():
        raise SplitplanError("not a directory (give the folder passed to --out)", source=str(path))
    if (path / "plan.json").is_file():
        return load_plan_output(path)
    if (path / "summary.json").is_file():
        return load_sim_output(path)
    runs = sorted(p.parent.name for p in path.glob("*/summary.json"))
    if runs:  # `simulate --seeds N --out DIR` writes one folder per seed
        raise SplitplanError(f"holds {len(runs)} simulations ({', '.join(runs[:4])}{', ...' if len(runs) > 4 else ''}): "
                             f"report one of them, e.g. splitplan report {path / runs[0]}", source=str(path))
    found = sorted(p.name for p in path.iterdir())
    what = f"it holds {', '.join(found[:6])}{', ...' if len(found) > 6 else ''}" if found else "it is empty"
    raise SplitplanError(
        f"not a splitplan output: expected plan.json (from `splitplan optimize --out`) or summary.json "
        f"(from `splitplan simulate --out`), but {what}", source=str(path))


def load_sim_output(path: Path) -> SimOutput:
    summary = read_json(path / "summary.json")
    return SimOutput(path=path, summary=summary, requests=read_csv(path / "requests.csv"),
                     machines=read_csv(path / "machines.csv"), timeline=read_csv(path / "timeline.csv"))


def load_plan_output(path: Path) -> PlanOutput:
    plan = read_json(path / "plan.json")
    return PlanOutput(path=path, plan=plan, candidates=read_csv(path / "candidates.csv"),
                      pareto=read_csv(path / "pareto.csv"), best_sim=_find_best_sim(path))


def _find_best_sim(path: Path) -> SimOutput | None:
    """The optimizer's saved simulation of the best plan: a subfolder holding summary.json."""
    for name in BEST_SIM_DIRS:
        if (path / name / "summary.json").is_file():
            return load_sim_output(path / name)
    for summary in sorted(path.glob("*/summary.json")):
        return load_sim_output(summary.parent)
    return None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or a one-line error naming the file and the line."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SplitplanError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitplanError(f"cannot read file ({exc.__class__.__name__})", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise SplitplanError(f"malformed JSON at line {exc.lineno}: {exc.msg}", source=str(path)) from None
    if not isinstance(data, dict):
        raise SplitplanError(f"expected a JSON object, got {type(data).__name__}", source=str(path))
    return data


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV as a DataFrame; a missing or empty file is an empty frame (the report says what is absent)."""
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:  # a header-less empty table: an infeasible plan has no candidates
        return pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        problem = " ".join(str(exc).split())[:160]
        raise SplitplanError(f"malformed CSV: {problem}", source=str(path)) from None
