"""Proof that the exercises grade what they claim, and offline grading of submitted files.

``grade selftest`` applies, per exercise, the reference solution, nothing, and every broken
variant (``solutions/<id>/variants/<what-is-wrong>/``: files that replace the solution's files of
the same name, and an ``expect.yaml`` naming the checks that must fail) each in its own scratch
namespace, grades them all in one batch, and compares. Variants ship with the package, so an
instructor can run this after ``pip install`` against their own cluster.

``grade EX --manifests DIR`` loads a student's files into a fresh embedded cluster and grades them;
a file that cannot be loaded is a failed ``manifests`` check (0 points) listing file and line.
"""
from __future__ import annotations

import argparse
import secrets
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from .apply import apply_files, manifest_files, solutions_of, with_solutions
from .batch import write_reports
from .errors import InfraError, SpecError, UsageError
from .grading import grade_on
from .i18n import Raw, Text, t
from .kube import Api
from .output import emit
from .results import CheckResult, Outcome
from .settings import Settings
from .specs import ExerciseSpec

ALL = frozenset({"*"})


@dataclass(frozen=True)
class Case:
    exercise: str
    name: str
    files: tuple[Path, ...]
    fails: frozenset[str]          # check ids that must fail; ALL for the empty namespace


def _has_route(path: Path) -> bool:
    try:
        return any(isinstance(d, dict) and d.get("kind") == "Route"
                   for d in yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        return False


def cases(spec: ExerciseSpec, routes: bool = True) -> list[Case]:
    """The cases of an exercise. Without ``route.openshift.io`` (``routes=False``) the solution's
    Route files give way to its ``ingress/`` files, and variants that change a Route are left out."""
    sol = solutions_of(spec)
    if not sol.is_dir():
        raise UsageError(f"exercise {spec.id} has no reference solution in {sol}")
    base = {p.name: p for p in manifest_files(sol)}
    if not routes and any(_has_route(p) for p in base.values()):
        base = {n: p for n, p in base.items() if not _has_route(p)}
        base.update({p.name: p for p in manifest_files(sol / "ingress")} if (sol / "ingress").is_dir() else {})
    out = [Case(spec.id, "solution", tuple(base.values()), frozenset()),
           Case(spec.id, "empty", (), ALL)]
    ids = {c.id for c in spec.checks}
    vroot = sol / "variants"
    for vdir in sorted(vroot.iterdir()) if vroot.is_dir() else []:
        expect_path = vdir / "expect.yaml"
        try:
            expect = yaml.safe_load(expect_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise SpecError(str(expect_path), "(file)", f"cannot read: {e}") from None
        fails = expect.get("fails")
        if not isinstance(fails, list) or not fails or not all(isinstance(f, str) for f in fails):
            raise SpecError(str(expect_path), "fails", "expected a non-empty list of check ids")
        unknown = set(fails) - ids
        if unknown:
            raise SpecError(str(expect_path), "fails", f"unknown check id(s) {sorted(unknown)} for {spec.id}")
        omit = expect.get("omit") or []
        replaced = [p for p in manifest_files(vdir) if p.name != "expect.yaml"]
        if not routes and any(_has_route(p) for p in replaced):
            continue
        files = {**base, **{p.name: p for p in replaced}}
        for name in omit:
            files.pop(name, None)
        out.append(Case(spec.id, vdir.name, tuple(files.values()), frozenset(fails)))
    return out


@contextmanager
def _cluster(ns: argparse.Namespace, settings: Settings) -> Iterator[tuple[Any, Api, bool]]:
    """The cluster named by ``--kubeconfig``/``--context``, else a fresh embedded one; the flag says
    whether it is real (scratch namespaces get a random suffix and are deleted afterwards)."""
    if getattr(ns, "kubeconfig", None) or getattr(ns, "context", None):
        api = Api(kubeconfig=ns.kubeconfig, context=ns.context)
        try:
            yield None, api, True
        finally:
            api.close()
    else:
        from .embedded import embedded  # only the commands that start a cluster import it
        with embedded() as (cluster, api):
            yield cluster, api, False


def run_selftest(ns: argparse.Namespace, settings: Settings) -> int:
    specs = with_solutions(settings, ns.exercises)
    lang = settings.lang
    ok = True
    with _cluster(ns, settings) as (cluster, api, real):
        routes = api.served("Route")
        plan = [(spec, cases(spec, routes)) for spec in specs]
        suffix = "-" + secrets.token_hex(3) if real else ""
        created: list[str] = []
        try:
            names: dict[tuple[str, str], str] = {}
            for spec, spec_cases in plan:
                for case in spec_cases:
                    namespace = f"selftest-{spec.id}-{case.name}"[:56] + suffix
                    api.create_namespace(namespace, {"grader.dev/selftest": "true"})
                    created.append(namespace)
                    names[(spec.id, case.name)] = namespace
                    problems = apply_files(api, list(case.files), namespace,
                                           kinds=cluster.kinds() if cluster is not None else None)
                    if problems:
                        raise UsageError(f"{spec.id}/{case.name} does not apply: " + "; ".join(p.en for p in problems))
            if cluster is not None:
                cluster.settle()
            # On a real cluster pods take a while: grade again until every case is as expected
            # or the exercises' wait runs out (the runner's own re-observation stops only when
            # checks pass, and a broken variant's never do).
            window = max(settings.wait_for(s) for s in specs) if real else (settings.wait or 0.0)
            deadline = time.monotonic() + window
            while True:
                lines: list[str] = []
                ok = True
                for spec, spec_cases in plan:
                    namespaces = [names[(spec.id, c.name)] for c in spec_cases]
                    result = grade_on(api, settings, [spec], namespaces, student=False, wait=0.0)
                    for case, res in zip(spec_cases, result.results):
                        line_ok, line = _compare(spec, case, res.checks, lang)
                        ok &= line_ok
                        lines.append(line)
                if ok or time.monotonic() >= deadline:
                    break
                time.sleep(2.0)
            print("\n".join(lines))
        finally:
            if real:
                for namespace in created:
                    try:
                        api.delete_namespace(namespace)
                    except InfraError as e:
                        print(f"grade: could not delete scratch namespace {namespace}: {e.message.en}", file=sys.stderr)
    print(t("セルフテスト: {r}", "selftest: {r}", r=Raw("OK" if ok else "FAILED")).get(lang))
    return 0 if ok else 1


def _compare(spec: ExerciseSpec, case: Case, checks: list[CheckResult], lang: str) -> tuple[bool, str]:
    failed = {c.check_id for c in checks if c.outcome is Outcome.FAILED}
    errors = {c.check_id for c in checks if c.outcome is Outcome.ERROR}
    want = {c.id for c in spec.checks} if case.fails == ALL else set(case.fails)
    score = sum(c.earned for c in checks)
    good = failed == want and not errors
    head = f"{'ok  ' if good else 'BAD '} {spec.id:5} {case.name:28} {score:g}/{spec.max_score:g}"
    if good:
        return True, head
    detail = []
    if failed - want:
        detail.append(t("予期しない失敗 {c}", "unexpected failures {c}", c=Raw(",".join(sorted(failed - want)))).get(lang))
    if want - failed:
        detail.append(t("失敗すべきなのに合格 {c}", "should fail but passed {c}", c=Raw(",".join(sorted(want - failed)))).get(lang))
    if errors:
        msgs = "; ".join(f"{c.check_id}: {c.message.get(lang) if c.message else ''}" for c in checks if c.check_id in errors)
        detail.append(t("エラー {c}", "errors {c}", c=Raw(msgs)).get(lang))
    return False, head + "  " + "; ".join(detail)


# --- grade EX --manifests DIR ----------------------------------------------------------------------
def grade_manifests(ns: argparse.Namespace, settings: Settings, specs: list[ExerciseSpec]) -> int:
    from .embedded import embedded  # only the commands that start a cluster import it

    path = Path(ns.manifests)
    if not path.exists():
        raise UsageError(t("--manifests {p}: ファイルもディレクトリもありません", "--manifests {p}: no such file or directory",
                           p=Raw(str(path))))
    namespace = (settings.namespaces or ["submission"])[0]
    with embedded() as (cluster, api):
        api.create_namespace(namespace)
        messages = apply_files(api, [path], namespace, recursive=bool(getattr(ns, "recursive", False)),
                               kinds=cluster.kinds())
        cluster.settle()
        result = grade_on(api, settings, specs, [namespace], student=not ns.out,
                          wait=settings.wait if settings.wait is not None else 0.0)
    for res in result.results:
        res.checks.insert(0, _manifest_check(messages))
    if ns.out:
        write_reports(Path(ns.out), result.results, settings.lang)
        return result.exit_code
    return emit(result, ns, settings)


def _manifest_check(messages: list[Text]) -> CheckResult:
    title = Text("提出されたマニフェストがすべて読み込める", "every submitted manifest loads")
    if not messages:
        return CheckResult("manifests", title, 0.0, Outcome.PASSED)
    joined = Text("\n".join(m.ja for m in messages[:20]), "\n".join(m.en for m in messages[:20]))
    return CheckResult("manifests", title, 0.0, Outcome.FAILED, message=joined,
                       hint=Text("YAML の構文 (インデント、コロン) と apiVersion/kind を確認してください。",
                                 "Check the YAML syntax (indentation, colons) and apiVersion/kind."))
