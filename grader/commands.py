"""What each ``grade`` subcommand does; ``cli`` only parses and maps errors to exit codes.

Every path grades the same way (``grading.grade_on``): an ``Api`` on some cluster (a real one, or
the embedded one for ``demo``, ``selftest`` and ``--manifests``, started through ``grader.embedded``),
a ``Snapshot`` and a ``Probe``, then ``runner.grade``; ``output.emit`` shows the result.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
import sys
import tempfile
from pathlib import Path

from .apply import apply_files, manifest_files, solutions_of, with_solutions
from .batch import grade_batch
from .errors import ApiError, ClusterUnavailable, InfraError, UsageError
from .grading import grade_on
from .i18n import Raw, Text, t
from .kube import SERVICEACCOUNT_DIR, Api
from .output import emit
from .results import RunResult
from .roster import Roster, read_roster
from .selftest import grade_manifests, run_selftest
from .settings import Settings
from .snapshot import metadata_of
from .specs import ExerciseSpec


def _namespaces(api: Api, settings: Settings) -> list[str]:
    if settings.namespace_pattern or settings.namespace_selector:
        try:
            found = api.list("Namespace", label_selector=settings.namespace_selector)
        except ClusterUnavailable:
            raise  # unreachable/401/TLS: exit 3 with the server's name, not a usage error
        except InfraError as e:
            raise UsageError("cannot list namespaces to match --namespace-pattern/--namespace-selector: "
                             f"{e.message.en}; name them with -n instead") from None
        own = own_namespace()
        names = sorted(n for n in (str(metadata_of(o).get("name")) for o in found) if not system_namespace(n, own))
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


# Where a pod finds the namespace it runs in (the grader as a Job in the cluster).
OWN_NAMESPACE_FILE = os.path.join(SERVICEACCOUNT_DIR, "namespace")


def own_namespace() -> str | None:
    """The namespace the grader itself runs in, when it runs in a pod."""
    try:
        with open(OWN_NAMESPACE_FILE, encoding="utf-8") as f:
            return f.read(256).strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def system_namespace(name: str, own: str | None) -> bool:
    """Namespaces a pattern or selector never grades (only -n can): the cluster's own
    (``default``, ``kube-*``, ``openshift``, ``openshift-*``) and the grader's. A class graded with
    ``--namespace-pattern '*'`` would otherwise put them in the gradebook, and Moodle aborts an
    import on a row it cannot map to a user."""
    return (name in ("default", "openshift") or name.startswith(("kube-", "openshift-")) or name == own)


_SHOWN = 20  # missing namespaces named one per line, then "and N more"


def check_named_namespaces(api: Api, names: list[str], *, batch: bool = False) -> list[str]:
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
    if batch:   # --out: each missing one becomes an ERROR row; the rest of the class is graded
        return missing
    if missing:
        lines = [t("名前空間 {ns} は {srv} にありません。`oc projects` で名前を確認してください。",
                   "namespace {ns} does not exist on {srv}; check the name with `oc projects`.",
                   ns=name, srv=Raw(api.server)) for name in missing[:_SHOWN]]
        if len(missing) > _SHOWN:
            lines.append(t("ほか {n} 個", "and {n} more", n=len(missing) - _SHOWN))
        raise UsageError(Text("\n".join(x.ja for x in lines), "\n".join(x.en for x in lines)))
    return missing


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
    specs = [settings.exercise(ex) for ex in dict.fromkeys(ns.exercises)]
    serve = _live_options(ns)
    if ns.manifests:
        return _grade_manifests(ns, settings, specs)
    roster = _roster(ns)
    api = Api(kubeconfig=settings.kubeconfig, context=settings.context)
    try:
        missing = (check_named_namespaces(api, list(dict.fromkeys(settings.namespaces)), batch=bool(ns.out))
                   if settings.namespaces else [])
        namespaces = _namespaces(api, settings)
        batch = bool(ns.out) or len(namespaces) > 1 or bool(settings.namespace_pattern or settings.namespace_selector)
        if getattr(ns, "watch", False):
            from .live import watch_class, watch_student
            if batch:
                own = own_namespace()
                return watch_class(api, ns, settings, specs, namespaces, serve=serve,
                                   follow=bool(settings.namespace_pattern or settings.namespace_selector),
                                   system=lambda n: system_namespace(n, own))
            return watch_student(api, ns, settings, specs, namespaces)
        if ns.out:
            return grade_batch(api, settings, specs, namespaces, Path(ns.out), resume=ns.resume,
                               roster=roster, missing=missing)
        result = grade_on(api, settings, specs, namespaces, student=not batch)
        return emit(result, ns, settings, include_hidden=batch)
    finally:
        api.close()


def _live_options(ns: argparse.Namespace) -> tuple[str, int] | None:
    """--watch's companions, checked before any cluster is contacted: where --serve listens."""
    serve, watch = getattr(ns, "serve", None), getattr(ns, "watch", False)
    if (serve or getattr(ns, "serve_public", False)) and not watch:
        raise UsageError(t("--serve/--serve-public は --watch と一緒に使います", "--serve/--serve-public need --watch"))
    if watch and getattr(ns, "manifests", None):
        raise UsageError(t("--manifests と --watch は一緒に使えません", "--manifests cannot be used with --watch"))
    if watch and getattr(ns, "resume", False):
        raise UsageError(t("--resume と --watch は一緒に使えません", "--resume cannot be used with --watch"))
    if watch and getattr(ns, "roster", None):
        # lms-import.csv is written once, from a finished batch: an import file that changes
        # while the class works is not one to hand to an LMS
        raise UsageError(t("--roster は --watch と一緒に使えません (採点を終えてから --out と使ってください)",
                           "--roster cannot be used with --watch (use it with --out once grading is done)"))
    if not serve:
        return None
    from .liveserve import parse_address
    return parse_address(serve, public=ns.serve_public)


