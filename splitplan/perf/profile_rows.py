"""A measured profile's rows, ready to fit: catalog names resolved, failed measurements flagged.

Shared by calibration (calibrate.py), its cross-validation (profile_cv.py) and `splitplan predict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from splitplan.catalog import Catalog, Machine
from splitplan.errors import SplitplanError
from splitplan.perf.base import Instance
from splitplan.perf.profile_io import Profile

ANOMALY_RATIO = 0.5  # a prompt batch faster than half of a batch with fewer tokens is a failed measurement
CONFIG_KEYS = ("model", "hardware", "tp", "prompt_tokens", "batch_size")  # one measured configuration


def anomalous_rows(rows: pd.DataFrame) -> pd.Series:
    """Profile lines whose prompt batch took less than ANOMALY_RATIO x the median of a batch with fewer
    tokens on the same instance (physically impossible; SplitwiseSim's A100/H100 TP2 batch-64 rows).
    Returns a boolean mask over `rows` flagging every normalized row (prefill and decode) of such lines."""
    prefill = rows[rows["phase"] == "prefill"]
    bad_lines: set[tuple] = set()
    for key, group in prefill.groupby(["model", "hardware", "tp"], sort=False):
        tokens = group["batch_size"] * group["prompt_tokens"]
        medians = group.groupby(tokens)["time_ms"].median().sort_index()
        running = medians.cummax().shift(1)
        for x, flagged in ((medians < ANOMALY_RATIO * running) & running.notna()).items():
            if flagged:
                bad_lines |= {(*key, line) for line in group.loc[tokens == x, "row"]}
    keys = list(zip(rows["model"], rows["hardware"], rows["tp"], rows["row"]))
    return pd.Series([k in bad_lines for k in keys], index=rows.index)


def flagged_lines(profile: Profile, catalog: Catalog) -> list[int]:
    """File line numbers (the header is line 1, as in error messages) that calibration skips as failed."""
    rows = gpu_rows(profile.rows, catalog, source=profile.path)
    return sorted({int(r) + 1 for r in rows.loc[anomalous_rows(rows), "row"]})


def gpu_rows(profile_rows: pd.DataFrame, catalog: Catalog, *, include_capped: bool = False,
             source: str | None = None) -> pd.DataFrame:
    """Rows with resolved model, machine and GPU names; a name the catalog does not know is a
    one-line error naming the profile file and column."""
    rows = profile_rows.copy()
    machines: dict[str, Machine] = {}
    for hw in rows["hardware"].unique():
        try:
            machines[hw] = catalog.machine(hw)
        except SplitplanError:
            try:
                gpu = catalog.gpu(hw)  # a GPU name: use the first uncapped machine with it
            except SplitplanError as exc:
                raise SplitplanError(f"'{hw}' is neither a machine nor a GPU of the catalog ({exc.problem})",
                                     source=source, field="hardware") from None
            candidates = [m for m in catalog.machines.values() if m.gpu == gpu.name and not m.is_power_capped]
            if not candidates:
                raise SplitplanError(f"no machine in the catalog has GPU '{gpu.name}'", source=source,
                                     field="hardware") from None
            machines[hw] = candidates[0]
    models = {}
    for name in rows["model"].unique():
        try:
            models[name] = catalog.model(name).name
        except SplitplanError as exc:
            raise SplitplanError(exc.problem, source=source, field="model") from None
    rows["machine"] = rows["hardware"].map(lambda h: machines[h].name)
    rows["capped"] = rows["hardware"].map(lambda h: machines[h].is_power_capped)
    rows["gpu"] = rows["hardware"].map(lambda h: machines[h].gpu)
    rows["model"] = rows["model"].map(models)
    return rows if include_capped else rows[~rows["capped"]]


def fit_rows(profile: Profile, catalog: Catalog) -> pd.DataFrame:
    """The rows calibration fits: uncapped, failed measurements dropped, index 0..n-1."""
    rows = gpu_rows(profile.rows, catalog, source=profile.path)
    return rows[~anomalous_rows(rows)].reset_index(drop=True)


def instance_of(catalog: Catalog, model: str, machine: str, tp: int) -> Instance:
    mach = catalog.machine(machine)
    return Instance(model=catalog.model(model), machine=mach, gpu=catalog.gpu_of(mach), tp=int(tp))


@dataclass(frozen=True)
class InstanceRows:
    """The rows of one instance, reduced to their distinct (phase, batch, prompt, context) points."""

    instance: Instance
    where: np.ndarray  # positions of the instance's rows in the frame
    prefill: np.ndarray  # per distinct point: True for prefill
    batch: np.ndarray
    prompt: np.ndarray
    context: np.ndarray
    inverse: np.ndarray  # row -> distinct point

    def predict(self, perf) -> np.ndarray:
        """Predicted ms of every row of the instance (each distinct point evaluated once)."""
        b, p, c = self.batch, self.prompt, self.context
        out = np.where(self.prefill, perf.prefill_ms(b, b * p, b * p * p), perf.decode_ms(b, b * c))
        return np.asarray(out, float)[self.inverse]


def design(rows: pd.DataFrame, catalog: Catalog, machine_column: str = "machine") -> list[InstanceRows]:
    """Rows grouped per instance, with repeated measurements of a point folded into one evaluation."""
    parts = []
    positions = np.arange(len(rows))
    for (model, machine, tp), group in rows.groupby(["model", machine_column, "tp"], sort=False):
        where = positions[rows.index.get_indexer(group.index)]
        keys = np.stack([(group["phase"] == "prefill").to_numpy(float), group["batch_size"].to_numpy(float),
                         group["prompt_tokens"].to_numpy(float), group["context_tokens"].to_numpy(float)], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        parts.append(InstanceRows(instance_of(catalog, model, machine, tp), where, uniq[:, 0] > 0, uniq[:, 1],
                                  uniq[:, 2], uniq[:, 3], inverse.ravel()))
    return parts
