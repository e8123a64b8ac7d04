"""The parse cache of bundled YAML files (splitplan/yaml_cache.py): a hit gives exactly what a fresh
parse gives, a bad entry or an unusable folder falls back to parsing, `off` turns it off, and a user's
file is never cached (nor served from the cache)."""

from __future__ import annotations

import datetime
import json
import math
import os
import shutil
from pathlib import Path

import pytest

from splitplan import yaml_cache, yaml_io
from splitplan.catalog import load_catalog
from splitplan.resources import bundled_profiles_dir

BUNDLED = sorted(bundled_profiles_dir().rglob("*.yaml"))
_PARSE = yaml_io.load_yaml_text  # the parser itself, before any test counts its calls


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(folder))
    return folder


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources yaml_io parses from now on (a cache hit parses nothing)."""
    seen: list[str] = []

    def counting(text: str, source: str, bundled: bool = False):
        seen.append(source)
        return _PARSE(text, source, bundled)

    monkeypatch.setattr(yaml_io, "load_yaml_text", counting)
    return seen


def _fresh(path: Path):
    """What the parser itself makes of a bundled file (no cache involved)."""
    return _PARSE(path.read_text(encoding="utf-8-sig"), str(path), bundled=True)


def _same(a, b) -> bool:
    """Equal with identical types all the way down, dict keys in the same order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: str(p.relative_to(bundled_profiles_dir())))
def test_a_hit_gives_what_a_fresh_parse_gives(path: Path, cache: Path, parses: list[str]) -> None:
    first = yaml_io.read_yaml(path)
    assert parses == [str(path)]
    assert len(_entries(cache)) == 1, "every bundled file is JSON data, so each one must be cached"
    second = yaml_io.read_yaml(path)
    assert parses == [str(path)], "the second read parsed the file again instead of using the cache"
    fresh = _fresh(path)
    assert _same(first, fresh) and _same(second, fresh)
    assert second is not first  # a caller that edits its copy does not edit the next caller's


def test_the_catalog_from_the_cache_equals_the_parsed_one(cache: Path, parses: list[str]) -> None:
    cold = load_catalog()
    assert len(parses) == 3 and len(_entries(cache)) == 3
    warm = load_catalog()
    assert len(parses) == 3
    assert warm == cold
    for table in ("gpus", "machines", "models"):
        assert [dict(e.sources) for e in getattr(warm, table).values()] == \
            [dict(e.sources) for e in getattr(cold, table).values()]


def test_an_edited_file_is_a_miss(tmp_path: Path, cache: Path, parses: list[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is the file's bytes: a changed bundled file is parsed again, never served stale."""
    profiles = tmp_path / "profiles"
    shutil.copytree(bundled_profiles_dir(), profiles)
    monkeypatch.setattr(yaml_io, "_is_bundled", lambda p: Path(p).resolve().is_relative_to(profiles))
    gpus = profiles / "gpus.yaml"
    before = yaml_io.read_yaml(gpus)
    gpus.write_text(gpus.read_text().replace("tdp_w: 700", "tdp_w: 701", 1))
    after = yaml_io.read_yaml(gpus)
    assert len(parses) == 2 and len(_entries(cache)) == 2
    assert after != before and _same(after, _fresh(gpus))


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"format": "splitplan-yaml-cache/1", "da',
                                     b"\xff\xfe\x00garbage", b"[1, 2, 3]", b'{"format": "other", "data": {}}',
                                     b'{"format": "splitplan-yaml-cache/1"}', b"[" * 100_000],
                         ids=["empty", "not-json", "truncated", "binary", "not-an-entry", "other-format", "no-data",
                              "too-deep"])
def test_a_corrupt_entry_falls_back_to_parsing(content: bytes, cache: Path, parses: list[str]) -> None:
    path = bundled_profiles_dir() / "gpus.yaml"
    yaml_io.read_yaml(path)
    (entry,) = _entries(cache)
    entry.write_bytes(content)
    data = yaml_io.read_yaml(path)
    assert parses == [str(path)] * 2
    assert _same(data, _fresh(path))
    assert json.loads(entry.read_bytes())["data"] == data  # the fresh parse replaced the bad entry


