"""``grade EX... --watch``: grading that follows the work as it happens.

A student's run shows the checklist at once and re-grades as the objects change (on a terminal
redrawn in place with ``rich``; piped, one line per check that changed), and exits 0 with the
final report as soon as every check passes, or 130 with the last report on Ctrl-C. An
instructor's run grades the class once, then only the namespaces whose objects changed, and
publishes each new grade: ``--serve`` (``grader.liveserve``), ``--out DIR`` (the batch's atomic
report writers), else a line per namespace re-graded.

Both read one ``watch.LiveSnapshot``: the checks run from the same snapshot model as a single
run, its lists kept current by watches, so a change costs the changed namespaces' checks and no
new list. A check that takes the ``probe`` fixture (a service proxy, a route) depends on more
than objects: while it fails, the probe checks of its namespace run again ``PROBE_EVERY``
seconds later even without an event (the pod may start answering; a class backs off from there
to ``PROBE_MAX_CLASS``), and every re-grading re-fetches its answers.
"""
from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import sys
import time
from typing import Any, Callable, TextIO

from .batch import GRADEBOOK, in_order, safe_name, write_gradebook, write_namespaces
from .classpage import class_data
from .errors import InfraError
from .grading import probe_for
from .i18n import Raw, t
from .kube import Api, HttpAnswer
from .output import emit
from .probes import Probe
from .reports import render_console
from .results import ExerciseResult, Outcome, RunResult
from .runner import Checks, collect, student_filter
from .settings import Settings
from .snapshot import metadata_of
from .specs import ExerciseSpec
from .watch import Changes, LiveSnapshot

PROBE_EVERY = 2.0     # a failing probe check is run again at most this often (a student's run)
# A class: first again after PROBE_EVERY_CLASS, backing off to PROBE_MAX_CLASS while nothing
# changes, and at most PROBE_BATCH namespaces' probes between two looks at the changes (one while
# changes wait), so a change never waits behind the probes of the whole class (a pod that starts
# answering mostly comes with an event anyway: its Endpoints change).
PROBE_EVERY_CLASS = 10.0
PROBE_MAX_CLASS = 60.0
PROBE_BATCH = 10
INTERRUPTED = 130


class _AskingProbe(Probe):
    """The run's probe, noting which namespaces' checks asked it for an HTTP answer: a probe
    check that failed before asking (no Service yet) waits for an event, not for a timer."""

    asked: set[str]

    def service(self, namespace: str, service: str, port: int | str, path: str = "/") -> HttpAnswer:
        self.asked.add(namespace)
        return super().service(namespace, service, port, path)

    def url(self, host: str, path: str = "/", *, namespace: str | None = None,
            snapshot: Any = None) -> HttpAnswer:
        if namespace is not None:
            self.asked.add(namespace)
        return super().url(host, path, namespace=namespace, snapshot=snapshot)


def _asking(probe: Probe) -> _AskingProbe:
    asking = _AskingProbe(probe.api, router=probe.router, route_domains=probe.route_domains, timeout=probe.timeout,
                          max_body=probe.max_body, workers=probe.workers, cache_budget=probe.cache_budget)
    asking.asked = set()
    return asking


