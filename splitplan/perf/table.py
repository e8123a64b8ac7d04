"""Profile backend: interpolate a measured table, as SplitwiseSim does, or a little more sensibly.

SplitwiseSim (performance_model.py, DatabasePerformanceModel) builds per (model, hardware, TP) two
piece-wise linear curves over "batch tokens" = prompt_size * batch_size, with y the median time per
knot and linear extrapolation outside (scipy interp1d, fill_value="extrapolate"). It evaluates the
prompt curve at the prompt tokens of a batch, the token curve at the NUMBER of decoding requests
(each token task counts 1) -- far left of the knots, an extrapolation artefact -- and a mixed batch
at 1.1 x the prompt curve at prompt tokens + decode requests. `compat="splitwisesim"` copies all that.

Without compat, decode is interpolated over batch size and context: a per-(model, hardware, TP) slope
gamma (ms per context token, fitted within groups of equal batch size) plus a base curve over batch
size, so decode_ms(b, S) = base(b) + gamma * S is exactly linear in the summed context, as the
simulator's closed-form decode needs.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

import numpy as np
import pandas as pd

from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError
from splitplan.perf.base import Instance
from splitplan.perf.memory import (kv_bytes_per_token, kv_capacity_tokens, splitwisesim_kv_bytes_per_token,
                                   splitwisesim_kv_capacity_tokens)
from splitplan.perf.profile_io import Profile

MIXED_FACTOR = 1.1  # SplitwiseSim's mixed-batch penalty on the prompt curve


class Curve:
    """Piece-wise linear y(x) through knots, extrapolated linearly from the end segments (interp1d)."""

    def __init__(self, x, y):
        order = np.argsort(np.asarray(x, dtype=float))
        self.x = np.asarray(x, dtype=float)[order]
        self.y = np.asarray(y, dtype=float)[order]
        self._xs = self.x.tolist()
        self._ys = self.y.tolist()

    def __call__(self, x):
        xs, ys = self._xs, self._ys
        if len(xs) == 1:
            return np.full_like(np.asarray(x, dtype=float), ys[0]) if isinstance(x, np.ndarray) else ys[0]
        if isinstance(x, np.ndarray):
            x = x.astype(float)
            i = np.clip(np.searchsorted(self.x, x, side="right") - 1, 0, len(xs) - 2)
            x0, x1, y0, y1 = self.x[i], self.x[i + 1], self.y[i], self.y[i + 1]
            return y0 + (x - x0) * (y1 - y0) / (x1 - x0)
        i = min(max(bisect_right(xs, x) - 1, 0), len(xs) - 2)
        x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
        return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


def median_curve(x: pd.Series, y: pd.Series) -> Curve:
    """Knots at the distinct x values, y the median at each (SplitwiseSim's groupby().median())."""
    grouped = pd.DataFrame({"x": x.to_numpy(float), "y": y.to_numpy(float)}).groupby("x")["y"].median()
    return Curve(grouped.index.to_numpy(), grouped.to_numpy())


def context_slope(batch: pd.Series, sum_context: pd.Series, time_ms: pd.Series) -> float:
    """ms per context token: least squares of time on summed context within equal-batch groups."""
    frame = pd.DataFrame({"b": batch.to_numpy(float), "s": sum_context.to_numpy(float), "y": time_ms.to_numpy(float)})
    ds = frame["s"] - frame.groupby("b")["s"].transform("mean")
    dy = frame["y"] - frame.groupby("b")["y"].transform("mean")
    denom = float((ds * ds).sum())
    return max(float((ds * dy).sum()) / denom, 0.0) if denom > 0 else 0.0


def _resolve_hardware(catalog: Catalog, name: str) -> tuple[str, str | None]:
    """('machine', machine name) or ('gpu', gpu name) for a table's hardware column value."""
    for kind, lookup in (("machine", catalog.machine), ("gpu", catalog.gpu)):
        try:
            return kind, lookup(name).name
        except SplitplanError:
            continue
    return "unknown", None


def _resolve_model(catalog: Catalog, name: str) -> str:
    try:
        return catalog.model(name).name
    except SplitplanError:
        return name


def select_rows(profile: Profile, instance: Instance, catalog: Catalog) -> pd.DataFrame:
    """The profile's rows for this (model, machine, tp); a missing combination is a one-line error."""
    rows = profile.rows
    hw = {h: _resolve_hardware(catalog, h) for h in rows["hardware"].unique()}
    models = {m: _resolve_model(catalog, m) for m in rows["model"].unique()}
    machine = instance.machine

    def hw_matches(h: str) -> bool:
        kind, name = hw[h]
        if kind == "machine":
            return name == machine.name
        return kind == "gpu" and name == instance.gpu.name and not machine.is_power_capped

    keep = rows["model"].map(models).eq(instance.model.name) & rows["hardware"].map(hw_matches) & rows["tp"].eq(instance.tp)
    selected = rows[keep]
    if selected.empty or selected["phase"].nunique() < 2:
        have = sorted({f"{m}/{h}/tp{int(t)}" for m, h, t in rows[["model", "hardware", "tp"]].itertuples(index=False)})
        raise SplitplanError(
            f"no prefill and decode rows for {instance.model.name} on {machine.name} at tp={instance.tp}; "
            f"the table has {', '.join(have)}", source=profile.path)
    return selected


class ProfilePerfModel:
    """PerfModel interpolating measured rows of one (model, machine, tp)."""

    def __init__(self, instance: Instance, profile: Profile, catalog: Catalog, compat: str | None = None):
        self.instance = instance
        self.compat = compat
        self.api_ms = 0.0
        self.provenance = f"profile table: {Path(profile.path).name}" + (" (splitwisesim compat)" if compat else "")
        rows = select_rows(profile, instance, catalog)
        prefill = rows[rows["phase"] == "prefill"]
        decode = rows[rows["phase"] == "decode"]
        self.prompt_curve = median_curve(prefill["batch_size"] * prefill["prompt_tokens"], prefill["time_ms"])
        # SplitwiseSim's token curve: knots at prompt_size * batch_size, evaluated at the request count
        self.token_curve = median_curve(decode["batch_size"] * decode["prompt_tokens"], decode["time_ms"])
        sum_context = decode["batch_size"] * decode["context_tokens"]
        self.ms_per_context_token = context_slope(decode["batch_size"], sum_context, decode["time_ms"])
        self.decode_base_curve = median_curve(decode["batch_size"], decode["time_ms"] - self.ms_per_context_token * sum_context)
        if compat:
            self._kv_bytes = splitwisesim_kv_bytes_per_token(instance)
            self._kv_capacity = splitwisesim_kv_capacity_tokens(instance)
        else:
            self._kv_bytes = kv_bytes_per_token(instance)
            self._kv_capacity = kv_capacity_tokens(instance)

    def prefill_ms(self, n_prompts, sum_tokens, sum_sq_tokens):
        return self.prompt_curve(sum_tokens)

    def decode_ms(self, batch_size, sum_context):
        if self.compat:
            curve = self.token_curve(batch_size)
            return curve + 0.0 * sum_context if isinstance(sum_context, np.ndarray) else curve
        return self.decode_base_curve(batch_size) + self.ms_per_context_token * sum_context

    def decode_coeffs(self, batch_size: int) -> tuple[float, float]:
        if self.compat:
            return float(self.token_curve(float(batch_size))), 0.0
        return float(self.decode_base_curve(float(batch_size))), self.ms_per_context_token

    def mixed_ms(self, n_prompts, sum_tokens, sum_sq_tokens, n_decode, sum_context):
        time = self.prompt_curve(sum_tokens + n_decode)
        return MIXED_FACTOR * time if self.compat else time

    def chunk_ms(self, n_chunks, chunk_tokens, pairs, pairs_per_len, prefix_tokens, n_last, n_decode, sum_context):
        """A chunked iteration priced like a mixed one over its new tokens (the table has no prefix data)."""
        return self.mixed_ms(n_chunks, chunk_tokens, 2.0 * pairs, n_decode, sum_context)

    def kv_capacity_tokens(self) -> int:
        return self._kv_capacity

    def kv_bytes_per_token(self) -> float:
        return self._kv_bytes

    def __repr__(self) -> str:
        i = self.instance
        return f"ProfilePerfModel({i.model.name} on {i.machine.name} tp={i.tp}; {self.provenance})"
