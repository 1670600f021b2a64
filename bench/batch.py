"""Benchmark: a class graded in one batch, against two common ways, all measured in one run.

    python bench/batch.py --exercises ex2 --namespaces 1000,3000 --runs 3
    python bench/batch.py --exercises all --namespaces 1000 --runs 3

For each class size it starts an embedded cluster, fills N namespaces ``student-00000``... (see
``plan``), adds a fixed latency to every API request, then:

1. grades them ``--runs`` times with the real command line in a child process --
   ``python -m grader EX... --namespace-pattern 'student-*' --out DIR --wait 0 --quiet`` -- and
   reports, min/median/max over the runs: wall seconds (interpreter start included), the child's
   CPU seconds (user+sys, from ``wait4``) and CPU per namespace per exercise, its peak RSS, and
   API requests from the server's log (route and service-proxy probes counted apart). After each
   run the same command grades the first namespace alone (its pattern is that one name): the
   process's fixed cost, whatever the class (interpreter start, imports, collection). What each
   further namespace costs is (CPU of the class - CPU of one) / (N - 1) per exercise;
2. baseline A, in the same run and on the same data: one ``kubectl get <short name> [NAME] -n NS
   -o json`` subprocess per check (the first object each check reads) for a sample of namespaces,
   extrapolated to N;
3. baseline B, likewise: ``python -m grader EX... -n NS --wait 0`` once per student for a sample,
   extrapolated to N.

Filling goes straight into the API server's store (same objects, admission and controllers as
over HTTP) and takes linear time; it is printed but is not part of any measurement.

Where the graded runs write (``--out-root``): by default a temp directory on the disk, kept
until the benchmark ends, since on this machine's ext4 (no journal) creating files right after
thousands were deleted costs up to 20× the system CPU (``bench/files.py --delete-first``), which
would charge one run with the clean-up of the one before. Whatever was deleted shortly before the
benchmark still weighs on its first runs; ``--out-root /dev/shm`` (tmpfs) measures the grader
without this disk's filesystem.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.cluster.apitypes import resource_for_kind  # noqa: E402
from grader.manifests import load_path  # noqa: E402
from grader.cluster import EmbeddedCluster  # noqa: E402
from grader.selftest import cases  # noqa: E402
from grader.settings import Settings  # noqa: E402
from reference import reference_cpu  # noqa: E402

ALL = [f"ex{i}" for i in range(1, 8)]
# ex1, ex2 and ex6 name the same Pod/Service ("hello"): with all seven, a namespace holds the
# work of ex3, ex4, ex5, ex7 and one of these three in turn.
EXCLUSIVE = ("ex1", "ex2", "ex6")


def default_exercise() -> str:
    return "ex6"


def _cases(spec: Any) -> list[tuple[str, list[dict]]]:
    return [(case.name, [d.obj for f in case.files for d in load_path(f)[0]]) for case in cases(spec)]


def plan(spec: Any, n: int) -> list[tuple[str, list[dict]]]:
    """(case name, objects) per namespace: half solutions, the rest broken variants and empty."""
    loaded = _cases(spec)
    good, broken = loaded[0], loaded[1:]
    return [good if i % 2 == 0 else broken[(i // 2) % len(broken)] for i in range(n)]


def plan_many(specs: list[Any], n: int) -> list[tuple[str, list[dict]]]:
    """One exercise: ``plan``. Several: each namespace gets each exercise's case (half solutions),
    except that of ex1/ex2/ex6, whose objects share names, only one in turn."""
    if len(specs) == 1:
        return plan(specs[0], n)
    plans = {s.id: plan(s, n) for s in specs}
    exclusive = [s.id for s in specs if s.id in EXCLUSIVE]
    out = []
    for i in range(n):
        ids = [s.id for s in specs if s.id not in EXCLUSIVE or s.id == exclusive[(i // 2) % len(exclusive)]]
        out.append(("+".join(plans[x][i][0] for x in ids), [o for x in ids for o in plans[x][i][1]]))
    return out


def fill(cluster: EmbeddedCluster, names: list[str], work: list[tuple[str, list[dict]]]) -> None:
    server = cluster.server
    store = server.store
    ns_rt = store.rt("namespaces")
    for name, (_, objs) in zip(names, work):
        store.create(ns_rt, "", {"metadata": {"name": name, "labels": {"course": "bench"}}}, admit=server.admit)
        for obj in objs:
            rt = resource_for_kind(str(obj.get("apiVersion")), str(obj.get("kind")), server.resources)
            assert rt is not None, obj.get("kind")
            store.create(rt, name, json.loads(json.dumps(obj)), admit=server.admit)
    cluster.settle(timeout=3600)


def reads_per_check(spec: Any, api: Any, namespace: str) -> dict[str, tuple[str, str | None]]:
    """For each check, the first object it reads (kind, name or None for a list): what a
    kubectl-per-check grader would fetch. Found by running the check functions once on a
    recording view of one correctly solved namespace."""
    import importlib.util

    from grader.probes import Probe
    from grader.snapshot import Snapshot, View

    class Recording(View):
        first: tuple[str, str | None] | None = None

        def get(self, kind: str, name: str) -> Any:
            self.first = self.first or (kind, name)
            return super().get(kind, name)

        def list(self, kind: str) -> Any:
            self.first = self.first or (kind, None)
            return super().list(kind)

    mod_spec = importlib.util.spec_from_file_location(f"bench_{spec.id}", spec.module)
    assert mod_spec and mod_spec.loader
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    snapshot = Snapshot(api, [namespace])
    probe = Probe(api)
    out: dict[str, tuple[str, str | None]] = {}
    for check in spec.checks:
        view = Recording(snapshot, namespace)
        fixtures = {"view": view, "ns": namespace, "params": MappingProxyType(dict(spec.params)),
                    "probe": probe.scoped(namespace, snapshot), "exercise": spec}
        fn = getattr(module, check.function)
        try:
            fn(**{a: fixtures[a] for a in inspect.signature(fn).parameters})
        except BaseException:  # noqa: BLE001 -- only the read it made matters here
            pass
        out[f"{spec.id}/{check.id}"] = view.first or ("Pod", None)
    return out


def kubectl_way(kubeconfig: Path, reads: dict[str, tuple[str, str | None]], sample: list[str]) -> tuple[float, int]:
    """Seconds for one ``kubectl get`` per check per sampled namespace, and the number of calls."""
    from grader.kube import resource

    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not installed"
    calls = [(ns, kind, name) for ns in sample for kind, name in reads.values()]
    started = time.monotonic()
    for ns, kind, name in calls:
        args = [kubectl, "--kubeconfig", str(kubeconfig), "get", resource(kind).short, *([name] if name else []),
                "-n", ns, "-o", "json"]
        subprocess.run(args, capture_output=True, check=False)
    return time.monotonic() - started, len(calls)


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[int, str, float, float, float, float]:
    """(exit code, output, wall s, CPU s user+sys, peak RSS MB, system CPU s) of one child: CPU from ``wait4``,
    the peak from the child's own ``VmHWM`` (``/proc/PID/status``), read every 20 ms while it runs
    (the high-water mark only grows, so the last reading misses at most the last 20 ms).

    Not ``ru_maxrss``: a child started by ``vfork``/``posix_spawn`` from this process inherits
    this process's high-water mark at ``exec``, so ``ru_maxrss`` reported the benchmark's own size
    (the filled cluster, 650 MB at 1,000 × all seven) whenever it was larger than the grader's."""
    with tempfile.TemporaryFile("w+") as sink:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
        peak = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                try:
                    with open(f"/proc/{proc.pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                peak[0] = max(peak[0], int(line.split()[1]))
                except (OSError, ValueError):
                    pass
                done.wait(0.02)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        watcher.join()
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        sink.seek(0)
        print(f"    (child CPU: user {usage.ru_utime:.2f}s, sys {usage.ru_stime:.2f}s; page faults {usage.ru_minflt}, "
              f"context switches {usage.ru_nvcsw} voluntary, {usage.ru_nivcsw} involuntary)", flush=True)
        return proc.returncode, sink.read(), wall, usage.ru_utime + usage.ru_stime, peak[0] / 1024, usage.ru_stime


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def bench_size(exercises: list[str], n: int, args: argparse.Namespace, outs: Path) -> dict[str, Any]:
    settings = Settings(lang="en")
    specs = [settings.exercise(ex) for ex in exercises]
    names = [f"student-{i:05d}" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, EmbeddedCluster() as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        t0 = time.monotonic()
        fill(cluster, names, plan_many(specs, n))
        fill_s = time.monotonic() - t0
        print(f"# {','.join(exercises)} × {n}: filled in {fill_s:.1f}s (not measured)", flush=True)
        cluster.server.faults.latency = args.latency_ms / 1000
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        runs = []
        for r in range(args.runs):
            ref = reference_cpu()       # the machine's speed right now (bench/reference.py)
            out = outs / f"{'-'.join(exercises)}-{n}-run{r}"
            cluster.server.reset_requests()
            cmd = [sys.executable, "-m", "grader", *exercises, "--namespace-pattern", "student-*", "--out", str(out),
                   "--wait", "0", "--quiet", "--kubeconfig", str(kubeconfig), "--lang", "en"]
            code, printed, wall, cpu, rss, system = run_measured(cmd, env)
            if code not in (0, 1):
                raise SystemExit(f"grader exited {code}:\n{printed}")
            time.sleep(0.1)   # the server logs a request after answering it
            reqs = cluster.server.requests
            probes = sum(1 for q in reqs if "/proxy" in q.path)
            api = len(reqs) - probes
            checks = sum(len(json.loads((out / ns / "results.json").read_text())["tests"]) for ns in names)
            # the same command for the class's first namespace alone, right after: the process's
            # fixed cost (start, imports, collection, one listing), so that what each further
            # namespace costs is measured apart from it, at the same moment
            one = [*cmd[:cmd.index("student-*")], names[0], *cmd[cmd.index("student-*") + 1:]]
            one[one.index(str(out))] = str(out) + "-one"
            code1, printed1, _, cpu1, *_ = run_measured(one, env)
            if code1 not in (0, 1):
                raise SystemExit(f"grader exited {code1} on one namespace:\n{printed1}")
            each = 1000 * (cpu - cpu1) / ((n - 1) * len(exercises)) if n > 1 else float("nan")
            runs.append({"wall": wall, "cpu": cpu, "sys": system, "rss": rss, "api": api, "proxy": probes, "checks": checks,
                         "one": cpu1, "each": each, "ref": ref})
            print(f"  run {r + 1}: wall {wall:.2f}s, CPU {cpu:.2f}s ({1000 * cpu / (n * len(exercises)):.2f} ms per "
                  f"namespace per exercise; one namespace alone {cpu1:.2f}s, so {each:.2f} ms for each further one), "
                  f"peak RSS {rss:.0f} MB, API requests {api} (+{probes} service-proxy "
                  f"probes), {checks} checks; reference workload {ref:.2f}s; {printed.strip().splitlines()[-1] if printed.strip() else ''}",
                  flush=True)
            # kept until the benchmark ends (see --out-root)
        cluster.server.faults.latency = args.latency_ms / 1000
        # baseline A: kubectl per check, on a sample
        from grader.kube import Api
        api_client = Api(kubeconfig=str(kubeconfig))
        reads: dict[str, tuple[str, str | None]] = {}
        for spec in specs:
            reads.update(reads_per_check(spec, api_client, names[0]))
        api_client.close()
        sample = names[:args.sample]
        k_s, k_calls = kubectl_way(kubeconfig, reads, sample)
        kubectl_n = k_s / len(sample) * n
        # baseline B: grade -n NS once per student, on a sample
        student = names[:args.student_sample]
        g_times = []
        for ns in student:
            cmd = [sys.executable, "-m", "grader", *exercises, "-n", ns, "--wait", "0", "--quiet",
                   "--kubeconfig", str(kubeconfig), "--lang", "en"]
            code, printed, wall, *_ = run_measured(cmd, env)
            if code not in (0, 1):
                raise SystemExit(f"grade -n {ns} exited {code}:\n{printed}")
            g_times.append(wall)
        per_student_n = sum(g_times) / len(g_times) * n
        med_wall = statistics.median(r["wall"] for r in runs)
        row = {"exercises": ",".join(exercises), "n": n, "fill": fill_s, "runs": runs,
               "kubectl": (k_s, k_calls, len(sample), kubectl_n), "per_student": (sum(g_times), len(student), per_student_n),
               "ratio_kubectl": kubectl_n / med_wall, "ratio_student": per_student_n / med_wall}
        print(f"  baseline kubectl per check: {k_calls} calls for {len(sample)} namespaces in {k_s:.1f}s → "
              f"{kubectl_n:.0f}s for {n} (batch {row['ratio_kubectl']:.0f}× faster, median wall)")
        print(f"  baseline grade -n NS per student: {len(student)} in {sum(g_times):.1f}s → {per_student_n:.0f}s for "
              f"{n} (batch {row['ratio_student']:.0f}× faster, median wall)", flush=True)
        return row


def table(rows: list[dict[str, Any]], latency: float) -> str:
    head = ("| exercises | namespaces | checks | API requests (+proxy probes) | wall s min/med/max | "
            "CPU s min/med/max (of which system, med) | CPU ms per ns per exercise (med) | "
            "one ns alone: CPU s (med) | each further ns: CPU ms per exercise min/med/max | peak RSS MB min/med/max | "
            "kubectl per check (extrapolated) | ratio | grade -n per student (extrapolated) | ratio | "
            "reference workload CPU s min/med/max |")
    lines = [head, "|" + "---|" * 15]
    for row in rows:
        runs = row["runs"]
        ex_count = len(row["exercises"].split(","))
        api = sorted({r["api"] for r in runs})
        proxy = sorted({r["proxy"] for r in runs})
        k_s, k_calls, k_n, kubectl_n = row["kubectl"]
        g_s, g_n, student_n = row["per_student"]
        lines.append(
            f"| {row['exercises']} | {row['n']:,} | {runs[0]['checks']:,} | {'/'.join(map(str, api))} "
            f"(+{'/'.join(map(str, proxy))}) | {spread([r['wall'] for r in runs])} | {spread([r['cpu'] for r in runs])} ({statistics.median(r['sys'] for r in runs):.2f}) | "
            f"{1000 * statistics.median(r['cpu'] for r in runs) / (row['n'] * ex_count):.2f} | "
            f"{statistics.median(r['one'] for r in runs):.2f} | {spread([r['each'] for r in runs])} | "
            f"{spread([r['rss'] for r in runs], '{:.0f}')} | {kubectl_n:,.0f} s ({k_calls} calls on {k_n} ns: {k_s:.1f} s) | "
            f"{row['ratio_kubectl']:.0f}× | {student_n:,.0f} s ({g_n} runs: {g_s:.1f} s) | {row['ratio_student']:.0f}× | "
            f"{spread([r['ref'] for r in runs])} |")
    return "\n".join(lines) + (f"\n\n({latency:g} ms added to every API request; ratios use the median wall; the "
                                "reference workload (bench/reference.py), run before each graded run, shows how fast "
                                "the machine was at the time.)")


def compile_like_an_install() -> None:
    """Byte-compile the grader and its exercises, as ``pip install`` does for an installed
    package: run from a checkout with ``PYTHONDONTWRITEBYTECODE`` set (as on the development
    machine), every child would compile them again, ~0.1 s of CPU a run that no installed grader
    pays. (pytest's rewritten check modules are cached by pytest itself, where it may write.)"""
    import compileall
    for part in ("grader", "exercises"):
        compileall.compile_dir(str(ROOT / part), quiet=1)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exercises", default="ex6", help="comma-separated, or 'all' (ex1..ex7)")
    p.add_argument("--namespaces", default="1000", help="class sizes, comma-separated: 1000,3000,10000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--latency-ms", type=float, default=5.0, help="added to every API request")
    p.add_argument("--sample", type=int, default=5, help="namespaces graded the kubectl-per-check way")
    p.add_argument("--student-sample", type=int, default=5, help="namespaces graded with one `grade -n NS` each")
    p.add_argument("--json", metavar="FILE", help="also write the rows here")
    p.add_argument("--out-root", metavar="DIR", help="where the graded runs write their reports (default: a temp "
                   "directory on disk; /dev/shm: without the disk's filesystem). Kept until the end.")
    args = p.parse_args()
    exercises = ALL if args.exercises == "all" else args.exercises.split(",")
    compile_like_an_install()
    print(f"$ uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}  "
          f"({os.cpu_count()} cores)", flush=True)
    outs = Path(tempfile.mkdtemp(prefix="bench-out-", dir=args.out_root))
    print(f"reports written under {outs}", flush=True)
    try:
        rows = [bench_size(exercises, int(n), args, outs) for n in args.namespaces.split(",")]
    finally:
        shutil.rmtree(outs, ignore_errors=True)
    print(f"$ uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    print(table(rows, args.latency_ms))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
