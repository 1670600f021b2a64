"""Drives pytest in-process: one session per run, whatever the number of students.

The exercises' pytest modules are collected once; each check function is parametrized over the
namespaces being graded, so an item is (check × namespace). The snapshot is shared by every item.
Instead of pytest's loop, a small plugin runs the items, keeps each one's outcome, and re-runs
only the ones that did not pass on a fresh observation until the deadline: eventual consistency
is handled here, once, and checks never sleep.

Probes in a batch are made concurrently: in the first pass a check that needs an HTTP answer not
yet in the probe's cache is deferred; the runner then fetches every deferred answer with a
bounded pool and re-runs those checks from the cache.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pytest

from .checks import NotApplicable
from .errors import CheckFailed, ClusterUnavailable, InfraError, SpecError
from .i18n import Raw, Text, t
from .probes import Probe
from .results import CheckResult, ExerciseResult, Outcome, Visibility
from .snapshot import Snapshot
from .specs import CheckSpec, ExerciseSpec

Progress = Callable[[int, int], None]
Waiting = Callable[[int, float], None]   # (checks still failing, seconds left); (0, 0) when done


@dataclass
class _Item:
    spec: ExerciseSpec
    check: CheckSpec
    namespace: str
    item: pytest.Item

    @property
    def key(self) -> tuple[str, str, str]:
        """Not the nodeid: exercises live outside pytest's rootdir, so nodeids lose the module
        part and two exercises' ``test_pod_ready`` would share one."""
        return (self.spec.id, self.check.id, self.namespace)


