"""What a batch's report files cost the kernel, apart from any grading.

    python bench/files.py [--namespaces 3000] [--files 2] [--rounds 4] [--dir DIR]

Per round: a fresh directory of N namespace directories with ``--files`` files each (a JUnit
file and ``results.json``: one exercise), written twice over, alternately:

* ``grader``: ``grader.atomic.write_atomic_dirs``, as ``--out`` writes them (each namespace's
  directory built under a hidden name, one ``syncfs`` for the contents, renames, one ``syncfs``
  for the renames);
* ``bare``: ``open(O_CREAT|O_EXCL)``, ``write``, ``close`` -- the least any layout of these files
  could cost, with no atomicity and no flush.

Prints user and system CPU seconds per round. Why it exists: the grader's system CPU varied 3×
between runs on identical data. ``--delete-first N`` shows why: it creates and deletes N
namespaces' files before the rounds, as a benchmark that cleans up its last run does. On this
machine's ext4 (no journal) the kernel then avoids reusing the freed inodes, checking each one's
inode block on every creation (``perf``: 60 % of the system time in ``recently_deleted``), and
the next creations cost up to 20× the system CPU (bench/RESULTS.md).

    python bench/files.py --rounds 3 --delete-first 6000
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grader.atomic import write_atomic_dirs  # noqa: E402

PAYLOAD = "x" * 1500   # about a JUnit file's size for one exercise


def grader_way(root: Path, n: int, files: int) -> None:
    write_atomic_dirs(root, [(f"student-{i:05d}", [(f"f{j}.xml", PAYLOAD) for j in range(files)]) for i in range(n)])


def bare_way(root: Path, n: int, files: int) -> None:
    data = PAYLOAD.encode()
    for i in range(n):
        d = root / f"student-{i:05d}"
        os.mkdir(d)
        for j in range(files):
            fd = os.open(d / f"f{j}.xml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.close(fd)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--namespaces", type=int, default=3000)
    p.add_argument("--files", type=int, default=2)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--dir", help="where to write (default: a temp directory)")
    p.add_argument("--delete-first", type=int, default=0, metavar="N",
                   help="create and delete N namespaces' files before the rounds")
    a = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-files-", dir=a.dir))
    print(f"load average {os.getloadavg()[0]:.2f}; {a.namespaces} namespaces × {a.files} files in {base}")
    try:
        if a.delete_first:
            (base / "deleted").mkdir()
            bare_way(base / "deleted", a.delete_first, a.files)
            shutil.rmtree(base / "deleted")
            print(f"created and deleted {a.delete_first} namespaces' files first")
        for r in range(a.rounds):
            for label, way in (("grader", grader_way), ("bare", bare_way)):
                root = base / f"{label}{r}"
                root.mkdir()
                before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
                way(root, a.namespaces, a.files)
                after = resource.getrusage(resource.RUSAGE_SELF)
                user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
                print(f"round {r} {label:6s}: user {user:.2f} s, sys {system:.2f} s, wall {time.monotonic() - started:.2f} s "
                      f"({1e6 * (user + system) / a.namespaces:.0f} µs per namespace)", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
