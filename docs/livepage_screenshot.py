"""Draw docs/livepage.png, the README's picture of the instructor's live page: an embedded
cluster with a class of six, `grade ex1 ex2 ex4 --namespace-pattern 'live-*' --watch --serve`
running as a child process, work applied while it watches, and headless Chromium (tests/browser.py)
photographing what the served page shows at that moment.

    python docs/livepage_screenshot.py
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader.apply import apply_files, manifest_files, solutions_of  # noqa: E402
from grader.cluster import EmbeddedCluster  # noqa: E402
from grader.kube import Api  # noqa: E402
from grader.settings import resolve  # noqa: E402
from tests.browser import Browser, find_chromium  # noqa: E402

# who has done what when the picture is taken
WORK = {"live-aiko": ["ex1", "ex2", "ex4"], "live-bunta": ["ex1", "ex2"], "live-chie": ["ex1"],
        "live-daichi": ["ex1", "ex4"], "live-emi": [], "live-fumio": ["ex2"]}


def main() -> None:
    chromium = find_chromium() or sys.exit("chromium is not installed")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedCluster() as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        api = Api(kubeconfig=str(kubeconfig))
        for ns in WORK:
            cluster.create_namespace(ns)
        child = subprocess.Popen(
            [sys.executable, "-m", "grader", "ex1", "ex2", "ex4", "--namespace-pattern", "live-*", "--watch",
             "--serve", "127.0.0.1:0", "--kubeconfig", str(kubeconfig), "--lang", "en"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            url = None
            while url is None:
                line = child.stderr.readline() if child.stderr else ""
                if not line:
                    sys.exit("the grader ended before serving its page")
                found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
                url = found.group(1) if found else None
            settings = resolve({"lang": "en"})
            for ns, exercises in WORK.items():    # the work arrives while the page is open
                for ex in exercises:
                    apply_files(api, manifest_files(solutions_of(settings.exercise(ex))), ns, kinds=cluster.kinds())
            time.sleep(8)   # the pods start, the watch re-grades; the page polls every second
            with urllib.request.urlopen(url + "grades.json", timeout=10) as answer:
                print(answer.read().decode()[:300])
            browser = Browser(chromium)
            try:
                browser.open(url, width=1100, height=560)
                time.sleep(2)
                (ROOT / "docs" / "livepage.png").write_bytes(browser.screenshot())
            finally:
                browser.close()
        finally:
            child.send_signal(signal.SIGINT)
            child.wait(30)
            api.close()


if __name__ == "__main__":
    main()
