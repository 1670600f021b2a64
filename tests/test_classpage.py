"""The class page (DIR/index.html): class_data's content, hostile text kept as text, and the page in a
real headless Chromium (heatmap, sorting, filtering, pass rates, failures, errors, live polling)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from grader.classpage import class_data, render_class_page
from grader.i18n import Text
from grader.results import CheckResult, ExerciseResult, Outcome
from tests.browser import Browser, find_chromium

EVIL_NS = "<img src=x onerror=window.pwned=1>"
EVIL_MSG = "</script><script>window.pwned=2</script>\x1b[31m red & <b>bold</b>"


def _ex(ns: str, ex: str, outcomes: list[Outcome], error: Text | None = None,
        messages: list[str] | None = None) -> ExerciseResult:
    said = [*(messages or []), *[None] * len(outcomes)]
    checks = [CheckResult(f"c{i}", Text(f"チェック{i}", f"check {i}"), 2, o,
                          None if said[i] is None else Text(said[i], said[i]))
              for i, o in enumerate(outcomes)]
    return ExerciseResult(ex, Text(f"演習 {ex}", f"Exercise {ex}"), ns, checks, error)


P, F, E = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR


def klass() -> dict[str, list[ExerciseResult]]:
    return {
        "alice": [_ex("alice", "ex1", [P, P, P]), _ex("alice", "ex2", [P, P])],
        "bob": [_ex("bob", "ex1", [P, F, F], messages=[None, "port 80 expected", "no route"]),
                _ex("bob", "ex2", [P, F], messages=[None, "port 80 expected"])],
        "carol": [_ex("carol", "ex1", [P, F, P], messages=[None, "port 80 expected"]),
                  _ex("carol", "ex2", [F, F])],                                 # ex2: nothing passed
        "dave": [_ex("dave", "ex1", [F, F, F], error=Text("読めません", "cannot read namespace dave"))],
        EVIL_NS: [_ex(EVIL_NS, "ex1", [P, F, E], messages=[None, EVIL_MSG, "403 forbidden"])],
    }


# --- the data ----------------------------------------------------------------------------------
def test_class_data_holds_what_the_page_draws():
    data = class_data(klass(), lang="en")
    json.dumps(data)
    assert [e["id"] for e in data["exercises"]] == ["ex1", "ex2"]
    students = {s["namespace"]: s for s in data["students"]}
    assert students["bob"]["exercises"]["ex1"]["first_failing"] == "c1: check 1"       # who is stuck where
    assert students["alice"]["exercises"]["ex1"]["first_failing"] is None
    assert students["carol"]["exercises"]["ex2"]["status"] == "not_attempted"
    assert students["dave"]["exercises"]["ex2"] == {"score": None, "max_score": None, "status": "not_attempted",
                                                    "first_failing": None, "checks": {}}
    assert set(students["dave"]["exercises"]["ex1"]["checks"].values()) == {"error"}
    assert students[EVIL_NS]["exercises"]["ex1"]["checks"] == {"c0": "passed", "c1": "failed", "c2": "error"}
    c1 = next(c for c in data["exercises"][0]["checks"] if c["id"] == "c1")
    assert (c1["passed"], c1["failed"], c1["error"]) == (1, 3, 1) and c1["pass_rate"] == 0.25
    top = data["top_failures"]["ex1"]
    assert top[0] == {"message": "port 80 expected", "count": 2} and len(top) <= 5
    assert data["top_failures"]["ex2"] == [{"message": "port 80 expected", "count": 1}]   # carol's not-started left out
    errors = [(e["namespace"], e["check"]) for e in data["errors"]]
    assert ("dave", None) in errors and (EVIL_NS, "c2") in errors
    assert all("\x1b" not in e["message"] for e in data["errors"]) and "\x1b" not in json.dumps(data)


@pytest.mark.parametrize("lang, theirs", [("en", "“(their namespace)”"), ("ja", "“(各自の名前空間)”")])
def test_a_failure_naming_each_students_namespace_is_one_line_of_the_class(lang, theirs):
    said = "Route “hello” does not exist in namespace “{}” (there is no Route at all)."
    by_ns = {ns: [_ex(ns, "ex6", [F, P], messages=[said.format(ns)])] for ns in ("student-1", "student-2", "student-3")}
    by_ns["student-4"] = [_ex("student-4", "ex6", [F, P], messages=[said.format("student-1")])]  # not their own
    top = class_data(by_ns, lang=lang)["top_failures"]["ex6"]
    assert top == [{"message": said.format(theirs[1:-1]), "count": 3},
                   {"message": said.format("student-1"), "count": 1}]


def test_page_is_self_contained_and_its_json_cannot_close_the_script():
    page = render_class_page(klass(), lang="en")
    markup = page.split('id="class-data">')[0] + page.split('id="class-data">')[1].split("</script>", 1)[1]
    assert "http://" not in markup and "https://" not in markup and "<link" not in markup and " src=" not in markup
    data_start = page.index('id="class-data">') + len('id="class-data">')
    data_end = page.index("</script>", data_start)
    embedded = page[data_start:data_end]
    assert "<" not in embedded and ">" not in embedded and "&" not in embedded
    assert json.loads(embedded)["students"][-1]["namespace"] == EVIL_NS
    with pytest.raises(ValueError):
        render_class_page(klass(), lang="en", live="https://evil.example/x.json")


# --- in Chromium -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium); the page is not tested in a browser")
    b = Browser(exe)
    yield b
    b.close()


ROWS = "[...document.querySelectorAll('#heatmap tbody tr')]"
VISIBLE = f"{ROWS}.filter(r => !r.hidden).map(r => r.dataset.namespace)"


def _click(browser: Browser, key: str) -> list[str]:
    browser.evaluate(f"document.querySelector('button[data-sort=\"{key}\"]').click()")
    return browser.evaluate(f"{ROWS}.map(r => r.dataset.namespace)")


def _filter(browser: Browser, text: str) -> list[str]:
    browser.evaluate("(() => { const f = document.getElementById('filter'); f.value = " + json.dumps(text)
                     + "; f.dispatchEvent(new Event('input')); })()")
    return browser.evaluate(VISIBLE)


def test_page_in_chromium_sorts_filters_and_shows_the_class(browser, tmp_path):
    path = tmp_path / "index.html"
    path.write_text(render_class_page(klass(), lang="en"), encoding="utf-8")
    browser.open(path.as_uri())
    png = browser.screenshot()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    (tmp_path / "classpage.png").write_bytes(png)

    assert browser.evaluate("document.title") == "Class results"
    assert browser.evaluate(f"{ROWS}.length") == 5
    assert browser.evaluate("window.pwned === undefined && document.querySelectorAll('img, b').length === 0")
    assert EVIL_NS in browser.evaluate("document.querySelector('#heatmap tbody').textContent")
    assert "</script><script>window.pwned=2</script>" in browser.evaluate("document.getElementById('failures').textContent")
    states = browser.evaluate(f"{ROWS}.map(r => r.dataset.namespace + ':' + [...r.querySelectorAll('td.cell')]"
                              ".map(c => c.dataset.state[0]).join(''))")
    assert {"alice:ppppp", "bob:pffpf", "carol:pfpnn", "dave:eeenn", f"{EVIL_NS}:pfenn"} == set(states)

    # Sorting through the header buttons; the page opens sorted by student, A to Z.
    assert browser.evaluate(f"{ROWS}.map(r => r.dataset.namespace)") == [EVIL_NS, "alice", "bob", "carol", "dave"]
    assert _click(browser, "student") == ["dave", "carol", "bob", "alice", EVIL_NS]
    assert _click(browser, "score") == ["alice", "bob", "carol", EVIL_NS, "dave"]   # best share first
    assert _click(browser, "score") == ["dave", EVIL_NS, "bob", "carol", "alice"]   # again: reversed
    assert _click(browser, "ex:ex2")[:3] == ["alice", "bob", "carol"]
    assert browser.evaluate("document.querySelector('button[data-sort=\"ex:ex2\"]').parentElement"
                            ".getAttribute('aria-sort')") == "descending"

    # Filtering: by namespace, and by the check a student is stuck on.
    assert _filter(browser, "car") == ["carol"]
    assert sorted(_filter(browser, "c1: check 1")) == sorted(["bob", "carol", EVIL_NS])
    assert browser.evaluate("document.getElementById('summary').textContent") == "3 / 5 students"
    assert len(_filter(browser, "")) == 5

    rates = browser.evaluate("[...document.querySelectorAll('tfoot td.rate-cell')].map(t => t.dataset.check + '=' + t.textContent)")
    assert "ex1/c1=25%" in rates and "ex1/c0=100%" in rates
    failures = browser.evaluate("[...document.querySelectorAll('#failures ol[data-exercise=ex1] li')].map(l => l.textContent)")
    assert failures[0].startswith("2 × — port 80 expected") and len(failures) <= 5
    errors = browser.evaluate("[...document.querySelectorAll('#errors li')].map(l => l.textContent)")
    assert any("dave" in e and "cannot read namespace dave" in e for e in errors)
    assert any("403 forbidden" in e for e in errors)


def test_page_in_chromium_in_japanese(browser, tmp_path):
    path = tmp_path / "index.html"
    path.write_text(render_class_page(klass(), lang="ja"), encoding="utf-8")
    browser.open(path.as_uri())
    assert browser.evaluate("document.title") == "クラスの採点結果"
    assert browser.evaluate("document.documentElement.lang") == "ja"
    assert "採点側のエラー" in browser.evaluate("document.getElementById('errors-title').textContent")


class _Live:
    """A loopback server for the live page: the page at /, class_data at /class.json."""

    def __init__(self, page: str, data: dict) -> None:
        self.page, self.data, self.polls = page, data, 0
        live = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:          # noqa: N802 (http.server's name)
                if self.path == "/class.json":
                    live.polls += 1
                    body, kind = json.dumps(live.data).encode(), "application/json"
                else:
                    body, kind = live.page.encode(), "text/html; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_live_page_polls_and_keeps_sort_and_filter(browser):
    by_ns = klass()
    live = _Live(render_class_page(by_ns, lang="en", live="/class.json"), class_data(by_ns, lang="en"))
    try:
        browser.open(live.url)
        _click(browser, "score")
        visible_before = _filter(browser, "o")
        assert visible_before == ["bob", "carol", EVIL_NS]
        # A new student who passes everything appears; the page redraws within a few polls.
        by_ns["zoe"] = [_ex("zoe", "ex1", [P, P, P]), _ex("zoe", "ex2", [P, P])]
        live.data = class_data(by_ns, lang="en")
        found = browser.evaluate("""new Promise(done => {
            const until = Date.now() + 15000;
            (function poll() {
              const rows = [...document.querySelectorAll('#heatmap tbody tr')];
              if (rows.some(r => r.dataset.namespace === 'zoe') || Date.now() > until) {
                done(rows.filter(r => !r.hidden).map(r => r.dataset.namespace));
              } else { setTimeout(poll, 100); }
            })();
          })""")
        assert "zoe" in found and set(found) == set(visible_before) | {"zoe"}          # filter kept
        assert browser.evaluate("document.getElementById('filter').value") == "o"
        order = browser.evaluate(f"{ROWS}.map(r => r.dataset.namespace)")
        assert order.index("zoe") < order.index("bob")                                 # sort by score kept
        assert live.polls >= 1
    finally:
        live.close()


def test_batch_writes_the_class_page(capsys, tmp_path):
    from grader.batch import write_reports
    results = [r for rs in klass().values() for r in rs if r.namespace != EVIL_NS]
    write_reports(tmp_path, results, "en")
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert '<script type="application/json" id="class-data">' in page
    data = json.loads(page.split('id="class-data">', 1)[1].split("</script>", 1)[0])
    assert sorted(s["namespace"] for s in data["students"]) == ["alice", "bob", "carol", "dave"]


def test_screenshot_for_the_readme_is_present():
    assert (Path(__file__).resolve().parents[1] / "docs" / "classpage.png").is_file()
