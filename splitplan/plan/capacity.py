"""Capacity model: the request rate one machine sustains in one role while every SLO holds.

Why a model and not just the simulator: the ILP needs a rate per (machine type, role) for every type in
the catalog before anything is simulated. The model is closed-form queueing on top of the performance
model, cheap enough to evaluate in milliseconds, and deliberately simple; the simulator verifies and the
local search corrects it.

- Prompt role: prompts batched up to the stack's `max_batched_tokens` give the saturation rate mu; waiting time is
  M/G/c over the pool's c instances (Allen-Cunneen: Erlang-C wait probability, exponential tail; with
  c = 1 exactly Pollaczek-Khinchine's mean). A TTFT SLO at percentile q holds when the fraction of
  requests with W + own prefill <= limit is >= q.
- Token role: decodes run as one growing batch; the number of concurrent decodes is Poisson (M/G/inf)
  with mean L = rate x E[decode time] (a fixed point, since step time grows with the batch). A TBT/E2E
  SLO holds when P(batch seen by a request keeps it under its limit) >= q; the KV cache and the
  stack's `max_seqs` bound the batch.
- Mixed role: both at once; prompt work takes a fraction rho_p of the machine, decode steps are
  stretched by 1 / (1 - rho_p) and prompts wait behind the current iteration.
Each role's rate is the largest rate meeting all its SLOs (bisection; each test is monotone in rate),
times the instances per machine and a named derating factor. Batch limits come from the instance's
scheduling (its stack's defaults after the scenario's `serving:` overrides), the object the simulator's
policies read, so the model and the simulator batch alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from splitplan.perf.base import PerfModel
from splitplan.serving.stack import Scheduling

ROLES = ("prompt", "token", "mixed")


@dataclass(frozen=True)
class CapacityParams:
    """Named knobs of the capacity model; the simulator-driven local search absorbs what they miss."""

    prompt_util_cap: float = 0.90  # never plan a prompt machine above this utilisation (queue blow-up)
    nic_util_cap: float = 0.80  # share of the NIC the KV transfers of one prompt machine may use
    kv_util_cap: float = 0.95  # share of KV memory the planned decode batch may fill ...
    kv_quantile: float = 0.99  # ... at this quantile of the (Poisson) number of concurrent decodes
    prompt_derate: float = 1.0  # multiplies the modelled rate of each role (calibration hooks)
    token_derate: float = 1.0
    mixed_derate: float = 1.0
    sample_requests: int = 2000  # requests drawn from the workload to evaluate percentiles


@dataclass(frozen=True)
class SloTarget:
    """One latency SLO in model terms: metric ttft|tbt|e2e, quantile q in (0, 1), limit.

    relative: the limit is a slowdown factor over the request's reference latency; otherwise ms."""

    metric: str
    quantile: float
    limit: float
    relative: bool = True


@dataclass(frozen=True)
class RequestSample:
    """Request sizes and their unloaded reference latencies (ms), aligned arrays."""

    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    ref_ttft_ms: np.ndarray
    ref_tbt_ms: np.ndarray
    ref_e2e_ms: np.ndarray

    @staticmethod
    def draw(prompt: np.ndarray, output: np.ndarray, ref_ttft_ms: np.ndarray, ref_tbt_ms: np.ndarray,
             ref_e2e_ms: np.ndarray, n: int, seed: int = 0) -> RequestSample:
        """A deterministic subsample of at most n requests (percentiles need a few thousand, not all)."""
        idx = np.arange(len(prompt))
        if len(idx) > n:
            idx = np.sort(np.random.default_rng(seed).choice(idx, size=n, replace=False))
        return RequestSample(*(np.asarray(a, dtype=np.float64)[idx] for a in
                               (prompt, output, ref_ttft_ms, ref_tbt_ms, ref_e2e_ms)))

    def limits_ms(self, slo: SloTarget) -> np.ndarray:
        """Per-request latency limit of one SLO, in ms (TBT: the per-request average step)."""
        if not slo.relative:
            return np.full(self.prompt_tokens.shape, slo.limit)
        ref = {"ttft": self.ref_ttft_ms, "tbt": self.ref_tbt_ms, "e2e": self.ref_e2e_ms}[slo.metric]
        return slo.limit * ref


