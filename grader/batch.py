"""Instructor batch grading: a class at once, reports for CI and the LMS, safe to interrupt.

``grade EX... --out DIR`` writes, per namespace, ``DIR/<namespace>/<exercise>.xml`` (JUnit) and
``DIR/<namespace>/results.json`` (Gradescope), and ``DIR/gradebook.csv`` and the class page
``DIR/index.html`` over every namespace that has a ``results.json`` in DIR (earlier runs
included); with a roster, ``DIR/lms-import.csv`` and ``DIR/unmatched.csv`` (``lms``). One DIR is meant for one assignment:
a namespace's ``results.json`` holds the exercises of its latest grading.

Why chunks: namespaces are graded ``CHUNK`` at a time and each chunk's files are written as soon
as it is graded, so Ctrl-C or SIGTERM loses at most one chunk. A new namespace's directory is
built under a hidden name and renamed once whole; in one graded before, every file is written to
a temp file and renamed, ``results.json`` last. So a namespace whose files are all present and
parse is complete; ``--resume`` skips exactly those. The chunks share
one ``Snapshot``: the cluster is listed once per kind for the whole class, not once per chunk.

Why the default re-observation window is 0 here: a batch grades finished work at a time the
instructor chose, and ``--wait`` applies per chunk (every student gets the same window), so an
exercise's 30 s default would multiply by the number of chunks. ``--wait`` still sets one.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any, Iterator

from .errors import UsageError
from .grading import probe_for, progress_bar
from .i18n import Raw, Text, quote, t
from .classpage import render_class_page
from .junit import render_junit
from .kube import Api
from .lms import write_round_trip
from .reports import gradebook_csv, gradescope_json, sweep_stale, write_atomic, write_atomic_dirs
from .results import CheckResult, ExerciseResult, Outcome, RunResult, Visibility
from .roster import Roster
from .runner import collect
from .settings import Settings
from .sanitize import valid_namespace
from .snapshot import Snapshot
from .specs import ExerciseSpec

CHUNK = 200
RESULTS = "results.json"
GRADEBOOK = "gradebook.csv"
CLASS_PAGE = "index.html"


def chunk_size() -> int:
    """``GRADER_BATCH_CHUNK`` overrides the chunk size (tests interrupt small chunks)."""
    try:
        return max(1, int(os.environ.get("GRADER_BATCH_CHUNK") or CHUNK))
    except ValueError:
        raise UsageError(f"GRADER_BATCH_CHUNK={os.environ['GRADER_BATCH_CHUNK']!r} is not a number") from None


# --- reading what earlier runs wrote ---------------------------------------------------------
def _parses_xml(path: Path) -> bool:
    try:
        return ET.parse(path).getroot().tag == "testsuites"
    except (OSError, ET.ParseError):
        return False


def _load_results(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("tests"), list) else None


def complete(out_dir: Path, namespace: str, exercises: list[str]) -> bool:
    """Every expected report of this namespace is present and parses (what ``--resume`` skips)."""
    d = out_dir / namespace
    doc = _load_results(d / RESULTS)
    if doc is None:
        return False
    extra = doc.get("extra_data") if isinstance(doc.get("extra_data"), dict) else {}
    entries = [*doc["tests"], *(extra.get("unobserved") or []), *(extra.get("errors") or [])]
    graded = {str((e.get("extra_data") or e).get("exercise")) for e in entries if isinstance(e, dict)}
    return set(exercises) <= graded and all(_parses_xml(d / f"{ex}.xml") for ex in exercises)


def results_from_gradescope(doc: dict[str, Any], namespace: str) -> list[ExerciseResult]:
    """Rebuild enough of the results model from a ``results.json`` for the gradebook and the
    exit code: scores, outcomes (checks the grader could not observe and namespace errors come
    from its top-level ``extra_data``) and the exercises graded. Earned points are all-or-nothing
    per check, so they follow from outcomes."""
    by_ex: dict[str, ExerciseResult] = {}
    top = doc.get("extra_data") if isinstance(doc.get("extra_data"), dict) else {}
    for error in top.get("errors") or []:         # a namespace error (gradescope_json's extra_data)
        if isinstance(error, dict) and error.get("exercise"):
            ex = str(error["exercise"])
            by_ex.setdefault(ex, ExerciseResult(ex, Text.same(ex), namespace)).error = Text.same(str(error.get("message") or "error"))
    unobserved = [{"name": u.get("name"), "max_score": u.get("max_score"), "visibility": u.get("visibility"),
                   "extra_data": {**u, "outcome": Outcome.ERROR.value}}
                  for u in top.get("unobserved") or [] if isinstance(u, dict)]
    for test in [*(doc.get("tests") or []), *unobserved]:
        if not isinstance(test, dict):
            continue
        extra = test.get("extra_data") or {}
        ex = str(extra.get("exercise") or "")
        if not ex:
            continue
        r = by_ex.setdefault(ex, ExerciseResult(ex, Text.same(ex), namespace))
        try:
            outcome = Outcome(extra.get("outcome"))
        except ValueError:
            outcome = Outcome.ERROR
        if "check_id" not in extra:   # a namespace error with no check to carry it
            r.error = Text.same(str(test.get("output") or "error"))
            continue
        try:
            visibility = Visibility(test.get("visibility", "visible"))
        except ValueError:
            visibility = Visibility.VISIBLE
        points = test.get("max_score")
        r.checks.append(CheckResult(str(extra["check_id"]), Text.same(str(test.get("name", ""))),
                                    float(points) if isinstance(points, (int, float)) else 0.0, outcome,
                                    visibility=visibility, attempts=int(extra.get("attempts") or 1)))
    return list(by_ex.values())


def _earlier(out_dir: Path, skip: set[str]) -> dict[str, list[ExerciseResult]]:
    """Results of namespaces already reported in DIR, except those in ``skip``."""
    found: dict[str, list[ExerciseResult]] = {}
    if not out_dir.is_dir():
        return found
    for d in sorted(out_dir.iterdir()):
        if d.name in skip or not safe_name(d.name) or not d.is_dir():
            continue
        doc = _load_results(d / RESULTS)
        if doc is not None:
            found[d.name] = results_from_gradescope(doc, d.name)
    return found


# --- writing ---------------------------------------------------------------------------------
def _reports(namespace: str, results: list[ExerciseResult], lang: str,
             stamp: tuple[datetime, str] | None = None) -> tuple[str, list[tuple[str, bytes | str]]]:
    """A namespace's directory name and report files, in the order they are written: JUnit per
    exercise first, results.json last, since its presence marks the namespace done."""
    if not safe_name(namespace):
        raise ValueError(f"refusing to write reports outside DIR: {namespace!r}")  # callers filter first
    when, host = stamp or (datetime.now(), socket.gethostname())
    return namespace, [*((f"{r.exercise_id}.xml", render_junit([r], lang, timestamp=when, hostname=host)) for r in results),
                       (RESULTS, _results_json(gradescope_json(results, lang)))]


# One encoder for every document: ``json.dumps`` with any option builds a new one per call.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _results_json(doc: dict[str, Any]) -> str:
    """``results.json`` with one test per line: still readable, and written by json's C encoder
    (any ``indent`` switches json to its pure-Python encoder, 1 ms a namespace)."""
    rest = {k: v for k, v in doc.items() if k != "tests"}
    tests = ",\n".join(map(_encode, doc.get("tests") or []))
    tail = ", " + _encode(rest)[1:] if rest else "}"
    return '{"tests": [\n' + tests + "\n]" + tail + "\n"


def write_namespaces(out_dir: Path, by_ns: dict[str, list[ExerciseResult]], lang: str) -> None:
    """Write many namespaces' reports at once (``write_atomic_dirs``: a new namespace's directory
    appears whole, and the filesystem is flushed once for the chunk's contents and once for its
    renames, not twice per file)."""
    stamp = (datetime.now(), socket.gethostname())
    write_atomic_dirs(out_dir, [_reports(ns, rs, lang, stamp) for ns, rs in by_ns.items()])


def in_order(by_ns: dict[str, list[ExerciseResult]]) -> dict[str, list[ExerciseResult]]:
    """The namespaces in the order the gradebook and the class page list them."""
    return {ns: by_ns[ns] for ns in sorted(by_ns)}


def write_gradebook(out_dir: Path, by_ns: dict[str, list[ExerciseResult]], lang: str = "en", *,
                     page: bool = True, data: dict[str, Any] | None = None) -> None:
    """The gradebook and, with ``page``, the class page (``DIR/index.html``), over the same
    namespaces; ``data``: the page's ``class_data`` of ``in_order(by_ns)``, if computed already."""
    ordered = in_order(by_ns)
    write_atomic(out_dir / GRADEBOOK, gradebook_csv([r for rs in ordered.values() for r in rs]))
    if page:
        write_atomic(out_dir / CLASS_PAGE, render_class_page(ordered, lang=lang, data=data))


