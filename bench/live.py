"""Benchmark: an instructor's live class page against re-running the batch in a loop, in one run.

    python bench/live.py --namespaces 1000 --changes-per-s 50 --seconds 30

It fills an embedded cluster as ``bench/batch.py`` does (``plan_many``: every namespace gets all
seven exercises' work, half solved), adds ``--latency-ms`` to every API request, then starts the
real command line in a child process:

    python -m grader ex1 ... ex7 --namespace-pattern 'student-*' --watch --serve 127.0.0.1:0

and measures:

1. the first grading of the class (until ``/grades.json`` holds every namespace);
2. the child's CPU while nothing changes (``/proc/PID/stat`` over ``--idle-s``, after ``--settle-s``
   in which the first grading's events settle and failing probe checks back off), as % of a core;
3. ``--changes-per-s`` namespaces changing per second for ``--seconds``: each change replaces a
   solved namespace's ConfigMap ``hello-config`` with its key renamed, or back (ex4 checks the
   key, so the score moves at once; deleting it instead also moved the pod's state, later, by the
   kubelet's hand, which is the cluster's delay, not the grader's); the time from the API's answer to ``/grades.json`` showing the new score, polled
   every ``--poll-ms`` (its resolution), p50/p95/max; the child's CPU meanwhile;
4. its peak RSS (``VmHWM``);
5. the alternative, on the same cluster: ``grade ... --out DIR --wait 0`` run once (a loop of
   them shows a change after one to two runs: p95 ≈ 1.95 × its wall) and its CPU per run, which
   such a loop spends continuously.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from batch import ALL, fill, plan_many, run_measured  # noqa: E402

from grader.cluster import EmbeddedCluster  # noqa: E402
from grader.settings import Settings  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def grades(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "grades.json", timeout=30) as r:
        return json.loads(r.read())["namespaces"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespaces", type=int, default=1000)
    p.add_argument("--latency-ms", type=float, default=5.0)
    p.add_argument("--changes-per-s", type=float, default=50.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--idle-s", type=float, default=60.0)
    p.add_argument("--settle-s", type=float, default=80.0,
                   help="after the first grading, before idle is measured (failing probes back off 10→60 s)")
    p.add_argument("--poll-ms", type=float, default=50.0)
    args = p.parse_args()
    n = args.namespaces
    print(f"$ uptime: {uptime()}  ({os.cpu_count()} cores)", flush=True)
    settings = Settings(lang="en")
    specs = [settings.exercise(ex) for ex in ALL]
    names = [f"student-{i:05d}" for i in range(n)]
    work = plan_many(specs, n)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, EmbeddedCluster() as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        t0 = time.monotonic()
        fill(cluster, names, work)
        print(f"# all seven × {n}: filled in {time.monotonic() - t0:.1f}s (not measured)", flush=True)
        # the namespaces whose ex4 work is the solution: their ConfigMap is what changes
        configmaps = {}   # namespace → its ex4 ConfigMap, which the changes delete and create again
        for name, (_, objs) in zip(names, work):
            cm = next((o for o in objs if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == "hello-config"), None)
            if cm is not None:
                configmaps[name] = cm
        cluster.server.faults.latency = args.latency_ms / 1000
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "grader", *ALL, "--namespace-pattern", "student-*", "--watch",
               "--serve", "127.0.0.1:0", "--quiet", "--kubeconfig", str(kubeconfig), "--lang", "en"]
        started = time.monotonic()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        try:
            line = child.stderr.readline() if child.stderr else ""
            m = re.search(r"(http://\S+/)", line)
            if not m:
                raise SystemExit(f"no class page: {line}")
            url = m.group(1)
            while len(grades(url)) < n:
                time.sleep(0.2)
            first = time.monotonic() - started
            first_cpu = cpu_seconds(child.pid)
            base = grades(url)
            print(f"  first grading (interpreter start included): {first:.1f}s wall, {first_cpu:.1f}s CPU", flush=True)
            time.sleep(args.settle_s)   # the first grading's events settle, failing probes back off to their ceiling
            c0, w0 = cpu_seconds(child.pid), time.monotonic()
            time.sleep(args.idle_s)
            idle = (cpu_seconds(child.pid) - c0) / (time.monotonic() - w0)
            print(f"  idle: {100 * idle:.1f}% of a core over {args.idle_s:g}s", flush=True)

            # 3. changes
            from grader.kube import Api
            api = Api(kubeconfig=str(kubeconfig))
            solved = [ns for ns in names if ns in configmaps and base[ns]["ex4"]["score"] == base[ns]["ex4"]["max_score"]]
            if not solved:
                raise SystemExit("no namespace has ex4 solved")
            present = {ns: True for ns in solved}
            pending: dict[str, tuple[float, float]] = {}   # ns → (changed at, score before)
            flying: set[str] = set()                       # ns → a change on its way to the API
            latencies: list[float] = []
            lock = threading.Lock()
            stop = threading.Event()

            def poll() -> None:
                while not stop.is_set() or pending:
                    got = grades(url)
                    now = time.monotonic()
                    with lock:
                        for ns, (when, before) in list(pending.items()):
                            if got[ns]["ex4"]["score"] != before:
                                latencies.append(now - when)
                                current[ns] = got[ns]["ex4"]["score"]
                                del pending[ns]
                    if stop.is_set() and time.monotonic() > end + 30:
                        break
                    time.sleep(args.poll_ms / 1000)
            poller = threading.Thread(target=poll, daemon=True)
            current = {ns: base[ns]["ex4"]["score"] for ns in solved}
            end = time.monotonic() + args.seconds
            c1, w1 = cpu_seconds(child.pid), time.monotonic()
            poller.start()
            i = made = 0
            interval = 1.0 / args.changes_per_s
            next_at = time.monotonic()
            pool = ThreadPoolExecutor(8)   # the API answers in 5 ms and more: changes overlap, as students' do

            def change(ns: str, restore: bool) -> None:
                path = f"/api/v1/namespaces/{ns}/configmaps/hello-config"
                obj = json.loads(json.dumps(configmaps[ns]))
                obj["metadata"]["namespace"] = ns
                if not restore:     # the key ex4 asks for is renamed: its ConfigMap check fails
                    obj["data"] = {f"NOT_{k}": v for k, v in (obj.get("data") or {}).items()}
                api._write("PUT", path, obj)
                with lock:
                    pending[ns] = (time.monotonic(), current[ns])
            while time.monotonic() < end:
                ns = solved[i % len(solved)]
                i += 1
                with lock:
                    if ns in pending or ns in flying:
                        continue
                    flying.add(ns)
                fut = pool.submit(change, ns, not present[ns])
                fut.add_done_callback(lambda f, ns=ns: flying.discard(ns))
                present[ns] = not present[ns]
                made += 1
                next_at += interval
                time.sleep(max(0.0, next_at - time.monotonic()))
            pool.shutdown(wait=True)
            busy = (cpu_seconds(child.pid) - c1) / (time.monotonic() - w1)
            stop.set()
            poller.join(60)
            rss = peak_rss_mb(child.pid)
            lat = sorted(latencies)
            p95 = lat[int(0.95 * (len(lat) - 1))] if lat else float("nan")
            print(f"  {made} changes in {args.seconds:g}s ({made / args.seconds:.0f}/s): seen {len(lat)}, "
                  f"latency p50 {statistics.median(lat):.3f}s p95 {p95:.3f}s max {lat[-1]:.3f}s "
                  f"(poll every {args.poll_ms:g} ms); grader CPU meanwhile {100 * busy:.0f}% of a core", flush=True)
            print(f"  peak RSS {rss:.0f} MB", flush=True)
            api.close()
        finally:
            child.terminate()
            child.wait(30)
        # 5. the batch, once, on the same cluster
        out = Path(tmp) / "out"
        bcmd = [sys.executable, "-m", "grader", *ALL, "--namespace-pattern", "student-*", "--out", str(out),
                "--wait", "0", "--quiet", "--kubeconfig", str(kubeconfig), "--lang", "en"]
        code, printed, wall, cpu, brss, _ = run_measured(bcmd, env)
        print(f"  batch once: exit {code}, {wall:.1f}s wall, {cpu:.1f}s CPU, peak RSS {brss:.0f} MB → in a loop a "
              f"change shows after {wall:.1f}–{2 * wall:.1f}s (p95 ≈ {1.95 * wall:.1f}s) at ~{100 * cpu / wall:.0f}% "
              f"of a core, all the time", flush=True)
    print(f"$ uptime: {uptime()}")
    print("\n| N | first grading | idle CPU | changes/s | p50 / p95 / max to /grades.json | CPU under changes | "
          "peak RSS | batch in a loop: p95 / CPU |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {n:,} | {first:.1f} s | {100 * idle:.1f} % | {made / args.seconds:.0f} | {statistics.median(lat):.2f} / "
          f"{p95:.2f} / {lat[-1]:.2f} s | {100 * busy:.0f} % | {rss:.0f} MB | ≈ {1.95 * wall:.1f} s / "
          f"{100 * cpu / wall:.0f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
