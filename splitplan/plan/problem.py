"""The planning problem materialised: scenario + catalog + perf settings -> sizes, SLOs, capacities.

Everything later stages need is computed once here and kept in one picklable object, so worker
processes receive the same inputs and results do not depend on the worker count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from splitplan.catalog import Catalog
from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model, kv_transfer_ms
from splitplan.plan.capacity import CapacityParams, RequestSample, RoleCapacity, SloTarget, machine_capacity
from splitplan.plan.ilp import Limits, PoolOption
from splitplan.scenario import Design, Scenario
from splitplan.slo import SLO, reference_latencies
from splitplan.workload import Workload, load_trace


class TimeUp(Exception):
    """The optimize time limit passed: a design's search stops and keeps what it verified so far."""


@dataclass(frozen=True)
class Problem:
    scenario: Scenario
    catalog: Catalog
    perf: PerfSettings
    sizes: Workload  # the trace whose prompt/output sizes the generators resample
    slos: tuple[SLO, ...]
    params: CapacityParams = field(default_factory=CapacityParams)
    deadline_monotonic: float | None = None  # --time-limit: time.monotonic() past which searches stop

    def check_deadline(self) -> None:
        """Raise TimeUp once the time limit has passed (CLOCK_MONOTONIC is shared by worker processes)."""
        if self.deadline_monotonic is not None and time.monotonic() > self.deadline_monotonic:
            raise TimeUp()

    def perf_for(self, design: Design | None) -> PerfSettings:
        """The perf settings a design runs with: its own stack where it names one."""
        if design is None or not design.stack or design.stack == self.perf.stack:
            return self.perf
        return replace(self.perf, stack=design.stack)

    def limits(self) -> Limits:
        c, s = self.scenario.constraints, self.scenario.search
        per_pool = min(s.max_per_pool, c.max_machines_per_pool if c.max_machines_per_pool is not None else 10**6)
        return Limits(cost_usd_per_h=c.cost_usd_per_h, power_kw=c.power_kw, max_machines=c.max_machines,
                      max_per_pool=per_pool, min_throughput_rps=c.min_throughput_rps)


def perf_settings_of(scenario: Scenario) -> PerfSettings:
    return scenario.perf_settings()


def make_problem(scenario: Scenario, catalog: Catalog, perf: PerfSettings | None = None,
                 params: CapacityParams | None = None) -> Problem:
    sizes = load_trace(scenario.workload.trace)
    return Problem(scenario=scenario, catalog=catalog, perf=perf or perf_settings_of(scenario), sizes=sizes,
                   slos=tuple(scenario.slos), params=params or CapacityParams())


def slo_targets(slos: tuple[SLO, ...]) -> list[SloTarget]:
    """SLOs in capacity-model terms (ms; ITL is approximated by the per-request TBT)."""
    return [SloTarget(metric="tbt" if s.metric == "itl" else s.metric, quantile=s.percentile / 100.0,
                      limit=s.limit if s.kind == "slowdown" else s.limit * 1000.0, relative=s.kind == "slowdown")
            for s in slos]


def request_sample(problem: Problem) -> RequestSample:
    """A fixed subsample of the trace with reference latencies on the scenario's reference machine."""
    sc = problem.scenario
    ref_perf = build_perf_model(sc.model, sc.reference_machine, sc.reference_tp, problem.perf, problem.catalog)
    refs = reference_latencies(problem.sizes.prompt_tokens, problem.sizes.output_tokens, ref_perf,
                               compat=problem.perf.compat == "splitwisesim")
    return RequestSample.draw(problem.sizes.prompt_tokens, problem.sizes.output_tokens, refs.ttft_s * 1e3,
                              refs.tbt_s * 1e3, refs.e2e_s * 1e3, problem.params.sample_requests,
                              seed=sc.workload.seed)


def fits(problem: Problem, machine: str, tp: int | None, design: Design | None = None) -> str | None:
    """None if the model fits `tp` GPUs of the machine (with the design's stack), else the one-line reason."""
    try:
        build_perf_model(problem.scenario.model, machine, tp, problem.perf_for(design), problem.catalog)
    except SplitplanError as exc:
        return exc.problem
    return None


def design_capacities(problem: Problem, design: Design, sample: RequestSample,
                      pool_sizes: dict[str, int] | None = None) -> list[RoleCapacity]:
    """Modelled per-machine rate of each (role, machine type) the design allows (skipping non-fitting ones),
    for pools of `pool_sizes[role]` machines (default 1)."""
    pool_sizes = pool_sizes or {}
    targets = slo_targets(problem.slos)
    caps = []
    for role, machines in design.pools().items():
        for machine in machines:
            if fits(problem, machine, design.tp, design):
                continue
            perf = build_perf_model(problem.scenario.model, machine, design.tp, problem.perf_for(design),
                                    problem.catalog)
            nic, transfer = None, None
            if role in ("prompt", "token"):
                nic = problem.catalog.machine(machine).nic_gbps if role == "prompt" else None
                transfer = _transfer_ms(problem, design, sample, perf.kv_bytes_per_token()) if role == "token" else None
            caps.append(machine_capacity(perf, machine, role, sample, targets, problem.params, nic, transfer,
                                         pool_machines=pool_sizes.get(role, 1)))
    return caps


def _transfer_ms(problem: Problem, design: Design, sample: RequestSample, kv_bytes_per_token: float) -> np.ndarray:
    """KV transfer time per request from the design's fastest-NIC prompt machine (what E2E adds)."""
    cat = problem.catalog
    src = max((cat.machine(m) for m in design.prompt), key=lambda m: m.nic_gbps)
    dst = min((cat.machine(m) for m in design.token), key=lambda m: m.nic_gbps)
    layers = cat.model(problem.scenario.model).layers
    return np.array([kv_transfer_ms(p * kv_bytes_per_token, src, dst, layers=layers) for p in sample.prompt_tokens])


def pool_options(problem: Problem, caps: list[RoleCapacity]) -> list[PoolOption]:
    cat = problem.catalog
    return [PoolOption(c.role, c.machine, c.rate_rps, cat.machine(c.machine).cost_usd_per_h,
                       cat.machine(c.machine).power_kw) for c in caps]
