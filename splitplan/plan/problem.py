"""The planning problem materialised: scenario + catalog + perf settings -> sizes, SLOs, capacities.

Everything later stages need is computed once here and kept in one picklable object, so worker
processes receive the same inputs and results do not depend on the worker count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from splitplan.catalog import Catalog
from splitplan.cluster import PoolSpec
from splitplan.errors import SplitplanError
from splitplan.perf import PerfSettings, build_perf_model, kv_transfer_ms
from splitplan.plan.capacity import CapacityParams, RequestSample, RoleCapacity, SloTarget, machine_capacity
from splitplan.plan.ilp import Limits, PoolOption
from splitplan.scenario import Design, Scenario
from splitplan.serving.stack import BatchPolicy, get_stack
from splitplan.sim.api import pool_settings
from splitplan.slo import SLO, reference_latencies, reference_perf_model
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
    memo: Any = None  # a SimMemo (plan/sim_memo.py): verdicts shared with other optimizations, or None

    def check_deadline(self) -> None:
        """Raise TimeUp once the time limit has passed (CLOCK_MONOTONIC is shared by worker processes)."""
        if self.deadline_monotonic is not None and time.monotonic() > self.deadline_monotonic:
            raise TimeUp()

    def perf_for(self, design: Design | None) -> PerfSettings:
        """The perf settings a design runs with: its own stack where it names one."""
        if design is None or not design.stack or design.stack == self.perf.stack:
            return self.perf
        return replace(self.perf, stack=design.stack)

    def pool(self, design: Design, role: str, machine: str, tp: int, count: int = 0) -> PoolSpec:
        """A pool of the design with the role's serving settings (serving.<role>: stack, scheduling) and,
        for a co-located design, its batching policy. What the simulator runs and the capacity model
        prices are built from this one spec."""
        own = self.scenario.serving.role(role)
        sched = dict(own.scheduling)
        if role == "mixed" and design.kind == "colocated":
            policy = design.batching or sched.get("policy") or dict(self.perf.scheduling).get("policy")
            if policy is None:  # the stack's own policy; SplitwiseSim's 2023 mixed batching is not the default
                stack = get_stack(own.stack or self.perf_for(design).stack)
                policy = stack.scheduling.policy if stack.scheduling.policy is not BatchPolicy.MIXED \
                    else BatchPolicy.CHUNKED
            sched["policy"] = BatchPolicy(policy)
        return PoolSpec(role, machine, count, tp, own.stack, tuple(sorted(sched.items())))

    def pool_perf(self, design: Design, role: str, machine: str, tp: int):
        """The performance model of one pool's instances (its stack, shape and scheduling)."""
        settings = pool_settings(self.perf_for(design), self.pool(design, role, machine, tp))
        return build_perf_model(self.scenario.model, machine, tp, settings, self.catalog)

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
    try:
        ref_perf = reference_perf_model(sc.model, sc.reference_machine, sc.reference_tp, problem.perf, problem.catalog,
                                        hint="reference_machine in the scenario")
    except SplitplanError as exc:
        raise SplitplanError(exc.problem, source=sc.source, field=exc.field) from None
    refs = reference_latencies(problem.sizes.prompt_tokens, problem.sizes.output_tokens, ref_perf,
                               compat=problem.perf.compat == "splitwisesim")
    return RequestSample.draw(problem.sizes.prompt_tokens, problem.sizes.output_tokens, refs.ttft_s * 1e3,
                              refs.tbt_s * 1e3, refs.e2e_s * 1e3, problem.params.sample_requests,
                              seed=sc.workload.seed)


def fits(problem: Problem, machine: str, tp: int | None, design: Design | None = None,
         role: str | None = None) -> str | None:
    """None if the model fits `tp` GPUs of the machine (with the design's stack, and the role's serving
    settings when given), else the one-line reason."""
    try:
        if design is not None and role is not None and tp is not None:
            problem.pool_perf(design, role, machine, tp)
        else:
            build_perf_model(problem.scenario.model, machine, tp, problem.perf_for(design), problem.catalog)
    except SplitplanError as exc:
        return exc.problem
    return None


def role_shapes(problem: Problem, design: Design, role: str, machine: str) -> list[int]:
    """The role's shapes that divide the machine's GPUs, hold the model, and hold the KV cache of the
    trace's largest request in that role (a prompt instance its prompt, others prompt + output: an
    engine refuses a request longer than its cache), smallest first. With one fixed shape the KV test
    is left to the preflight check, which names the request."""
    packs = problem.catalog.machine(machine).packs
    shapes = [tp for tp in design.shapes(role) if packs(tp) and not fits(problem, machine, tp, design, role)]
    if len(design.shapes(role)) == 1:
        return shapes
    need = _largest_request_tokens(problem, role)
    return [tp for tp in shapes if problem.pool_perf(design, role, machine, tp).kv_capacity_tokens() >= need]


def _largest_request_tokens(problem: Problem, role: str) -> int:
    sizes = problem.sizes
    if role == "prompt":
        return int(np.max(sizes.prompt_tokens)) if len(sizes.prompt_tokens) else 0
    return int(np.max(sizes.prompt_tokens + sizes.output_tokens)) if len(sizes.prompt_tokens) else 0


def design_capacities(problem: Problem, design: Design, sample: RequestSample,
                      pool_sizes: dict[str, int] | None = None) -> list[RoleCapacity]:
    """Modelled per-machine rate of each (role, machine type, shape) the design allows (skipping shapes
    that do not fit), for pools of `pool_sizes[role]` machines (default 1)."""
    pool_sizes = pool_sizes or {}
    targets = slo_targets(problem.slos)
    caps = []
    for role, machines in design.pools().items():
        for machine in machines:
            for tp in role_shapes(problem, design, role, machine):
                perf = problem.pool_perf(design, role, machine, tp)
                nic, transfer = None, None
                if role in ("prompt", "token"):
                    nic = problem.catalog.machine(machine).nic_gbps if role == "prompt" else None
                    transfer = (_transfer_ms(problem, design, sample, perf.kv_bytes_per_token())
                                if role == "token" else None)
                caps.append(machine_capacity(perf, machine, role, sample, targets, problem.params, nic, transfer,
                                             pool_machines=pool_sizes.get(role, 1)))
    return caps


def borrowed_token_rates(problem: Problem, design: Design, sample: RequestSample,
                         options: list[PoolOption]) -> dict[tuple[str, int], float]:
    """Modelled decode rate per machine of each prompt slot whose machine type has no token slot, as a
    Splitwise router runs it when borrowed: the prompt pool's own instances decoding, no KV transfer.

    Only where a screen starts (plan/refine.py: borrowing_screen_rps); nothing is decided on it."""
    if design.cluster_design != "splitwise":
        return {}
    token_machines = {o.machine for o in options if o.role == "token"}
    targets = slo_targets(problem.slos)
    return {(o.machine, o.tp): machine_capacity(problem.pool_perf(design, "prompt", o.machine, o.tp), o.machine,
                                                "token", sample, targets, problem.params).rate_rps
            for o in options if o.role == "prompt" and o.machine not in token_machines}


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
                       cat.machine(c.machine).power_kw, c.tp) for c in caps]
