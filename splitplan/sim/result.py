"""What a simulation returns and writes: summary (JSON-ready), per-request, per-machine and timeline tables.

The tables are kept as numpy columns and plain rows: building pandas frames for every run cost more than
the statistics themselves (the optimizer runs hundreds of simulations and reads only the summary), so a
frame is built on first access (`requests`, `machines`, `timeline`) or when the run is written, and
pandas is imported only then.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 2  # 2: offered_rps / completed_rps / window_completed_rps; mixed_pool shares
FLOAT_FORMAT = "%.9g"
FILES = ("summary.json", "requests.csv", "machines.csv", "timeline.csv")
REQUEST_COLUMNS = ("request_id", "arrival_s", "prompt_tokens", "output_tokens", "ttft_s", "tbt_s", "e2e_s",
                   "queue_s", "transfer_s", "prompt_instance", "token_instance", "completed")
MACHINE_COLUMNS = ("instance", "pool", "machine", "machine_index", "busy_s", "utilization", "mean_batch_size",
                   "prompts", "tokens", "requests_completed", "energy_j", "mean_power_w")
TIMELINE_COLUMNS = ("time_s", "pool", "busy_instances", "instances", "mean_decode_batch", "queued_requests",
                    "pending_tokens")


@dataclass(eq=False)
class SimResult:
    """One simulation's outcome. `summary` holds no wall-clock values: same inputs -> same bytes.

    `request_columns` (numpy arrays, REQUEST_COLUMNS), `machine_rows` (dicts) and `timeline_rows` (tuples)
    are the raw tables; `requests`, `machines` and `timeline` are the same as pandas frames, built once
    on first use."""

    summary: dict[str, Any]
    request_columns: dict[str, np.ndarray]
    machine_rows: list[dict[str, Any]]
    timeline_rows: list[tuple]
    slo_results: list = field(default_factory=list)
    saturated: bool = False
    all_slos_met: bool = False

    @cached_property
    def requests(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({name: self.request_columns[name] for name in REQUEST_COLUMNS})

    @cached_property
    def machines(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.machine_rows, columns=list(MACHINE_COLUMNS))

    @cached_property
    def timeline(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.timeline_rows, columns=list(TIMELINE_COLUMNS))

    def write(self, out_dir: str | Path) -> Path:
        """Write the four files atomically: into a temporary sibling folder, then renamed into place,
        so an interrupted run never leaves half-written output."""
        out = Path(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            (tmp / "summary.json").write_text(summary_json(self.summary))
            self.requests.to_csv(tmp / "requests.csv", index=False, float_format=FLOAT_FORMAT)
            self.machines.to_csv(tmp / "machines.csv", index=False, float_format=FLOAT_FORMAT)
            self.timeline.to_csv(tmp / "timeline.csv", index=False, float_format=FLOAT_FORMAT)
            if not out.exists():
                tmp.rename(out)
            else:
                for name in FILES:
                    os.replace(tmp / name, out / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out


class SeedFolders:
    """Several runs written under one output folder all at once: each goes into a hidden temporary
    sibling as it finishes, and the whole set is renamed into place at the end (`publish`), so an
    interrupted multi-seed run leaves no folder holding only some seeds. Use as a context manager."""

    def __init__(self, out_dir: str | Path):
        self.out = Path(out_dir)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.out.parent / f".{self.out.name}.seeds-tmp-{os.getpid()}"
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir()

    def write(self, name: str, result: SimResult) -> None:
        result.write(self.tmp / name)

    def publish(self) -> Path:
        if not self.out.exists():
            self.tmp.rename(self.out)
            return self.out
        for child in sorted(self.tmp.iterdir()):
            target = self.out / child.name
            if target.exists():
                shutil.rmtree(target)
            child.rename(target)
        return self.out

    def __enter__(self) -> SeedFolders:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def clean(value: Any) -> Any:
    """JSON-safe, stable values: floats to 9 significant digits, NaN/inf to null, numpy to Python."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.9g}")
    return value


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(clean(summary), sort_keys=True, indent=2) + "\n"
