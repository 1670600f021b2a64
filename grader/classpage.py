"""The class page, ``DIR/index.html``: where a class is stuck, on one self-contained page.

Why one file with its data inside: an instructor opens it from a file: URL, offline, with no CDN,
and a live server (``render_class_page(..., live="/class.json")``) serves the same page and
``class_data`` as JSON, which the page polls every second and redraws, keeping its sort and filter.

Why the page draws itself from JSON: every value that reaches the DOM goes through
``textContent`` or an attribute set by ``setAttribute``, never ``innerHTML``, so a namespace or a
message written by a student (HTML, script, escape codes) stays text. The JSON is embedded in a
``<script type="application/json">`` with ``<``, ``>``, ``&`` and U+2028/9 written as ``\\uXXXX``,
so it can never close its element. Strings are also cleaned (``sanitize.clean``: escapes and
controls removed, one line, bounded) before they go in.

Cell states: ``passed``, ``failed``, ``error`` (the grader could not see: never the student's
fault) and ``not_attempted`` (the exercise was not graded for that namespace, or nothing of it
passed: an exercise not started reads grey, not as a wall of red).
"""
from __future__ import annotations

import functools
import json
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from .reports import effective_outcome
from .results import ExerciseResult, Outcome
from .sanitize import clean

PASSED, FAILED, ERROR, NOT_ATTEMPTED = "passed", "failed", "error", "not_attempted"
TOP_FAILURES = 5

_LABELS: dict[str, dict[str, str]] = {
    "ja": {"title": "クラスの採点結果", "student": "学生 (名前空間)", "score": "得点", "filter": "絞り込み…",
           "pass_rate": "合格率", "passed": "合格", "failed": "不合格", "error": "採点エラー",
           "not_attempted": "未着手", "top_failures": "よくある不合格 (演習ごと上位 5 件)",
           "errors": "採点側のエラー (学生のミスではありません。再実行してください)", "no_errors": "ありません",
           "stuck": "最初の不合格", "students": "人", "count": "件", "legend": "凡例", "sort": "並べ替え",
           "their_namespace": "\u201c(各自の名前空間)\u201d"},
    "en": {"title": "Class results", "student": "Student (namespace)", "score": "Score", "filter": "Filter…",
           "pass_rate": "Pass rate", "passed": "passed", "failed": "failed", "error": "grader error",
           "not_attempted": "not attempted", "top_failures": "Most common failures (top 5 per exercise)",
           "errors": "Grader-side errors (not the students' fault; re-run them)", "no_errors": "none",
           "stuck": "first failing check", "students": "students", "count": "×", "legend": "Legend", "sort": "sort",
           "their_namespace": "\u201c(their namespace)\u201d"},
}


def _num(x: float) -> int | float:
    return int(x) if x == int(x) else round(x, 3)


def _exercise_cells(r: ExerciseResult | None, lang: str, cleaned: Callable[[str, int], str] = clean) -> dict[str, Any]:
    """One student's exercise: score, status and each check's state, and where they are stuck."""
    if r is None:
        return {"score": None, "max_score": None, "status": NOT_ATTEMPTED, "first_failing": None, "checks": {}}
    outcomes = {c.check_id: effective_outcome(r, c) for c in r.checks}
    nothing = bool(r.checks) and r.error is None and all(o is Outcome.FAILED for o in outcomes.values())
    checks = {cid: NOT_ATTEMPTED if nothing else o.value for cid, o in outcomes.items()}
    first = next((c for c in r.checks if outcomes[c.check_id] is Outcome.FAILED), None)
    status = (ERROR if ERROR in checks.values() or r.error is not None else NOT_ATTEMPTED if nothing
              else FAILED if FAILED in checks.values() else PASSED)
    return {"score": _num(r.score), "max_score": _num(r.max_score), "status": status,
            "first_failing": None if first is None else cleaned(f"{first.check_id}: {first.title.get(lang)}", 200),
            "checks": checks}


