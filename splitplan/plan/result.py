"""What the optimizer returns: verified candidates, per-design answers, and the plan.json they make.

Every number a planner reads comes from the simulator (throughput with its 95% CI over seeds, SLO
margins); the capacity model's estimate is kept beside it (`model_rate_rps`) so its error is visible.
Outputs carry no timestamps or timings, so the same scenario and seed give byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from splitplan.cluster import ClusterSpec
from splitplan.plan.phases import Phases, phases_of
from splitplan.scenario import Scenario

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 2  # 2: max_rate_rps vocabulary, phases and co-located shares, model_error, partial runs
STATUSES = ("feasible", "infeasible", "time_limit", "interrupted")
# plan.json names of schema 1, still accepted in `expect:` paths (expectation_view adds them)
LEGACY_ALIASES = {"throughput_rps": "max_rate_rps", "throughput_mean_rps": "max_rate_mean_rps",
                  "throughput_ci95_rps": "max_rate_ci95_rps", "per_seed_rps": "per_seed_max_rate_rps"}


@dataclass(frozen=True)
class Verification:
    """Simulated max rate of one cluster over several seeds (what find_max_rps measured)."""

    rate_rps: float  # highest rate meeting every SLO on >= require_fraction of seeds
    per_seed_rps: tuple[float, ...]
    mean_rps: float
    ci95_rps: tuple[float, float]
    slo_margins: dict[str, float]  # name -> (limit - value) / limit at rate_rps (worst seed)
    saturated: bool  # saturated (or SLO-violating) even at the lowest rate tried
    n_simulations: int
    screened: bool = False  # one seed only, no re-check: a local-search screen, never a reported plan
    mixed_request_share: float | None = None  # at rate_rps, worst seed: requests run on mixed/borrowed machines
    mixed_token_share: float | None = None  # ... and their prompt + output tokens, as a share of all tokens
    miss: str = ""  # met no SLO-holding rate: what failed at the lowest rate simulated ("ttft_p50 missed by 40%")
    miss_rate_rps: float = 0.0  # that lowest rate


@dataclass(frozen=True)
class Candidate:
    """One cluster that was simulated, with its price and verified throughput."""

    design: str
    kind: str
    cluster: ClusterSpec
    cost_usd_per_h: float
    power_kw: float
    model_rate_rps: float
    verification: Verification
    source: str  # "ilp", "local", "grid"
    within_budget: bool

    @property
    def max_rate_rps(self) -> float:
        """The highest offered rate at which every SLO held on every seed (require_fraction of them)."""
        return self.verification.rate_rps

    @property
    def throughput_rps(self) -> float:  # the name before schema 2; kept for Python callers
        return self.verification.rate_rps

    @property
    def phases(self) -> Phases:
        return phases_of(self.kind, self.verification.mixed_request_share)

    @property
    def model_error(self) -> float | None:
        """Capacity model vs simulation: model_rate / max_rate - 1 (+ = the model was optimistic); only
        for full verifications with a positive rate (a pass/fail test bounds the rate, it does not measure it)."""
        v = self.verification
        if v.screened or v.rate_rps <= 0 or self.model_rate_rps <= 0:
            return None
        return self.model_rate_rps / v.rate_rps - 1.0

    @property
    def verified(self) -> bool:
        """Meets every SLO at a positive rate, not saturated, within every budget."""
        v = self.verification
        return self.within_budget and self.throughput_rps > 0 and not v.saturated and not v.screened

    def machines(self, role: str | None = None) -> int:
        return sum(p.count for p in self.cluster.pools if role is None or p.role == role)

    def key(self) -> tuple:
        """Stable identity of the cluster (sorting and de-duplication)."""
        return (self.design, tuple((p.role, p.machine, p.count, p.tp) for p in self.cluster.pools))

    def to_dict(self, provenance: dict[str, str] | None = None) -> dict[str, Any]:
        v = self.verification
        out = {
            "design": self.design, "kind": self.kind, "label": self.cluster.label(),
            "pools": [p.to_dict() for p in self.cluster.pools],
            "machines": self.machines(), "prompt_machines": self.machines("prompt"),
            "token_machines": self.machines("token"), "mixed_machines": self.machines("mixed"),
            "cost_usd_per_h": _r(self.cost_usd_per_h), "power_kw": _r(self.power_kw),
            "max_rate_rps": _r(v.rate_rps), "max_rate_mean_rps": _r(v.mean_rps),
            "max_rate_ci95_rps": [_r(v.ci95_rps[0]), _r(v.ci95_rps[1])],
            "per_seed_max_rate_rps": [_r(x) for x in v.per_seed_rps],
            "slo_margins": {k: _r(m) for k, m in sorted(v.slo_margins.items())},
            "saturated": v.saturated, "phases": self.phases.value,
            "mixed_request_share": _r(v.mixed_request_share), "mixed_token_share": _r(v.mixed_token_share),
            "model_rate_rps": _r(self.model_rate_rps), "model_error": _r(self.model_error),
            "within_budget": self.within_budget, "verified": self.verified, "source": self.source,
            "n_simulations": v.n_simulations, "miss": v.miss or None,
        }
        if provenance is not None:
            out["perf_provenance"] = {f"{p.machine}/tp{p.tp}": provenance_of(provenance, p.machine, p.tp,
                                                                             p.stack or self.cluster.stack)
                                      for p in self.cluster.pools}
        return out


def provenance_of(provenance: dict[str, str], machine: str, tp: int, stack: str | None) -> str:
    """The provenance line recorded for (machine, tp, stack) (keys 'machine/tpN/stack'), else the
    machine's first."""
    for key, line in provenance.items():
        m, t, s = (key.split("/") + ["", ""])[:3]
        if m == machine and t == f"tp{tp}" and (stack is None or s == stack):
            return line
    return next((line for key, line in provenance.items() if key.split("/")[0] == machine), "")


