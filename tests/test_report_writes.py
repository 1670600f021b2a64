"""Batch report writing: a chunk's files appear whole and in order, keep their mode, and an
interrupted write leaves neither temp files nor half a chunk's renames before its contents."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.reports import write_atomic_batch, write_atomic_many


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*") if p.is_file())


def test_a_chunk_is_written_whole_with_modes_kept(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    old = tmp_path / "a" / "results.json"
    old.write_text("old")
    old.chmod(0o600)
    files = [(tmp_path / "a" / "ex1.xml", "<testsuites/>"), (tmp_path / "a" / "results.json", "{}"),
             (tmp_path / "b" / "ex1.xml", b"\xe6\x97\xa5"), (tmp_path / "b" / "results.json", "{\"日\": 1}")]
    write_atomic_batch(files)
    assert _names(tmp_path) == ["ex1.xml", "ex1.xml", "results.json", "results.json"]   # no temp file left
    assert old.read_text() == "{}" and old.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "b" / "ex1.xml").read_bytes() == b"\xe6\x97\xa5"
    assert (tmp_path / "b" / "ex1.xml").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b" / "results.json").read_text(encoding="utf-8") == "{\"日\": 1}"


def test_a_write_that_fails_midway_renames_nothing_and_leaves_no_temp_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text("earlier run")
    files = [(tmp_path / "a" / "ex1.xml", "<testsuites/>"), (tmp_path / "a" / "results.json", "{}"),
             (tmp_path / "missing-dir" / "ex1.xml", "x")]
    with pytest.raises(OSError):
        write_atomic_batch(files)
    assert _names(tmp_path) == ["results.json"]
    assert (tmp_path / "a" / "results.json").read_text() == "earlier run"


def test_several_files_of_one_directory(tmp_path):
    write_atomic_many(tmp_path, [("a", "1"), ("b", b"2")])
    assert [p.read_text() for p in sorted(tmp_path.iterdir())] == ["1", "2"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
