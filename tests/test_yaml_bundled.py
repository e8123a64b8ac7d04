"""The bundled profiles are parsed by libyaml when PyYAML has it: it must read exactly what the
pure-Python parser (the one user files go through) reads, and user files must keep that parser."""

from __future__ import annotations

import math

import pytest

from splitplan import yaml_io
from splitplan.errors import SplitplanError
from splitplan.resources import bundled_profiles_dir

BUNDLED = sorted(bundled_profiles_dir().rglob("*.yaml"))


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) and type(a[k]) is type(b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) and type(x) is type(y) for x, y in zip(a, b))
    return a == b and type(a) is type(b)


@pytest.mark.skipif(not yaml_io.has_fast_loader(), reason="PyYAML built without libyaml")
@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_libyaml_reads_every_bundled_file_as_the_python_parser_does(path):
    text = path.read_text(encoding="utf-8-sig")
    assert _same(yaml_io.load_yaml_text(text, str(path)), yaml_io.load_yaml_text(text, str(path), bundled=True))


def test_only_bundled_files_take_the_fast_parser(tmp_path):
    assert BUNDLED and all(yaml_io._is_bundled(p) for p in BUNDLED)
    user = tmp_path / "gpus.yaml"
    user.write_text("a: [" * 20000)
    assert not yaml_io._is_bundled(user)
    with pytest.raises(SplitplanError, match="gpus.yaml"):  # a one-line error, not a crash in C
        yaml_io.read_yaml(user)


def test_exponent_floats_in_both_parsers():
    for bundled in (False, True):
        assert yaml_io.load_yaml_text("x: 1e9\ny: -2.5E-3\n", "t", bundled=bundled) == {"x": 1e9, "y": -2.5e-3}
