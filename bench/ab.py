"""Two versions of the grader on one filled cluster, run alternately: a change measured against
the code before it at the same moment (this machine's cost for the same work drifts by a third
within an hour, so runs at different moments cannot be compared).

    python bench/ab.py --old 585e61b --exercises all --namespaces 1000 --rounds 5

``--old`` is a git revision, extracted (grader/, exercises/, solutions/) into a temp directory
and byte-compiled, as the working tree is. Each round runs the old tree, then the working tree,
as ``python -m grader EX... --namespace-pattern 'student-*' --out DIR --wait 0 --quiet``
(``grader.__main__`` started from the tree's path), and prints the child's user and system CPU
(``batch.run_measured``); at the end min / median / max of user + sys per version. Reports go
under ``--out-root`` (default: the temp directory), all kept until the end (see bench/batch.py).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from batch import ALL, compile_like_an_install, fill, plan_many, run_measured  # noqa: E402

from grader.cluster import EmbeddedCluster  # noqa: E402
from grader.settings import Settings  # noqa: E402

START = "import runpy, sys; sys.path.insert(0, {tree!r}); sys.argv[0] = 'grade'; runpy.run_module('grader', run_name='__main__')"


def extract(rev: str, into: Path) -> None:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "grader", "exercises", "solutions"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    import compileall
    compileall.compile_dir(str(into / "grader"), quiet=1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--old", required=True, help="git revision to compare the working tree with")
    p.add_argument("--exercises", default="all")
    p.add_argument("--namespaces", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--latency-ms", type=float, default=5.0)
    p.add_argument("--out-root", metavar="DIR", help="where the runs write their reports (/dev/shm: tmpfs)")
    a = p.parse_args()
    exercises = ALL if a.exercises == "all" else a.exercises.split(",")
    compile_like_an_install()
    settings = Settings(lang="en")
    specs = [settings.exercise(ex) for ex in exercises]
    names = [f"student-{i:05d}" for i in range(a.namespaces)]
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp, EmbeddedCluster() as cluster, \
            tempfile.TemporaryDirectory(prefix="bench-ab-out-", dir=a.out_root) as outs:
        old_tree = Path(tmp) / "old"
        old_tree.mkdir()
        extract(a.old, old_tree)
        trees = {f"old ({a.old})": str(old_tree), "working tree": str(ROOT)}
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        fill(cluster, names, plan_many(specs, a.namespaces))
        cluster.server.faults.latency = a.latency_ms / 1000
        print(f"load average {os.getloadavg()[0]:.2f}; {','.join(exercises)} × {a.namespaces}", flush=True)
        cpu: dict[str, list[float]] = {label: [] for label in trees}
        for r in range(a.rounds):
            for label, tree in trees.items():
                cmd = [sys.executable, "-c", START.format(tree=tree), *exercises, "--namespace-pattern", "student-*",
                       "--out", f"{outs}/out-{len(cpu[label])}-{label[:3]}", "--wait", "0", "--quiet",
                       "--kubeconfig", str(kubeconfig), "--lang", "en"]
                print(f"round {r} {label}:", flush=True)
                code, printed, wall, seconds, *_ = run_measured(cmd, {**os.environ})   # prints user and sys
                if code not in (0, 1):
                    raise SystemExit(f"{label} exited {code}:\n{printed[-2000:]}")
                cpu[label].append(seconds)
                print(f"    wall {wall:.2f} s, CPU {seconds:.2f} s", flush=True)
        for label, values in cpu.items():
            print(f"{label}: CPU s min {min(values):.2f} median {statistics.median(values):.2f} max {max(values):.2f}")
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
