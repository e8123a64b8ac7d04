"""Workloads: request arrival times and prompt/output sizes (readers, generators, statistics).

Three trace formats are read (detected from the header): the Azure LLM inference traces
(`TIMESTAMP,ContextTokens,GeneratedTokens`), SplitwiseSim's generated traces, and a plain
`arrival_s,prompt_tokens,output_tokens` CSV. Generators turn a trace into a workload at a chosen rate:
Poisson arrivals with sizes resampled from the trace (the paper's and SplitwiseSim's method), a
time-compressed replay that keeps the trace's real burstiness, or fully synthetic sizes.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from splitplan.errors import SplitplanError, nearest_names
from splitplan.limits import MAX_GENERATED_REQUESTS, MAX_TOKENS_PER_REQUEST  # enforced here; limits.py says why
from splitplan.resources import traces_dir
from splitplan.trace_csv import read_valid_trace

if TYPE_CHECKING:
    import pandas as pd

BUNDLED_TRACES_DIR = traces_dir()

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
SPLITWISESIM_COLUMNS = ("request_id", "request_type", "application_id", "arrival_timestamp", "batch_size",
                        "prompt_size", "token_size")
PLAIN_COLUMNS = ("arrival_s", "prompt_tokens", "output_tokens")
ACCEPTED_FORMATS = (f"Azure ({','.join(AZURE_COLUMNS)}), SplitwiseSim ({','.join(SPLITWISESIM_COLUMNS)}), "
                    f"plain ({','.join(PLAIN_COLUMNS)})")
# (arrival, prompt, output) columns per format, in detection order
_FORMAT_COLUMNS = (AZURE_COLUMNS, ("arrival_timestamp", "prompt_size", "token_size"), PLAIN_COLUMNS)
GENERATORS = ("trace", "poisson", "replay", "synthetic")
ARRIVAL_PROCESSES = ("poisson", "uniform", "gamma")
SIZE_KINDS = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2}  # kind -> number of params


@dataclass(frozen=True)
class Workload:
    """A trace of requests, sorted by arrival. Arrays are aligned; times in seconds from the start."""

    arrival_s: np.ndarray  # float64, non-decreasing
    prompt_tokens: np.ndarray  # int64, >= 1
    output_tokens: np.ndarray  # int64, >= 1
    name: str = "workload"

    def __post_init__(self) -> None:
        # Accept lists too; the simulator relies on these exact dtypes.
        object.__setattr__(self, "arrival_s", np.asarray(self.arrival_s, dtype=np.float64))
        object.__setattr__(self, "prompt_tokens", np.asarray(self.prompt_tokens, dtype=np.int64))
        object.__setattr__(self, "output_tokens", np.asarray(self.output_tokens, dtype=np.int64))
        n = self.arrival_s.shape[0]
        if self.prompt_tokens.shape[0] != n or self.output_tokens.shape[0] != n:
            raise ValueError("Workload arrays must have equal length")

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])


# ----------------------------------------------------------------------------------------------- readers

def load_trace(path: str | Path) -> Workload:
    """Read a trace file in any accepted format (see module doc); one-line errors name file, line, column."""
    path = Path(path)
    if not path.is_file():
        raise SplitplanError("file not found" if not path.exists() else "not a file", source=str(path))
    stat = path.stat()
    return _load_trace_cached(str(path.resolve()), str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _load_trace_cached(resolved: str, shown: str, mtime_ns: int, size: int) -> Workload:
    """Cached by file identity: multi-seed runs and rate bisections reload the same trace many times.
    A plainly valid file is read without pandas (trace_csv.py); any other goes through pandas, whose
    reader names the line and column at fault."""
    fast = read_valid_trace(resolved, _FORMAT_COLUMNS, MAX_TOKENS_PER_REQUEST)
    if fast is not None:
        return _frozen(Workload(*fast, name=Path(shown).stem))
    import pandas as pd

    try:
        with warnings.catch_warnings():  # more fields than header names must not shift columns silently
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(resolved, dtype=str, skipinitialspace=True, keep_default_na=False, index_col=False)
    except pd.errors.ParserWarning:
        raise SplitplanError("rows have more fields than the header names", source=shown) from None
    except pd.errors.EmptyDataError:
        raise SplitplanError("file is empty", source=shown) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SplitplanError(f"not a readable CSV ({str(exc).splitlines()[0]})", source=shown) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    detected = [fmt for fmt in _FORMAT_COLUMNS if set(fmt) <= set(frame.columns)]
    if not detected:
        _missing_columns(frame.columns, shown)
        raise SplitplanError(f"header '{','.join(frame.columns)[:120]}' not recognised; accepted formats: "
                             f"{ACCEPTED_FORMATS}", source=shown, field="header")
    arrival_col, prompt_col, output_col = detected[0]
    if len(frame) == 0:
        raise SplitplanError("trace has no requests", source=shown)
    if arrival_col == "TIMESTAMP":
        arrival_s = _azure_arrivals(frame, shown)
    else:
        arrival_s = _numeric_column(frame, arrival_col, shown)
    _check_arrivals(arrival_s, shown, arrival_col)
    prompt = _token_column(frame, prompt_col, shown)
    output = _token_column(frame, output_col, shown)
    return _frozen(Workload(arrival_s, prompt, output, name=Path(shown).stem))


def _frozen(workload: Workload) -> Workload:
    for array in (workload.arrival_s, workload.prompt_tokens, workload.output_tokens):
        array.flags.writeable = False  # shared through the cache
    return workload


def _missing_columns(columns: list[str], source: str) -> None:
    """A header with some of one format's columns but not all: name the first missing one."""
    for fmt in _FORMAT_COLUMNS:
        if have := [c for c in fmt if c in set(columns)]:
            missing = next(c for c in fmt if c not in have)
            raise SplitplanError(f"missing column '{missing}' (header has {', '.join(have)}; this format needs "
                                 f"{', '.join(fmt)})", source=source, field="header")


