"""The sdist and wheel carry every bundled data file, and an installed wheel works from any folder.

`pip install .` once made a wheel without profiles/ and scenarios/, so every command failed outside the
source tree. These tests build the real distributions (`python -m build`: the sdist, then the wheel from
that sdist, as a user's pip does) from a clean copy of the checkout and install the wheel into a fresh
virtual environment. About 20 s on a 2-core machine; they are in the default suite, marked `packaging`
(`pytest -m 'not packaging'` leaves them out while iterating).
"""

from __future__ import annotations

import email
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement  # a dependency of pytest, so always present here
from packaging.utils import canonicalize_name

from splitplan import resources
from splitplan.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent
DATA_FOLDERS = {"profiles": "splitplan/profiles", "scenarios": "splitplan/scenarios"}  # repository -> wheel
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "out", "__pycache__", "*.pyc", "*.egg-info",
                                    ".pytest_cache", ".hypothesis", "results")


def _data_files() -> list[str]:
    """Every file under the repository's data folders, as a path relative to the repository root."""
    return sorted(str(p.relative_to(ROOT)) for folder in DATA_FOLDERS for p in (ROOT / folder).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def _code_files() -> list[str]:
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "splitplan").rglob("*.py") if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(wheel, sdist) built from a copy of the checkout, so a stale build/ folder cannot leak into them."""
    work = tmp_path_factory.mktemp("dist")
    shutil.copytree(ROOT, work / "src", ignore=NOT_SOURCE)
    proc = subprocess.run([sys.executable, "-m", "build", "--outdir", str(work / "dist"), str(work / "src")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels, sdists = sorted((work / "dist").glob("*.whl")), sorted((work / "dist").glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in (work / "dist").iterdir())
    return wheels[0], sdists[0]


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_every_code_package_is_listed_in_pyproject() -> None:
    """The package list is explicit (find cannot map profiles/ to splitplan.profiles), so a new subpackage of
    splitplan/ left out of it would be missing from the wheel; this fails first."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    code = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "splitplan").rglob("__init__.py")}
    assert code - listed == set()
    assert listed - code == {"splitplan.profiles", "splitplan.scenarios"}


def test_version_comes_from_the_package_metadata() -> None:
    """One number, in pyproject.toml: --version and the report footer read it from the installed metadata."""
    import splitplan

    assert splitplan.__version__ == importlib.metadata.version("splitplan") == _project()["version"]


def test_editable_checkout_reads_the_repository_folders() -> None:
    """In the development install the data packages are the repository's own folders (edits take effect)."""
    assert resources.bundled_profiles_dir() == ROOT / "profiles"
    assert resources.scenarios_dir() == ROOT / "scenarios"
    assert resources.traces_dir() == ROOT / "scenarios" / "traces"
    assert (resources.profiles_dir() / "gpus.yaml").is_file()


def test_a_missing_data_package_names_where_the_data_should_be() -> None:
    """A broken install (no data package) gives the folder the data belongs in, so the first read is a
    one-line "file not found" naming it, not a traceback from the import system."""
    import splitplan
    from splitplan.errors import SplitplanError
    from splitplan.yaml_io import read_yaml

    where = resources._package_dir("splitplan.no_such_data")
    assert where == Path(splitplan.__file__).resolve().parent / "no_such_data"
    assert resources._package_dir("splitplan.errors") == Path(splitplan.__file__).resolve().parent / "errors"  # a module
    with pytest.raises(SplitplanError, match="no_such_data/gpus.yaml: file not found"):
        read_yaml(where / "gpus.yaml")


def test_profiles_override_replaces_the_bundled_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("gpus.yaml", "machines.yaml", "models.yaml"):
        shutil.copy(ROOT / "profiles" / name, tmp_path / name)
    with (tmp_path / "gpus.yaml").open("a") as handle:
        handle.write("\n  - {name: override-gpu, arch: hopper, bf16_tflops: 1, hbm_gb: 1, hbm_gbps: 1, tdp_w: 1}\n")
    assert "override-gpu" not in load_catalog().gpus
    monkeypatch.setenv(resources.PROFILES_ENV, str(tmp_path))
    assert resources.profiles_dir() == tmp_path
    assert "override-gpu" in load_catalog().gpus
    assert resources.bundled_profiles_dir() == ROOT / "profiles"  # bundled traces and profiles stay reachable


