"""The documentation's promises: the example catalog works, field tables are complete, links resolve,
and the Python API guide's snippet runs."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from splitplan.catalog import GPU, Machine, Model, load_catalog

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLE_CATALOG = DOCS / "examples" / "my_catalog.yaml"


def test_example_catalog_adds_and_overrides_entries():
    catalog = load_catalog([EXAMPLE_CATALOG])
    assert catalog.gpu("h20-96gb").hbm_gb == 96
    assert catalog.machine("hgx-h20").gpu == "h20"
    assert catalog.machine("hgx-h20-cap60").is_power_capped
    assert catalog.machine("a100-80gb").cost_usd_per_h == 14.0  # the override keeps the alias working
    assert load_catalog().machine("dgx-a100").cost_usd_per_h == 17.6  # bundled files untouched
    qwen = catalog.model("qwen2-72b")
    assert abs(qwen.params / 1e9 - 72.7) < 0.05 and qwen.kv_bytes_per_token == 320 * 1024


def test_example_catalog_machines_run_the_example_model():
    from splitplan.cluster import splitwise_cluster
    from splitplan.perf import build_perf_model

    catalog = load_catalog([EXAMPLE_CATALOG])
    cluster = splitwise_cluster("qwen2-72b", [("dgx-h100", 1)], [("hgx-h20", 1)]).validate(catalog)
    assert cluster.machine_count() == 2
    perf = build_perf_model("qwen2-72b", "hgx-h20", catalog=catalog)
    assert "calibrated on hopper" in perf.provenance  # an H20 is a Hopper GPU: the doc tells users to expect this
    assert perf.prefill_ms(1, 1024, 1024 ** 2) > 0 and perf.kv_capacity_tokens() > 100_000


@pytest.mark.parametrize("cls, heading", [(GPU, "### gpus"), (Machine, "### machines"), (Model, "### models")])
def test_hardware_doc_lists_every_catalog_field(cls, heading):
    text = (DOCS / "adding-hardware-and-models.md").read_text()
    section = text.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z0-9_]+)`", section))
    missing = {f.name for f in dataclasses.fields(cls)} - documented
    assert not missing, f"{heading} in adding-hardware-and-models.md does not document {sorted(missing)}"


def test_relative_links_in_docs_resolve():
    broken = []
    for page in sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, f"broken links: {broken}"


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.M | re.S)


def test_python_api_page_runs(tmp_path, monkeypatch, capsys):
    """docs/python-api.md's blocks, run in order as one script (what the page promises)."""
    blocks = python_blocks(DOCS / "python-api.md")
    assert len(blocks) == 4
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), "docs/python-api.md", "exec"), {"__name__": "__docs__"})
    printed = capsys.readouterr().out
    assert "stack vllm-2023 (vllm 0.1 - 0.2): calibrated on hopper" in printed and "KV cache: 320 KiB/token" in printed
    assert "all SLOs met: True" in printed and "max rate meeting every SLO" in printed
    assert printed.count("limited by") == 2
    assert (tmp_path / "out" / "api-demo" / "report.html").is_file()
    assert (tmp_path / "out" / "api-sim" / "summary.json").is_file()


def test_calibration_example_profile_reads():
    from splitplan.perf.profile_io import read_profile

    profile = read_profile(DOCS / "examples" / "h100_runs_long.csv")
    assert profile.fmt == "long" and len(profile.rows) == 52
    assert set(profile.rows["phase"]) == {"prefill", "decode"} and set(profile.rows["tp"]) == {4, 8}


MY_PAGES = ("user-guide.md", "adding-hardware-and-models.md", "calibration.md", "python-api.md", "distributed.md")


def doc_command_lines(page: Path) -> list[str]:
    """`splitplan ...` lines of the page's code blocks ('$ ' prompts and line continuations handled)."""
    lines: list[str] = []
    for block in re.findall(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", page.read_text(), flags=re.M | re.S):
        pending = ""
        for raw in block.splitlines():
            line = pending + raw.strip().removeprefix("$ ")
            if line.endswith("\\"):
                pending = line[:-1].rstrip() + " "
                continue
            pending = ""
            if line.startswith("splitplan "):
                lines.append(line)
    return lines


@pytest.mark.parametrize("page", MY_PAGES)
def test_doc_commands_use_existing_commands_and_options(page):
    from splitplan.cli.main import cli
    from test_help_examples import check_argv, example_commands

    lines = doc_command_lines(DOCS / page)
    assert lines or page == "python-api.md"
    problems = [f"`{line}`: {message}" for line in lines for argv in example_commands(line)
                if (message := check_argv(cli, argv))]
    assert not problems, problems
