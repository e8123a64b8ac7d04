"""The 2026 design space: instance shapes searched per pool, co-located chunked prefill, disaggregated
workers, and the serving section whose knobs the capacity model and the simulator share."""

import numpy as np
import pytest

from splitplan.catalog import get_catalog
from splitplan.cluster import ClusterSpec, PoolSpec
from splitplan.errors import SplitplanError
from splitplan.plan.capacity import batch_limits
from splitplan.plan.ilp import Limits, PoolOption, solve_ilp
from splitplan.plan.optimize import optimize
from splitplan.plan.problem import make_problem, role_shapes
from splitplan.plan.schema import check_plan
from splitplan.plan.search import DesignSpace, neighbours
from splitplan.scenario import parse_scenario
from splitplan.serving.stack import BatchPolicy
from splitplan.sim import simulate
from splitplan.workload import Workload, load_trace, poisson_workload

SLOS = [{"metric": "ttft", "percentile": 90, "limit_s": 1}, {"metric": "tbt", "percentile": 90, "limit_ms": 40}]


def scenario(designs, constraints=None, objective="min_cost", serving=None, **search):
    data = {"model": "llama3.1-8b", "workload": {"trace": "chat_1k_300.csv", "duration_s": 8},
            "slos": SLOS, "reference_machine": "dgx-h100", "perf": {"stack": "vllm"}, "designs": designs,
            "constraints": constraints or {"min_throughput_rps": 40}, "objective": objective,
            "search": {"seeds": 1, "verify_top": 1, "workers": 1, "max_per_pool": 4, **search}}
    if serving is not None:
        data["serving"] = serving
    return parse_scenario(data, source="t.yaml")


def test_shapes_parse_fixed_searched_and_per_pool():
    sc = scenario([{"name": "C", "kind": "colocated", "machines": ["dgx-h100"]},
                   {"name": "D", "kind": "disaggregated", "prompt": ["dgx-h100"], "token": ["dgx-h200"],
                    "prompt_tp": [2, 4], "token_tp": 8},
                   {"name": "B", "kind": "baseline", "machines": ["dgx-h100"]}])
    c, d, b = sc.designs
    assert c.shapes("mixed") == (1, 2, 4, 8) and c.searched and c.cluster_design == "baseline"
    assert d.shapes("prompt") == (2, 4) and d.shapes("token") == (8,) and d.cluster_design == "disagg"
    assert b.shapes("mixed") == (8,) and not b.searched  # the paper's kinds keep one fixed TP 8
    assert d.to_dict()["prompt_tp"] == [2, 4] and c.to_dict()["tp"] == "auto"


@pytest.mark.parametrize("design,needle", [
    ({"name": "X", "kind": "colocated", "machines": ["dgx-h100"], "tp": 3}, "power of two"),
    ({"name": "X", "kind": "colocated", "machines": ["dgx-h100"], "tp": "all"}, "or 'auto'"),
    ({"name": "X", "kind": "disaggregated", "prompt": ["dgx-h100"], "token": ["dgx-h100"], "batching": "chunked"},
     "no co-located pool"),
    ({"name": "X", "kind": "colocated", "machines": ["dgx-h100"], "prompt_tp": 2}, "only split designs"),
    ({"name": "X", "kind": "baseline", "machines": ["dgx-h100"], "batching": "chunked"}, "kind: colocated"),
    ({"name": "X", "kind": "colocated", "machines": ["dgx-h100"], "batching": "chunkd"}, "did you mean"),
])
def test_bad_designs_are_one_line_errors(design, needle):
    with pytest.raises(SplitplanError, match=needle):
        scenario([design])


def test_serving_section_is_one_object_for_capacity_model_and_simulator():
    sc = scenario([{"name": "D", "kind": "disaggregated", "prompt": ["dgx-h100"], "token": ["dgx-h100"],
                    "tp": 2}], serving={"max_seqs": 48, "prompt": {"max_batched_tokens": 4096},
                                        "transfer": "serialized"})
    problem = make_problem(sc, get_catalog())
    d = sc.designs[0]
    prompt_perf, token_perf = (problem.pool_perf(d, r, "dgx-h100", 2) for r in ("prompt", "token"))
    assert batch_limits(prompt_perf) == (4096, 48) and batch_limits(token_perf)[1] == 48
    assert problem.pool(d, "prompt", "dgx-h100", 2).scheduling == (("max_batched_tokens", 4096),)
    cluster = ClusterSpec(sc.model, "disagg", (problem.pool(d, "prompt", "dgx-h100", 2, 1),
                                               problem.pool(d, "token", "dgx-h100", 2, 1)))
    w = poisson_workload(load_trace(sc.workload.trace), 30.0, 6.0, 0)
    r = simulate(cluster, w, perf=problem.perf, catalog=problem.catalog)
    token = r.machines[r.machines.pool == "token"]
    assert float(token.mean_batch_size.max()) <= 48  # the simulator batches within the same limit
    assert r.summary["mixed_pool"]["requests"] == 0  # fixed roles: nothing ever runs co-located
    assert sc.serving.to_dict()["prompt"] == {"max_batched_tokens": 4096}


