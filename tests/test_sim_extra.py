"""Link contention, max-rate bisection, ITL samples, and the `simulate` command."""

import json

import numpy as np
import pytest

from splitplan.cli.main import cli
from splitplan.cluster import baseline_cluster, splitwise_cluster
from splitplan.perf import PerfSettings
from splitplan.sim import SimConfig, find_max_rps, simulate
from splitplan.slo import SLO, paper_slos
from splitplan.workload import Workload, load_trace, resolve_trace_path

MODEL = "llama2-70b"


@pytest.fixture(scope="module")
def conv():
    return load_trace(resolve_trace_path("AzureLLMInferenceTrace_conv.csv"))


def test_concurrent_transfers_share_the_prompt_machines_nic():
    # two tp4 prompt instances on ONE machine finish identical prompts together; their KV caches leave
    # through the same NIC, so the second transfer waits for the first
    cluster = splitwise_cluster(MODEL, [("dgx-h100", 1)], [("dgx-a100", 2)], tp=8)
    cluster = type(cluster)(MODEL, "splitwise", ((cluster.pools[0].__class__("prompt", "dgx-h100", 1, 4)),
                                                   cluster.pools[1]))
    w = Workload(np.array([0.0, 0.0]), np.array([4000, 4000]), np.array([3, 3]))
    r = simulate(cluster, w, config=SimConfig(transfer="serialized"))
    first, second = sorted(r.requests.transfer_s)
    assert set(r.requests.prompt_instance) == {0, 1}
    assert second == pytest.approx(2 * first, rel=1e-9)


def test_itl_slo_uses_token_weighted_samples(conv):
    from splitplan.workload import poisson_workload

    w = poisson_workload(conv, 3.0, 30.0, seed=2)
    slos = paper_slos() + (SLO("itl", 99, 0.5, "absolute"),)
    r = simulate(baseline_cluster(MODEL, [("dgx-h100", 2)]), w, slos=slos)
    itl = [x for x in r.slo_results if x.slo.metric == "itl"][0]
    assert 0.005 < itl.value < 0.5 and itl.met


def test_find_max_rps_brackets_the_edge(conv):
    cluster = baseline_cluster(MODEL, [("dgx-h100", 1)])
    res = find_max_rps(cluster, conv, duration_s=30.0, seeds=(0, 1), tol_rps=0.5)
    assert res.max_rps > 0 and len(res.per_seed_rps) == 2
    assert res.max_rps == min(res.per_seed_rps)
    assert res.ci95_rps[0] <= res.mean_rps <= res.ci95_rps[1]
    for seed, rate in zip((0, 1), res.per_seed_rps):
        runs = [(r, ok) for s, r, ok in res.history if s == seed]
        assert any(ok and r == rate for r, ok in runs)
        assert any((not ok) and rate < r <= rate + 0.5 for r, ok in runs)
    assert res.simulations == len(res.history)


def run_cli(args):
    from click.testing import CliRunner

    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_json_and_out(tmp_path):
    out = tmp_path / "out"
    res = run_cli(["simulate", "--model", MODEL, "--prompt", "dgx-h100:2", "--token", "dgx-a100:2",
                   "--trace", "AzureLLMInferenceTrace_conv.csv", "--rate", "4", "--duration", "20",
                   "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["cluster"]["label"] == "Splitwise: prompt 2 x dgx-h100 + token 2 x dgx-a100"
    assert (out / "summary.json").read_text() == res.output
    assert sorted(p.name for p in out.iterdir()) == ["machines.csv", "requests.csv", "summary.json", "timeline.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left behind
    header = (out / "timeline.csv").read_text().splitlines()[0]
    assert header == "time_s,pool,busy_instances,instances,mean_decode_batch,queued_requests,pending_tokens"


def test_cli_compat_profile_resolves_bundled_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run_cli(["simulate", "--model", MODEL, "--design", "baseline", "--machines", "dgx-h100:40",
                   "--trace", "rr_code_80_2min.csv", "--perf", "profile", "--profile",
                   "splitwisesim_perf_model.csv", "--compat", "splitwisesim", "--quiet", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["perf"]["compat"] == "splitwisesim"
    assert summary["ttft_s"]["p50"] == pytest.approx(0.130197, rel=0.01)


@pytest.mark.parametrize("args,needle", [
    (["--machines", "dgx-h100:x"], "is not an integer"),
    (["--machines", "dgx-h1000:4"], "did you mean"),
    (["--prompt", "dgx-h100:2"], "needs >= 1 prompt and >= 1 token"),
    (["--machines", "dgx-h100:2", "--slo", "ttft:p99:zz"], "--slo"),
])
def test_cli_errors_are_one_line_exit_2(args, needle, capsys):
    from splitplan.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--model", MODEL, "--trace", "rr_code_80_2min.csv", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err and "\n" not in err


def test_accounting_invariants_on_random_clusters(monkeypatch):
    """Random small clusters and bursty workloads, unbounded drain: every request completes and every
    instance ends with no reserved memory, pending tokens, queue or batch (no leaked bookkeeping)."""
    import random

    from splitplan.sim import api

    engines = []

    class Recording(api.Engine):
        def run(self):
            engines.append(self)
            super().run()

    monkeypatch.setattr(api, "Engine", Recording)
    rng = random.Random(5)
    machines = ["dgx-h100", "dgx-a100", "dgx-h100-pcap"]
    for trial in range(8):
        tp = rng.choice([4, 8])
        if trial % 2:
            cluster = baseline_cluster(MODEL, [(rng.choice(machines), rng.randint(1, 2))], tp=tp)
        else:
            cluster = splitwise_cluster(MODEL, [(rng.choice(machines), 1)], [(rng.choice(machines), rng.randint(1, 2))],
                                        mixed=[("dgx-h100", 1)] if trial == 4 else (), tp=tp)
        gen = np.random.default_rng(trial)
        n = 250
        w = Workload(np.sort(gen.uniform(0, 4.0, n)), gen.integers(1, 6000, n), gen.integers(1, 400, n))
        r = simulate(cluster, w, config=SimConfig(drain_min_s=1e6),
                     perf=PerfSettings(scheduling=(("max_batched_tokens", int(rng.choice([512, 2048]))),)))
        assert r.requests.completed.all(), cluster.label()
        assert (r.requests.e2e_s >= r.requests.ttft_s).all() and (r.requests.ttft_s > 0).all()
        for inst in engines[-1].insts:
            assert (inst.kv_used, inst.sched_mem, inst.sched_pending, inst.sched_queue_tokens, inst.B) == (0, 0, 0, 0, 0)
            assert not (inst.pq or inst.wait or inst.blocked or inst.active)


def test_seed_folders_publish_all_at_once(tmp_path, conv):
    from splitplan.sim.result import SeedFolders
    from splitplan.workload import poisson_workload

    cluster = baseline_cluster(MODEL, [("dgx-h100", 1)])
    out = tmp_path / "sims"
    with SeedFolders(out) as folders:
        for seed in (0, 1):
            folders.write(f"seed_{seed}", simulate(cluster, poisson_workload(conv, 2.0, 5.0, seed)))
            assert not out.exists()  # nothing visible until every seed is done
        folders.publish()
    assert sorted(p.name for p in out.iterdir()) == ["seed_0", "seed_1"]
    assert [p.name for p in tmp_path.iterdir()] == ["sims"]
    with SeedFolders(out):  # interrupted before publish: the earlier folder stays as it was
        pass
    assert sorted(p.name for p in out.iterdir()) == ["seed_0", "seed_1"]
    assert [p.name for p in tmp_path.iterdir()] == ["sims"]
