"""What each ``grade`` subcommand does; ``cli`` only parses and maps errors to exit codes.

Every path grades the same way: an ``Api`` on some cluster (a real one, or the embedded one for
``demo``, ``selftest`` and ``--manifests``), a ``Snapshot`` and a ``Probe``, then ``runner.grade``.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import ApiError, ClusterUnavailable, InfraError, UsageError
from .i18n import Raw, Text, t
from .kube import SANDBOX_EXTENSION, Api
from .probes import Probe
from .results import RunResult
from .runner import grade as run_checks, student_filter
from .settings import Settings, data_dir
from .snapshot import Snapshot, metadata_of
from .specs import ExerciseSpec



# --- shared pieces ---------------------------------------------------------------------------
def _progress(settings: Settings, label: str) -> Any:
    if settings.quiet or not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\r" + " " * (width + len(label) + 24) + "\r")
        sys.stderr.flush()
    return show


def _waiting(settings: Settings) -> Any:
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
    include = student_filter(settings.due_passed()) if student else (lambda c: True)
    snapshot = Snapshot(api, namespaces)
    window = wait if wait is not None else max(settings.wait_for(s) for s in specs)
    label = ",".join(s.id for s in specs)
    results = run_checks(specs, namespaces, snapshot, probe_for(api, settings), wait=window,
                         include=include, progress=_progress(settings, label), debug=settings.debug,
                         waiting=_waiting(settings) if student else None)
    return RunResult(results)


def _namespaces(api: Api, settings: Settings) -> list[str]:
    if settings.namespace_pattern or settings.namespace_selector:
        try:
            found = api.list("Namespace", label_selector=settings.namespace_selector)
        except ClusterUnavailable:
            raise  # unreachable/401/TLS: exit 3 with the server's name, not a usage error
        except InfraError as e:
            raise UsageError("cannot list namespaces to match --namespace-pattern/--namespace-selector: "
                             f"{e.message.en}; name them with -n instead") from None
        names = sorted(str(metadata_of(o).get("name")) for o in found)
        if settings.namespace_pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, settings.namespace_pattern)]
        names = list(dict.fromkeys([*settings.namespaces, *names]))
        if not names:
            raise UsageError("no namespace matches the pattern/selector")
        return names
    if settings.namespaces:
        return list(dict.fromkeys(settings.namespaces))
    if api.namespace:
        return [api.namespace]
    raise ClusterUnavailable(t(
        "現在のプロジェクト (名前空間) がわかりません ({src})。`oc project 名前` で選ぶか -n を指定してください。",
        "no current namespace in {src}: choose one with `oc project NAME` or pass -n NAME.", src=Raw(api.source)))


_SHOWN = 20  # missing namespaces named one per line, then "and N more"


def check_named_namespaces(api: Api, names: list[str]) -> None:
    """Every namespace named with -n exists, or a usage error naming each one that does not.

    Why before grading: a typo (``-n studnet1``) would otherwise be graded as an empty namespace,
    0 points after waiting out ``--wait``. Only a 404 counts as missing: an account that may not
    read namespaces (403) is graded as before. Names are valid namespace names by now (settings
    refuses others), so none can change the URL's path. Several names are compared with one list
    of namespaces where the account may list them, so a class costs one request, not one each."""
    missing: list[str] = []
    existing = _listed_namespaces(api) if len(names) > 1 else None
    for name in names:
        if existing is not None:
            if name not in existing:
                missing.append(name)
            continue
        try:
            api.get("Namespace", name)
        except ClusterUnavailable:
            raise
        except ApiError as e:
            if e.status == 404:
                missing.append(name)
            # 403: may not read namespaces; other answers: grading will show what it can see
    if missing:
        lines = [t("名前空間 {ns} は {srv} にありません。`oc projects` で名前を確認してください。",
                   "namespace {ns} does not exist on {srv}; check the name with `oc projects`.",
                   ns=name, srv=Raw(api.server)) for name in missing[:_SHOWN]]
        if len(missing) > _SHOWN:
            lines.append(t("ほか {n} 個", "and {n} more", n=len(missing) - _SHOWN))
        raise UsageError(Text("\n".join(x.ja for x in lines), "\n".join(x.en for x in lines)))


def _listed_namespaces(api: Api) -> set[str] | None:
    """Every namespace's name in one list request, or None where listing is not allowed."""
    try:
        return {str(metadata_of(o).get("name")) for o in api.list("Namespace")}
    except ClusterUnavailable:
        raise
    except InfraError:
        return None