class _Gradebook:
    """The gradebook rewritten as chunks finish, at a bounded share of the run's time.

    It covers every namespace so far, so rewriting it after each chunk made a batch quadratic
    (10,000 students: 50 rewrites of up to 10,000 rows). After a chunk it is rewritten only when
    the time since the last rewrite is ten times what that rewrite took, and at least ``EVERY``
    seconds (after every 200 namespaces, rewrites were 5 % of a quick batch's CPU for a file
    nobody reads before the end); it is always written when the batch ends or is interrupted. The class page, which costs several times the
    gradebook (a sixth of a batch's CPU when it was redrawn with it), is written only then. After
    a crash (SIGKILL), ``--resume`` rebuilds both from the ``results.json`` files, which are the
    record."""

    EVERY = 5.0

    def __init__(self, out_dir: Path, lang: str) -> None:
        self.out_dir = out_dir
        self.lang = lang
        self.last = time.monotonic()
        self.took = 0.0

    def write(self, by_ns: dict[str, list[ExerciseResult]], *, page: bool = True) -> None:
        started = time.monotonic()
        write_gradebook(self.out_dir, by_ns, self.lang, page=page)
        self.last = time.monotonic()
        self.took = self.last - started

    def written(self, by_ns: dict[str, list[ExerciseResult]]) -> None:
        if time.monotonic() - self.last >= max(10 * self.took, self.EVERY):
            self.write(by_ns, page=False)