@dataclass(frozen=True)
class DesignResult:
    """One design optimized under the scenario's constraints."""

    name: str
    kind: str
    status: str  # "feasible" | "infeasible" | "time_limit" (searched in part: best so far) | "interrupted"
    best: Candidate | None
    binding: str  # the constraint that binds (feasible: what limits the plan; infeasible: why none)
    capacities: tuple[dict[str, Any], ...] = ()  # the capacity model's per-machine rates
    candidates: tuple[Candidate, ...] = ()
    ilp_best: Candidate | None = None  # method "both": each method's own answer, to compare them
    grid_best: Candidate | None = None


@dataclass(frozen=True)
class PlanResult:
    scenario: Scenario
    objective: str
    designs: tuple[DesignResult, ...]
    best: Candidate | None
    status: str
    binding: str
    provenance: dict[str, str] = field(default_factory=dict)  # machine -> perf-model provenance
    comparisons: tuple[dict[str, Any], ...] = ()
    method: str = "ilp"
    warnings: tuple[str, ...] = ()  # what the comparison rests on (plan/trust.py), one line each

    @property
    def feasible(self) -> bool:
        return self.status == "feasible"

    def all_candidates(self) -> list[Candidate]:
        return [c for d in self.designs for c in d.candidates]

    def to_dict(self) -> dict[str, Any]:
        from splitplan.plan.studies import pareto_rows

        prov = self.provenance
        return {
            "schema_version": SCHEMA_VERSION,
            "scenario": scenario_echo(self.scenario),
            "objective": self.objective,
            "method": self.method,
            "status": self.status,
            "binding": self.binding,
            "warnings": list(self.warnings),
            "best": self.best.to_dict(prov) if self.best else None,
            "designs": {d.name: _design_dict(d, prov) for d in self.designs},
            "comparisons": [dict(c) for c in self.comparisons],
            "candidates": [c.to_dict(prov) for c in self.all_candidates()],
            "pareto": {"cost": pareto_rows(self.all_candidates(), "cost_usd_per_h"),
                       "power": pareto_rows(self.all_candidates(), "power_kw")},
            "perf": {"backend": self.scenario.perf.backend, "compat": self.scenario.perf.compat,
                     "provenance": dict(sorted(prov.items()))},
        }

    def expectation_view(self) -> dict[str, Any]:
        """The mapping `expect:` paths address: the plan.json content, plus the schema-1 names
        (`throughput_rps`, ...) beside their schema-2 names so that older `expect:` blocks still work."""
        return with_legacy_aliases(self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"

    def candidates_frame(self) -> pd.DataFrame:
        import pandas as pd  # only where a table is built (pandas costs ~0.3 s to import)

        rows = []
        for c in self.all_candidates():
            d = c.to_dict()
            rows.append({k: d[k] for k in CANDIDATE_COLUMNS}
                        | {"max_rate_ci95_lo_rps": d["max_rate_ci95_rps"][0],
                           "max_rate_ci95_hi_rps": d["max_rate_ci95_rps"][1],
                           "min_slo_margin": min(d["slo_margins"].values(), default=None)})
        return pd.DataFrame(rows, columns=[*CANDIDATE_COLUMNS, "max_rate_ci95_lo_rps", "max_rate_ci95_hi_rps",
                                           "min_slo_margin"])

    def pareto_frame(self) -> pd.DataFrame:
        import pandas as pd

        from splitplan.plan.studies import pareto_rows

        rows = [r | {"axis": "cost"} for r in pareto_rows(self.all_candidates(), "cost_usd_per_h")]
        rows += [r | {"axis": "power"} for r in pareto_rows(self.all_candidates(), "power_kw")]
        return pd.DataFrame(rows, columns=["axis", "design", "label", "cost_usd_per_h", "power_kw",
                                           "max_rate_rps"])

    def write(self, out_dir: str | Path) -> Path:
        """plan.json, candidates.csv, pareto.csv, written atomically (temp dir, then rename)."""
        out = Path(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes the folder private; a plan is meant to be shared
            (tmp / "plan.json").write_text(self.to_json())
            self.candidates_frame().to_csv(tmp / "candidates.csv", index=False, lineterminator="\n")
            self.pareto_frame().to_csv(tmp / "pareto.csv", index=False, lineterminator="\n")
            if out.exists():
                old = out.with_name(f".{out.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(out, old)
                os.replace(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, out)
        except BaseException:  # Ctrl-C included: never leave half-written outputs
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out


CANDIDATE_COLUMNS = ("design", "kind", "label", "machines", "prompt_machines", "token_machines", "mixed_machines",
                     "cost_usd_per_h", "power_kw", "max_rate_rps", "max_rate_mean_rps", "phases",
                     "mixed_request_share", "mixed_token_share", "model_rate_rps", "model_error", "saturated",
                     "within_budget", "verified", "source", "n_simulations", "miss")


def _design_dict(d: DesignResult, prov: dict[str, str]) -> dict[str, Any]:
    best = d.best.to_dict(prov) if d.best else None
    shortcuts = {k: (best[k] if best else None) for k in ("max_rate_rps", "cost_usd_per_h", "power_kw",
                                                           "machines", "prompt_machines", "token_machines",
                                                           "mixed_machines", "phases")}
    out = {"kind": d.kind, "status": d.status, "binding": d.binding, **shortcuts, "best": best,
           "capacity_model": [dict(c) for c in d.capacities], "model_error": model_error_summary(d.candidates)}
    if d.ilp_best is not None or d.grid_best is not None:
        out["methods"] = {name: ({"label": c.cluster.label(), "max_rate_rps": _r(c.max_rate_rps),
                                  "cost_usd_per_h": _r(c.cost_usd_per_h), "power_kw": _r(c.power_kw)} if c else None)
                          for name, c in (("ilp", d.ilp_best), ("grid", d.grid_best))}
    return out


def model_error_summary(candidates: tuple[Candidate, ...]) -> dict[str, Any]:
    """How far the capacity model was from the simulator over a design's fully verified candidates."""
    errors = [e for e in (c.model_error for c in candidates) if e is not None]
    if not errors:
        return {"candidates": 0, "median": None, "min": None, "max": None}
    ordered = sorted(errors)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
    return {"candidates": len(errors), "median": _r(median), "min": _r(ordered[0]), "max": _r(ordered[-1])}


def with_legacy_aliases(plan: dict[str, Any]) -> dict[str, Any]:
    """A copy of a plan.json mapping with the schema-1 names added beside the schema-2 ones."""
    def alias(entry: Any) -> Any:
        if isinstance(entry, dict):
            return {**entry, **{old: entry[new] for old, new in LEGACY_ALIASES.items() if new in entry}}
        return entry

    out = dict(plan)
    out["best"] = alias(plan.get("best"))
    out["designs"] = {name: {**alias(d), "best": alias(d.get("best"))} for name, d in plan.get("designs", {}).items()}
    out["candidates"] = [alias(c) for c in plan.get("candidates", [])]
    return out


def scenario_echo(s: Scenario) -> dict[str, Any]:
    """The scenario as it was understood (after defaults and overrides), for the record."""
    c, se, w = s.constraints, s.search, s.workload
    return {
        "name": s.name, "description": s.description, "source": s.source, "model": s.model,
        "workload": {"trace": Path(w.trace).name, "generator": w.generator, "duration_s": w.duration_s,
                     "seeds": list(s.seed_list())},
        "slos": [slo.to_text() for slo in s.slos], "reference_machine": s.reference_machine,
        "reference_tp": s.reference_tp,
        "designs": [d.to_dict() for d in s.designs],
        "serving": s.serving.to_dict(),
        "constraints": {k: getattr(c, k) for k in c.__dataclass_fields__},
        "objective": s.objective,
        "search": {k: getattr(se, k) for k in se.__dataclass_fields__ if k != "workers"},
        "perf": _perf_view(s),
    }


def _perf_view(s: Scenario) -> dict[str, Any]:
    """The perf section as plan.json records it: stack name and provenance, quantization actually used."""
    from splitplan.serving.stack import get_stack

    p = s.perf
    stack = get_stack(p.stack)
    settings = s.perf_settings()
    return {"backend": p.backend, "profile": Path(p.profile).name if p.profile else None, "stack": stack.name,
            "stack_file": p.stack if p.stack and p.stack != stack.name else None,
            "stack_engine": f"{stack.engine} {stack.versions}", "stack_calibrated": stack.calibrated,
            "stack_fitted_on": stack.fitted.data or None, "compat": p.compat, **settings.quant.to_dict()}


def _r(x: float) -> float | None:
    """Round for stable, readable output; NaN/inf become null (JSON has neither)."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), 6)


def _umask() -> int:
    """The process umask (read by setting and restoring it; os has no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