def prepare_outputs(ns: argparse.Namespace) -> None:
    """Make sure ``--junit``'s directory and ``--out`` can be written, before any grading: a
    class's run should not end, minutes later, unable to save what it graded. ``--junit``'s
    missing parent directories are created, as ``--out`` is."""
    junit, out = getattr(ns, "junit", None), getattr(ns, "out", None)
    if junit:
        path = Path(junit)
        if path.is_dir():
            raise UsageError(t("--junit {p}: ディレクトリです。ファイル名を指定してください。",
                               "--junit {p}: is a directory; give a file name.", p=Raw(str(path))))
        _writable_dir("--junit", path.parent if str(path.parent) else Path("."), path)
    if out:
        _writable_dir("--out", Path(out), Path(out))


def _writable_dir(option: str, directory: Path, shown: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".grade-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = (t("ディレクトリではありません", "not a directory") if isinstance(e, FileExistsError)
               else Text.same(e.strerror or type(e).__name__))
        raise UsageError(t("{o} {p}: 書き込めません ({why})", "{o} {p}: cannot be written ({why})",
                           o=Raw(option), p=Raw(str(shown)), why=why)) from None


# --- grade EX ----------------------------------------------------------------------------------
def grade(ns: argparse.Namespace, settings: Settings) -> int:
    from .cli import emit

    specs = [settings.exercise(ex) for ex in dict.fromkeys(ns.exercises)]
    if ns.manifests:
        return _grade_manifests(ns, settings, specs)
    api = Api(kubeconfig=settings.kubeconfig, context=settings.context)
    try:
        if settings.namespaces:
            check_named_namespaces(api, list(dict.fromkeys(settings.namespaces)))
        namespaces = _namespaces(api, settings)
        batch = bool(ns.out) or len(namespaces) > 1 or bool(settings.namespace_pattern or settings.namespace_selector)
        if ns.out:
            from .batch import grade_batch
            return grade_batch(api, settings, specs, namespaces, Path(ns.out), resume=ns.resume)
        result = grade_on(api, settings, specs, namespaces, student=not batch)
        return emit(result, ns, settings, include_hidden=batch)
    finally:
        api.close()


# --- embedded cluster helpers ------------------------------------------------------------------
@contextmanager
def embedded(pod_start_delay: float = 0.0, **kwargs: Any) -> Iterator[tuple[Any, Api]]:
    """An embedded cluster and an Api on it through a generated kubeconfig (the real client path)."""
    from .sandbox import EmbeddedCluster

    with tempfile.TemporaryDirectory(prefix="grade-") as tmp, \
            EmbeddedCluster(pod_start_delay=pod_start_delay, **kwargs) as cluster:
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        api = Api(kubeconfig=str(kubeconfig))
        try:
            yield cluster, api
        finally:
            api.close()


def solution_dir(ex_id: str) -> Path:
    """The shipped reference solution of a built-in exercise."""
    return data_dir("solutions") / ex_id


def solutions_of(spec: ExerciseSpec) -> Path:
    """``solutions/<id>`` beside the ``exercises/`` directory the spec came from, so a course's
    own exercises (``--exercises-dir``) bring their own solutions and variants."""
    return spec.path.parent.parent.parent / "solutions" / spec.id


def with_solutions(settings: Settings, ids: list[str]) -> list[ExerciseSpec]:
    """The named exercises, or every exercise that has a reference solution."""
    if ids:
        specs = [settings.exercise(ex) for ex in ids]
        for spec in specs:
            if not solutions_of(spec).is_dir():
                raise UsageError(f"exercise {spec.id} has no reference solution in {solutions_of(spec)}")
        return specs
    return [spec for spec in map(settings.exercise, settings.available()) if solutions_of(spec).is_dir()]


