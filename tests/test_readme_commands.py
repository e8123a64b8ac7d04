"""The README's Quick start, run verbatim in a fresh clone: what a new user types first must work.

Slow (a fresh virtual environment and the quick-start optimization): runs under `make test-all`.
The second README command runs the test suite itself; the inner run is limited to a small subset
through PYTEST_ADDOPTS and skips this test (env guard), so it cannot recurse.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INNER_GUARD = "SPLITPLAN_README_TEST_INNER"
INNER_SUBSET = "-m 'not slow' -k 'test_catalog or test_help_examples'"


def quick_start_commands(readme: str) -> list[str]:
    """The fenced code blocks under '## Quick start', up to the next '## ' heading."""
    match = re.search(r"^## Quick start\s*$(.*?)(?=^## )", readme, flags=re.M | re.S)
    assert match, "README.md has no '## Quick start' section"
    return [block.strip() for block in re.findall(r"^```[^\n]*\n(.*?)^```", match.group(1), flags=re.M | re.S)]


def test_quick_start_has_the_two_commands():
    commands = quick_start_commands((ROOT / "README.md").read_text())
    assert len(commands) == 2
    assert "splitplan optimize" in commands[0] and "pytest" in commands[1]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get(INNER_GUARD) == "1", reason="inside the README's own test command")
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to clone the repository")
def test_readme_commands_work_verbatim_in_a_fresh_clone(tmp_path):
    main_job, test_job = quick_start_commands((ROOT / "README.md").read_text())
    clone = tmp_path / "splitplan"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "PYTEST_"))}

    first = subprocess.run(main_job, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "recommended:" in first.stdout, first.stdout[-3000:]
    assert (clone / "out" / "quickstart" / "plan.json").is_file()

    inner = {**env, INNER_GUARD: "1", "PYTEST_ADDOPTS": INNER_SUBSET}
    second = subprocess.run(test_job, shell=True, cwd=clone, env=inner, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert re.search(r"\d+ passed", second.stdout), second.stdout[-3000:]
