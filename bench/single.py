"""How long one student's `grade EX` takes, from process start, on the embedded cluster.

Starts an embedded cluster, applies the exercise's reference solution, then times
`python -m grader EX --kubeconfig ...` as a child process N times (import time included) and
prints min / median / max wall seconds and the API requests one grade makes.

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("exercise", nargs="?", default="ex6")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from grader.apply import apply_files, manifest_files, solution_dir
    from grader.kube import Api
    from grader.cluster import EmbeddedCluster

    with tempfile.TemporaryDirectory() as tmp, EmbeddedCluster() as cluster:
        cluster.create_namespace("student")
        kc = cluster.write_kubeconfig(Path(tmp) / "kc", namespace="student")
        api = Api(kubeconfig=str(kc))
        problems = apply_files(api, manifest_files(solution_dir(args.exercise)), "student")
        assert not problems, [p.en for p in problems]
        cluster.settle()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        times = []
        for _ in range(args.runs):
            cluster.server.reset_requests()
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "grader", args.exercise, "--kubeconfig", str(kc)],
                                  cwd=tmp, env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        requests = len(cluster.server.requests)
    print(f"grade {args.exercise} (solution, embedded cluster, {args.runs} runs, {os.cpu_count()} cores): "
          f"min {min(times):.2f} s, median {statistics.median(times):.2f} s, max {max(times):.2f} s wall; "
          f"{requests} API requests per grade")


if __name__ == "__main__":
    main()
