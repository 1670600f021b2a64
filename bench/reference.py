"""The machine's speed at the moment of a measurement: the CPU of a fixed pure-Python workload.

    python bench/reference.py --runs 5

On the development machine (2 virtual cores) the same grader run cost up to 40 % more CPU from
one quarter of an hour to the next, with nothing else running on it: ratios to baselines
measured in the same run hold, absolute milliseconds do not. ``bench/batch.py`` runs this
workload in a child process before each graded run, so a row measured at a slow moment says so.

The workload is the kind of work a batch does: encode and decode JSON documents the size of a
namespace's results, format strings, match regular expressions, build and walk dicts and lists.
It uses the standard library only, so it stays the same when the grader changes: never compare
it across Python versions.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

WORKLOAD = r"""
import json, re
pattern = re.compile(r"[A-Za-z0-9._@:-]{0,200}")
doc = {"tests": [{"name": f"ex{i % 7} check-{i}: a Service hello answers", "score": i % 3,
                  "max_score": 2, "status": "passed" if i % 4 else "failed",
                  "output": "expected port 8080, saw 80 " * 3, "tags": ["a", "b"]} for i in range(8)],
       "score": 11, "max_score": 16}
out = 0
for n in range(6000):
    text = json.dumps(doc, ensure_ascii=False)
    back = json.loads(text)
    names = {t["name"]: t for t in back["tests"]}
    out += sum(1 for k in names if pattern.fullmatch(k)) + len(f"{n}:{text[:40]}|{back['score']:.2f}")
print(out)
"""


def reference_cpu() -> float:
    """CPU seconds (user + system) of one run of the workload in a new interpreter, its start
    included (a few hundredths of a second)."""
    proc = subprocess.Popen([sys.executable, "-c", WORKLOAD], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("the reference workload failed")
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    a = p.parse_args()
    each = [reference_cpu() for _ in range(a.runs)]
    print(f"reference workload, {a.runs} runs: CPU s min {min(each):.2f} / median {statistics.median(each):.2f} / "
          f"max {max(each):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