class _Grades:
    """The latest result of each (exercise, namespace), and when each namespace with a failing
    probe check is due to have its probe checks run again: ``probe_every`` after a grading, then
    doubling up to ``probe_max`` while they keep failing with no event (a student's run keeps
    2 s; a class of a thousand must not re-probe hundreds of unfinished namespaces every 2 s)."""

    def __init__(self, checks: Checks, live: LiveSnapshot, probe: Any, include: Callable[..., bool], *,
                 probe_every: float | None = None, probe_max: float | None = None) -> None:
        self.checks = checks
        self.live = live
        self.probe = _asking(probe)
        self.include = include
        self.probe_every = PROBE_EVERY if probe_every is None else probe_every
        self.probe_max = self.probe_every if probe_max is None else probe_max
        self.current: dict[tuple[str, str], ExerciseResult] = {}
        self.probe_due: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self.gradings = 0
        probing = [c for c in checks.checks if "probe" in c.argnames]
        self._probing = {(c.spec.id, c.check.id) for c in probing}
        self._probing_specs = {id(c.check) for c in probing}

    def grade(self, namespaces: list[str]) -> list[ExerciseResult]:
        """Every check of ``namespaces`` (their objects changed)."""
        self.probe.reset()
        self.probe.asked = set()
        results = self.checks.grade(namespaces, self.live, self.probe, wait=0.0, include=self.include)
        self.gradings += 1
        for ns in namespaces:
            self._interval[ns] = self.probe_every
        self._keep(results, namespaces)
        return results

    def probe_again(self, namespaces: list[str]) -> None:
        """Only the probe checks of ``namespaces``, merged into their latest results."""
        self.probe.reset()
        self.probe.asked = set()
        results = self.checks.grade(namespaces, self.live, self.probe, wait=0.0,
                                    include=lambda c: self.include(c) and id(c) in self._probing_specs)
        merged = []
        for r in results:
            old = self.current.get((r.exercise_id, r.namespace))
            if old is None:
                continue
            fresh = {c.check_id: c for c in r.checks}
            merged.append(dataclasses.replace(old, checks=[fresh.get(c.check_id, c) for c in old.checks]))
        for ns in namespaces:
            self._interval[ns] = min(self.probe_max, 2 * self._interval.get(ns, self.probe_every))
        self._keep(merged, namespaces)

    def _keep(self, results: list[ExerciseResult], namespaces: list[str]) -> None:
        now = time.monotonic()
        for ns in namespaces:
            self.probe_due.pop(ns, None)
        for r in results:
            self.current[(r.exercise_id, r.namespace)] = r
            if r.namespace in self.probe.asked and any(
                    c.outcome is not Outcome.PASSED and (r.exercise_id, c.check_id) in self._probing for c in r.checks):
                self.probe_due[r.namespace] = now + self._interval.get(r.namespace, self.probe_every)

    def due(self) -> list[str]:
        """The namespaces whose probe checks are due, longest overdue first."""
        now = time.monotonic()
        return [ns for when, ns in sorted((w, n) for n, w in self.probe_due.items() if w <= now)]

    def next_wait(self, idle: float) -> float:
        if not self.probe_due:
            return idle
        return max(0.0, min(idle, min(self.probe_due.values()) - time.monotonic()))

    def results(self, namespaces: list[str], exercises: list[str]) -> list[ExerciseResult]:
        return [self.current[(ex, ns)] for ex in exercises for ns in namespaces if (ex, ns) in self.current]


def _changed_lines(before: list[ExerciseResult], after: list[ExerciseResult], lang: str) -> list[str]:
    """One line per check whose outcome changed: what a piped watch prints."""
    old = {(r.exercise_id, r.namespace, c.check_id): c.outcome for r in before for c in r.checks}
    lines = []
    for r in after:
        for c in r.checks:
            if old.get((r.exercise_id, r.namespace, c.check_id)) is not c.outcome:
                tag = {Outcome.PASSED: "PASS", Outcome.FAILED: "FAIL"}.get(c.outcome, "ERROR")
                lines.append(f"{tag:<5} {r.exercise_id} {c.check_id}: {c.title.get(lang)}"
                             f"  [{r.score:g}/{r.max_score:g}]")
    return lines


class _Screen:
    """The student's checklist: redrawn in place on a terminal, else a line per change."""

    def __init__(self, settings: Settings, out: TextIO) -> None:
        self.lang = settings.lang
        self.out = out
        self.tty = out.isatty()
        self._live: Any = None
        self.shown: list[ExerciseResult] = []

    def _text(self, results: list[ExerciseResult]) -> Any:
        from rich.text import Text as RichText
        body = render_console(results, self.lang, color=True).rstrip("\n")
        footer = t("\n監視中: 変更のたびに採点し直します (Ctrl-C で終了)",
                   "\nwatching: re-graded on every change (Ctrl-C to stop)").get(self.lang)
        return RichText.from_ansi(body + "\n" + footer)

    def show(self, results: list[ExerciseResult]) -> None:
        if self.tty:
            if self._live is None:
                from rich.console import Console
                from rich.live import Live
                self._live = Live(self._text(results), console=Console(file=self.out), auto_refresh=False,
                                  transient=True)
                self._live.start()
            else:
                self._live.update(self._text(results), refresh=True)
        elif not self.shown:
            print(render_console(results, self.lang, color=False).rstrip("\n"), file=self.out, flush=True)
            print(t("監視中: 変更のたびに採点し直します (Ctrl-C で終了)",
                    "watching: re-graded on every change (Ctrl-C to stop)").get(self.lang), file=self.out, flush=True)
        else:
            for line in _changed_lines(self.shown, results, self.lang):
                print(line, file=self.out, flush=True)
        self.shown = results

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def watch_student(api: Api, ns: argparse.Namespace, settings: Settings, specs: list[ExerciseSpec],
                  namespaces: list[str]) -> int:
    """Grade until every check passes (0, the final report) or Ctrl-C (130, the last report)."""
    checks = collect(specs)
    live = LiveSnapshot(api, namespaces, Changes())
    grades = _Grades(checks, live, probe_for(api, settings), student_filter(settings.due_passed()))
    exercises = [s.id for s in specs]
    # With --json, stdout holds the final JSON alone: the live checklist goes to stderr.
    screen = _Screen(settings, sys.stderr if getattr(ns, "json", False) else sys.stdout)
    results: list[ExerciseResult] = []
    try:
        grades.grade(namespaces)
        while True:
            results = grades.results(namespaces, exercises)
            screen.show(results)
            if RunResult(results).exit_code == 0:
                break
            while True:          # shown again only once something was graded again
                changed = sorted(live.changes.take(grades.next_wait(1.0)) & set(namespaces))
                if changed:
                    grades.grade(changed)
                    break
                due = grades.due()
                if due:
                    grades.probe_again(due)
                    break
    except KeyboardInterrupt:
        screen.close()
        live.stop()
        if results:
            emit(RunResult(results), ns, settings)
        return INTERRUPTED
    finally:
        screen.close()
        live.stop()
    return emit(RunResult(results), ns, settings)