class _Plugin:
    """The pytest plugin object: fixtures for checks, parametrization, and the run loop."""

    def __init__(self, specs: dict[Path, ExerciseSpec], namespaces: list[str], snapshot: Snapshot,
                 probe: Probe, include: Callable[[CheckSpec], bool], wait: float,
                 progress: Progress | None, debug: bool, waiting: Waiting | None = None) -> None:
        self.specs = specs
        self.namespaces = namespaces
        self._snapshot = snapshot
        self._probe = probe
        self.include = include
        self.wait = wait
        self.progress = progress
        self.waiting = waiting
        self.debug = debug
        self.items: list[_Item] = []
        self.results: dict[tuple[str, str, str], CheckResult] = {}
        self.fatal: BaseException | None = None
        self.collect_errors: list[str] = []
        self._exc: dict[pytest.Item, BaseException] = {}
        self._module_specs: dict[int, ExerciseSpec] = {}
        self._params: dict[str, Any] = {}

    # --- fixtures available to exercise modules --------------------------------------------
    def _spec_of(self, module: Any) -> ExerciseSpec:
        spec = self._module_specs.get(id(module))
        if spec is None:  # resolving the path per item cost more than running a check
            spec = self._module_specs[id(module)] = self.specs[Path(module.__file__).resolve()]
        return spec

    # Function-scoped on purpose: a module-scoped fixture defined by a plugin has one cache
    # for every module, and leaked one exercise's parameters into another's checks when a run
    # graded several exercises. Both return objects built once per exercise, so they stay cheap.
    @pytest.fixture
    def exercise(self, request: pytest.FixtureRequest) -> ExerciseSpec:
        return self._spec_of(request.module)

    @pytest.fixture
    def params(self, request: pytest.FixtureRequest) -> Any:
        spec = self._spec_of(request.module)
        frozen = self._params.get(spec.id)
        if frozen is None:
            from types import MappingProxyType
            frozen = self._params[spec.id] = MappingProxyType(dict(spec.params))
        return frozen

    @pytest.fixture
    def view(self, ns: str) -> Any:
        return self._snapshot.view(ns)

    @pytest.fixture
    def probe(self, ns: str) -> Any:
        return self._probe.scoped(ns, self._snapshot)  # the host-claim rule needs to know who asks

    # --- collection ------------------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "ns" in metafunc.fixturenames:
            metafunc.parametrize("ns", self.namespaces, ids=[f"ns={n}" for n in self.namespaces])

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append(f"{report.nodeid}: {report.longreprtext.strip().splitlines()[-1:]}")

    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        keep: list[pytest.Item] = []
        for item in items:
            spec = self._spec_of(item.module)  # type: ignore[attr-defined]
            name = getattr(item, "originalname", item.name)
            check = next(c for c in spec.checks if c.function == name)
            if not self.include(check):
                continue
            ns = item.callspec.params.get("ns") if hasattr(item, "callspec") else None
            if ns is None:
                raise SpecError(str(spec.module), name, "a check must take the `view` (or `ns`) fixture")
            self.items.append(_Item(spec, check, ns, item))
            keep.append(item)
        items[:] = keep

    # --- running ---------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
        """Keep the exception itself, and give pytest a report without a formatted traceback.

        pytest's own report renders a failure's traceback with source, parsing the module's
        AST for each frame: ~7 ms per failed check, most of a class's grading time. Nothing
        reads that text (the outcome comes from the exception), so a one-line summary stands
        in for it. Skips keep pytest's report.
        """
        excinfo = call.excinfo
        if excinfo is not None and call.when in ("setup", "call"):
            self._exc.setdefault(item, excinfo.value)
        if excinfo is not None and isinstance(excinfo.value, pytest.skip.Exception):
            return None
        longrepr = None if excinfo is None else f"{excinfo.typename}: {str(excinfo.value)[:200]}"
        return pytest.TestReport(item.nodeid, item.location, {}, "passed" if excinfo is None else "failed",
                                 longrepr, call.when, (), call.duration, call.start, call.stop)

    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        from _pytest.runner import runtestprotocol

        deadline = time.monotonic() + self.wait
        pending = list(self.items)
        interval = 0.25
        batch = len(self.namespaces) > 1
        first = True
        while pending:
            self._probe.defer = batch
            deferred: list[_Item] = []
            for n, it in enumerate(pending):
                started = time.monotonic()
                runtestprotocol(it.item, nextitem=_next(pending, n), log=False)
                outcome = self._record(it, time.monotonic() - started)
                if outcome is None:
                    deferred.append(it)
                if self.fatal:
                    return True
                if first and self.progress:
                    self.progress(n + 1, len(pending))
            if deferred:
                self._probe.defer = False
                try:
                    self._probe.run_deferred()
                except Exception:  # noqa: BLE001 -- one student's probe must not end the class's run:
                    pass           # what is not cached is fetched again inside its own check below
                for n, it in enumerate(deferred):
                    started = time.monotonic()
                    runtestprotocol(it.item, nextitem=_next(deferred, n), log=False)
                    self._record(it, time.monotonic() - started)
                    if self.fatal:
                        return True
            first = False
            pending = [it for it in pending if self.results[it.key].outcome is not Outcome.PASSED]
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            if self.waiting:
                self.waiting(len(pending), remaining)
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.6, 2.0)
            self._snapshot.refresh()
            self._probe.reset()
        return True

    def _record(self, it: _Item, duration: float) -> Outcome | None:
        """Turn what the check raised into an outcome (None: deferred for a probe)."""
        from .probes import Deferred

        exc = self._exc.pop(it.item, None)
        key = it.key
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
            self.fatal = exc
            outcome, message = Outcome.ERROR, exc.message
        elif isinstance(exc, InfraError):
            outcome, message = Outcome.ERROR, exc.message
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
            if self.debug:
                traceback.print_exception(exc, file=sys.stderr)
            outcome = Outcome.ERROR
            message = t("採点側の内部エラー ({e}{loc})。講師に連絡してください。",
                        "internal grader error ({e}{loc}); please tell your instructor.",
                        e=Raw(type(exc).__name__), loc=Raw(loc))
        self.results[key] = CheckResult(
            check_id=it.check.id, title=it.spec.render(it.check.title), points=it.check.points,
            outcome=outcome, message=message,
            hint=it.spec.render(it.check.hint) if outcome is Outcome.FAILED else None,
            command=command, visibility=it.check.visibility, duration=duration, attempts=attempts)
        return outcome