@dataclass(frozen=True)
class RoleCapacity:
    """The modelled sustainable rate of one machine in one role, and what bounds it."""

    machine: str
    role: str
    rate_rps: float  # per machine, derating applied
    bound: str  # what limits it: "ttft p90", "kv memory", "nic", "saturation", ...
    instances: int
    tp: int = 8  # GPUs per instance


def prefill_service_ms(perf: PerfModel, prompt: np.ndarray) -> np.ndarray:
    """Unbatched prefill time of each prompt."""
    return np.asarray(perf.prefill_ms(np.ones_like(prompt), prompt, prompt * prompt), dtype=np.float64)


def batched_prefill_rate_per_ms(perf: PerfModel, prompt: np.ndarray, batch_tokens: int) -> float:
    """Saturated prompt throughput (requests/ms): prompts in arrival order packed into token-capped batches."""
    batch_ids = np.zeros(len(prompt), dtype=np.int64)
    current, used = 0, 0.0
    for i, p in enumerate(prompt):  # greedy FCFS packing, as the prompt scheduler does
        if used > 0 and used + p > batch_tokens:
            current, used = current + 1, 0.0
        batch_ids[i], used = current, used + p
    n = np.bincount(batch_ids).astype(np.float64)
    s = np.bincount(batch_ids, weights=prompt)
    s2 = np.bincount(batch_ids, weights=prompt * prompt)
    total_ms = float(np.sum(perf.prefill_ms(n, s, s2)))
    return len(prompt) / total_ms


def _wait_cdf(x_ms: np.ndarray, p_wait: float, tail_per_ms: float) -> np.ndarray:
    """P(W <= x): an atom at 0 (no wait) plus an exponential tail."""
    tail = p_wait * np.exp(-tail_per_ms * np.maximum(x_ms, 0.0))
    return np.where(x_ms < 0, 0.0, 1.0 - tail)


def erlang_c(servers: int, offered: float) -> float:
    """Probability an arrival waits in M/M/c with `offered` = lambda / mu Erlangs (stable recursion)."""
    rho = offered / servers
    if rho >= 1:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return b / (1.0 - rho * (1.0 - b))


def _mgc_wait(rate_per_ms: float, servers: int, mean_s: float, scv: float) -> tuple[float, float, float]:
    """(rho, P(wait), tail rate per ms) of M/G/c by Allen-Cunneen: M/M/c scaled by (1 + scv) / 2.

    With c = 1 this is Pollaczek-Khinchine's mean wait with an exponential tail."""
    rho = rate_per_ms * mean_s / servers
    if rho >= 1:
        return rho, 1.0, 0.0
    p_wait = erlang_c(servers, rate_per_ms * mean_s)
    tail = servers * (1.0 - rho) / mean_s * 2.0 / (1.0 + scv)
    return rho, p_wait, tail


def _largest_rate(ok, hi: float, iters: int = 40) -> float:
    """Largest rate in [0, hi] with ok(rate) true, assuming ok is monotone (true then false)."""
    if ok(hi):
        return hi
    lo = 0.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