def watch_class(api: Api, ns: argparse.Namespace, settings: Settings, specs: list[ExerciseSpec],
                namespaces: list[str], *, follow: bool, serve: tuple[str, int] | None,
                system: Callable[[str], bool] = lambda n: False) -> int:
    """Grade the class, then only what changes, until Ctrl-C (130). ``follow``: namespaces that
    appear later and match --namespace-pattern/--namespace-selector are graded too, except the
    ones ``system`` names (the cluster's own and the grader's, as for a batch)."""
    from pathlib import Path

    from .liveserve import Board, LiveServer

    lang = settings.lang
    namespaces = [n for n in namespaces if safe_name(n)]
    checks = collect(specs)
    live = LiveSnapshot(api, namespaces, Changes())
    grades = _Grades(checks, live, probe_for(api, settings), lambda c: True, probe_every=PROBE_EVERY_CLASS,
                     probe_max=PROBE_MAX_CLASS)
    exercises = [s.id for s in specs]
    out = Path(ns.out) if ns.out else None
    board = Board(lang)
    server = LiveServer(board, *serve) if serve else None
    if follow:
        live.cluster_list("Namespace")     # watched: a new student's namespace is noticed

    by_ns: dict[str, list[ExerciseResult]] = {}

    def publish(changed: list[str]) -> None:
        for n in changed:
            by_ns[n] = grades.results([n], exercises)
        ordered = in_order(by_ns)
        # one class_data for both DIR/index.html and the server's page and /class.json
        data = class_data(ordered, lang=lang) if out is not None and server is not None else None
        if out is not None:      # files first: what the page shows is on disk already
            write_namespaces(out, {n: by_ns[n] for n in changed}, lang)
            write_gradebook(out, ordered, lang, data=data)
        board.publish(ordered, data)
        if server is None and out is None:
            for n in changed:
                rs = by_ns[n]
                print(f"{n}: " + ", ".join(f"{r.exercise_id} {r.score:g}/{r.max_score:g}" for r in rs), flush=True)

    try:
        if server is not None:
            server.__enter__()
            print(t("クラスのページ: {u} (Ctrl-C で終了)", "class page: {u} (Ctrl-C to stop)",
                    u=Raw(server.url)).get(lang), file=sys.stderr, flush=True)
        grades.grade(namespaces)
        publish(namespaces)
        while True:
            changed = live.changes.take(grades.next_wait(1.0))
            new = [n for n in sorted(changed - set(live.namespaces))
                   if follow and not system(n) and _matches(api, settings, n)]
            for n in new:
                live.add_namespace(n)
            todo = sorted(changed & set(live.namespaces))
            if todo:
                grades.grade(todo)
            # Probes due on the timer only fill the time changes leave: one namespace's while
            # changes wait (so none starves), PROBE_BATCH's when none do.
            due = [n for n in grades.due() if n not in todo][:1 if live.changes.waiting() else PROBE_BATCH]
            if due:
                grades.probe_again(due)
            if todo or due:
                publish(todo + due)
    except KeyboardInterrupt:
        if out is not None:
            print(t("レポート: {d} ({g})", "reports in {d} ({g})", d=Raw(str(out)), g=Raw(GRADEBOOK)).get(lang))
        return INTERRUPTED
    finally:
        live.stop()
        if server is not None:
            server.__exit__(None, None, None)


def _matches(api: Api, settings: Settings, name: str) -> bool:
    """Whether a namespace that just appeared belongs to the class being watched."""
    if not safe_name(name):
        return False
    if settings.namespace_pattern and not fnmatch.fnmatchcase(name, settings.namespace_pattern):
        return False
    if settings.namespace_selector:
        try:
            found = api.list("Namespace", label_selector=settings.namespace_selector)
        except InfraError:
            return False
        return name in {metadata_of(o).get("name") for o in found}
    return True


__all__ = ["PROBE_EVERY", "watch_class", "watch_student"]
