"""`build_perf_model`: the one way the simulator, optimizer and CLI get a PerfModel.

Models are cached per (instance, settings, catalog) because the optimizer asks for the same few
instances thousands of times; profiles and stacks are read once per file.
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
from splitplan.serving.quant import BF16, Quant
from splitplan.serving.stack import Stack, get_stack

if TYPE_CHECKING:
    from splitplan.perf.profile_io import Profile

BACKENDS = ("analytic", "profile")
COMPAT_MODES = (None, "splitwisesim")

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


def make_instance(model: Model | str, machine: Machine | str, tp: int | None, quant: Quant, catalog: Catalog,
                  ep: int = 1, dp: int = 1) -> Instance:
    """The instance a shape describes; a shape the model or the machine cannot split is a one-line error."""
    model = catalog.model(model) if isinstance(model, str) else model
    machine = catalog.machine(machine) if isinstance(machine, str) else machine
    tp = machine.gpus if tp is None else tp
    for name, value in (("tp", tp), ("ep", ep), ("dp", dp)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SplitplanError(f"{name} must be a positive whole number, got {value!r}", field=name)
    if tp % ep or tp % dp:
        raise SplitplanError(f"ep={ep} and dp={dp} must divide tp={tp} (they split the instance's GPUs)", field="ep")
    model.check_tp(tp // dp)
    model.check_ep(ep)
    return Instance(model=model, machine=machine, gpu=catalog.gpu_of(machine), tp=tp, quant=quant, ep=ep, dp=dp)


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
        self.scheduling = inner.scheduling
        self.api_ms = inner.api_ms
        self.provenance = inner.provenance + " (splitwisesim compat memory)"
        self.prefill_ms = inner.prefill_ms
        self.decode_ms = inner.decode_ms
        self.decode_coeffs = inner.decode_coeffs
        self.mixed_ms = inner.mixed_ms
        self.chunk_ms = inner.chunk_ms
        self._kv_bytes = splitwisesim_kv_bytes_per_token(inner.instance)
        self._kv_capacity = splitwisesim_kv_capacity_tokens(inner.instance)

    def kv_bytes_per_token(self) -> float:
        return self._kv_bytes

    def kv_capacity_tokens(self) -> int:
        return self._kv_capacity


def build_perf_model(model: Model | str, machine: Machine | str, tp: int | None = None,
                     settings: PerfSettings = PerfSettings(), catalog: Catalog | None = None,
                     stack: Stack | None = None, ep: int = 1, dp: int = 1) -> PerfModel:
    """The PerfModel of `model` on `tp` GPUs of `machine` (default: all of them), per `settings` (cached).

    Unknown names, a shape tp cannot split, a model that does not fit the GPUs' HBM, or a profile
    without rows for the instance raise a one-line SplitplanError. The model's `stack` attribute is
    the serving stack it was built with (its scheduling defaults drive the simulator)."""
    catalog = catalog or default_catalog()
    _check_settings(settings)
    stack = stack or get_stack(settings.stack)
    instance = make_instance(model, machine, tp, settings.quant or BF16, catalog, ep, dp)
    key = (instance, settings, stack.name, stack.source, id(catalog))
    cached = _MODELS.get(key)
    if cached is not None:
        return cached
    scheduling = stack.scheduling_for(instance.gpu, dict(settings.scheduling))
    if settings.compat != "splitwisesim":
        check_fit(instance, scheduling)
    if settings.backend == "profile":
        from splitplan.perf.table import ProfilePerfModel

        profile = load_profile(settings.profile_path or default_profile_path())
        perf: PerfModel = ProfilePerfModel(instance, profile, catalog, compat=settings.compat)
    else:
        params, provenance = stack.params_for(instance.gpu)
        perf = AnalyticPerfModel(instance, params, provenance, scheduling)
        if settings.compat == "splitwisesim":
            perf = _SplitwiseSimMemory(perf)
    perf.stack = stack  # type: ignore[attr-defined]
    perf.scheduling = scheduling  # type: ignore[attr-defined]
    _MODELS[key] = perf
    return perf


def clear_caches() -> None:
    """Forget cached models, profiles and stacks (tests that rewrite files use this)."""
    from splitplan.serving import kernels, stack as stacks

    _MODELS.clear()
    _PROFILES.clear()
    stacks.clear_cache()
    kernels.clear_cache()
