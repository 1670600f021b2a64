"""Benchmark: a class of N students graded in one batch, against a kubectl-per-check grader.

    /work/venv/bin/python bench/batch.py --namespaces 1000 --exercise ex6 --latency-ms 5

It starts the embedded cluster, fills N namespaces ``student-0000``... with a mix of the
exercise's reference solution (half of them), its broken variants and empty namespaces (the
rest, in turn), adds a fixed latency to every API request, then:

1. grades them with the real command line in a child process —
   ``python -m grader EX --namespace-pattern 'student-*' --out DIR --wait 0 --quiet`` —
   and reports wall seconds (interpreter start included), API requests from the server's log
   (service-proxy probes counted apart), namespaces/second and the child's peak RSS;
2. grades a sample the way graders are commonly written: one ``kubectl get <kind> <name> -n NS
   -o json`` subprocess per check per student (one ``requests.get`` per check when kubectl is
   not installed, and it says so), and extrapolates to N.

Filling goes straight into the API server's store (same objects, admission and controllers as
over HTTP); its time is printed but is not part of any measurement.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
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
from grader.settings import Settings, data_dir  # noqa: E402


def default_exercise() -> str:
    """ex6 once its solution exists (another helper is writing it), else ex2."""
    return "ex6" if (data_dir("solutions") / "ex6").is_dir() else "ex2"


def plan(spec: Any, n: int) -> list[tuple[str, list[dict]]]:
    """(case name, objects) per namespace: half solutions, the rest broken variants and empty."""
    loaded = []
    for case in cases(spec):
        objs = [d.obj for f in case.files for d in load_path(f)[0]]
        loaded.append((case.name, objs))
    good = loaded[0]
    broken = loaded[1:]
    return [good if i % 2 == 0 else broken[(i // 2) % len(broken)] for i in range(n)]


def fill(cluster: EmbeddedCluster, names: list[str], work: list[tuple[str, list[dict]]]) -> None:
    server = cluster.server
    store = server.store
    ns_rt = store.rt("namespaces")
    for name, (_, objs) in zip(names, work):
        store.create(ns_rt, "", {"metadata": {"name": name, "labels": {"course": "bench"}}}, admit=server.admit)
        for obj in objs:
            rt = resource_for_kind(str(obj.get("apiVersion")), str(obj.get("kind")), server.resources)
            assert rt is not None, obj.get("kind")
            store.create(rt, name, obj, admit=server.admit)
    cluster.settle(timeout=600)


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
                    "probe": probe, "exercise": spec}
        fn = getattr(module, check.function)
        try:
            fn(**{a: fixtures[a] for a in inspect.signature(fn).parameters})
        except Exception:
            pass
        out[check.id] = view.first or ("Pod", None)
    return out


def kubectl_way(kubeconfig: Path, cluster: EmbeddedCluster, reads: dict[str, tuple[str, str | None]],
                sample: list[str]) -> tuple[float, int, str]:
    """Seconds for one fetch per check per sampled namespace, the number of fetches, and how."""
    from grader.kube import resource

    kubectl = shutil.which("kubectl")
    calls = [(ns, kind, name) for ns in sample for kind, name in reads.values()]
    started = time.monotonic()
    if kubectl:
        for ns, kind, name in calls:
            res = resource(kind)
            args = [kubectl, "--kubeconfig", str(kubeconfig), "get", res.short, *([name] if name else []),
                    "-n", ns, "-o", "json"]
            subprocess.run(args, capture_output=True, check=False)
        how = "kubectl subprocess per check"
    else:
        import requests
        session = requests.Session()
        for ns, kind, name in calls:
            res = resource(kind)
            session.get(cluster.url + res.path(ns, name), headers={"Authorization": f"Bearer {cluster.token}"})
        how = "one requests.get per check (kubectl not installed)"
    return time.monotonic() - started, len(calls), how


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespaces", type=int, default=1000)
    p.add_argument("--exercise", default=None, help="default: ex6 if its solution exists, else ex2")
    p.add_argument("--latency-ms", type=float, default=5.0, help="added to every API request")
    p.add_argument("--sample", type=int, default=20, help="namespaces graded the kubectl way")
    p.add_argument("--keep", metavar="DIR", help="write the reports here instead of a temp dir")
    p.add_argument("--profile", metavar="FILE", help="run the grader under cProfile, stats to FILE")
    args = p.parse_args()
    ex = args.exercise or default_exercise()
    spec = Settings(lang="en").exercise(ex)
    names = [f"student-{i:04d}" for i in range(args.namespaces)]
    work = plan(spec, args.namespaces)

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp, EmbeddedCluster() as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        t0 = time.monotonic()
        fill(cluster, names, work)
        fill_s = time.monotonic() - t0
        counts = {k: len(store_items) for k, store_items in
                  ((r.kind, cluster.server.store.list(r)[0]) for r in cluster.server.store.resources)
                  if store_items}
        print(f"exercise {ex}: {len(spec.checks)} checks; filled {args.namespaces} namespaces in "
              f"{fill_s:.1f}s (not measured): {counts}")

        out = Path(args.keep) if args.keep else Path(tmp) / "out"
        cluster.server.faults.latency = args.latency_ms / 1000
        cluster.server.reset_requests()
        prof = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        cmd = [sys.executable, *prof, "-m", "grader", ex, "--namespace-pattern", "student-*", "--out", str(out),
               "--wait", "0", "--quiet", "--kubeconfig", str(kubeconfig), "--lang", "en"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
        wall = time.monotonic() - t0
        rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        reqs = cluster.server.requests
        probes = [r for r in reqs if "/proxy" in r.path]
        api_reqs = [r for r in reqs if "/proxy" not in r.path]
        print(f"$ {' '.join(cmd[1:])}\n{proc.stdout.strip()}  (exit {proc.returncode})")
        if proc.returncode not in (0, 1):
            print(proc.stderr, file=sys.stderr)
            return 1
        graded_checks = sum(
            len(json.loads((out / n / "results.json").read_text())["tests"]) for n in names)
        by_kind: dict[str, int] = {}
        for r in api_reqs:
            by_kind[r.resource or r.path] = by_kind.get(r.resource or r.path, 0) + 1

        # the common way, on a sample of the same data
        reads = reads_per_check(spec, _api(kubeconfig), names[0])
        sample = names[:args.sample]
        k_s, k_calls, how = kubectl_way(kubeconfig, cluster, reads, sample)
        per_ns = k_s / max(1, len(sample))
        extrapolated = per_ns * args.namespaces

        print(f"\nbatch grading ({os.cpu_count()} cores, {args.latency_ms:g} ms added per API request)")
        print(f"  namespaces            {args.namespaces}")
        print(f"  checks evaluated      {graded_checks}")
        print(f"  API requests          {len(api_reqs)} (probes aside: {len(probes)} service-proxy probes) {by_kind}")
        print(f"  wall seconds          {wall:.2f} (whole `python -m grader` process)")
        print(f"  namespaces/second     {args.namespaces / wall:.0f}")
        print(f"  peak RSS              {rss_mb:.0f} MB (grader process)")
        print(f"\n{how}: {k_calls} calls for {len(sample)} namespaces in {k_s:.1f}s "
              f"({per_ns:.2f}s per namespace)")
        print(f"  extrapolated to {args.namespaces} namespaces: {extrapolated:.0f}s "
              f"→ batch is {extrapolated / wall:.0f}× faster")
        targets = [("wall < 10 s", wall < 10), ("API requests < 40", len(api_reqs) < 40),
                   ("peak RSS < 400 MB", rss_mb < 400), ("≥ 50× faster than per-check kubectl", extrapolated / wall >= 50)]
        print("\ntargets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets))
    return 0


def _api(kubeconfig: Path) -> Any:
    from grader.kube import Api
    return Api(kubeconfig=str(kubeconfig))


if __name__ == "__main__":
    sys.exit(main())