class _DecodeCurve:
    """Decode step time (ms) as a function of batch size at the workload's mean context."""

    def __init__(self, perf: PerfModel, sample: RequestSample, max_batch: int):
        o = np.maximum(sample.output_tokens - 1, 0)
        weights = o if o.sum() > 0 else np.ones_like(o)
        self.mean_context = float(np.sum(weights * (sample.prompt_tokens + sample.output_tokens / 2))
                                  / np.sum(weights))  # context seen by an average decode step
        self.mean_steps = float(np.mean(o))
        kv_batch = perf.kv_capacity_tokens() / max(self.mean_context, 1.0)
        self.max_batch = int(max(1, min(max_batch, kv_batch)))
        b = np.arange(1, self.max_batch + 1, dtype=np.float64)
        self.step_ms = np.maximum.accumulate(np.asarray(perf.decode_ms(b, b * self.mean_context), dtype=np.float64))
        self.kv_batch = kv_batch

    def peak_rate_per_ms(self) -> float:
        """Highest decode throughput in requests/ms over batch sizes (attention makes huge batches slower)."""
        b = np.arange(1, self.max_batch + 1)
        return float(np.max(b / (max(self.mean_steps, 1.0) * self.step_ms)))

    def step(self, batch: float) -> float:
        return float(np.interp(batch, np.arange(1, self.max_batch + 1), self.step_ms))

    def max_batch_for(self, limit_step_ms: np.ndarray) -> np.ndarray:
        """Largest batch whose step time stays within each limit (0 when even batch 1 is too slow)."""
        return np.searchsorted(self.step_ms, limit_step_ms, side="right")


def _concurrency(rate_per_ms: float, curve: _DecodeCurve, stretch: float) -> float | None:
    """Fixed point L = rate x mean_steps x step(L) x stretch; None when decodes cannot keep up."""
    level = rate_per_ms * curve.mean_steps * curve.step(1) * stretch
    for _ in range(60):
        if level > curve.max_batch:
            return None
        new = rate_per_ms * curve.mean_steps * curve.step(max(level, 1.0)) * stretch
        if abs(new - level) < 1e-6 * max(1.0, level):
            return new
        level = new
    return level if level <= curve.max_batch else None


def _decode_ok(level: float, curve: _DecodeCurve, sample: RequestSample, slos: list[SloTarget],
               stretch: float, fixed_ms: np.ndarray, params: CapacityParams) -> bool:
    """TBT/E2E percentiles and KV memory at concurrency `level` (Poisson number of co-running decodes)."""
    if poisson_ppf(params.kv_quantile, level) + 1 > curve.kv_batch * params.kv_util_cap:
        return False
    o = np.maximum(sample.output_tokens - 1, 1)
    for slo in slos:
        limit = sample.limits_ms(slo)
        if slo.metric == "tbt":
            step_limit = limit / stretch
        elif slo.metric == "e2e":
            step_limit = (limit - fixed_ms) / (o * stretch)
        else:
            continue
        max_b = curve.max_batch_for(step_limit)
        frac = np.mean(np.where(max_b >= 1, poisson_cdf(max_b - 1, level), 0.0))
        if frac < slo.quantile:
            return False
    return True


def _ttft_ok(rate_per_ms: float, s_ms: np.ndarray, mean_s: float, mean_s2: float, residual_ms: float,
             sample: RequestSample, slos: list[SloTarget], servers: int = 1) -> bool:
    """TTFT percentiles when `servers` instances share the load by join-the-shortest-queue (per-instance rate)."""
    scv = mean_s2 / (mean_s * mean_s) - 1.0
    rho, p_wait, tail = _mgc_wait(rate_per_ms * servers, servers, mean_s, scv)
    if rho >= 1:
        return False
    for slo in slos:
        if slo.metric != "ttft":
            continue
        slack = sample.limits_ms(slo) - s_ms - residual_ms
        if np.mean(_wait_cdf(slack, p_wait, tail)) < slo.quantile:
            return False
    return True


def batch_limits(perf: PerfModel) -> tuple[int, int]:
    """(token budget of a batch, most sequences in one): the instance's scheduling, as the simulator's
    (a batch's KV cache must fit the instance too)."""
    sched = getattr(perf, "scheduling", None) or Scheduling()
    return min(sched.max_batched_tokens, int(perf.kv_capacity_tokens())), sched.max_seqs


