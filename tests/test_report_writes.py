"""Batch report writing: a chunk's namespace directories appear whole, existing files are
replaced in order and keep their mode, names that are not plain directories are refused, and an
interrupted write leaves neither staged directories nor temp files, and what a killed writer
left is swept once it is old."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import grader.atomic
from grader.reports import sweep_stale, write_atomic_dirs, write_atomic_many


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*") if p.is_file())


def _hidden(d: Path) -> list[str]:
    return [str(p.relative_to(d)) for p in d.rglob(".*")]


def test_new_and_existing_directories_are_written_whole_with_modes_kept(tmp_path):
    (tmp_path / "a").mkdir()
    old = tmp_path / "a" / "results.json"
    old.write_text("old")
    old.chmod(0o600)
    write_atomic_dirs(tmp_path, [("a", [("ex1.xml", "<testsuites/>"), ("results.json", "{}")]),
                                 ("b", [("ex1.xml", b"\xe6\x97\xa5"), ("results.json", "{\"日\": 1}")])])
    assert _names(tmp_path) == ["ex1.xml", "ex1.xml", "results.json", "results.json"]
    assert _hidden(tmp_path) == []                  # no staged directory, no temp file left
    assert old.read_text() == "{}" and old.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "b" / "ex1.xml").read_bytes() == b"\xe6\x97\xa5"
    assert (tmp_path / "b" / "ex1.xml").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b" / "results.json").read_text(encoding="utf-8") == "{\"日\": 1}"


def test_a_write_that_fails_midway_renames_nothing_and_leaves_nothing_behind(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "results.json").write_text("earlier run")
    with pytest.raises(OSError):
        write_atomic_dirs(tmp_path, [("a", [("ex1.xml", "<testsuites/>"), ("results.json", "{}")]),
                                     ("b", [("ex1.xml", "x"), ("results.json", "{}")]),
                                     ("c", [("missing-dir/ex1.xml", "x")])])
    assert _names(tmp_path) == ["results.json"]
    assert (tmp_path / "a" / "results.json").read_text() == "earlier run"
    assert sorted(os.listdir(tmp_path)) == ["a"]    # b was staged, never shown, and removed


@pytest.mark.parametrize("kind", ["link-to-a-directory", "file"])
def test_a_name_that_is_not_a_plain_directory_is_refused_and_nothing_is_written(tmp_path, kind):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    if kind == "file":
        (out / "evil").write_text("not a directory")
    else:
        (out / "evil").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ValueError, match="evil"):
        write_atomic_dirs(out, [("ok", [("results.json", "{}")]), ("evil", [("results.json", "{}")])])
    assert sorted(os.listdir(out)) == ["evil"] and os.listdir(elsewhere) == []


def test_a_directory_made_by_someone_else_meanwhile_gets_the_files_one_by_one(tmp_path, monkeypatch):
    fill = grader.atomic._fill

    def fill_then_race(root_fd, directory, files):   # another writer makes the same directory
        fill(root_fd, directory, files)
        (tmp_path / "b").mkdir()
        (tmp_path / "b" / "theirs.txt").write_text("theirs")

    monkeypatch.setattr(grader.atomic, "_fill", fill_then_race)
    write_atomic_dirs(tmp_path, [("b", [("ex1.xml", "mine"), ("results.json", "{}")])])
    assert sorted(os.listdir(tmp_path / "b")) == ["ex1.xml", "results.json", "theirs.txt"]
    assert (tmp_path / "b" / "ex1.xml").read_text() == "mine" and _hidden(tmp_path) == []


def test_several_files_of_one_directory(tmp_path):
    write_atomic_many(tmp_path, [("a", "1"), ("b", b"2")])
    assert [p.read_text() for p in sorted(tmp_path.iterdir())] == ["1", "2"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]


# A writer killed with SIGKILL at the worst moment: after its files are written, before any rename.
_KILLED_WRITER = r"""
import os, signal, sys
from pathlib import Path
import grader.atomic as atomic
die = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
root = Path(sys.argv[1])
if sys.argv[2] == "staged":
    atomic._SYNCFS = die
    atomic.write_atomic_dirs(root, [("alice", [("ex1.xml", "<testsuites/>"), ("results.json", "{}")])])
else:
    os.fsync = die
    atomic.write_atomic(root / "gradebook.csv", "namespace,score")
"""


def killed_writer_leftovers(root: Path) -> list[str]:
    """Run the real writer in a child and kill it mid-write: what it leaves in ``root``."""
    for stage in ("staged", "temp"):
        child = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(root), stage],
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert child.returncode == -signal.SIGKILL
    return sorted(os.listdir(root))


def test_what_a_killed_writer_left_is_swept_once_it_is_old_and_nothing_else(tmp_path):
    (tmp_path / "bob").mkdir()
    (tmp_path / ".notes.tmp").write_text("the instructor's")        # hidden, .tmp, not named as we name ours
    mixed = tmp_path / ".carol.123-0.tmp"                             # named like ours, holding a file of someone else
    mixed.mkdir()
    (mixed / "theirs.txt").write_text("x")
    left = killed_writer_leftovers(tmp_path)
    ours = [n for n in left if n not in ("bob", ".notes.tmp", ".carol.123-0.tmp")]
    assert len(ours) == 2 and ours[0].startswith(".alice.") and ours[1].startswith(".gradebook.csv."), left
    old = time.time() - 3600
    for name in (".notes.tmp", ".carol.123-0.tmp"):
        os.utime(tmp_path / name, (old, old))

    assert sweep_stale(tmp_path) == []                                # fresh: maybe a live writer's
    assert sorted(sweep_stale(tmp_path, now=time.time() + 601)) == ours
    assert sorted(os.listdir(tmp_path)) == [".carol.123-0.tmp", ".notes.tmp", "bob"]
    assert (mixed / "theirs.txt").read_text() == "x"