def test_an_unusable_cache_folder_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             parses: list[str]) -> None:
    """A cache "folder" that is a file, and an entry that is a folder: every read parses, silently."""
    path = bundled_profiles_dir() / "gpus.yaml"
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(not_a_folder))
    assert _same(yaml_io.read_yaml(path), _fresh(path))
    folder = tmp_path / "cache"
    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(folder))
    yaml_io.read_yaml(path)
    (entry,) = _entries(folder)
    entry.unlink()
    entry.mkdir()
    assert _same(yaml_io.read_yaml(path), _fresh(path))
    assert len(parses) == 3
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_off_disables_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parses: list[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for value in ("off", "OFF"):
        monkeypatch.setenv(yaml_cache.CACHE_ENV, value)
        assert yaml_cache.cache_dir() is None
        for _ in range(2):
            yaml_io.read_yaml(bundled_profiles_dir() / "gpus.yaml")
    assert len(parses) == 4
    assert not any(tmp_path.rglob("*")), sorted(tmp_path.rglob("*"))
    assert not (Path.cwd() / "off").exists()


def test_where_the_cache_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv(yaml_cache.CACHE_ENV, str(tmp_path / "mine"))
    assert yaml_cache.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(yaml_cache.CACHE_ENV, "~/c")
    assert yaml_cache.cache_dir() == tmp_path / "home" / "c"
    monkeypatch.delenv(yaml_cache.CACHE_ENV)
    assert yaml_cache.cache_dir() == tmp_path / "xdg" / "splitplan"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # the XDG spec says to ignore a relative value
    assert yaml_cache.cache_dir() == tmp_path / "home" / ".cache" / "splitplan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert yaml_cache.cache_dir() == tmp_path / "home" / ".cache" / "splitplan"


def test_a_users_file_is_never_cached(tmp_path: Path, cache: Path, parses: list[str]) -> None:
    """Neither stored nor served: not even a byte-for-byte copy of a bundled file whose entry exists."""
    bundled = bundled_profiles_dir() / "gpus.yaml"
    yaml_io.read_yaml(bundled)
    assert len(_entries(cache)) == 1
    user = tmp_path / "gpus.yaml"
    shutil.copy(bundled, user)
    own = tmp_path / "scenario.yaml"
    own.write_text("name: mine\nrate: 1e9\n")
    for path in (user, own, user, own):
        yaml_io.read_yaml(path)
    assert parses == [str(bundled), str(user), str(own), str(user), str(own)]
    assert len(_entries(cache)) == 1
    load_catalog([user], include_bundled=False)  # the --catalog FILE path, too
    assert parses[-1] == str(user) and len(_entries(cache)) == 1


@pytest.mark.parametrize("data", [{"d": datetime.date(2024, 1, 1)}, {1: "int key"}, {"t": (1, 2)},
                                  {"x": float("nan")}, {"b": b"bytes"}, {"s": {1, 2}}, None],
                         ids=["date", "int-key", "tuple", "nan", "bytes", "set", "none"])
def test_data_json_would_change_is_not_stored(data, cache: Path) -> None:
    assert not yaml_cache.store(b"some file", data)
    assert yaml_cache.load(b"some file") is None
    assert not _entries(cache)


def test_json_data_round_trips_with_its_types(cache: Path) -> None:
    data = {"i": 1, "f": 1.0, "b": True, "n": None, "big": 10**30, "inf": float("inf"), "s": "h100 \u00e9\u2603",
            "l": [1, 2.5, "x", [], {}], "order": {"z": 1, "a": 2}}
    assert yaml_cache.store(b"some file", data)
    back = yaml_cache.load(b"some file")
    assert _same(back, data) and list(back["order"]) == ["z", "a"]
    assert yaml_cache.load(b"some other file") is None


def test_entries_are_written_atomically(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry appears by os.replace of a finished temporary file; a failed replace leaves nothing."""
    calls: list[tuple[str, str]] = []

    def failing_replace(src, dst):
        calls.append((str(src), str(dst)))
        assert Path(src).read_bytes().endswith(b"}")  # complete before it is moved into place
        raise OSError("simulated")

    monkeypatch.setattr(os, "replace", failing_replace)
    assert not yaml_cache.store(b"some file", {"a": 1})
    assert len(calls) == 1 and Path(calls[0][1]).parent == cache
    assert not any(cache.iterdir())