def class_data(by_ns: Mapping[str, Sequence[ExerciseResult]], *, lang: str) -> dict[str, Any]:
    """Everything the page draws, JSON-able (the live server serves exactly this).

    ``{"lang", "labels", "exercises": [{"id", "title", "max_score", "checks": [{"id", "title",
    "points", "passed", "failed", "error", "not_attempted", "pass_rate" (0..1 of the observed, or
    null)}]}], "students": [{"namespace", "score", "max_score", "errors", "exercises": {ex: {"score",
    "max_score", "status", "first_failing", "checks": {check_id: state}}}}], "top_failures": {ex:
    [{"message", "count"}]}, "errors": [{"namespace", "exercise", "check", "message"}]}``
    """
    lang = lang if lang in _LABELS else "en"
    # A class repeats the same titles and failure messages thousands of times: each distinct one
    # is cleaned once per page (per call, so a secret remembered later is never missed).
    cleaned = functools.lru_cache(maxsize=None)(clean)
    exercises: dict[str, dict[str, Any]] = {}
    for results in by_ns.values():
        for r in results:
            ex = exercises.get(r.exercise_id)
            if ex is None:
                ex = exercises[r.exercise_id] = {"id": cleaned(r.exercise_id, 80), "title": cleaned(r.title.get(lang), 200),
                                                 "max_score": _num(r.max_score), "checks": {}}
            checks = ex["checks"]
            for c in r.checks:
                if c.check_id not in checks:
                    checks[c.check_id] = {"id": cleaned(c.check_id, 80), "title": cleaned(c.title.get(lang), 200),
                                          "points": _num(c.points)}
    students: list[dict[str, Any]] = []
    # A message names the student's own namespace in quotes ("Route “hello” does not exist in
    # namespace “student-0042”"): in the class's list that is each student's namespace, so 300
    # students who missed the same Route are one line, not 300 lines of one.
    theirs = _LABELS[lang]["their_namespace"]
    failures: dict[str, Counter[str]] = {ex: Counter() for ex in exercises}
    errors: list[dict[str, Any]] = []
    for ns, results in by_ns.items():
        graded = {r.exercise_id: r for r in results}
        row: dict[str, Any] = {"namespace": cleaned(ns, 100), "exercises": {}}
        for ex_id in exercises:
            cells = _exercise_cells(graded.get(ex_id), lang, cleaned)
            row["exercises"][ex_id] = cells
            r = graded.get(ex_id)
            if r is None:
                continue
            if r.error is not None:
                errors.append({"namespace": cleaned(ns, 100), "exercise": cleaned(ex_id, 80), "check": None,
                               "message": cleaned(r.error.get(lang), 300)})
            for c in r.checks:
                outcome = effective_outcome(r, c)
                if outcome is Outcome.FAILED and cells["status"] != NOT_ATTEMPTED:
                    said = (c.message or c.title).get(lang)
                    failures[ex_id][cleaned(said.replace(f"\u201c{ns}\u201d", theirs) if ns else said, 300)] += 1
                elif outcome is Outcome.ERROR and r.error is None:
                    errors.append({"namespace": cleaned(ns, 100), "exercise": cleaned(ex_id, 80),
                                   "check": cleaned(c.check_id, 80),
                                   "message": cleaned((c.message or c.title).get(lang), 300)})
        row["score"] = _num(sum(r.score for r in results))
        row["max_score"] = _num(sum(r.max_score for r in results))
        row["errors"] = sum(1 for cells in row["exercises"].values() if cells["status"] == ERROR)
        students.append(row)
    out_exercises = []
    for ex_id, ex in exercises.items():
        checks = []
        for cid, check in ex["checks"].items():
            states = Counter(s["exercises"][ex_id]["checks"].get(cid, NOT_ATTEMPTED) for s in students)
            # Of the students whose check was observed (graded, no grader error): who passed it.
            observed = sum(1 for s in students if s["exercises"][ex_id]["checks"].get(cid) in (PASSED, FAILED, NOT_ATTEMPTED))
            checks.append({**check, "passed": states[PASSED], "failed": states[FAILED], "error": states[ERROR],
                           "not_attempted": states[NOT_ATTEMPTED],
                           "pass_rate": round(states[PASSED] / observed, 4) if observed else None})
        out_exercises.append({**ex, "checks": checks})
    return {
        "lang": lang,
        "labels": _LABELS[lang],
        "exercises": out_exercises,
        "students": students,
        "top_failures": {ex: [{"message": m, "count": n} for m, n in failures[ex].most_common(TOP_FAILURES)]
                         for ex in exercises},
        "errors": errors,
    }