def _by_namespace(results: list[ExerciseResult]) -> dict[str, list[ExerciseResult]]:
    out: dict[str, list[ExerciseResult]] = {}
    for r in results:
        out.setdefault(r.namespace, []).append(r)
    return out


def safe_name(name: Any) -> bool:
    """A namespace name, hence safe as one path part of DIR (``snapshot.valid_namespace``)."""
    return valid_namespace(name)


def shown_name(name: Any) -> str:
    """How a name that is not a namespace name appears in reports: controls spelled out (``\\x1b``,
    so two names stay two rows), cut, and in quotes, so it can never be mistaken for (or overwrite
    the gradebook row of) a real namespace."""
    return quote((name if isinstance(name, str) else repr(name)).encode("unicode_escape").decode("ascii"), 60)


def rejected(specs: list[ExerciseSpec], name: Any) -> list[ExerciseResult]:
    """An ERROR row per exercise for a name that cannot be a namespace: it is not graded, no file
    is written for it, and the rest of the class is graded as usual."""
    why = t("{ns} は名前空間の名前ではないため採点していません (英小文字・数字・ハイフンで 63 文字以内)。レポートのファイルは書き出していません。",
            "{ns} is not a namespace name (lowercase letters, digits and '-', at most 63), so it was not graded and no report file was written for it.",
            ns=Raw(shown_name(name)))
    return [ExerciseResult(s.id, s.render(s.title), shown_name(name), error=why) for s in specs]


def absent(specs: list[ExerciseSpec], name: str, server: str) -> list[ExerciseResult]:
    """An ERROR row per exercise for a ``-n`` namespace that does not exist: not a row of zeros
    (nothing of the student's was seen), and no report file, so ``--resume`` grades it once it
    exists."""
    why = t("名前空間 {ns} は {srv} にありません (-n の名前の誤りでは?)。採点していません。",
            "namespace {ns} does not exist on {srv} (a mistyped -n?), so it was not graded.",
            ns=name, srv=Raw(server))
    return [ExerciseResult(s.id, s.render(s.title), name, error=why) for s in specs]