def _roster(ns: argparse.Namespace) -> Roster | None:
    """``--roster``, read and checked before any grading (a bad file is a one-line usage error)."""
    if not getattr(ns, "roster", None):
        return None
    if not ns.out:
        raise UsageError(t("--roster は --out と一緒に指定してください (DIR/lms-import.csv を書き出します)。",
                           "--roster needs --out DIR (it writes DIR/lms-import.csv)."))
    return read_roster(ns.roster)


# --- grade demo --------------------------------------------------------------------------------
def demo(ns: argparse.Namespace, settings: Settings) -> int:
    from .embedded import embedded  # only the commands that start a cluster import it

    specs = with_solutions(settings, ns.exercises)
    print(t("組み込みクラスターを起動し、模範解答を適用して採点します…",
            "Starting the embedded cluster, applying the reference solutions and grading…").get(settings.lang),
          file=sys.stderr)
    results = RunResult()
    with embedded(pod_start_delay=0.5) as (cluster, api):
        for spec in specs:
            namespace = f"demo-{spec.id}"
            api.create_namespace(namespace)
            problems = apply_files(api, manifest_files(solutions_of(spec)), namespace, kinds=cluster.kinds())
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
    from .embedded import sandbox as embedded_sandbox  # only the commands that start a cluster import it

    lang = settings.lang
    with embedded_sandbox(ns.pod_start_delay, ns.namespace, Path(ns.kubeconfig_out).resolve()) as (url, path, router, domain):
        example = f"curl -i --connect-to ::{router} http://<route>-{ns.namespace}.{domain}/"
        if getattr(ns, "print_env", False):
            print(f"export KUBECONFIG={shlex.quote(str(path))}\nexport GRADER_ROUTER={router}\n"
                  f"export GRADER_ROUTE_DOMAIN={domain}\n# {example}", flush=True)
        else:
            print(t("組み込みクラスターを起動しました: {url}\n  export KUBECONFIG={k}\n  kubectl create -f pod.yaml\n"
                    "  grade ex1 --kubeconfig {k}\nルーター (Route のホスト名は DNS では解決できないので、このアドレス宛てに送ります): {router}\n  {curl}\n"
                    "Ctrl-C で終了します。",
                    "Embedded cluster running at {url}\n  export KUBECONFIG={k}\n  kubectl create -f pod.yaml\n"
                    "  grade ex1 --kubeconfig {k}\nRouter (route hosts do not resolve in DNS; send requests for them here): {router}\n  {curl}\n"
                    "Press Ctrl-C to stop.",
                    url=Raw(url), k=Raw(str(path)), router=Raw(router), curl=Raw(example)).get(lang), flush=True)
        try:
            import threading
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


# --- grade selftest / --manifests are in selftest.py -------------------------------------------
def selftest(ns: argparse.Namespace, settings: Settings) -> int:
    return run_selftest(ns, settings)


def _grade_manifests(ns: argparse.Namespace, settings: Settings, specs: list[ExerciseSpec]) -> int:
    return grade_manifests(ns, settings, specs)
