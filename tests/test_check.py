"""`splitplan check`: the fast scenarios pass on main, perturbed perf data fails them, files and errors.

The simulated tests run scenarios/splitwise/isopower-coding-small.yaml (about 4 s of CPU per mode);
everything else works on small hand-written files without simulating.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from splitplan.check import (CheckSpec, ModeOutcome, PerfFlags, _expect_block, discover, load_check_spec,
                             mode_perf, run_check, update_file)
from splitplan.cli.main import main
from splitplan.errors import SplitplanError
from splitplan.scenario import Expectation, ExpectationResult

REPO = Path(__file__).resolve().parent.parent
STUDIES = REPO / "scenarios" / "splitwise"
SMALL = STUDIES / "isopower-coding-small.yaml"
STACKS = REPO / "profiles" / "stacks"
PROFILE = REPO / "profiles" / "measured" / "splitwisesim_perf_model.csv"


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return exc.value.code


# ---------------------------------------------------------------- simulated: the regression gate works
def test_fast_scenarios_pass_on_main(capsys):
    """What CI runs: every fast study, both modes, within tolerance; the slow ones are skipped."""
    assert run_cli(["check", str(STUDIES), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "expectations hold" in out and "slow scenario(s)" in out


def test_perturbed_stack_is_caught(tmp_path, capsys):
    """The paper's stack with its Hopper GEMM (compute) efficiency halved: the H100 designs lose
    throughput, check exits 1."""
    data = yaml.safe_load((STACKS / "vllm-2023.yaml").read_text())
    data["arch"]["hopper"]["eta_c_bf16"] *= 0.5
    bad = tmp_path / "vllm-2023-h100-halved.yaml"
    bad.write_text(yaml.safe_dump(data))
    code = run_cli(["check", str(SMALL), "--mode", "analytic", "--quiet", "--stack", str(bad)])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "designs.Splitwise-HH.throughput_rps" in out


def test_perturbed_profile_is_caught(tmp_path):
    """The measured profile with H100 prompt times doubled: the compat run leaves its tolerances."""
    bad = tmp_path / "profile.csv"
    with PROFILE.open() as src, bad.open("w", newline="") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames, lineterminator="\n")
        writer.writeheader()
        for row in reader:
            if row["hardware"] == "h100-80gb":
                row["prompt_time"] = str(float(row["prompt_time"]) * 2.0)
            writer.writerow(row)
    report = run_check([SMALL], modes=("default",), flags=PerfFlags(profile=str(bad)))
    assert not report.passed
    failed = {r.expectation.path for o in report.outcomes for r in o.failed}
    assert "designs.Baseline-H100.throughput_rps" in failed


# ---------------------------------------------------------------- reading files (no simulation)
BASE = {
    "model": "llama2-70b",
    "workload": {"trace": "rr_code_80_2min.csv", "duration_s": 10},
    "designs": [{"name": "Baseline-H100", "kind": "baseline", "machines": ["dgx-h100"]}],
    "constraints": {"power_kw": 50},
    "expect": [{"path": "designs.Baseline-H100.throughput_rps", "value": 5.0, "rel_tol": 0.1}],
}


def write(tmp_path: Path, name: str = "s.yaml", **changes) -> Path:
    data = yaml.safe_load(yaml.safe_dump(BASE)) | changes
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_check_section_is_read(tmp_path):
    path = write(tmp_path, check={"slow": True, "robustness": "llama2-7b", "analytic": {
        "overrides": {"min_throughput_rps": 3}, "expect": [{"path": "status", "value": "feasible"}]}})
    spec = load_check_spec(path)
    assert spec.slow and spec.robustness == ("llama2-7b",)
    assert [m.name for m in spec.modes] == ["default", "analytic"]
    assert spec.mode("analytic").overrides == (("min_throughput_rps", 3),)
    assert mode_perf(spec, "analytic").backend == "analytic"


@pytest.mark.parametrize("check, field", [
    ({"slwo": True}, "check.slwo"),
    ({"slow": "yes"}, "check.slow"),
    ({"robustness": [1]}, "check.robustness"),
    ({"analytic": {"expect": [{"path": "x"}]}}, "check.analytic.expect[0].value"),
    ({"analytic": {"overrides": [1]}}, "check.analytic.overrides"),
])
def test_bad_check_section_is_one_line(tmp_path, check, field):
    path = write(tmp_path, check=check)
    with pytest.raises(SplitplanError) as exc:
        load_check_spec(path)
    assert exc.value.field == field and "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_discover_keeps_scenarios_with_expectations(tmp_path):
    write(tmp_path, "a.yaml")
    write(tmp_path, "b.yaml", expect=[])
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "c.yaml")
    (tmp_path / "catalog.yaml").write_text("machines: []\n")
    assert [s.path.name for s in discover([tmp_path])] == ["a.yaml", "c.yaml"]
    assert len(discover([tmp_path], require_expect=False)) == 3


def test_cli_bad_inputs_exit_2(tmp_path, capsys):
    assert run_cli(["check", str(tmp_path / "missing")]) == 2
    assert run_cli(["check", str(write(tmp_path, expect=[]))]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "no scenario with an expect: block" in err


def test_every_study_file_loads_and_fast_ones_are_few():
    specs = discover([STUDIES], require_expect=False)
    traces = ("coding", "conversation")
    expected = {"fig12-hh-coding-70rps", "isopower-coding-small"} | {f"{s}-{t}" for t in traces for s in (
        "isopower", "isocost", "isothroughput-cost", "isothroughput-power")}
    assert {s.path.stem for s in specs} == expected
    assert [s.path.stem for s in specs if not s.slow] == ["isopower-coding-small"]
    assert all(s.mode("analytic") is not None for s in specs)
    pinned = {s.path.stem for s in discover([STUDIES])}
    assert {"fig12-hh-coding-70rps", "isopower-coding", "isopower-coding-small"} <= pinned


# ---------------------------------------------------------------- --update
STUDY_TEXT = """name: s  # a comment that must survive
expect:
  - {path: designs.A.throughput_rps, value: 5.0, rel_tol: 0.1}   # why 10%
  - {path: designs.A.machines, min: 1, max: 4}
