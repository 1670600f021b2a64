"""In-process micro-benchmark of the two per-student costs outside the runner: JUnit rendering
(``junit.render_junit`` of one ExerciseResult, as batch calls it per namespace and exercise)
and finding each student's PersistentVolume by name among every PV of the class.

    python bench/render.py [--results 3000] [--pvs 1000] [--runs 5] [--dump FILE]

``--dump`` writes every rendered document (hostile strings included) to FILE, so two versions
of the renderer can be compared byte for byte (``cmp before after``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from grader.i18n import Text  # noqa: E402
from grader.junit import render_junit  # noqa: E402
from grader.results import CheckResult, ExerciseResult, Outcome, Visibility  # noqa: E402

HOSTILE = ["plain", "a & b < c > d \" ' quotes", "\x1b[31mred\x1b[0m and \x00\x07 controls",
           "line\r\nbreaks\rand\ttabs\n", "\ufffe\uffff\ud7ff surrogates-ish \U0001f600",
           "]]> <![CDATA[ x ]]>", "名前空間 日本語のメッセージ", "x" * 400, "é" * 40000,
           "  many   spaces \u2028 sep ", "", "&amp; already &lt;escaped&gt;"]


def sample(n: int) -> list[ExerciseResult]:
    """``n`` results of 5–7 checks each, every outcome and visibility, with and without a
    namespace error, hostile strings in every field a student or cluster can reach."""
    out = []
    outcomes = [Outcome.PASSED, Outcome.PASSED, Outcome.FAILED, Outcome.ERROR]
    vis = list(Visibility)
    for i in range(n):
        h = HOSTILE[i % len(HOSTILE)]
        checks = []
        for j in range(5 + i % 3):
            o = outcomes[(i + j) % len(outcomes)]
            msg = None if o is Outcome.PASSED or (i + j) % 7 == 0 else Text(f"日本 {h} {j}", f"msg {h} {j}")
            checks.append(CheckResult(
                f"check-{j}{h[:3] if j == 4 else ''}", Text(f"題 {j}", f"Title {j} {h[:20]}"),
                [1, 2.5, 0.1 + 0.2, 7.0][j % 4], o, msg,
                Text("ヒント", f"hint {h[:50]}") if j % 2 else None,
                f"oc get pods -n student-{i} {h[:30]}" if j % 3 else None,
                vis[(i + j) % len(vis)], [0.0, 0.0123456, 1.5, -1.0, float("nan")][j % 5]))
        error = Text("見えない", f"cannot see {h[:60]}") if i % 11 == 5 else None
        out.append(ExerciseResult(f"ex{i % 7 + 1}", Text("演習", "Exercise"), f"student-{i:05d}{h[:8] if i % 13 == 0 else ''}",
                                  [] if i % 29 == 3 else checks, error, [0.0, 2.25, 1e-9][i % 3]))
    return out


def junit(results: list[ExerciseResult], lang: str) -> list[bytes]:
    when = datetime(2026, 11, 28, 3, 0, 0)
    return [render_junit([r], lang, timestamp=when, hostname="bench-host") for r in results]


def pv_lookup(pvs: int) -> float:
    """Seconds to find each of ``pvs`` students' volume through ``View.get`` on a snapshot that
    holds ``pvs`` PersistentVolumes (listed once, as in a batch)."""
    from grader.snapshot import Snapshot

    class _Api:
        def list(self, kind: str, namespace: str | None = None) -> list[dict]:
            return [{"metadata": {"name": f"pv-{k:05d}"}} for k in range(pvs)]

    snap = Snapshot(_Api(), [f"student-{k:05d}" for k in range(pvs)])  # type: ignore[arg-type]
    start = time.perf_counter()
    for k in range(pvs):
        assert snap.view(f"student-{k:05d}").get("PersistentVolume", f"pv-{k:05d}") is not None
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--results", type=int, default=3000)
    p.add_argument("--pvs", type=int, default=1000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--dump")
    a = p.parse_args()
    results = sample(a.results)
    if a.dump:
        with open(a.dump, "wb") as f:
            for lang in ("en", "ja"):
                for doc in junit(results, lang):
                    f.write(doc + b"\n--\n")
    print(f"load average {os.getloadavg()[0]:.2f}")
    times = []
    for _ in range(a.runs):
        start = time.process_time()
        junit(results, "en")
        times.append((time.process_time() - start) / a.results * 1000)
    print(f"render_junit, 1 result each, {a.results} results: ms per result (CPU) "
          f"min {min(times):.3f} median {statistics.median(times):.3f} max {max(times):.3f}")
    pv = [pv_lookup(a.pvs) for _ in range(a.runs)]
    print(f"View.get PersistentVolume, {a.pvs} students among {a.pvs} PVs: s (wall) "
          f"min {min(pv):.4f} median {statistics.median(pv):.4f} max {max(pv):.4f}")


if __name__ == "__main__":
    main()
