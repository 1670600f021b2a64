"""The class page: one row per student, one column per exercise (PLACEHOLDER of the watch branch).

The LMS branch builds the real page with this very interface; this minimal version exists so the
live server (``grader.liveserve``) can be built and tested before that lands, and is meant to be
replaced by it at merge. ``class_data`` is what the page shows, as JSON; ``render_class_page``
the page itself, which, given ``live`` (a URL path), fetches that JSON every second and redraws.
Every value a student chose (namespace names, check messages) is escaped by the page.
"""
from __future__ import annotations

import html
import json
from typing import Any, Mapping, Sequence

from .results import ExerciseResult, Outcome


def _first_failing(results: Sequence[ExerciseResult], lang: str) -> str | None:
    for r in results:
        for c in r.checks:
            if c.outcome is Outcome.FAILED:
                return f"{r.exercise_id}: {c.title.get(lang)}"
    return None


def class_data(by_ns: Mapping[str, Sequence[ExerciseResult]], *, lang: str) -> dict[str, Any]:
    """What the page shows: per namespace, each exercise's score and the first failing check."""
    exercises = sorted({r.exercise_id for rs in by_ns.values() for r in rs})
    students = []
    for ns in sorted(by_ns):
        rs = by_ns[ns]
        students.append({
            "namespace": ns,
            "exercises": {r.exercise_id: {"score": r.score, "max_score": r.max_score,
                                          "errors": r.count(Outcome.ERROR) + (r.error is not None)} for r in rs},
            "first_failing": _first_failing(rs, lang),
        })
    return {"exercises": exercises, "students": students}


_SCRIPT = """
const live = %s;
function esc(s) { const d = document.createElement('div'); d.textContent = String(s); return d.innerHTML; }
function draw(data) {
  let head = '<tr><th>namespace</th>' + data.exercises.map(e => '<th>' + esc(e) + '</th>').join('') + '<th>first failing</th></tr>';
  let rows = data.students.map(s => '<tr><td>' + esc(s.namespace) + '</td>' + data.exercises.map(e => {
      const x = s.exercises[e]; return '<td>' + (x ? esc(x.score + '/' + x.max_score) + (x.errors ? ' !' : '') : '') + '</td>';
    }).join('') + '<td>' + esc(s.first_failing || '') + '</td></tr>').join('');
  document.getElementById('grades').innerHTML = head + rows;
}
if (live) setInterval(() => fetch(live).then(r => r.json()).then(draw).catch(() => {}), 1000);
"""


def render_class_page(by_ns: Mapping[str, Sequence[ExerciseResult]], *, lang: str, live: str | None = None) -> str:
    """The page, drawn once from ``by_ns``; with ``live``, redrawn from that JSON every second."""
    data = class_data(by_ns, lang=lang)
    head = "".join(f"<th>{html.escape(e)}</th>" for e in data["exercises"])
    rows = []
    for s in data["students"]:
        cells = "".join(
            f"<td>{html.escape(_score(s['exercises'].get(e)))}</td>" for e in data["exercises"])
        rows.append(f"<tr><td>{html.escape(s['namespace'])}</td>{cells}"
                    f"<td>{html.escape(s['first_failing'] or '')}</td></tr>")
    script = _SCRIPT % json.dumps(live) if live else ""
    return (f'<!doctype html>\n<html lang="{html.escape(lang)}"><head><meta charset="utf-8"><title>class</title></head>'
            f'<body><table id="grades"><tr><th>namespace</th>{head}<th>first failing</th></tr>{"".join(rows)}</table>'
            f"<script>{script}</script></body></html>\n")


def _score(x: Mapping[str, Any] | None) -> str:
    if not x:
        return ""
    return f"{x['score']:g}/{x['max_score']:g}" + (" !" if x["errors"] else "")