check:
  analytic:
    expect:
      - {path: designs.A.throughput_rps, value: 4.0, rel_tol: 0.1}
      - {path: best.label, value: "old label", abs_tol: 0}
"""


def outcome(spec: CheckSpec, mode: str, actual: dict) -> ModeOutcome:
    results = [ExpectationResult(e, actual.get(e.path), False, "") for e in spec.mode(mode).expect]
    return ModeOutcome(spec, mode, None, {}, results, 0.0)


def test_update_rewrites_only_values_in_their_block(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(STUDY_TEXT)
    lines = STUDY_TEXT.splitlines(keepends=True)
    assert _expect_block(lines, "default") == (2, 4)
    assert _expect_block(lines, "analytic") == (7, 9)
    exp = lambda p, v: Expectation(path=p, value=v, rel_tol=0.1)  # noqa: E731
    from splitplan.check import ModeSpec
    spec = CheckSpec(path, None, False, (
        ModeSpec("default", (exp("designs.A.throughput_rps", 5.0), Expectation("designs.A.machines", min=1, max=4))),
        ModeSpec("analytic", (exp("designs.A.throughput_rps", 4.0), Expectation("best.label", value="old label")))))
    n = update_file(path, [outcome(spec, "default", {"designs.A.throughput_rps": 6.25, "designs.A.machines": 9}),
                           outcome(spec, "analytic", {"designs.A.throughput_rps": 3.5, "best.label": 'P "3"'})])
    text = path.read_text()
    assert n == 3
    assert "value: 6.25, rel_tol: 0.1}   # why 10%" in text and "min: 1, max: 4" in text
    assert "- {path: designs.A.throughput_rps, value: 3.5, rel_tol: 0.1}" in text
    assert yaml.safe_load(text)["check"]["analytic"]["expect"][1]["value"] == 'P "3"'
    assert text.startswith("name: s  # a comment that must survive")


def test_update_on_a_copy_of_a_study_keeps_it_loadable(tmp_path):
    copy = tmp_path / SMALL.name
    shutil.copy(SMALL, copy)
    spec = load_check_spec(copy)
    actual = {e.path: 1.0 for e in spec.mode("default").expect}
    assert update_file(copy, [outcome(spec, "default", actual)]) == len(actual) - 1  # token_machines is already 1
    again = load_check_spec(copy)
    assert all(e.value == 1 for e in again.mode("default").expect)
    assert again.mode("analytic").expect == spec.mode("analytic").expect


def test_slow_studies_run_their_analytic_side_only_when_asked(tmp_path, monkeypatch):
    """check --all: slow studies in their own mode; --mode analytic or reproduce: the analytic side too."""
    both = {"analytic": {"expect": [{"path": "status", "value": "feasible"}]}}
    write(tmp_path, "fast.yaml", check=both)
    write(tmp_path, "slow.yaml", check={"slow": True, **both})
    calls = []

    def fake_run_mode(spec, mode, **kwargs):
        calls.append((spec.path.name, mode))
        return ModeOutcome(spec, mode, None, {}, [], 0.0)

    monkeypatch.setattr("splitplan.check.run_mode", fake_run_mode)
    report = run_check([tmp_path])
    assert calls == [("fast.yaml", "default"), ("fast.yaml", "analytic")] and len(report.skipped_slow) == 1
    calls.clear()
    report = run_check([tmp_path], include_slow=True)
    assert calls == [("fast.yaml", "default"), ("fast.yaml", "analytic"), ("slow.yaml", "default")]
    # the slow study's pinned analytic side did not run: the report names it (nothing else re-checks it)
    assert [(p.name, m) for p, m in report.skipped_modes] == [("slow.yaml", "analytic")]
    calls.clear()
    report = run_check([tmp_path], include_slow=True, modes=("analytic",), slow_modes=("analytic",))
    assert calls == [("fast.yaml", "analytic"), ("slow.yaml", "analytic")] and report.skipped_modes == []
    calls.clear()
    report = run_check([tmp_path], include_slow=True, slow_modes=None)
    assert ("slow.yaml", "analytic") in calls and report.skipped_modes == []


def test_check_all_says_which_pinned_modes_it_left_out(tmp_path, monkeypatch, capsys):
    both = {"analytic": {"expect": [{"path": "status", "value": "feasible"}]}}
    write(tmp_path, "slow.yaml", check={"slow": True, **both})
    monkeypatch.setattr("splitplan.check.run_mode", lambda spec, mode, **kw: ModeOutcome(spec, mode, None, {}, [], 0.0))
    with pytest.raises(SystemExit) as done:
        main(["check", str(tmp_path), "--all"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "not run: the analytic expectations of 1 slow scenario(s)" in out
    with pytest.raises(SystemExit):
        main(["check", str(tmp_path), "--all", "--mode", "analytic"])
    assert "not run" not in capsys.readouterr().out
