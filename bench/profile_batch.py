"""cProfile of an in-process batch (grader side only; the server's threads are not profiled).

    python bench/profile_batch.py --namespaces 1000 [--exercises all] [--top 40]
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from batch import ALL, fill, plan_many  # noqa: E402

from grader.batch import grade_batch  # noqa: E402
from grader.kube import Api  # noqa: E402
from grader.cluster import EmbeddedCluster  # noqa: E402
from grader.settings import Settings  # noqa: E402


def _time_phases() -> dict[str, float]:
    """Wall seconds spent in the main phases (wrapped here, for this script only)."""
    import grader.batch
    import grader.probes
    import grader.runner
    import grader.snapshot

    spent: dict[str, float] = {}

    def wrap(owner: object, name: str, label: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*a, **k):  # type: ignore[no-untyped-def]
            t = time.monotonic()
            try:
                return fn(*a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.monotonic() - t
        setattr(owner, name, timed)

    wrap(grader.runner, "collect", "collect")
    wrap(grader.runner.Checks, "grade", "run checks")
    wrap(grader.probes.Probe, "run_deferred", "probes")
    wrap(grader.snapshot.Snapshot, "_load", "lists")
    wrap(grader.batch, "write_namespaces", "write files")
    wrap(grader.batch, "write_gradebook", "gradebook")
    return spent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--namespaces", type=int, default=1000)
    p.add_argument("--exercises", default="ex6", help="comma-separated, or 'all'")
    p.add_argument("--latency-ms", type=float, default=5.0)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--sort", default="cumulative")
    p.add_argument("--no-profile", action="store_true", help="time only")
    args = p.parse_args()
    settings = Settings(lang="en", wait=0.0, quiet=True)
    specs = [settings.exercise(ex) for ex in (ALL if args.exercises == "all" else args.exercises.split(","))]
    names = [f"student-{i:04d}" for i in range(args.namespaces)]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedCluster() as cluster:
        fill(cluster, names, plan_many(specs, args.namespaces))
        cluster.server.faults.latency = args.latency_ms / 1000
        api = Api(kubeconfig=str(cluster.write_kubeconfig(Path(tmp) / "k")))
        prof = cProfile.Profile()
        t0 = time.monotonic()
        phases = _time_phases()
        if not args.no_profile:
            prof.enable()
        grade_batch(api, settings, specs, names, Path(tmp) / "out")
        prof.disable()
        print(f"in-process grade_batch: {time.monotonic() - t0:.2f}s; "
              + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items()))
        if not args.no_profile:
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