def _service_moments(perf: PerfModel, sample: RequestSample, params: CapacityParams):
    s_ms = prefill_service_ms(perf, sample.prompt_tokens)
    mu = batched_prefill_rate_per_ms(perf, sample.prompt_tokens, batch_limits(perf)[0])
    scale = (1.0 / mu) / float(np.mean(s_ms))  # batching shortens the effective service time
    return s_ms, mu, float(np.mean(s_ms) * scale), float(np.mean((s_ms * scale) ** 2))


def prompt_rate_rps(perf: PerfModel, sample: RequestSample, slos: list[SloTarget], params: CapacityParams,
                    nic_gbps: float | None = None, servers: int = 1) -> tuple[float, str]:
    """Per-instance prompt rate (req/s) under TTFT SLOs, the utilisation cap and the NIC; and its bound."""
    s_ms, mu, mean_s, mean_s2 = _service_moments(perf, sample, params)
    bounds = {"utilisation cap": mu * params.prompt_util_cap}
    if nic_gbps:
        kv_bytes = float(np.mean(sample.prompt_tokens)) * perf.kv_bytes_per_token()
        bounds["nic (KV transfer)"] = nic_gbps * 1e9 / 1e3 * params.nic_util_cap / kv_bytes
    hi = min(bounds.values())
    rate = _largest_rate(lambda r: _ttft_ok(r, s_ms, mean_s, mean_s2, 0.0, sample, slos, servers), hi)
    bound = min(bounds, key=bounds.get) if rate >= hi * 0.999 else _binding(slos, "ttft")
    return rate * 1e3, bound


def token_rate_rps(perf: PerfModel, sample: RequestSample, slos: list[SloTarget], params: CapacityParams,
                   transfer_ms: np.ndarray | None = None) -> tuple[float, str]:
    """Per-instance decode rate (req/s) under TBT/E2E SLOs and KV memory; E2E counts the reference TTFT."""
    curve = _DecodeCurve(perf, sample, max_batch=batch_limits(perf)[1])
    fixed = sample.ref_ttft_ms + (transfer_ms if transfer_ms is not None else 0.0)

    def ok(rate: float) -> bool:
        level = _concurrency(rate, curve, 1.0)
        return level is not None and _decode_ok(level, curve, sample, slos, 1.0, fixed, params)

    rate = _largest_rate(ok, curve.peak_rate_per_ms())
    return rate * 1e3, _decode_bound(rate, curve, sample, slos, 1.0, fixed, params)


def mixed_rate_rps(perf: PerfModel, sample: RequestSample, slos: list[SloTarget],
                   params: CapacityParams, servers: int = 1) -> tuple[float, str]:
    """Per-instance rate of a machine running prompts and decodes together (continuous batching)."""
    s_ms, mu, mean_s, mean_s2 = _service_moments(perf, sample, params)
    curve = _DecodeCurve(perf, sample, max_batch=batch_limits(perf)[1])

    def failure(rate: float) -> str:
        """'' when every check passes at this rate, else the first one that fails."""
        rho_p = rate * mean_s
        if rho_p >= params.prompt_util_cap:
            return "utilisation cap"
        stretch = 1.0 / (1.0 - rho_p)
        level = _concurrency(rate, curve, stretch)
        if level is None:
            return "kv memory"
        residual = 0.5 * curve.step(max(level, 1.0))  # a prompt waits for the running iteration
        if not _ttft_ok(rate, s_ms, mean_s, mean_s2, residual, sample, slos, servers):
            return _binding(slos, "ttft")
        for slo in [None, *[x for x in slos if x.metric in ("tbt", "e2e")]]:
            if not _decode_ok(level, curve, sample, [slo] if slo else [], stretch, s_ms + residual, params):
                return "kv memory" if slo is None else f"{slo.metric} p{slo.quantile * 100:g}"
        return ""

    rate = _largest_rate(lambda r: not failure(r), mu * params.prompt_util_cap)
    return rate * 1e3, (failure(rate * 1.02 + 1e-9) or "utilisation cap") if rate > 0 else "slo unmeetable"