@pytest.mark.packaging
def test_wheel_and_sdist_carry_every_data_and_code_file(dists: tuple[Path, Path]) -> None:
    wheel, sdist = dists
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as tar:
        top = tar.getnames()[0].split("/")[0]
        in_sdist = {name.removeprefix(top + "/") for name in tar.getnames()}
    data = _data_files()
    assert len(data) >= 25 and "profiles/measured/splitwisesim_perf_model.csv" in data
    for path in data:
        folder, _, rest = path.partition("/")
        assert f"{DATA_FOLDERS[folder]}/{rest}" in in_wheel, f"{path} missing from the wheel"
        assert path in in_sdist, f"{path} missing from the sdist"
    for path in _code_files():
        assert path in in_wheel and path in in_sdist, f"{path} missing"
    assert not [n for n in in_wheel if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in in_wheel if n.split("/")[0] in ("profiles", "scenarios", "tests")]  # no stray top level


def _runtime_requirements(wheel: Path) -> list[str]:
    """The wheel's own Requires-Dist lines, extras left out."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(meta)).get_all("Requires-Dist") or []


def _closure(requirements: list[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions that satisfy `requirements`, with their own requirements, recursively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        key = canonicalize_name(req.name)
        if key not in found:
            found[key] = importlib.metadata.distribution(req.name)
            todo += found[key].requires or []
    return list(found.values())


def _link_dependencies(dists: list[importlib.metadata.Distribution], site: Path) -> None:
    """Symlink each distribution's top-level entries (packages, modules, .libs, dist-info) into `site`."""
    for dist in dists:
        root = Path(dist.locate_file(""))
        assert dist.files, f"{dist.metadata['Name']} has no RECORD; cannot tell its files"
        for top in sorted({f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}):
            if (root / top).exists() and not (site / top).exists():
                (site / top).symlink_to(root / top)


@pytest.mark.packaging
def test_installed_wheel_works_from_another_folder(dists: tuple[Path, Path], tmp_path: Path) -> None:
    """`pip install` of the wheel into a fresh venv, then real commands with the CWD outside the checkout.

    The venv is created without system site-packages, so nothing of this test environment (in particular
    its editable splitplan, which would find the repository's data) is visible there. Rather than download
    and install numpy, scipy, pandas... again (minutes), the distributions the wheel's metadata declares,
    and what they declare in turn, are symlinked from this environment into the venv's site-packages:
    exactly the declared closure and nothing else, so a dependency the code imports but the metadata
    does not declare still fails here, as it would for a user."""
    wheel, _ = dists
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, timeout=120, capture_output=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    _link_dependencies(_closure(_runtime_requirements(wheel)), site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                                                            resources.PROFILES_ENV)}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        return proc

    where = json.loads(run(str(python), "-c", "import json, splitplan, splitplan.resources as r; print(json.dumps("
                           "[splitplan.__file__, str(r.profiles_dir()), str(r.scenarios_dir())]))").stdout)
    assert all(Path(p).is_relative_to(site / "splitplan") for p in where), where  # the wheel's copy, not ROOT
    version = _project()["version"]
    assert run(str(venv / "bin" / "splitplan"), "--version").stdout.strip() == f"splitplan, version {version}"
    assert "h100" in run(str(venv / "bin" / "splitplan"), "catalog", "gpus").stdout
    # the README's main job, by the bundled scenario's bare name, from a folder with no scenarios/ in it
    run(str(venv / "bin" / "splitplan"), "optimize", "quickstart.yaml", "--out", "out/quickstart", "--quiet")
    plan = json.loads((elsewhere / "out" / "quickstart" / "plan.json").read_text())
    assert plan["status"] == "feasible" and plan["best"], plan.get("status")