def _next(items: list[_Item], n: int) -> pytest.Item | None:
    """The item run after ``items[n]``: pytest then keeps the module- and session-scoped
    fixtures they share instead of tearing everything down after each item. None at the end
    of a pass, so every pass starts from a clean setup (the snapshot may be refreshed)."""
    return items[n + 1].item if n + 1 < len(items) else None


def _pytest_args(modules: Iterable[Path]) -> list[str]:
    ini = Path(__file__).resolve().parent / "_pytest.ini"
    # Built-in plugins that cost per item or per session and give a grade nothing: log capture
    # (two handlers attached per phase of every item), the unraisable/thread exception hooks
    # (a full gc.collect per session, slow with a class's snapshot in memory), and the rest.
    off = ("terminal", "cacheprovider", "stepwise", "warnings", "logging", "unraisableexception",
           "threadexception", "faulthandler", "junitxml", "doctest", "pastebin", "setuponly",
           "setupplan", "legacypath")
    return [*(str(m) for m in modules), "--disable-plugin-autoload", *(a for p in off for a in ("-p", f"no:{p}")),
            "--import-mode=importlib", "-c", str(ini), "--rootdir", str(ini.parent)]


def grade(specs: list[ExerciseSpec], namespaces: list[str], snapshot: Snapshot, probe: Probe, *,
          wait: float, include: Callable[[CheckSpec], bool] = lambda c: True,
          progress: Progress | None = None, debug: bool = False,
          waiting: Waiting | None = None) -> list[ExerciseResult]:
    """Grade every exercise in every namespace; one ExerciseResult per (exercise, namespace)."""
    by_module = {s.module.resolve(): s for s in specs}
    plugin = _Plugin(by_module, namespaces, snapshot, probe, include, wait, progress, debug, waiting)
    started = time.monotonic()
    old = os.environ.get("PYTEST_ADDOPTS")
    os.environ.pop("PYTEST_ADDOPTS", None)  # a user's pytest options must not change a grade
    try:
        code = pytest.main(_pytest_args(by_module), plugins=[plugin])
    finally:
        if waiting:
            waiting(0, 0.0)
        if old is not None:
            os.environ["PYTEST_ADDOPTS"] = old
    if code == pytest.ExitCode.INTERRUPTED:
        raise KeyboardInterrupt  # pytest swallowed Ctrl-C/SIGTERM: the results are partial
    if plugin.fatal:
        raise plugin.fatal
    if plugin.collect_errors:
        raise SpecError(str(specs[0].module.parent), "checks module", "; ".join(plugin.collect_errors))
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise RuntimeError(f"the grader's pytest session ended with {code!r}")
    if namespaces and not plugin.results and any(plugin.include(c) for s in specs for c in s.checks):
        raise RuntimeError("the grader's pytest session ran no check")
    elapsed = time.monotonic() - started
    out: list[ExerciseResult] = []
    for spec in specs:
        for ns in namespaces:
            checks = [plugin.results[key] for c in spec.checks
                      if (key := (spec.id, c.id, ns)) in plugin.results]
            out.append(ExerciseResult(spec.id, spec.render(spec.title), ns, checks,
                                      duration=elapsed / max(1, len(specs) * len(namespaces))))
    return out


def student_filter(due_passed: bool) -> Callable[[CheckSpec], bool]:
    """A student's own run leaves out hidden checks, and after-due-date ones until the due date."""
    def include(check: CheckSpec) -> bool:
        if check.visibility is Visibility.HIDDEN:
            return False
        if check.visibility is Visibility.AFTER_DUE_DATE:
            return due_passed
        return True
    return include
