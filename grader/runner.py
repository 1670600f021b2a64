"""Runs the exercises' checks: pytest collects them once per run, the runner calls them.

Exercise authors write plain pytest functions taking the grader's fixtures (``view``, ``ns``,
``params``, ``probe``, ``exercise``). pytest imports and collects those modules once per run (its
assertion rewriting included, so a bare ``assert`` explains itself as it always did); the runner
then calls each collected function directly, with the fixtures resolved once per namespace.
Why not pytest's own run loop: its per-item protocol (fixture lookup, setup and teardown, reports)
cost ten times what the checks themselves cost, for every (student × check).

Eventual consistency is handled here, once, and checks never sleep: the checks that did not pass
are called again on a fresh observation until the deadline. Probes in a batch are made
concurrently: in the first pass a check that needs an HTTP answer not yet in the probe's cache is
deferred; the runner then fetches every deferred answer with a bounded pool and calls those
checks again from the cache.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, TextIO

import pytest

from .checks import NotApplicable
from .errors import CheckFailed, ClusterUnavailable, InfraError, SpecError
from .i18n import Raw, Text, t
from .probes import Deferred, Probe
from .results import CheckResult, ExerciseResult, Outcome, Visibility
from .snapshot import Snapshot
from .specs import CheckSpec, ExerciseSpec

Progress = Callable[[int, int], None]
Waiting = Callable[[int, float], None]   # (checks still failing, seconds left); (0, 0) when done
# What a check may ask for; each is resolved once per namespace (``exercise`` and ``params`` once
# per exercise), and a check that takes none of the per-namespace ones grades nobody.
FIXTURES = ("view", "ns", "probe", "params", "exercise")
_PER_NAMESPACE = {"view", "ns", "probe"}


@dataclass(frozen=True)
class Check:
    """One collected check function and what the runner needs to call it and report on it."""
    spec: ExerciseSpec
    check: CheckSpec
    function: Callable[..., Any]
    argnames: tuple[str, ...]
    constants: tuple[tuple[str, Any], ...]   # an author's own @pytest.mark.parametrize values
    title: Text
    hint: Text


class _Collector:
    """The pytest plugin of the one session: collect, keep the items, run nothing."""

    def __init__(self, specs: dict[Path, ExerciseSpec]) -> None:
        self.specs = specs
        self.items: list[pytest.Function] = []
        self.errors: list[str] = []
        self._module_specs: dict[int, ExerciseSpec] = {}

    def spec_of(self, module: Any) -> ExerciseSpec:
        spec = self._module_specs.get(id(module))
        if spec is None:
            spec = self._module_specs[id(module)] = self.specs[Path(module.__file__).resolve()]
        return spec

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1:]}")

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.items = [i for i in items if isinstance(i, pytest.Function)]

    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        return True   # the runner calls the checks itself (``Checks.grade``)


def _pytest_args(modules: Iterable[Path]) -> list[str]:
    ini = Path(__file__).resolve().parent / "_pytest.ini"
    # Built-in plugins that cost per session and give a grade nothing.
    off = ("terminal", "cacheprovider", "stepwise", "warnings", "logging", "unraisableexception",
           "threadexception", "faulthandler", "junitxml", "doctest", "pastebin", "setuponly",
           "setupplan", "legacypath")
    return [*(str(m) for m in modules), "--disable-plugin-autoload", *(a for p in off for a in ("-p", f"no:{p}")),
            "--import-mode=importlib", "-c", str(ini), "--rootdir", str(ini.parent)]


def collect(specs: list[ExerciseSpec]) -> "Checks":
    """Import and collect the exercises' modules: one pytest session, whatever the number of
    students or chunks graded with the result."""
    by_module = {s.module.resolve(): s for s in specs}
    plugin = _Collector(by_module)
    old = os.environ.get("PYTEST_ADDOPTS")
    os.environ.pop("PYTEST_ADDOPTS", None)  # a user's pytest options must not change a grade
    try:
        code = pytest.main(_pytest_args(by_module), plugins=[plugin])
    finally:
        if old is not None:
            os.environ["PYTEST_ADDOPTS"] = old
    if code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt
    if plugin.errors:
        raise SpecError(str(specs[0].module.parent), "checks module", "; ".join(plugin.errors))
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise RuntimeError(f"the grader's pytest session ended with {code!r}")
    checks: list[Check] = []
    for item in plugin.items:
        spec = plugin.spec_of(item.module)
        name = item.originalname
        check = next((c for c in spec.checks if c.function == name), None)
        if check is None:
            continue   # a helper test function of the module, not one of the exercise's checks
        constants = dict(item.callspec.params) if hasattr(item, "callspec") else {}
        argnames = tuple(a for a in item._fixtureinfo.argnames if a not in constants)
        unknown = [f for f in item.fixturenames if f not in FIXTURES and f not in constants and f != "request"]
        if unknown:
            raise SpecError(str(spec.module), name, f"a check may take only the grader's fixtures "
                                                    f"({', '.join(FIXTURES)}), not {', '.join(unknown)}")
        if not _PER_NAMESPACE & set(argnames):
            raise SpecError(str(spec.module), name, "a check must take the `view` (or `ns`) fixture")
        checks.append(Check(spec, check, item.obj, argnames, tuple(constants.items()),
                            spec.render(check.title), spec.render(check.hint)))
    return Checks(specs, checks)


class _Sink:
    """Where a check's print() goes: nowhere, as under pytest's capture (a check's output must not
    mix into --json or the console report)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class Checks:
    """The collected checks of some exercises, ready to grade any namespaces, any number of times."""

    def __init__(self, specs: list[ExerciseSpec], checks: list[Check]) -> None:
        self.specs = specs
        self.checks = checks
        self._params = {s.id: MappingProxyType(dict(s.params)) for s in specs}

    def grade(self, namespaces: list[str], snapshot: Snapshot, probe: Probe, *, wait: float,
              include: Callable[[CheckSpec], bool] = lambda c: True, progress: Progress | None = None,
              debug: bool = False, waiting: Waiting | None = None) -> list[ExerciseResult]:
        """Grade every exercise in every namespace; one ExerciseResult per (exercise, namespace)."""
        run = _Run(self, snapshot, probe, debug)
        selected = [c for c in self.checks if include(c.check)]
        started = time.monotonic()
        try:
            run.loop(namespaces, selected, wait, progress, waiting)
        finally:
            if waiting:
                waiting(0, 0.0)
        if namespaces and not run.results and selected:
            raise RuntimeError("the grader ran no check")
        if namespaces and not selected and any(include(c) for s in self.specs for c in s.checks):
            raise RuntimeError("the grader collected no check of the exercises")
        each = (time.monotonic() - started) / max(1, len(self.specs) * len(namespaces))
        out: list[ExerciseResult] = []
        for spec in self.specs:
            title = spec.render(spec.title)
            for ns in namespaces:
                checks = [run.results[key] for c in spec.checks
                          if (key := (spec.id, c.id, ns)) in run.results]
                out.append(ExerciseResult(spec.id, title, ns, checks, duration=each))
        return out