def write_reports(out_dir: Path, results: list[ExerciseResult], lang: str) -> None:
    """Reports of results graded elsewhere (``--manifests``), in the batch layout; a result whose
    namespace is not a namespace name gets a gradebook row but no directory."""
    by_ns = {(ns if safe_name(ns) else shown_name(ns)): rs for ns, rs in _by_namespace(results).items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_namespaces(out_dir, {ns: rs for ns, rs in by_ns.items() if safe_name(ns)}, lang)
    write_gradebook(out_dir, {**_earlier(out_dir, set(by_ns)), **by_ns}, lang)


# --- interruption ----------------------------------------------------------------------------
class _SigtermAsInterrupt:
    """SIGTERM (a scheduler stopping the job) ends the run like Ctrl-C: KeyboardInterrupt in the
    main thread, so the chunk in flight is dropped and every finished file stays complete.

    Both signals are also remembered: Python runs a signal's handler wherever the main thread is,
    and a KeyboardInterrupt raised inside a weakref callback or ``__del__`` is printed as "ignored"
    and lost. ``check()`` at each chunk's end raises it again, so no stop request is ever lost."""

    def __enter__(self) -> "_SigtermAsInterrupt":
        self.requested = False
        self._old: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            def raise_interrupt(signum: int, frame: FrameType | None) -> None:
                self.requested = True
                raise KeyboardInterrupt
            for sig in (signal.SIGTERM, signal.SIGINT):
                if signal.getsignal(sig) is not signal.SIG_IGN:   # an ignored SIGINT stays ignored
                    self._old[sig] = signal.signal(sig, raise_interrupt)
        return self

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# --- the batch -------------------------------------------------------------------------------
def grade_batch(api: Api, settings: Settings, specs: list[ExerciseSpec], namespaces: list[str],
                out_dir: Path, *, resume: bool = False, roster: Roster | None = None,
                missing: list[str] | None = None) -> int:
    """Grade every namespace into ``out_dir``; returns the exit code (``RunResult.exit_code``).
    ``missing``: -n names that do not exist (ERROR rows); ``roster``: write the LMS round trip."""
    namespaces = list(dict.fromkeys(namespaces))
    refused = {shown_name(ns): rejected(specs, ns) for ns in namespaces if not safe_name(ns)}
    refused.update({ns: absent(specs, ns, api.server) for ns in missing or [] if safe_name(ns)})
    namespaces = [ns for ns in namespaces if safe_name(ns) and ns not in refused]
    lang = settings.lang
    exercises = [s.id for s in specs]
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale(out_dir)        # what a batch killed mid-write left (kill -9: no clean-up ran)
    skipped = [ns for ns in namespaces if complete(out_dir, ns, exercises)] if resume else []
    todo = [ns for ns in namespaces if ns not in set(skipped)]
    by_ns = _earlier(out_dir, set(todo))            # earlier runs, incl. the skipped namespaces
    by_ns.update(refused)
    wait = settings.wait if settings.wait is not None else 0.0
    size = chunk_size()
    show = progress_bar(settings, ",".join(exercises))
    snapshot = Snapshot(api, todo)                  # one observation for every chunk
    probe = probe_for(api, settings)
    graded: list[ExerciseResult] = [r for rs in refused.values() for r in rs]
    started = time.monotonic()
    book = _Gradebook(out_dir, lang)
    with _SigtermAsInterrupt() as stop:
        checks = collect(specs) if todo else None   # once per run: every chunk calls the same checks
        done = 0
        finished = False
        try:
            for chunk in _chunks(todo, size):
                def progress(n: int, total: int, base: int = done, width: int = len(chunk)) -> None:
                    if show is not None:
                        show(base + width * n // max(total, 1), len(todo))
                assert checks is not None
                results = checks.grade(chunk, snapshot, probe, wait=wait, include=lambda c: True,
                                       progress=progress if show else None, debug=settings.debug)
                stop.check()        # a stop request whose KeyboardInterrupt was swallowed on the way
                found = _by_namespace(results)
                chunk_by_ns = {ns: found.get(ns, []) for ns in chunk}
                write_namespaces(out_dir, chunk_by_ns, lang)
                by_ns.update(chunk_by_ns)
                book.written(by_ns)
                graded += results
                done += len(chunk)
            stop.check()
            finished = True
        finally:
            # Interrupted while a chunk was being written, some of its namespaces may be on disk
            # (renamed into place) that by_ns does not hold yet: what is on disk is the record.
            book.write(by_ns if finished else {**_earlier(out_dir, set()), **by_ns})
    if roster is not None:
        write_round_trip(api, settings, specs, by_ns, out_dir, roster)
    selected = [r for ns in [*namespaces, *refused] for r in by_ns.get(ns, [])]
    run = RunResult(selected)
    errored = sorted({r.namespace for r in graded
                      if r.error is not None or r.count(Outcome.ERROR)})
    _summary(lang, len(todo) + len(refused), len(skipped), errored, out_dir, time.monotonic() - started)
    return run.exit_code


def _summary(lang: str, graded: int, skipped: int, errored: list[str], out_dir: Path, seconds: float) -> None:
    line = t("{n} 個の名前空間を採点しました ({s:.1f} 秒)。--resume で省略: {k}。エラーのある名前空間: {e}。レポート: {d}",
             "graded {n} namespace(s) in {s:.1f}s; skipped by --resume: {k}; namespaces with errors: {e}; reports in {d}",
             n=graded, s=seconds, k=skipped, e=len(errored), d=Raw(str(out_dir)))
    print(line.get(lang))
    if errored:
        shown = ", ".join(errored[:10]) + (" …" if len(errored) > 10 else "")
        print(t("  エラー (学生のミスではありません。再実行してください): {ns}",
                "  errors (not the students' fault; re-run them): {ns}", ns=Raw(shown)).get(lang))
    sys.stdout.flush()

