"""One grading pass on one cluster: a ``Snapshot``, a ``Probe`` and ``runner.grade``.

Shared by every command that grades (``grade EX``, ``demo``, ``selftest``, ``--manifests``) and by
the batch, so none of them has to import another command to grade the way the others do.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from .errors import InfraError
from .i18n import t
from .kube import SANDBOX_EXTENSION, Api
from .probes import Probe
from .results import RunResult
from .runner import grade as run_checks, student_filter
from .settings import Settings
from .snapshot import Snapshot
from .specs import ExerciseSpec


def progress_bar(settings: Settings, label: str) -> Any:
    """On a terminal, a bar of namespaces graded (tqdm); None when quiet or not a terminal.

    Why tqdm: a maintained bar that sizes itself to the terminal, shows rate and time left, and
    draws no colour (so ``NO_COLOR`` has nothing to turn off); ``NO_COLOR`` also makes it ASCII.
    It is imported only here, when a bar is drawn."""
    if settings.quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar: Any = None

    def show(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=label, unit="ns", file=sys.stderr, leave=False, dynamic_ncols=True,
                       ascii=bool(os.environ.get("NO_COLOR")), mininterval=0.2)
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            bar = None
    return show


def waiting_line(settings: Settings) -> Any:
    """On a terminal, say why a failing grade takes a while: checks are being re-observed."""
    if settings.quiet or not sys.stderr.isatty():
        return None

    def show(n: int, left: float) -> None:
        if n == 0:
            sys.stderr.write("\r\x1b[K")
        else:
            text = t("失敗中のチェック {n} 件を再確認しています… 残り {s} 秒 (--wait 0 で省略)",
                     "re-checking {n} failing check(s)… {s} s left (--wait 0 skips this)", n=n, s=round(left))
            sys.stderr.write("\r\x1b[K" + text.get(settings.lang))
        sys.stderr.flush()
    return show


def probe_for(api: Api, settings: Settings) -> Probe:
    """Router and route domains: command line/env/course first, then the sandbox kubeconfig
    extension, then the cluster's own ingress config where the grader may read it."""
    ext = api.extensions.get(SANDBOX_EXTENSION, {})
    router = settings.router or ext.get("router")
    domains = [d for d in (settings.route_domain, ext.get("routeDomain")) if d]
    if not domains and not router:
        try:
            domain = (api.get("IngressConfig", "cluster").get("spec") or {}).get("domain")
            if isinstance(domain, str) and domain:
                domains.append(domain)
        except InfraError:
            pass  # not OpenShift, or not readable: route checks will say the domain is unknown
    return Probe(api, router=router, route_domains=domains)


def grade_on(api: Api, settings: Settings, specs: list[ExerciseSpec], namespaces: list[str], *,
             student: bool, wait: float | None = None) -> RunResult:
    """One grading pass over ``namespaces``; ``student`` hides hidden checks before the due date
    and re-observes failing checks for the exercises' wait (an instructor's batch does not)."""
    include = student_filter(settings.due_passed()) if student else (lambda c: True)
    snapshot = Snapshot(api, namespaces)
    window = wait if wait is not None else max(settings.wait_for(s) for s in specs)
    label = ",".join(s.id for s in specs)
    results = run_checks(specs, namespaces, snapshot, probe_for(api, settings), wait=window,
                         include=include, progress=progress_bar(settings, label), debug=settings.debug,
                         waiting=waiting_line(settings) if student else None)
    return RunResult(results)


__all__ = ["grade_on", "probe_for", "progress_bar", "waiting_line"]