def test_colocated_default_batching_is_chunked_prefill_unless_the_stack_says_otherwise():
    designs = [{"name": "C", "kind": "colocated", "machines": ["dgx-h100"], "tp": 8},
               {"name": "M", "kind": "colocated", "machines": ["dgx-h100"], "tp": 8, "batching": "mixed"},
               {"name": "S", "kind": "colocated", "machines": ["dgx-h100"], "tp": 8, "stack": "sglang"},
               {"name": "B", "kind": "baseline", "machines": ["dgx-h100"]}]
    sc = parse_scenario({"model": "llama3.1-8b", "workload": {"trace": "chat_1k_300.csv"}, "designs": designs,
                         "constraints": {"max_machines": 2}}, source="t.yaml")  # default stack: vllm-2023
    problem = make_problem(sc, get_catalog())
    policy = {d.name: dict(problem.pool(d, "mixed", "dgx-h100", 8).scheduling).get("policy") for d in sc.designs}
    assert policy == {"C": BatchPolicy.CHUNKED, "M": BatchPolicy.MIXED, "S": BatchPolicy.PREFILL_FIRST, "B": None}


def test_shapes_that_cannot_hold_the_largest_request_are_skipped():
    sc = parse_scenario({"model": "llama3.1-70b", "workload": {"trace": "rag_8k_200.csv"},
                         "perf": {"stack": "vllm", "weights": "fp8"}, "constraints": {"max_machines": 4},
                         "designs": [{"name": "D", "kind": "disaggregated", "prompt": ["dgx-h100"],
                                      "token": ["dgx-h100"]}]}, source="t.yaml")
    problem = make_problem(sc, get_catalog())
    d = sc.designs[0]
    assert problem.pool_perf(d, "prompt", "dgx-h100", 1).kv_capacity_tokens() < 9011  # FP8 70B on one H100
    assert role_shapes(problem, d, "prompt", "dgx-h100") == [2, 4, 8]


def test_ilp_chooses_among_shapes_of_one_machine_type():
    options = [PoolOption("mixed", "m", cap, 10.0, 1.0, tp) for tp, cap in ((1, 9.0), (2, 12.0), (8, 7.0))]
    sol = solve_ilp(options, Limits(min_throughput_rps=24), "min_cost")[0]
    assert sol.counts == (("mixed", "m", 2, 2),)  # 2 machines of TP-2 instances (TP 1 needs 3, TP 8 four)


def test_neighbours_move_shapes_but_keep_the_fixed_shape_neighbourhood():
    design = parse_scenario({"model": "llama3.1-8b", "workload": {"trace": "chat_1k_300.csv"},
                             "constraints": {"max_machines": 20}, "designs": [
                                 {"name": "C", "kind": "colocated", "machines": ["dgx-h100"]}]},
                            source="t.yaml").designs[0]
    opts = [PoolOption("mixed", "dgx-h100", cap, 38.0, 10.2, tp) for tp, cap in ((1, 9.0), (2, 12.0), (8, 7.0))]
    space = DesignSpace("llama3.1-8b", design, opts, Limits(max_per_pool=20))
    near = neighbours(space, (0, 3, 0), radius=1)
    assert (0, 2, 0) in near and (0, 4, 0) in near  # counts of the shape in use
    assert (3, 0, 0) in near and (0, 0, 3) in near and (2, 0, 0) in near  # shape moves (same and one fewer)
    assert (1, 3, 0) not in near  # a shape not in use is not a free slot (the neighbourhood would explode)
    fixed = DesignSpace("llama3.1-8b", design, [opts[0], PoolOption("mixed", "dgx-a100", 5.0, 17.6, 6.5, 1)],
                        Limits(max_per_pool=20))
    assert (1, 1) in neighbours(fixed, (1, 0), radius=1)  # one shape per machine type: every slot, as before


def test_optimizer_picks_the_shape_no_fixed_tp_beats():
    target = {"min_throughput_rps": 100}
    searched = optimize(scenario([{"name": "C", "kind": "colocated", "machines": ["dgx-h100"]}], target))
    best = searched.best
    assert best is not None and check_plan(searched.to_dict()) == []
    rows = searched.designs[0].capacities
    assert sorted(r["tp"] for r in rows) == [1, 2, 4, 8]
    tp1, tp8 = (optimize(scenario([{"name": "C", "kind": "colocated", "machines": ["dgx-h100"], "tp": tp}],
                                  target)).best for tp in (1, 8))
    assert best.cost_usd_per_h <= tp1.cost_usd_per_h + 1e-9
    assert best.cost_usd_per_h < tp8.cost_usd_per_h  # an 8B model is not best served by TP-8 instances
    assert {p.tp for p in best.cluster.pools} != {8} and best.throughput_rps >= 100


def test_searched_shapes_refuse_the_exhaustive_grid():
    with pytest.raises(SplitplanError, match="fix the shape"):
        optimize(scenario([{"name": "C", "kind": "colocated", "machines": ["dgx-h100"]}], method="grid"))


def test_disaggregated_pools_never_borrow_under_overload():
    pools = (PoolSpec("prompt", "dgx-h100", 1, 8), PoolSpec("token", "dgx-h100", 1, 8))
    w = Workload(np.linspace(0, 5, 800), np.full(800, 3000), np.full(800, 400))
    r = simulate(ClusterSpec("llama3.1-70b", "disagg", pools), w)
    s = simulate(ClusterSpec("llama3.1-70b", "splitwise", pools), w)
    assert r.summary["mixed_pool"]["borrowed_machines"] == 0 and r.summary["mixed_pool"]["requests"] == 0
    assert s.summary["mixed_pool"]["requests"] > 0  # Splitwise's router overflows the same overload
