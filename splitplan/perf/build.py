"""`build_perf_model`: the one way the simulator, optimizer and CLI get a PerfModel.

Models are cached per (model, machine, tp, settings, catalog) because the optimizer asks for the same
few instances thousands of times; profiles and calibrations are read once per file.
The profile backend (perf/table.py, perf/profile_io.py, which need pandas) is imported only when a
profile is used, so the analytic backend, the default, costs numpy alone (docs/startup.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from splitplan.catalog import Catalog, Machine, Model, default_catalog, profiles_dir
from splitplan.errors import SplitplanError
from splitplan.perf.analytic import AnalyticPerfModel
from splitplan.perf.base import Instance, PerfModel, PerfSettings
from splitplan.perf.memory import check_fit, splitwisesim_kv_bytes_per_token, splitwisesim_kv_capacity_tokens
from splitplan.perf.params import resolve_params

if TYPE_CHECKING:
    from splitplan.perf.profile_io import Profile

BACKENDS = ("analytic", "profile")
COMPAT_MODES = (None, "splitwisesim")
DTYPES = ("bf16", "fp8")

_MODELS: dict[tuple, PerfModel] = {}
_PROFILES: dict[tuple[str, float], Profile] = {}


def default_profile_path() -> Path:
    return profiles_dir() / "measured" / "splitwisesim_perf_model.csv"


def load_profile(path: str | Path) -> Profile:
    """Read a profile once per (path, modification time)."""
    path = Path(path)
    try:
        key = (str(path.resolve()), path.stat().st_mtime)
    except OSError:
        raise SplitplanError("file not found", source=str(path)) from None
    if key not in _PROFILES:
        from splitplan.perf.profile_io import read_profile

        _PROFILES[key] = read_profile(path)
    return _PROFILES[key]


def make_instance(model: Model | str, machine: Machine | str, tp: int, dtype: str, catalog: Catalog) -> Instance:
    model = catalog.model(model) if isinstance(model, str) else model
    machine = catalog.machine(machine) if isinstance(machine, str) else machine
    if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
        raise SplitplanError(f"tp must be a positive whole number, got {tp!r}", field="tp")
    if dtype not in DTYPES:
        raise SplitplanError(f"unknown dtype '{dtype}' (valid: {', '.join(DTYPES)})", field="dtype")
    return Instance(model=model, machine=machine, gpu=catalog.gpu_of(machine), tp=tp, dtype=dtype)


def _check_settings(settings: PerfSettings) -> None:
    if settings.backend not in BACKENDS:
        raise SplitplanError(f"unknown performance backend '{settings.backend}' (valid: {', '.join(BACKENDS)})",
                             field="perf.backend")
    if settings.compat not in COMPAT_MODES:
        raise SplitplanError(f"unknown compat mode '{settings.compat}' (valid: none, splitwisesim)", field="perf.compat")


class _SplitwiseSimMemory:
    """Analytic timing with SplitwiseSim's KV size and capacity (compat for the analytic backend)."""

    def __init__(self, inner: AnalyticPerfModel):
        self._inner = inner
        self.instance = inner.instance
        self.params = inner.params
        self.provenance = inner.provenance + " (splitwisesim compat memory)"
        self.prefill_ms = inner.prefill_ms
        self.decode_ms = inner.decode_ms
        self.decode_coeffs = inner.decode_coeffs
        self.mixed_ms = inner.mixed_ms
        self._kv_bytes = splitwisesim_kv_bytes_per_token(inner.instance)
        self._kv_capacity = splitwisesim_kv_capacity_tokens(inner.instance)

    def kv_bytes_per_token(self) -> float:
        return self._kv_bytes

    def kv_capacity_tokens(self) -> int:
        return self._kv_capacity


def build_perf_model(model: Model | str, machine: Machine | str, tp: int = 8,
                     settings: PerfSettings = PerfSettings(), catalog: Catalog | None = None) -> PerfModel:
    """The PerfModel of `model` on `tp` GPUs of `machine`, per `settings` (cached).

    Unknown names, a model that does not fit the GPUs' HBM, or a profile without rows for the
    instance raise a one-line SplitplanError.
    """
    catalog = catalog or default_catalog()
    _check_settings(settings)
    instance = make_instance(model, machine, tp, settings.dtype, catalog)
    key = (instance, settings, id(catalog))
    cached = _MODELS.get(key)
    if cached is not None:
        return cached
    if settings.compat != "splitwisesim":
        check_fit(instance)
    if settings.backend == "profile":
        from splitplan.perf.table import ProfilePerfModel

        profile = load_profile(settings.profile_path or default_profile_path())
        perf: PerfModel = ProfilePerfModel(instance, profile, catalog, compat=settings.compat)
    else:
        params, provenance = resolve_params(instance.gpu, tuple(settings.calibration_paths))
        perf = AnalyticPerfModel(instance, params, provenance)
        if settings.compat == "splitwisesim":
            perf = _SplitwiseSimMemory(perf)
    _MODELS[key] = perf
    return perf


def clear_caches() -> None:
    """Forget cached models and profiles (tests that rewrite files use this)."""
    from splitplan.perf import params

    _MODELS.clear()
    _PROFILES.clear()
    params.clear_cache()
