"""Where the bundled data lives: catalogs, kernels and serving stacks (profiles/), scenarios and traces (scenarios/).

In the repository these are the top-level folders `profiles/` and `scenarios/`. pyproject.toml maps them to
the packages `splitplan.profiles` and `splitplan.scenarios` (each folder holds an `__init__.py` for that
reason), so a wheel carries them as `splitplan/profiles/` and `splitplan/scenarios/`, and an editable
install's import hook points those packages at the repository's folders. Either way they are found here,
from the import system's own answer (`importlib.util.find_spec`: the folder the package would be imported
from), never by walking up from a source file. Not through `importlib.resources`: importing it costs ~10 ms
(it loads tempfile, shutil, zipfile, bz2 and lzma), which every command would pay at start-up to learn a
folder name. This module is the only place that knows where bundled data is; everything else asks it.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import splitplan

PROFILES_ENV = "SPLITPLAN_PROFILES"  # a folder with gpus/machines/models.yaml to use instead of the bundled one
PROFILES_PACKAGE = "splitplan.profiles"
SCENARIOS_PACKAGE = "splitplan.scenarios"


@functools.cache
def _package_dir(package: str) -> Path:
    """The folder of a data package. A broken install (package missing) yields the folder where the data
    should be, so the first file read fails with a one-line "file not found" naming it, not a traceback."""
    spec = importlib.util.find_spec(package)
    # The data packages are regular packages (an __init__.py each), so the spec names exactly one folder:
    # pip installs wheels unpacked and editable installs point at the repository, so it is a real folder.
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:  # missing, or a module rather than a package: data is not where it should be
        return Path(splitplan.__file__).resolve().parent / package.rpartition(".")[2]
    return Path(locations[0])


def bundled_profiles_dir() -> Path:
    """The catalogs, stacks and measured profiles shipped with splitplan (ignores the override)."""
    return _package_dir(PROFILES_PACKAGE)


def profiles_dir() -> Path:
    """The catalog folder in use: $SPLITPLAN_PROFILES when set, else the bundled one."""
    override = os.environ.get(PROFILES_ENV)
    return Path(override).expanduser() if override else bundled_profiles_dir()


def scenarios_dir() -> Path:
    """The scenario files shipped with splitplan (quickstart, examples, the paper's studies)."""
    return _package_dir(SCENARIOS_PACKAGE)


def traces_dir() -> Path:
    """The bundled workload traces (Azure 2023 and request-rate samples)."""
    return scenarios_dir() / "traces"


def locate_bundled(raw: str | Path) -> Path:
    """A path as given when it exists; otherwise the bundled scenario file or folder it names, if any.

    So `splitplan optimize quickstart.yaml` and `splitplan optimize scenarios/quickstart.yaml` work from any
    folder once installed. A path that exists, an absolute one, or one with no bundled match is returned
    unchanged, so the caller's "not found" message names what the user typed."""
    path = Path(raw).expanduser()
    if path.exists() or path.is_absolute():
        return path
    parts = path.parts
    candidates = [scenarios_dir() / path]
    if parts and parts[0] == "scenarios":
        candidates.insert(0, scenarios_dir().joinpath(*parts[1:]))
    return next((c for c in candidates if c.exists()), path)
