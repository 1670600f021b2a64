"""Draw docs/classpage.png, the README's picture of the class page: a made-up class of 14,
rendered by grader.classpage and photographed by headless Chromium (tests/browser.py).

    python docs/classpage_screenshot.py
"""
from __future__ import annotations

import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.classpage import render_class_page  # noqa: E402
from grader.i18n import Text  # noqa: E402
from grader.results import CheckResult, ExerciseResult, Outcome  # noqa: E402
from tests.browser import Browser, find_chromium  # noqa: E402

CHECKS = {"ex1": ["pod-exists", "pod-running", "image", "labels"],
          "ex2": ["svc-exists", "selector", "port", "endpoints", "reachable"],
          "ex3": ["pvc-bound", "mounted", "data-kept"]}
TITLES = {"ex1": "Create a Pod", "ex2": "Expose the Pod with a Service", "ex3": "Use persistent storage"}
MESSAGES = {"selector": "service selector app=web matches no pod", "port": "targetPort 8080, the container listens on 80",
            "pod-running": "pod web is CrashLoopBackOff", "mounted": "volume data is not mounted at /var/www/html",
            "reachable": "HTTP GET / answered 503", "endpoints": "service web has no endpoints"}


def made_up_class() -> dict[str, list[ExerciseResult]]:
    rng = random.Random(7)
    by_ns: dict[str, list[ExerciseResult]] = {}
    for i in range(14):
        ns = f"student-{i + 1:02d}"
        results = []
        for ex, checks in CHECKS.items():
            if ex == "ex3" and i % 5 == 4:
                continue
            skill = rng.random()
            out = []
            for c in checks:
                o = Outcome.PASSED if rng.random() < skill + 0.3 else Outcome.FAILED
                if ns == "student-07" and ex == "ex2":
                    o = Outcome.ERROR
                m = (MESSAGES.get(c, "not found") if o is Outcome.FAILED
                     else "403 Forbidden: cannot list endpoints" if o is Outcome.ERROR else None)
                out.append(CheckResult(c, Text(c, c.replace("-", " ")), 2, o, None if m is None else Text(m, m)))
            results.append(ExerciseResult(ex, Text(ex, TITLES[ex]), ns, out))
        by_ns[ns] = results
    return by_ns


def main() -> None:
    page = Path(tempfile.mkdtemp()) / "index.html"
    page.write_text(render_class_page(made_up_class(), lang="en"), encoding="utf-8")
    browser = Browser(find_chromium() or sys.exit("chromium is not installed"))
    try:
        browser.open(page.as_uri(), width=1100, height=900)
        browser.evaluate("document.querySelector('button[data-sort=score]').click()")
        (ROOT / "docs" / "classpage.png").write_bytes(browser.screenshot())
    finally:
        browser.close()


if __name__ == "__main__":
    main()
