"""Simulation results: tables stay numpy until read or written; percentiles by partition equal the sort."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitplan.cluster import splitwise_cluster
from splitplan.sim import simulate
from splitplan.sim.result import MACHINE_COLUMNS, REQUEST_COLUMNS, TIMELINE_COLUMNS
from splitplan.slo import percentile
from splitplan.workload import load_trace, poisson_workload, resolve_trace_path


@pytest.fixture(scope="module")
def result():
    sizes = load_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv"))
    return simulate(splitwise_cluster("llama2-70b", [("dgx-h100", 2)], [("dgx-a100", 2)]),
                    poisson_workload(sizes, 5.0, 20.0, seed=1))


def test_frames_are_built_on_first_access_only(result):
    assert not {"requests", "machines", "timeline"} & set(vars(result))
    assert list(result.request_columns) == list(REQUEST_COLUMNS)
    frame = result.requests
    assert result.requests is frame  # built once
    assert list(frame.columns) == list(REQUEST_COLUMNS) and len(frame) == result.summary["requests"]
    assert frame["prompt_instance"].dtype == np.int64 and frame["completed"].dtype == bool
    assert list(result.machines.columns) == list(MACHINE_COLUMNS)
    assert list(result.timeline.columns) == list(TIMELINE_COLUMNS)
    assert math.isclose(result.machines["energy_j"].sum() / 3.6e6, result.summary["energy_kwh"], rel_tol=1e-12)


def test_written_files_are_the_same_bytes_twice(result, tmp_path):
    result.write(tmp_path / "a")
    result.write(tmp_path / "b")
    for name in ("summary.json", "requests.csv", "machines.csv", "timeline.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 4000])
def test_unweighted_percentile_equals_the_sorted_one(n):
    rng = np.random.default_rng(n)
    for trial in range(20):
        values = rng.exponential(size=n)
        values[rng.random(n) < 0.05] = np.nan  # unfinished requests count as +inf
        if trial % 3 == 0:
            values = np.round(values, 1)  # ties
        for q in (0, 1, 50, 90, 99, 99.9, 100):
            fast, sorted_ = percentile(values, q), percentile(values, q, np.ones(n))  # weights: the sort path
            assert fast == sorted_ or (math.isinf(fast) and math.isinf(sorted_)), (n, q)
