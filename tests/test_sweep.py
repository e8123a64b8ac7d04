"""`splitplan sweep`: grids of varied fields, one table, resumable after an interruption, worker-independent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from splitplan.apps import sweep as sweep_mod
from splitplan.apps.sweep import BaseScenario, Vary, points_of, sweep
from splitplan.apps.sweep_table import split_pays, table_rows, write_outputs
from splitplan.cli.main import main
from splitplan.errors import SplitplanError

ROOT = Path(__file__).resolve().parent.parent


def small_quickstart(tmp_path: Path, seeds: int, local_radius: int) -> Path:
    """The quick-start question made small: its first two designs, 10 s seeds, one plan verified."""
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data["designs"] = data["designs"][:2]
    data["workload"]["duration_s"] = 10
    data["search"] = {"method": "ilp", "seeds": seeds, "verify_top": 1, "local_radius": local_radius}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture()
def small(tmp_path) -> Path:
    """One seed, radius 0."""
    return small_quickstart(tmp_path, seeds=1, local_radius=0)


def test_vary_ranges_and_lists():
    assert Vary.parse("constraints.cost_usd_per_h=200:2000:10").values == tuple(range(200, 2001, 200))
    assert Vary.parse("x=0.5:1:3").values == (0.5, 0.75, 1.0)
    assert Vary.parse("model=llama3.1-70b, qwen3-32b").values == ("llama3.1-70b", "qwen3-32b")
    assert Vary.parse("search.seeds=1,2").values == (1, 2)
    for bad in ("model", "=1,2", "x=1:2:0", "x=1:2:2.5", "x=a,,b"):
        with pytest.raises(SplitplanError):
            Vary.parse(bad)
    grid = points_of([Vary("a", (1, 2)), Vary("b", ("x", "y", "z"))])
    assert grid[:2] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}] and len(grid) == 6
    with pytest.raises(SplitplanError, match="varied twice"):
        points_of([Vary("a", (1,)), Vary("a", (2,))])


def test_a_field_the_scenario_does_not_have_fails_before_any_work(small, tmp_path):
    with pytest.raises(SplitplanError, match="constraints"):
        sweep(small, [Vary("constraints.cost_usd_per_hour", (100, 200))], tmp_path / "out")
    assert not (tmp_path / "out" / "points").exists()


def test_point_keys_follow_parameters_and_the_file(small, tmp_path):
    base = BaseScenario.load(small)
    assert base.key({"a": 1}) == BaseScenario.load(small).key({"a": 1}) != base.key({"a": 2})
    changed = tmp_path / "changed.yaml"
    changed.write_text(small.read_text().replace("duration_s: 10", "duration_s: 11"))
    assert BaseScenario.load(changed).key({"a": 1}) != base.key({"a": 1})


def test_interrupted_sweep_resumes_and_gives_the_same_bytes(small, tmp_path, monkeypatch):
    varies = [Vary("constraints.cost_usd_per_h", (150, 300, 450))]
    full = sweep(small, varies, tmp_path / "full", workers=1)
    write_outputs(full, tmp_path / "full", "max_throughput", plot=False)

    calls: list[dict] = []
    real = sweep_mod.run_point

    def interrupted(base, params, *rest):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(params)
        return real(base, params, *rest)

    monkeypatch.setattr(sweep_mod, "run_point", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep(small, varies, tmp_path / "resumed", workers=1)
    assert len(list((tmp_path / "resumed" / "points").glob("*.json"))) == 2
    calls.clear()
    monkeypatch.setattr(sweep_mod, "run_point", lambda *a: calls.append(a[1]) or real(*a))
    resumed = sweep(small, varies, tmp_path / "resumed", workers=1)
    assert calls == [{"constraints.cost_usd_per_h": 450}] and resumed.reused == 2
    write_outputs(resumed, tmp_path / "resumed", "max_throughput", plot=False)
    for name in ("sweep.csv", "sweep.json"):
        assert (tmp_path / "full" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes()


def test_table_is_identical_for_any_worker_count(small, tmp_path):
    varies = [Vary("constraints.cost_usd_per_h", (150, 300))]
    outs = []
    for workers in (1, 2):
        result = sweep(small, varies, tmp_path / f"w{workers}", workers=workers)
        write_outputs(result, tmp_path / f"w{workers}", "max_throughput", plot=False)
        outs.append((tmp_path / f"w{workers}" / "sweep.csv").read_bytes())
    assert outs[0] == outs[1]
    rows = table_rows(result)
    assert [r["design"] for r in rows] == ["Baseline-H100", "Splitwise-HA"] * 2
    assert sum(r["recommended"] for r in rows) == 2 and all(r["max_rate_rps"] > 0 for r in rows)


def test_splitting_pays_from_the_first_budget_it_stays_ahead():
    def row(x, kind, value):
        return {"c": x, "kind": kind, "status": "feasible", "max_rate_rps": value, "design": kind}

    rows = [row(1, "baseline", 10), row(1, "splitwise", 9), row(2, "baseline", 20), row(2, "splitwise", 21),
            row(3, "baseline", 30), row(3, "splitwise", 29), row(4, "baseline", 40), row(4, "splitwise", 44),
            row(5, "baseline", 50), row(5, "splitwise", 55)]
    pays = split_pays(rows, [Vary("c", (1, 2, 3, 4, 5))], "max_throughput")
    assert pays == [{"field": "c", "splitting_pays_from": 4, "splitting_ahead_at": [2, 4, 5]}]


def test_cli_writes_the_table_json_and_plot(small, tmp_path, capsys):
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(small), "--vary", "constraints.cost_usd_per_h=150:300:2", "--out", str(out)])
    assert exc.value.code == 0
    assert (out / "sweep.csv").read_text().count("\n") == 1 + 2 * 2
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["varies"] == [{"field": "constraints.cost_usd_per_h", "values": [150, 300]}]
    pytest.importorskip("matplotlib")
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "splitting pays" in capsys.readouterr().out


def test_parquet_holds_the_same_rows_as_the_csv(small, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    result = sweep(small, [Vary("constraints.cost_usd_per_h", (150,))], tmp_path / "pq", workers=1)
    written = write_outputs(result, tmp_path / "pq", "max_throughput", plot=False)
    assert "sweep.parquet" in written
    table = pq.read_table(tmp_path / "pq" / "sweep.parquet").to_pylist()
    assert [r["design"] for r in table] == ["Baseline-H100", "Splitwise-HA"]
    assert table[0]["constraints.cost_usd_per_h"] == 150 and table[0]["max_rate_rps"] > 0


def test_colocated_and_disaggregated_designs_count_as_together_and_split():
    def row(x, kind, value):
        return {"c": x, "kind": kind, "status": "feasible", "cost_usd_per_h": value, "design": kind}

    rows = [row(1, "colocated", 100), row(1, "disaggregated", 120), row(2, "colocated", 200),
            row(2, "disaggregated", 150), row(2, "baseline", 180), row(3, "colocated", 300), row(3, "splitwise", 250)]
    pays = split_pays(rows, [Vary("c", (1, 2, 3))], "min_cost")
    assert pays == [{"field": "c", "splitting_pays_from": 2, "splitting_ahead_at": [2, 3]}]