def _line_of(row: int) -> str:
    return f"line {row + 2}"  # header is line 1


def _azure_arrivals(frame: pd.DataFrame, source: str) -> np.ndarray:
    """Azure timestamps ('2023-11-16 18:15:46.6805900') -> seconds from the earliest request (not the first:
    an unsorted file must be reported as unsorted, not as negative times)."""
    import pandas as pd

    stamps = pd.to_datetime(frame["TIMESTAMP"].str.strip(), format="ISO8601", errors="coerce")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        value = frame["TIMESTAMP"].iloc[bad[0]]
        raise SplitplanError(f"'{value}' is not a timestamp (expected YYYY-MM-DD HH:MM:SS.fffffff)",
                             source=source, field=f"{_line_of(bad[0])}: TIMESTAMP")
    nanos = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64)
    return (nanos - nanos.min()).astype(np.float64) / 1e9 if nanos.size else nanos.astype(np.float64)


def _numeric_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(frame[column].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise SplitplanError(f"'{frame[column].iloc[bad[0]]}' is not a number", source=source,
                             field=f"{_line_of(bad[0])}: {column}")
    return values


def _check_arrivals(arrival_s: np.ndarray, source: str, column: str) -> None:
    negative = np.flatnonzero(arrival_s < 0)
    if negative.size:
        raise SplitplanError(f"arrival time {arrival_s[negative[0]]:g} is negative", source=source,
                             field=f"{_line_of(negative[0])}: {column}")
    decreasing = np.flatnonzero(np.diff(arrival_s) < 0)
    if decreasing.size:
        row = decreasing[0] + 1
        raise SplitplanError(f"arrival {arrival_s[row]:g} s is before the previous one "
                             f"({arrival_s[row - 1]:g} s); requests must be sorted by arrival",
                             source=source, field=f"{_line_of(row)}: {column}")


def _token_column(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    values = _numeric_column(frame, column, source)
    bad = np.flatnonzero((values < 1) | (values != np.floor(values)) | (values > MAX_TOKENS_PER_REQUEST))
    if bad.size:
        raise SplitplanError(f"token count '{frame[column].iloc[bad[0]]}' must be a whole number in "
                             f"[1, {MAX_TOKENS_PER_REQUEST:,}]",
                             source=source, field=f"{_line_of(bad[0])}: {column}")
    return values.astype(np.int64)


# -------------------------------------------------------------------------------------------- generators

def _streams(seed: int, count: int) -> list[np.random.Generator]:
    """Independent streams per quantity, so request i keeps its sizes when only the rate changes
    (common random numbers make rate bisection monotone instead of noisy)."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


def _unit_gaps(rng: np.random.Generator, count: int, arrivals: str, cv: float) -> np.ndarray:
    """`count` inter-arrival gaps with mean 1."""
    if arrivals == "poisson":
        return rng.exponential(1.0, count)
    if arrivals == "uniform":
        return np.ones(count)
    shape = 1.0 / (cv * cv)  # gamma: CV = 1/sqrt(shape)
    return rng.gamma(shape, 1.0 / shape, count)


def _arrivals(rng: np.random.Generator, rate_rps: float, duration_s: float, arrivals: str = "poisson",
              cv: float = 1.0) -> np.ndarray:
    """Arrival times in [0, duration) from a renewal process with mean rate `rate_rps`."""
    expected = rate_rps * duration_s
    _check_request_count(expected)
    count = int(expected + 8.0 * math.sqrt(expected) * max(cv, 1.0) + 16)
    times = np.cumsum(_unit_gaps(rng, count, arrivals, cv)) / rate_rps
    while times[-1] < duration_s:  # rare: extend deterministically from the same stream
        more = np.cumsum(_unit_gaps(rng, count, arrivals, cv)) / rate_rps + times[-1]
        times = np.concatenate([times, more])
    if arrivals == "uniform":
        times = times - 1.0 / rate_rps  # first request at t=0
    return times[times < duration_s]


def _check_request_count(expected: float, field: str = "rate_rps") -> float:
    if not expected <= MAX_GENERATED_REQUESTS:
        raise SplitplanError(f"would generate about {expected:.3g} requests (limit {MAX_GENERATED_REQUESTS:,}); "
                             f"lower the rate or duration_s", source="workload", field=field)
    return expected


def _check_positive(value: float | None, what: str, source: str | None = None) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise SplitplanError(f"must be a positive number, got {value!r}", source=source, field=what)
    return float(value)


def poisson_workload(sizes: Workload, rate_rps: float, duration_s: float, seed: int, *,
                     name: str | None = None) -> Workload:
    """Poisson arrivals at `rate_rps` over [0, duration_s); prompt and output sizes drawn independently,
    with replacement, from `sizes` (SplitwiseSim's generate_trace.py method, as in the paper)."""
    rate_rps = _check_positive(rate_rps, "rate_rps")
    duration_s = _check_positive(duration_s, "duration_s")
    if len(sizes) == 0:
        raise SplitplanError("trace has no requests to draw sizes from", source=sizes.name)
    arrival_rng, prompt_rng, output_rng = _streams(seed, 3)
    arrival_s = _arrivals(arrival_rng, rate_rps, duration_s)
    n = arrival_s.shape[0]
    prompt = sizes.prompt_tokens[prompt_rng.integers(0, len(sizes), n)]
    output = sizes.output_tokens[output_rng.integers(0, len(sizes), n)]
    return Workload(arrival_s, prompt, output, name=name or f"{sizes.name}-poisson-{rate_rps:g}rps")


def replay_workload(trace: Workload, *, rate_rps: float | None = None, time_scale: float | None = None,
                    duration_s: float | None = None, start_s: float = 0.0) -> Workload:
    """Replay the trace's real (bursty) arrivals from `start_s` (trace time), time-compressed.

    rate_rps: compress so the replayed requests arrive at exactly this mean rate: the next
      rate*duration requests are stretched over `duration_s` (or, without a duration, all of them).
    time_scale: instead, multiply trace time by this factor (0.1 = ten times the rate).
    duration_s: keep arrivals in [0, duration_s). A trace too short for the window is repeated back to
      back (period = its span plus one mean gap), so high rates never silently run out of requests.
    """
    if (rate_rps is None) == (time_scale is None):
        raise SplitplanError("give exactly one of rate_rps and time_scale", field="replay")
    if duration_s is not None:
        duration_s = _check_positive(duration_s, "duration_s")
    if not (isinstance(start_s, numbers.Real) and math.isfinite(start_s) and start_s >= 0):
        raise SplitplanError(f"must be >= 0, got {start_s!r}", field="start_s")
    first = int(np.searchsorted(trace.arrival_s, start_s, side="left"))
    if first >= len(trace):
        raise SplitplanError(f"trace ends at {trace.arrival_s[-1]:g} s, before start_s={start_s:g}",
                             source=trace.name, field="start_s")
    base = trace.arrival_s[first:] - trace.arrival_s[first]
    n_base = base.shape[0]
    period_s = base[-1] + (base[-1] / (n_base - 1) if n_base > 1 else 1.0)
    if period_s <= 0:
        raise SplitplanError("all requests arrive at the same instant; cannot compress time", source=trace.name)
    if rate_rps is not None:
        rate_rps = _check_positive(rate_rps, "rate_rps")
        count = n_base if duration_s is None else max(int(round(_check_request_count(rate_rps * duration_s))), 1)
        times = _tiled(base, period_s, count + 1)
        scale = (duration_s if duration_s is not None else count / rate_rps) / times[count]
        times = times[:count]
    else:
        scale = _check_positive(time_scale, "time_scale")
        periods = 1 if duration_s is None else max(1, math.ceil(duration_s / (period_s * scale)))
        count = int(_check_request_count(periods * n_base, "time_scale"))
        times = _tiled(base, period_s, count)
    arrival_s, index = times * scale, np.arange(count)
    if duration_s is not None:
        keep = arrival_s < duration_s
        arrival_s, index = arrival_s[keep], index[keep]
    source = first + index % n_base
    label = f"{rate_rps:g}rps" if rate_rps is not None else f"x{time_scale:g}"
    return Workload(arrival_s, trace.prompt_tokens[source], trace.output_tokens[source],
                    name=f"{trace.name}-replay-{label}")


def _tiled(base: np.ndarray, period_s: float, count: int) -> np.ndarray:
    """The first `count` arrivals of `base` repeated back to back every `period_s`."""
    index = np.arange(count)
    return base[index % base.shape[0]] + (index // base.shape[0]) * period_s


@dataclass(frozen=True)
class SizeDist:
    """A token-count distribution for synthetic workloads; samples are rounded and clipped to >= 1.

    fixed: (value,)   uniform: (low, high) inclusive   normal / lognormal: (mean, std)
    """

    kind: str
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.kind not in SIZE_KINDS:
            raise SplitplanError(f"unknown size distribution '{self.kind}'" + nearest_names(self.kind, SIZE_KINDS),
                                 field="kind")
        object.__setattr__(self, "params", params := tuple(float(p) for p in self.params))
        if len(params) != SIZE_KINDS[self.kind]:
            raise SplitplanError(f"{self.kind} takes {SIZE_KINDS[self.kind]} parameter(s), got {len(params)}",
                                 field=self.kind)
        if not all(math.isfinite(p) for p in params) or params[0] <= 0 or any(p < 0 for p in params):
            raise SplitplanError(f"parameters must be finite, first > 0, none negative: {params}",
                                 field=self.kind)
        if any(p > MAX_TOKENS_PER_REQUEST for p in params):
            raise SplitplanError(f"parameters must be at most {MAX_TOKENS_PER_REQUEST:,} tokens: {params}",
                                 field=self.kind)
        if self.kind == "uniform" and params[1] < params[0]:
            raise SplitplanError(f"high {params[1]:g} is below low {params[0]:g}", field="uniform")

    @classmethod
    def parse(cls, text: str, source: str | None = None) -> SizeDist:
        """'fixed:512', 'uniform:100,2000', 'normal:1000,300', 'lognormal:1000,800', or a bare number."""
        kind, _, rest = str(text).strip().partition(":")
        if not rest:
            kind, rest = "fixed", kind
        try:
            params = tuple(float(p) for p in rest.split(","))
        except ValueError:
            raise SplitplanError(f"'{text}' is not KIND:P1[,P2] (e.g. lognormal:1000,800)", source=source) from None
        try:
            return cls(kind.strip().lower(), params)
        except SplitplanError as exc:
            raise SplitplanError(exc.problem, source=source, field=exc.field) from None

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        p = self.params
        if self.kind == "fixed":
            values = np.full(count, p[0])
        elif self.kind == "uniform":
            values = rng.integers(int(round(p[0])), int(round(p[1])) + 1, count).astype(np.float64)
        elif self.kind == "normal":
            values = rng.normal(p[0], p[1], count)
        else:  # lognormal parameterised by its mean and std in tokens, as planners know them
            sigma2 = math.log1p((p[1] / p[0]) ** 2)
            values = rng.lognormal(math.log(p[0]) - sigma2 / 2, math.sqrt(sigma2), count)
        return np.clip(np.rint(values), 1, MAX_TOKENS_PER_REQUEST).astype(np.int64)

    def __str__(self) -> str:
        return f"{self.kind}:{','.join(f'{p:g}' for p in self.params)}"


def synthetic_workload(rate_rps: float, duration_s: float, prompt: SizeDist, output: SizeDist, seed: int,
                       arrivals: str = "poisson", cv: float = 1.0, *, name: str | None = None) -> Workload:
    """Arrivals from a renewal process (poisson, evenly spaced, or gamma with inter-arrival CV `cv`)
    and sizes from parametric distributions: for what-if studies without a trace."""
    rate_rps = _check_positive(rate_rps, "rate_rps")
    duration_s = _check_positive(duration_s, "duration_s")
    if arrivals not in ARRIVAL_PROCESSES:
        raise SplitplanError(f"unknown arrival process '{arrivals}'" + nearest_names(arrivals, ARRIVAL_PROCESSES),
                             field="arrivals")
    cv = _check_positive(cv, "cv")
    arrival_rng, prompt_rng, output_rng = _streams(seed, 3)
    arrival_s = _arrivals(arrival_rng, rate_rps, duration_s, arrivals, cv)
    n = arrival_s.shape[0]
    return Workload(arrival_s, prompt.sample(prompt_rng, n), output.sample(output_rng, n),
                    name=name or f"synthetic-{arrivals}-{rate_rps:g}rps")


# ----------------------------------------------------------------------------------- spec and statistics

@dataclass(frozen=True)
class WorkloadSpec:
    """How to obtain a workload: a scenario's `workload:` section, or the trace command's flags.

    generator: "trace" (the file as is, optionally cut at duration_s), "poisson" (sizes resampled from
    the trace, Poisson arrivals), "replay" (the trace's own arrivals, compressed to rate_rps or by
    time_scale), "synthetic" (prompt/output SizeDist, arrivals poisson|uniform|gamma with CV cv).
    """

    trace: str | None = None
    generator: str = "trace"
    rate_rps: float | None = None
    duration_s: float | None = None
    seed: int = 0
    start_s: float = 0.0
    time_scale: float | None = None
    prompt: SizeDist | None = None
    output: SizeDist | None = None
    arrivals: str = "poisson"
    cv: float = 1.0
    name: str | None = None

    @classmethod
    def from_mapping(cls, data: object, source: str | None = None) -> WorkloadSpec:
        """Parse a YAML mapping (keys = field names; prompt/output as 'lognormal:1000,800' strings)."""
        if not isinstance(data, dict):
            raise SplitplanError("must be a mapping (trace, generator, rate_rps, duration_s, seed, ...)",
                                 source=source, field="workload")
        known = set(cls.__dataclass_fields__)
        values: dict[str, object] = {}
        for key, value in data.items():
            if key not in known:
                raise SplitplanError(f"unknown key '{key}'" + nearest_names(str(key), known), source=source,
                                     field="workload")
            if key in ("prompt", "output") and value is not None:
                value = value if isinstance(value, SizeDist) else SizeDist.parse(str(value), source)
            values[key] = value
        return cls(**values)  # type: ignore[arg-type]


def with_seed(spec: WorkloadSpec, seed: int) -> WorkloadSpec:
    """The same workload recipe with another seed (multi-seed verification)."""
    return replace(spec, seed=int(seed))


def resolve_trace_path(trace: str | Path, base_dir: str | Path | None = None) -> Path:
    """Find a trace: as given if absolute, else under base_dir, the CWD, then the bundled traces."""
    path = Path(os.path.expanduser(str(trace)))
    if path.is_absolute():
        candidates = [path]
    else:
        candidates = ([Path(base_dir) / path] if base_dir is not None else []) + [Path.cwd() / path,
                                                                               BUNDLED_TRACES_DIR / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if any(c.is_dir() for c in candidates):
        raise SplitplanError("is a directory, expected a trace CSV", source=str(trace), field="trace")
    bundled = sorted(p.name for p in BUNDLED_TRACES_DIR.glob("*.csv"))
    raise SplitplanError("trace file not found" + nearest_names(path.name, bundled), source=str(trace),
                         field="trace")


def build_workload(spec: WorkloadSpec, base_dir: str | Path | None = None) -> Workload:
    """Materialise a WorkloadSpec; same spec (and seed) -> identical arrays."""
    src = "workload"
    if spec.generator not in GENERATORS:
        raise SplitplanError(f"unknown generator '{spec.generator}'" + nearest_names(spec.generator, GENERATORS),
                             source=src, field="generator")
    for key in ("rate_rps", "duration_s", "time_scale"):
        if getattr(spec, key) is not None:
            _check_positive(getattr(spec, key), key, src)
    if not isinstance(spec.seed, (int, np.integer)) or isinstance(spec.seed, bool) or spec.seed < 0:
        raise SplitplanError(f"must be a non-negative integer, got {spec.seed!r}", source=src, field="seed")
    if spec.generator != "replay" and (spec.time_scale is not None or spec.start_s):
        raise SplitplanError("time_scale and start_s apply to the replay generator only", source=src,
                             field="time_scale" if spec.time_scale is not None else "start_s")
    if spec.generator == "synthetic":
        if spec.prompt is None or spec.output is None:
            raise SplitplanError("synthetic workloads need prompt and output distributions "
                                 "(e.g. prompt: lognormal:1000,800)", source=src, field="prompt")
        _require(spec, ("rate_rps", "duration_s"))
        return synthetic_workload(spec.rate_rps, spec.duration_s, spec.prompt, spec.output, spec.seed,
                                  spec.arrivals, spec.cv, name=spec.name)
    if spec.trace is None:
        raise SplitplanError(f"the {spec.generator} generator needs a trace file", source=src, field="trace")
    trace = load_trace(resolve_trace_path(spec.trace, base_dir))
    if spec.generator == "poisson":
        _require(spec, ("rate_rps", "duration_s"))
        return poisson_workload(trace, spec.rate_rps, spec.duration_s, spec.seed, name=spec.name)
    if spec.generator == "replay":
        if spec.rate_rps is None and spec.time_scale is None:
            raise SplitplanError("replay needs rate_rps or time_scale", source=src, field="rate_rps")
        w = replay_workload(trace, rate_rps=spec.rate_rps, time_scale=spec.time_scale,
                            duration_s=spec.duration_s, start_s=spec.start_s)
        return replace(w, name=spec.name) if spec.name else w
    if spec.rate_rps is not None:
        raise SplitplanError("the trace generator keeps the file's arrivals; use generator poisson or replay "
                             "to change the rate", source=src, field="rate_rps")
    if spec.duration_s is not None:
        keep = trace.arrival_s < spec.duration_s
        trace = Workload(trace.arrival_s[keep], trace.prompt_tokens[keep], trace.output_tokens[keep], trace.name)
        if len(trace) == 0:
            raise SplitplanError("no request arrives within duration_s", source=src, field="duration_s")
    return replace(trace, name=spec.name) if spec.name else trace


def _require(spec: WorkloadSpec, keys: tuple[str, ...]) -> None:
    for key in keys:
        if getattr(spec, key) is None:
            raise SplitplanError(f"the {spec.generator} generator needs {key}", source="workload", field=key)
