"""What a clone of the repository must not carry or need: absolute paths of a developer's machine, and
benchmark scripts that fail without the project's reference folder (../shared, not in a clone)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(?<![\w.$~-])/(?:work|root|home|tmp|Users|mnt)/")
SKIP_DIRS = {".git", ".venv", "venv", ".hypothesis", "__pycache__", ".pytest_cache", "build", "dist", "out"}
# Lines that name such a path as a pattern, not as a location: (file, what the line must contain).
ALLOWED = {("benchmarks/gpu/collect_runs.py", "/tmp/")}


def repository_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        files = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        files = [p for p in ROOT.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    return [p for p in files if p.is_file()]


def test_no_absolute_path_of_a_developer_machine():
    this = Path(__file__).resolve()
    found = []
    for path in repository_files():
        if path.resolve() == this:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files
        rel = path.relative_to(ROOT).as_posix()
        for n, line in enumerate(text.splitlines(), 1):
            match = MACHINE_PATH.search(line)
            if match and not any(rel == f and pat in line for f, pat in ALLOWED if pat == match.group(0)):
                found.append(f"{rel}:{n}: {line.strip()[:100]}")
    assert not found, "absolute machine paths:\n" + "\n".join(found)


def test_the_path_check_catches_one(tmp_path):
    assert MACHINE_PATH.search("see `/work/shared/reference/splitwise.md`")
    assert MACHINE_PATH.search("--out /tmp/repro.md") and MACHINE_PATH.search('"/home/alice/x"')
    assert not MACHINE_PATH.search("shared/reference/x.md, $TMPDIR/site, out/tmp/x, ~/home/x")


def _load(script: str):
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / "benchmarks" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script, attr", [("sim_fidelity.py", "REFERENCE"), ("slo_reference_check.py", "VALIDATION")])
def test_benchmarks_without_reference_data_skip_in_one_line(script, attr, tmp_path, capsys):
    module = _load(script)
    setattr(module, attr, tmp_path / "splitwisesim-validation")  # what a clone has: nothing there
    assert module.main() == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("skipped:") and "clone" in out[0]
