"""Suite-wide setup: the parse cache of bundled YAML files (splitplan/yaml_cache.py) lives in a temporary
folder for the whole session, so the tests never write to the user's ~/.cache (or $XDG_CACHE_HOME).

Set in pytest_configure, before collection: test modules load the catalog at import time, and the
commands the tests run in subprocesses inherit the variable."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from splitplan.yaml_cache import CACHE_ENV

_saved: dict[str, str | None] = {}


def pytest_configure(config: pytest.Config) -> None:
    _saved["value"] = os.environ.get(CACHE_ENV)
    _saved["folder"] = tempfile.mkdtemp(prefix="splitplan-test-cache-")
    os.environ[CACHE_ENV] = _saved["folder"]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = _saved.pop("folder", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    previous = _saved.pop("value", None)
    if previous is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = previous
