"""`--executor ray`: simulations as Ray tasks on a local Ray instance give the same bytes as local workers.

Skipped where Ray is not installed (it is an optional extra, `pip install 'splitplan[ray]'`; the dev
extra installs it, so CI runs these)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from splitplan.errors import SplitplanError
from splitplan.plan.parallel import ExecutorSpec, WorkerPool, using_executor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_sweep import small_quickstart  # noqa: E402


def test_without_ray_the_executor_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SplitplanError, match=r"pip install 'splitplan\[ray\]'"):
        WorkerPool(2, executor=ExecutorSpec("ray"))


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture()
def small(tmp_path) -> Path:
    """Two seeds and radius 1, so that the Ray runs map several simulations."""
    return small_quickstart(tmp_path, seeds=2, local_radius=1)


def test_map_keeps_order_reports_each_result_and_raises_task_errors(ray_instance):
    from splitplan.apps.sweep import Vary  # tasks must be importable on the workers: a splitplan function

    seen = []
    tasks = [(f"f{i}={i},{i + 1}",) for i in range(5)]
    with WorkerPool(executor=ExecutorSpec("ray")) as pool:
        assert pool.workers == 2
        out = pool.map(Vary.parse, tasks, on_result=lambda i, r: seen.append((i, r.path)))
        assert [v.values for v in out] == [(i, i + 1) for i in range(5)]
        assert sorted(seen) == [(i, f"f{i}") for i in range(5)]
        with pytest.raises(SplitplanError, match="is not FIELD="):
            pool.map(Vary.parse, [("a=1",), ("no equals sign",)])


def test_optimize_on_ray_writes_the_same_plan_as_local_workers(ray_instance, small):
    from splitplan.plan.optimize import optimize

    local = optimize(small, workers=2).to_json()
    with using_executor(ExecutorSpec("ray")):
        remote = optimize(small).to_json()
    assert remote == local


def test_sweep_on_ray_gives_the_same_table(ray_instance, small, tmp_path):
    from splitplan.apps.sweep import Vary, sweep
    from splitplan.apps.sweep_table import write_outputs

    varies = [Vary("constraints.cost_usd_per_h", (150, 300))]
    tables = []
    for name, spec in (("local", ExecutorSpec("local")), ("ray", ExecutorSpec("ray"))):
        with using_executor(spec):
            result = sweep(small, varies, tmp_path / name, workers=2, seeds=1)
        write_outputs(result, tmp_path / name, "max_throughput", plot=False)
        tables.append((tmp_path / name / "sweep.csv").read_bytes())
    assert tables[0] == tables[1]


def test_a_serial_pool_needs_no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with WorkerPool(1, executor=ExecutorSpec("ray")) as pool:  # e.g. a design's search inside a worker
        assert pool.map(len, [("ab",), ("c",)]) == [2, 1]
