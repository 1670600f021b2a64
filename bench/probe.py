"""Benchmark: the CPU of one service-proxy probe (ex2's `test_service_answers`), one after another.

    python bench/probe.py --namespaces 500 --runs 3

Fills an embedded cluster with ``--namespaces`` namespaces of ex2 (as ``bench/batch.py`` does:
half solutions, the rest broken variants), adds 5 ms to every API request, then in a child
process sends one probe per namespace through ``Api.service_proxy`` (the grader's own path:
``grader.proxy``, ``Api.fetch``, ``bounded.Connections``), one after another on one thread,
and prints that thread's CPU per probe (``time.thread_time``), min/median/max over the runs.
The first probe (which opens the kept TLS connection) is not counted.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from batch import compile_like_an_install, fill, plan  # noqa: E402

from grader.cluster import EmbeddedCluster  # noqa: E402
from grader.settings import Settings  # noqa: E402

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from grader.kube import Api
api = Api(kubeconfig=sys.argv[2])
names = sys.argv[3].split(",")
api.service_proxy(names[0], "hello", 80)
start = time.thread_time()
for ns in names:
    api.service_proxy(ns, "hello", 80)
print((time.thread_time() - start) / len(names))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespaces", type=int, default=500)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    compile_like_an_install()
    spec = Settings(lang="en").exercise("ex2")
    names = [f"student-{i:05d}" for i in range(a.namespaces)]
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp, EmbeddedCluster() as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        fill(cluster, names, plan(spec, a.namespaces))
        cluster.server.faults.latency = 0.005
        each = []
        for run in range(a.runs):
            out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(kubeconfig), ",".join(names)],
                                 capture_output=True, text=True, check=True).stdout
            each.append(float(out.strip().splitlines()[-1]) * 1e6)
            print(f"  run {run + 1}: {each[-1]:.0f} µs of CPU per probe", flush=True)
    print(f"{a.namespaces} service-proxy probes one after another, {a.runs} runs: CPU per probe min "
          f"{min(each):.0f} / median {statistics.median(each):.0f} / max {max(each):.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
