"""How long one student's `grade EX` takes, from process start, on the embedded cluster.

Starts an embedded cluster, applies the exercise's reference solution, then times
`python -m grader EX --kubeconfig ...` as a child process N times (interpreter start and imports
included) and prints min / median / max wall seconds and the API requests one grade makes. The
import time of `kubernetes` and `pytest` is shown apart: each is imported alone in a fresh
interpreter N times (min / median / max), beside the bare interpreter's start.

    python bench/single.py ex6 --runs 10
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def spread(times: list[float]) -> str:
    return f"min {min(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s"


def import_times(runs: int, env: dict[str, str]) -> dict[str, list[float]]:
    """Wall seconds of a fresh interpreter that imports one module (or nothing)."""
    out: dict[str, list[float]] = {}
    for label, code in (("python (no import)", "pass"), ("import kubernetes", "import kubernetes.client"),
                        ("import pytest", "import pytest"), ("import grader.cli", "import grader.cli")):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=str(ROOT))
            times.append(time.perf_counter() - started)
        out[label] = times
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("exercise", nargs="?", default="ex6")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from grader.apply import apply_files, manifest_files, solution_dir
    from grader.kube import Api
    from grader.cluster import EmbeddedCluster

    from batch import compile_like_an_install
    compile_like_an_install()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"$ uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedCluster() as cluster:
        cluster.create_namespace("student")
        kc = cluster.write_kubeconfig(Path(tmp) / "kc", namespace="student")
        api = Api(kubeconfig=str(kc))
        problems = apply_files(api, manifest_files(solution_dir(args.exercise)), "student")
        assert not problems, [p.en for p in problems]
        cluster.settle()
        times = []
        for _ in range(args.runs):
            cluster.server.reset_requests()
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "grader", args.exercise, "--kubeconfig", str(kc)],
                                  cwd=tmp, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        time.sleep(0.1)
        requests = len(cluster.server.requests)
    print(f"grade {args.exercise} (solution, embedded cluster, {args.runs} runs, {os.cpu_count()} cores): "
          f"{spread(times)} wall from process start; {requests} API requests per grade")
    for label, t in import_times(args.runs, env).items():
        print(f"  {label:<20} {spread(t)} (fresh interpreter, wall)")


if __name__ == "__main__":
    main()
