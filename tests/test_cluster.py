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


def test_validate_canonicalises_aliases():
    spec = splitwise_cluster("llama2-70b", [("h100-80gb", 1)], [("a100-80gb", 1)]).validate()
    assert [p.machine for p in spec.pools] == ["dgx-h100", "dgx-a100"]


@pytest.mark.parametrize("spec,needle", [
    (baseline_cluster("llama2-70b", [("dgx-h1000", 4)]), "did you mean"),
    (baseline_cluster("llama2-70b", [("dgx-h100", 4)], tp=3), "tp 3 must divide"),
    (baseline_cluster("llama2-70b", [("dgx-h100", 4)], tp=1), "do not fit"),
    (splitwise_cluster("llama2-70b", [("dgx-h100", 2)], []), "needs >= 1 prompt and >= 1 token"),
    (ClusterSpec("llama2-70b", "baseline", (PoolSpec("prompt", "dgx-h100", 2),)), "only mixed pools"),
    (ClusterSpec("llama2-70b", "disagg", (PoolSpec("mixed", "dgx-h100", 2),)), "unknown design"),
    (baseline_cluster("llama2-70b", [("dgx-h100", 0)]), "no machines"),
])
def test_validate_errors(spec, needle):
    with pytest.raises(SplitplanError, match=needle):
        spec.validate()


def test_splitwise_with_only_mixed_pool_is_valid():
    spec = splitwise_cluster("llama2-70b", [], [], mixed=[("dgx-h100", 2)]).validate()
    assert spec.role_count("mixed") == 2