Task = tuple[str, Check]


class _Run:
    """One grading of some namespaces: the fixtures of each namespace and each check's outcome."""

    def __init__(self, checks: Checks, snapshot: Snapshot, probe: Probe, debug: bool) -> None:
        self.params = checks._params
        self.snapshot = snapshot
        self.probe = probe
        self.debug = debug
        self.results: dict[tuple[str, str, str], CheckResult] = {}

    def _fixtures(self, ns: str) -> dict[str, Any]:
        return {"ns": ns, "view": self.snapshot.view(ns), "probe": self.probe.scoped(ns, self.snapshot)}

    def loop(self, namespaces: list[str], selected: list[Check], wait: float, progress: Progress | None,
             waiting: Waiting | None) -> None:
        deadline = time.monotonic() + wait
        pending: list[Task] = [(ns, c) for ns in namespaces for c in selected]
        interval = 0.25
        batch = len(namespaces) > 1
        first = True
        while pending:
            self.probe.defer = batch
            deferred = self._pass(pending, progress if first else None)
            if deferred:
                self.probe.defer = False
                try:
                    self.probe.run_deferred()
                except Exception:  # noqa: BLE001 -- one student's probe must not end the class's run:
                    pass           # what is not cached is fetched again inside its own check below
                self._pass(deferred, None)
            first = False
            pending = [(ns, c) for ns, c in pending
                       if self.results[(c.spec.id, c.check.id, ns)].outcome is not Outcome.PASSED]
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            if waiting:
                waiting(len(pending), remaining)
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.6, 2.0)
            self.snapshot.refresh()
            self.probe.reset()

    def _pass(self, tasks: list[Task], progress: Progress | None) -> list[Task]:
        """Call each task's check once; returns the tasks deferred for a probe answer."""
        deferred: list[Task] = []
        out, err = sys.stdout, sys.stderr
        sink = _Sink()
        fixtures: dict[str, Any] = {}
        current = None
        done = 0
        try:
            for n, (ns, c) in enumerate(tasks):
                if ns != current:
                    if progress and n:
                        sys.stdout, sys.stderr = out, err
                        progress(n, len(tasks))
                    current, fixtures = ns, self._fixtures(ns)
                    sys.stdout = sys.stderr = sink   # type: ignore[assignment]
                fixtures["params"], fixtures["exercise"] = self.params[c.spec.id], c.spec
                started = time.monotonic()
                try:
                    c.function(**{a: fixtures[a] for a in c.argnames}, **dict(c.constants))
                    exc: BaseException | None = None
                except (KeyboardInterrupt, pytest.exit.Exception):
                    raise   # Ctrl-C/SIGTERM: the results are partial
                except BaseException as e:  # noqa: BLE001 -- as pytest did: SystemExit too is the check's error
                    exc = e
                if self._record(ns, c, exc, time.monotonic() - started, err) is None:
                    deferred.append((ns, c))
                done = n + 1
        finally:
            sys.stdout, sys.stderr = out, err
        if progress and done:
            progress(done, len(tasks))
        return deferred

    def _record(self, ns: str, c: Check, exc: BaseException | None, duration: float,
                err: TextIO) -> Outcome | None:
        """Turn what the check raised into an outcome (None: deferred for a probe)."""
        key = (c.spec.id, c.check.id, ns)
        previous = self.results.get(key)
        attempts = previous.attempts + 1 if previous else 1
        message: Text | None = None
        command: str | None = None
        if exc is None:
            outcome = Outcome.PASSED
        elif isinstance(exc, Deferred):
            return None
        elif isinstance(exc, NotApplicable):
            outcome, message = Outcome.PASSED, exc.message
        elif isinstance(exc, CheckFailed):
            outcome, message, command = Outcome.FAILED, exc.message, exc.command
        elif isinstance(exc, AssertionError):
            outcome, message = Outcome.FAILED, Text.same(str(exc).split("\nassert ")[0] or "assertion failed")
        elif isinstance(exc, ClusterUnavailable):
            raise exc   # the run stops: no result of this run can be trusted
        elif isinstance(exc, InfraError):
            outcome, message = Outcome.ERROR, exc.message
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
            if self.debug:
                traceback.print_exception(exc, file=err)
            outcome = Outcome.ERROR
            message = t("採点側の内部エラー ({e}{loc})。講師に連絡してください。",
                        "internal grader error ({e}{loc}); please tell your instructor.",
                        e=Raw(type(exc).__name__), loc=Raw(loc))
        failed = outcome is Outcome.FAILED
        self.results[key] = CheckResult(
            check_id=c.check.id, title=c.title, points=c.check.points, outcome=outcome, message=message,
            hint=c.hint if failed else None, command=command, visibility=c.check.visibility,
            duration=duration, attempts=attempts)
        return outcome


def grade(specs: list[ExerciseSpec], namespaces: list[str], snapshot: Snapshot, probe: Probe, *,
          wait: float, include: Callable[[CheckSpec], bool] = lambda c: True,
          progress: Progress | None = None, debug: bool = False,
          waiting: Waiting | None = None) -> list[ExerciseResult]:
    """Collect, then grade every exercise in every namespace (one run; a batch collects once
    with ``collect`` and grades each chunk with ``Checks.grade``)."""
    return collect(specs).grade(namespaces, snapshot, probe, wait=wait, include=include,
                                progress=progress, debug=debug, waiting=waiting)


def student_filter(due_passed: bool) -> Callable[[CheckSpec], bool]:
    """A student's own run leaves out hidden checks, and after-due-date ones until the due date."""
    def include(check: CheckSpec) -> bool:
        if check.visibility is Visibility.HIDDEN:
            return False
        if check.visibility is Visibility.AFTER_DUE_DATE:
            return due_passed
        return True
    return include