def _script_json(value: Any) -> str:
    """JSON that cannot end its ``<script>`` element or be read as HTML."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def render_class_page(by_ns: Mapping[str, Sequence[ExerciseResult]], *, lang: str, live: str | None = None,
                      data: dict[str, Any] | None = None) -> str:
    """The whole page. ``live``: a URL path (``/class.json``) the page polls every second.
    ``data``: ``class_data`` of the same ``by_ns`` when the caller has it already (live grading
    serves it and writes the page from one computation)."""
    if live is not None and (not live.startswith("/") or live.startswith("//")):
        raise ValueError(f"live must be a path on the same server, like /class.json: {live!r}")
    data = class_data(by_ns, lang=lang) if data is None else data
    lang = data["lang"]
    title = data["labels"]["title"]
    return (_PAGE.replace("%LANG%", lang)
                 .replace("%TITLE%", title.replace("&", "&amp;").replace("<", "&lt;"))
                 .replace("%DATA%", _script_json(data))
                 .replace("%LIVE%", _script_json(live)))


_PAGE = """<!DOCTYPE html>
<html lang="%LANG%">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'">
<title>%TITLE%</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
#filter{padding:.3em .5em;width:20em;margin:.5em 0}
table{border-collapse:collapse}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:center;white-space:nowrap}
th button{font:inherit;border:0;background:none;cursor:pointer;padding:0}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.ns{text-align:left;font-family:ui-monospace,monospace}
td.cell{width:14px;min-width:14px;padding:0}
.passed{background:#2e9e4f}.failed{background:#d9453d}.error{background:#f0b429}.not_attempted{background:#c9ccd1}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
td.ex{font-variant-numeric:tabular-nums}
tfoot td{font-size:11px;color:#555}
.rate{display:block;writing-mode:vertical-rl;transform:rotate(180deg)}
th.check{font-weight:normal;font-size:11px;padding:3px 1px;vertical-align:bottom}
</style>
</head>
<body>
<h1 id="title"></h1>
<div class="legend" id="legend"></div>
<input id="filter" type="search" autocomplete="off">
<div id="summary"></div>
<table id="heatmap"><thead></thead><tbody></tbody><tfoot></tfoot></table>
<h2 id="failures-title"></h2><div id="failures"></div>
<h2 id="errors-title"></h2><ul id="errors"></ul>
<script type="application/json" id="class-data">%DATA%</script>
<script type="application/json" id="class-live">%LIVE%</script>
<script>
"use strict";
(function () {
  var data = JSON.parse(document.getElementById("class-data").textContent);
  var live = JSON.parse(document.getElementById("class-live").textContent);
  var state = {key: "student", dir: 1, filter: ""};
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function clear(e) { while (e.firstChild) { e.removeChild(e.firstChild); } }
  function fmt(x) { return x === null || x === undefined ? "\\u2013" : String(x); }
  function value(s, key) {
    if (key === "student") { return s.namespace; }
    if (key === "score") { return s.max_score ? s.score / s.max_score : 0; }
    var ex = s.exercises[key.slice(3)];
    return ex && ex.score !== null ? ex.score : -1;
  }
  function sorted(students) {
    var out = students.slice();
    out.sort(function (a, b) {
      var x = value(a, state.key), y = value(b, state.key);
      if (x < y) { return -state.dir; }
      if (x > y) { return state.dir; }
      return a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0;
    });
    return out;
  }
  function sortButton(th, key, label) {
    var b = el("button", {"type": "button", "data-sort": key}, label);
    if (state.key === key) { th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending"); }
    b.addEventListener("click", function () {
      state.dir = state.key === key ? -state.dir : (key === "student" ? 1 : -1);
      state.key = key;
      draw();
    });
    th.appendChild(b);
  }
  function draw() {
    var L = data.labels;
    document.title = L.title;
    document.getElementById("title").textContent = L.title;
    var legend = document.getElementById("legend");
    clear(legend);
    legend.appendChild(document.createTextNode(L.legend + ":"));
    ["passed", "failed", "error", "not_attempted"].forEach(function (s) {
      legend.appendChild(el("span", {"class": s}));
      legend.appendChild(document.createTextNode(L[s]));
    });
    var filter = document.getElementById("filter");
    filter.setAttribute("placeholder", L.filter);
    var table = document.getElementById("heatmap");
    var head = table.tHead, body = table.tBodies[0], foot = table.tFoot;
    clear(head); clear(body); clear(foot);
    var r1 = el("tr"), r2 = el("tr");
    var th = el("th", {"rowspan": "2"}); sortButton(th, "student", L.student); r1.appendChild(th);
    th = el("th", {"rowspan": "2"}); sortButton(th, "score", L.score); r1.appendChild(th);
    data.exercises.forEach(function (ex) {
      var t = el("th", {"colspan": String(ex.checks.length + 1), "title": ex.title});
      sortButton(t, "ex:" + ex.id, ex.id);
      r1.appendChild(t);
      r2.appendChild(el("th", {"title": ex.title}, L.score));
      ex.checks.forEach(function (c) {
        var t = el("th", {"class": "check", "title": c.id + ": " + c.title});
        t.appendChild(el("span", {"class": "rate"}, c.id.length > 16 ? c.id.slice(0, 15) + "\u2026" : c.id));
        r2.appendChild(t);
      });
    });
    head.appendChild(r1); head.appendChild(r2);
    var needle = state.filter.toLowerCase();
    var shown = 0;
    sorted(data.students).forEach(function (s) {
      var tr = el("tr", {"data-namespace": s.namespace});
      var text = s.namespace;
      data.exercises.forEach(function (ex) { var c = s.exercises[ex.id]; if (c && c.first_failing) { text += " " + c.first_failing; } });
      if (needle && text.toLowerCase().indexOf(needle) < 0) { tr.hidden = true; } else { shown++; }
      tr.appendChild(el("td", {"class": "ns"}, s.namespace));
      tr.appendChild(el("td", {"class": "total"}, fmt(s.score) + "/" + fmt(s.max_score)));
      data.exercises.forEach(function (ex) {
        var c = s.exercises[ex.id];
        var td = el("td", {"class": "ex " + c.status, "data-exercise": ex.id},
                    c.score === null ? "\\u2013" : c.score + "/" + c.max_score);
        if (c.first_failing) { td.setAttribute("title", L.stuck + ": " + c.first_failing); }
        tr.appendChild(td);
        ex.checks.forEach(function (k) {
          var st = c.checks[k.id] || "not_attempted";
          tr.appendChild(el("td", {"class": "cell " + st, "data-state": st, "title": k.id + ": " + L[st]}));
        });
      });
      body.appendChild(tr);
    });
    document.getElementById("summary").textContent = shown + " / " + data.students.length + " " + L.students;
    var fr = el("tr");
    fr.appendChild(el("td", {"class": "ns"}, L.pass_rate)); fr.appendChild(el("td"));
    data.exercises.forEach(function (ex) {
      fr.appendChild(el("td"));
      ex.checks.forEach(function (c) {
        var rate = c.pass_rate === null ? "\\u2013" : Math.round(c.pass_rate * 100) + "%";
        var td = el("td", {"class": "rate-cell", "data-check": ex.id + "/" + c.id, "title": c.id + ": " + c.title});
        td.appendChild(el("span", {"class": "rate"}, rate));
        fr.appendChild(td);
      });
    });
    foot.appendChild(fr);
    document.getElementById("failures-title").textContent = L.top_failures;
    var fails = document.getElementById("failures");
    clear(fails);
    data.exercises.forEach(function (ex) {
      var list = data.top_failures[ex.id] || [];
      if (!list.length) { return; }
      fails.appendChild(el("h3", {}, ex.id + ": " + ex.title));
      var ol = el("ol", {"data-exercise": ex.id});
      list.forEach(function (f) { ol.appendChild(el("li", {}, f.count + " " + L.count + " \\u2014 " + f.message)); });
      fails.appendChild(ol);
    });
    document.getElementById("errors-title").textContent = L.errors;
    var errs = document.getElementById("errors");
    clear(errs);
    if (!data.errors.length) { errs.appendChild(el("li", {}, L.no_errors)); }
    data.errors.forEach(function (e) {
      errs.appendChild(el("li", {}, e.namespace + " \\u00b7 " + e.exercise + (e.check ? " " + e.check : "") + ": " + e.message));
    });
  }
  document.getElementById("filter").addEventListener("input", function (ev) {
    state.filter = ev.target.value;
    draw();
  });
  draw();
  if (typeof live === "string") {
    setInterval(function () {
      fetch(live, {cache: "no-store"}).then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) { if (d && d.students) { data = d; draw(); } })
        .catch(function () {});
    }, 1000);
  }
})();
</script>
</body>
</html>
"""

__all__ = ["class_data", "render_class_page"]
