"""Cluster specs: parsing pool flags, validation errors, labels, cost and power."""

import pickle

import pytest

from splitplan.cluster import ClusterSpec, PoolSpec, baseline_cluster, parse_pool_arg, splitwise_cluster
from splitplan.errors import SplitplanError


def test_parse_pool_arg_forms():
    assert parse_pool_arg("dgx-h100:25") == ("dgx-h100", 25)
    assert parse_pool_arg("dgx-h100:25:tp4") == ("dgx-h100", 25, 4)
    assert parse_pool_arg("dgx-h100:10,dgx-a100:5") == [("dgx-h100", 10), ("dgx-a100", 5)]


@pytest.mark.parametrize("bad", ["dgx-h100", "dgx-h100:x", "dgx-h100:3:fast", ":3", "dgx-h100:-1", ""])
def test_parse_pool_arg_errors_are_one_line(bad):
    with pytest.raises(SplitplanError) as err:
        parse_pool_arg(bad)
    assert "\n" not in str(err.value)


def test_label_cost_power_and_roundtrip():
    spec = splitwise_cluster("llama2-70b", [("dgx-h100", 25)], [("dgx-a100", 26)]).validate()
    assert spec.label() == "Splitwise: prompt 25 x dgx-h100 + token 26 x dgx-a100"
    assert spec.machine_count() == 51
    assert spec.cost_usd_per_h() == pytest.approx(25 * 38.0 + 26 * 17.6)
    assert spec.power_kw() == pytest.approx(25 * 10.2 + 26 * 6.5)
    assert ClusterSpec.from_dict(spec.to_dict()) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert baseline_cluster("llama2-70b", [("dgx-h100", 40)]).label() == "Baseline: 40 x dgx-h100"


def test_a_shape_the_weights_do_not_fit_is_refused_when_simulated():
    from splitplan.sim import simulate
    from splitplan.workload import Workload

    w = Workload([0.0], [100], [10])
    with pytest.raises(SplitplanError, match="does not fit dgx-h100 at tp=1"):
        simulate(baseline_cluster("llama2-70b", [("dgx-h100", 4)], tp=1), w)


def test_pools_carry_their_own_shape_stack_and_scheduling():
    data = {"model": "llama3.1-70b", "design": "disagg", "pools": [
        {"role": "prompt", "machine": "dgx-h100", "count": 1, "tp": 2, "stack": "sglang", "max_batched_tokens": 16384},
        {"role": "token", "machine": "dgx-h200", "count": 2, "tp": 4, "max_seqs": 256, "batching": "chunked"}]}
    spec = ClusterSpec.from_dict(data).validate()
    assert spec.pools[0].stack == "sglang" and spec.pools[0].scheduling == (("max_batched_tokens", 16384),)
    assert dict(spec.pools[1].scheduling)["max_seqs"] == 256
    assert ClusterSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["pools"][1]["batching"] == "chunked"
    assert spec.label() == "Disaggregated: prompt 1 x dgx-h100 (tp2) + token 2 x dgx-h200 (tp4)"
    with pytest.raises(SplitplanError, match="max_seqz"):
        ClusterSpec.from_dict({**data, "pools": [{**data["pools"][0], "max_seqz": 3}]})


def test_validate_canonicalises_aliases():
    spec = splitwise_cluster("llama2-70b", [("h100-80gb", 1)], [("a100-80gb", 1)]).validate()
    assert [p.machine for p in spec.pools] == ["dgx-h100", "dgx-a100"]


@pytest.mark.parametrize("spec,needle", [
    (baseline_cluster("llama2-70b", [("dgx-h1000", 4)]), "did you mean"),
    (baseline_cluster("llama2-70b", [("dgx-h100", 4)], tp=3), "tp 3 must divide"),
    (splitwise_cluster("llama2-70b", [("dgx-h100", 2)], []), "needs >= 1 prompt and >= 1 token"),
    (ClusterSpec("llama2-70b", "baseline", (PoolSpec("prompt", "dgx-h100", 2),)), "only mixed pools"),
    (ClusterSpec("llama2-70b", "disagregated", (PoolSpec("mixed", "dgx-h100", 2),)), "unknown design"),
    (ClusterSpec("llama2-70b", "disagg", (PoolSpec("mixed", "dgx-h100", 2),)), "no mixed pool"),
    (ClusterSpec("llama2-70b", "disagg", (PoolSpec("prompt", "dgx-h100", 2, stack="vllm-20233"),
                                          PoolSpec("token", "dgx-h100", 2))), "unknown stack"),
    (baseline_cluster("llama2-70b", [("dgx-h100", 0)]), "no machines"),
])
def test_validate_errors(spec, needle):
    with pytest.raises(SplitplanError, match=needle):
        spec.validate()


def test_splitwise_with_only_mixed_pool_is_valid():
    spec = splitwise_cluster("llama2-70b", [], [], mixed=[("dgx-h100", 2)]).validate()
    assert spec.role_count("mixed") == 2