def apply_files(api: Api, paths: list[Path], namespace: str, recursive: bool = False) -> list[Text]:
    """Create every object of these manifest files (or directories, read like ``kubectl apply -f``:
    subfolders only with ``recursive``); returns the problems, each ``file:line: message`` in both
    languages: a file that does not load, a link, a limit passed, an object refused. The limits of
    ``grader.manifests`` hold for all the paths together, as one submission."""
    from .manifests import Budget, load_path

    problems: list[Text] = []
    budget = Budget()
    for path in paths:
        docs, bad = load_path(path, recursive=recursive, budget=budget)
        problems += [t("{f}:{l}: ", "{f}:{l}: ", f=Raw(str(p.path)), l=p.line or 0) + p.message for p in bad]
        for doc in docs:
            try:
                api.create(doc.obj, namespace)
            except InfraError as e:
                problems.append(t("{f}:{l}: 適用できません: {m}", "{f}:{l}: cannot be applied: {m}",
                                  f=Raw(str(doc.path)), l=doc.line or 0, m=e.message))
    return problems


def manifest_files(directory: Path) -> list[Path]:
    """The manifests directly in ``directory``, sorted. Links are listed without being followed, so
    that ``apply_files`` names them as problems instead of a solution silently losing a file."""
    from .manifests import SUFFIXES

    return sorted(p for p in directory.iterdir() if p.name.lower().endswith(SUFFIXES)
                  and (p.is_symlink() or p.is_file()))


# --- grade demo --------------------------------------------------------------------------------
def demo(ns: argparse.Namespace, settings: Settings) -> int:
    from .cli import emit

    specs = with_solutions(settings, ns.exercises)
    print(t("組み込みクラスターを起動し、模範解答を適用して採点します…",
            "Starting the embedded cluster, applying the reference solutions and grading…").get(settings.lang),
          file=sys.stderr)
    results = RunResult()
    with embedded(pod_start_delay=0.5) as (cluster, api):
        for spec in specs:
            namespace = f"demo-{spec.id}"
            api.create_namespace(namespace)
            problems = apply_files(api, manifest_files(solutions_of(spec)), namespace)
            if problems:
                raise UsageError("reference solution does not apply: " + "; ".join(p.en for p in problems))
        for spec in specs:
            results.results += grade_on(api, settings, [spec], [f"demo-{spec.id}"], student=True).results
    return emit(results, ns, settings)


# --- grade list / show -------------------------------------------------------------------------
def list_exercises(ns: argparse.Namespace, settings: Settings) -> int:
    for ex_id in settings.available():
        spec = settings.exercise(ex_id)
        print(f"{spec.id:6} {spec.render(spec.title).get(settings.lang)}  "
              f"({len(spec.checks)} checks, {spec.max_score:g} points)")
    return 0


def show(ns: argparse.Namespace, settings: Settings) -> int:
    spec = settings.exercise(ns.exercise)
    lang = settings.lang
    print(f"{spec.id}: {spec.render(spec.title).get(lang)}\n")
    print(spec.render(spec.instructions).get(lang).rstrip() + "\n")
    head = t("チェック項目:", "Checks:").get(lang)
    print(head)
    for c in spec.checks:
        if c.visibility.value == "hidden":
            continue
        print(f"  [{c.points:g}] {spec.render(c.title).get(lang)}")
    return 0


# --- grade sandbox -----------------------------------------------------------------------------
def sandbox(ns: argparse.Namespace, settings: Settings) -> int:
    from .sandbox import EmbeddedCluster

    lang = settings.lang
    with EmbeddedCluster(pod_start_delay=ns.pod_start_delay) as cluster:
        cluster.create_namespace(ns.namespace)
        path = cluster.write_kubeconfig(Path(ns.kubeconfig_out).resolve(), namespace=ns.namespace)
        print(t("組み込みクラスターを起動しました: {url}\n  export KUBECONFIG={k}\n  kubectl create -f pod.yaml\n"
                "  grade ex1 --kubeconfig {k}\nCtrl-C で終了します。",
                "Embedded cluster running at {url}\n  export KUBECONFIG={k}\n  kubectl create -f pod.yaml\n"
                "  grade ex1 --kubeconfig {k}\nPress Ctrl-C to stop.",
                url=Raw(cluster.url), k=Raw(str(path))).get(lang), flush=True)
        try:
            import threading
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


# --- grade selftest / --manifests are in selftest.py -------------------------------------------
def selftest(ns: argparse.Namespace, settings: Settings) -> int:
    from .selftest import run_selftest
    return run_selftest(ns, settings)


def _grade_manifests(ns: argparse.Namespace, settings: Settings, specs: list[ExerciseSpec]) -> int:
    from .selftest import grade_manifests
    return grade_manifests(ns, settings, specs)
