"""write_atomic: whole files or none, readable like any file created plainly (sweep tables, reports, memo)."""

from __future__ import annotations

import os

import pytest

from splitplan.atomic_io import write_atomic


def test_text_and_bytes_land_whole_with_plain_permissions(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("x")
    write_atomic(tmp_path / "a.csv", "é,1\n")
    write_atomic(tmp_path / "b.png", b"\x89PNG")
    assert (tmp_path / "a.csv").read_text(encoding="utf-8") == "é,1\n"
    assert (tmp_path / "b.png").read_bytes() == b"\x89PNG"
    for name in ("a.csv", "b.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.png", "plain"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "sweep.csv"
    target.write_text("old\n")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        write_atomic(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["sweep.csv"]