def _binding(slos: list[SloTarget], metric: str) -> str:
    tight = [s for s in slos if s.metric == metric]
    return f"{metric} slo" if not tight else f"{metric} p{max(s.quantile for s in tight) * 100:g}"


def _decode_bound(rate: float, curve: _DecodeCurve, sample: RequestSample, slos: list[SloTarget],
                  stretch: float, fixed: np.ndarray, params: CapacityParams) -> str:
    """Name the constraint that fails just above the found rate."""
    level = _concurrency(rate * 1.02 + 1e-9, curve, stretch)
    if level is None:
        return "kv memory"
    if poisson_ppf(params.kv_quantile, level) + 1 > curve.kv_batch * params.kv_util_cap:
        return "kv memory"
    for slo in slos:
        if slo.metric in ("tbt", "e2e") and not _decode_ok(level, curve, sample, [slo], stretch, fixed, params):
            return f"{slo.metric} p{slo.quantile * 100:g}"
    return "decode saturation"


def role_rate_rps(perf: PerfModel, role: str, sample: RequestSample, slos: list[SloTarget],
                  params: CapacityParams, nic_gbps: float | None = None,
                  transfer_ms: np.ndarray | None = None, servers: int = 1) -> tuple[float, str]:
    """Per-instance rate and bound of one role (no derating), in a pool of `servers` instances."""
    if role == "prompt":
        return prompt_rate_rps(perf, sample, slos, params, nic_gbps, servers)
    if role == "token":
        return token_rate_rps(perf, sample, slos, params, transfer_ms)
    if role == "mixed":
        return mixed_rate_rps(perf, sample, slos, params, servers)
    raise ValueError(f"unknown role {role!r}")


def machine_capacity(perf: PerfModel, machine: str, role: str, sample: RequestSample, slos: list[SloTarget],
                     params: CapacityParams, nic_gbps: float | None = None,
                     transfer_ms: np.ndarray | None = None, pool_machines: int = 1) -> RoleCapacity:
    """Per-machine capacity: instances per machine x per-instance rate x the role's derating factor.

    `pool_machines`: how many machines share the role's queue (JSQ pooling shortens prompt waits, so
    the per-machine rate of a large pool is higher; the optimizer iterates this with the ILP)."""
    instances = perf.instance.per_machine
    per_instance_nic = nic_gbps / instances if nic_gbps else None  # instances share the machine's NIC
    rate, bound = role_rate_rps(perf, role, sample, slos, params, per_instance_nic, transfer_ms,
                                servers=max(1, pool_machines) * instances)
    derate = {"prompt": params.prompt_derate, "token": params.token_derate, "mixed": params.mixed_derate}[role]
    return RoleCapacity(machine=machine, role=role, rate_rps=rate * instances * derate, bound=bound,
                        instances=instances, tp=perf.instance.tp)


# scipy.stats.poisson's ppf and cdf, from the scipy.special functions it calls: importing scipy.stats costs
# ~0.4 s (1.3 s on a busy machine) in every command and worker that builds a capacity model; scipy.special
# is the part needed. Same values (tests/test_plan_capacity.py compares them with scipy.stats).
def poisson_ppf(q: float, mu: float) -> float:
    """The smallest k with P(N <= k) >= q, N ~ Poisson(mu), for 0 < q < 1 (scipy's _ppf)."""
    from scipy import special

    vals = np.ceil(special.pdtrik(q, mu))
    vals1 = np.maximum(vals - 1, 0)
    return float(np.where(special.pdtr(vals1, mu) >= q, vals1, vals))


def poisson_cdf(k, mu: float) -> np.ndarray:
    """P(N <= k), N ~ Poisson(mu), element-wise: 0 below 0, 1 at +inf, pdtr(floor(k), mu) between."""
    from scipy import special

    k = np.asarray(k, dtype=np.float64)
    out = np.zeros(k.shape)
    out[k >= np.inf] = 1.0
    inside = (k >= 0) & (k < np.inf)
    out[inside] = special.pdtr(np.floor(k[inside]), mu)
    return out
