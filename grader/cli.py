"""``grade``: the command line.

    grade EX [EX...] [-n NS]...      grade exercises in the current (or given) namespaces
    grade list | show EX             what exercises exist, and one's instructions
    grade demo [EX...]               embedded cluster + reference solutions, graded
    grade sandbox                    embedded cluster to practise on, with a kubeconfig
    grade selftest [EX...]           prove each solution scores full marks and each broken
                                     variant loses exactly its checks

Exit codes: 0 every check passed; 1 some check failed; 2 usage or spec error (found before any
grading: a blank or missing -n namespace, a course file naming an unknown exercise, a --junit or
--out that cannot be written); 3 the cluster could not be used, only grader-side errors kept a
check from passing, or a report file could not be written after grading (the console report is
still printed); 4 internal error, a bug in the grader (one line; --debug shows the traceback);
130 interrupted. Output cut short by the reader (``grade ... | head``) is not an error: the exit
code is the grade's when it was complete, else 141 as for SIGPIPE.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Sequence

from . import __version__
from .errors import ClusterUnavailable, GraderError, InfraError, UsageError
from .i18n import Raw, detect_lang, t
from .output import silence_stdout as _silence_stdout
from .settings import resolve

COMMANDS = ("list", "show", "demo", "sandbox", "selftest")
SIGPIPE_EXIT = 141       # what a shell reports for a command ended by SIGPIPE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one line, as for every usage error
        raise UsageError(t("コマンドラインの誤り: {m} (`grade --help` を参照)", "{m} (see `grade --help`)",
                           m=Raw(message)))


def _early_lang(args: list[str]) -> str:
    """The language for errors found while parsing, before settings exist: --lang, GRADER_LANG,
    then the locale (a course file's ``lang`` is only known after parsing)."""
    for i, a in enumerate(args):
        if a == "--lang" and i + 1 < len(args) and args[i + 1] in ("ja", "en"):
            return args[i + 1]
        if a in ("--lang=ja", "--lang=en"):
            return a.split("=", 1)[1]
    env = os.environ.get("GRADER_LANG")
    return env if env in ("ja", "en") else detect_lang()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lang", choices=("ja", "en"), help="message language (default: from the locale)")
    p.add_argument("--wait", type=float, metavar="SECONDS",
                   help="re-observe failing checks for up to SECONDS (default 30; 0 with --out; 0 observes once)")
    p.add_argument("--params", metavar="FILE", help="course file overriding exercise parameters")
    p.add_argument("--exercises-dir", action="append", metavar="DIR", help="extra exercise directory")
    p.add_argument("--junit", metavar="PATH", help="write a JUnit XML report")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="tracebacks for internal errors")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="grade", description="Grade Kubernetes/OpenShift exercises on a live cluster.",
                epilog="other commands: " + ", ".join(f"grade {c}" for c in COMMANDS))
    p.add_argument("exercises", nargs="*", metavar="EX", help="exercise id(s), e.g. ex1")
    _common(p)
    p.add_argument("-n", "--namespace", action="append", metavar="NS", help="namespace to grade (repeatable)")
    p.add_argument("--namespace-pattern", metavar="GLOB", help="grade every namespace matching, e.g. 'student-*'")
    p.add_argument("--namespace-selector", metavar="LABELS", help="grade namespaces with these labels")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--router", metavar="HOST:PORT", help="send route requests here with the route's Host header")
    p.add_argument("--route-domain", metavar="DOMAIN", help="the cluster's route domain (for safe probes)")
    p.add_argument("--manifests", metavar="DIR", help="grade these YAML files on a fresh embedded cluster")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="with --manifests: read DIR's subfolders too (as kubectl apply -R)")
    p.add_argument("--out", metavar="DIR", help="batch: JUnit per namespace, results.json, gradebook.csv, index.html")
    p.add_argument("--resume", action="store_true", help="with --out: skip namespaces already reported")
    p.add_argument("--roster", metavar="FILE",
                   help="with --out: Canvas/Moodle gradebook export or CSV; writes DIR/lms-import.csv")
    p.add_argument("--watch", action="store_true", help="keep grading as the objects change (live)")
    p.add_argument("--serve", nargs="?", const="127.0.0.1:8080", metavar="HOST:PORT",
                   help="with --watch for a class: serve the live class page (default 127.0.0.1:8080)")
    p.add_argument("--serve-public", action="store_true", help="allow --serve on a non-loopback address")
    p.add_argument("--version", action="version", version=f"grade {__version__}")
    return p


def _sub_parser(cmd: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"grade {cmd}")
    if cmd == "show":
        p.add_argument("exercise", metavar="EX")
        p.add_argument("--lang", choices=("ja", "en"))
        p.add_argument("--params", metavar="FILE")
        p.add_argument("--exercises-dir", action="append", metavar="DIR")
    elif cmd == "list":
        p.add_argument("--lang", choices=("ja", "en"))
        p.add_argument("--exercises-dir", action="append", metavar="DIR")
        p.add_argument("--params", metavar="FILE")
    elif cmd in ("demo", "selftest"):
        p.add_argument("exercises", nargs="*", metavar="EX")
        _common(p)
        if cmd == "selftest":
            p.add_argument("--kubeconfig")
            p.add_argument("--context")
    elif cmd == "sandbox":
        p.add_argument("--lang", choices=("ja", "en"))
        p.add_argument("--kubeconfig-out", default="sandbox.kubeconfig", metavar="PATH",
                       help="where to write the kubeconfig (default ./sandbox.kubeconfig)")
        p.add_argument("--namespace", default="student", help="namespace to create and select")
        p.add_argument("--pod-start-delay", type=float, default=1.0, metavar="SECONDS")
        p.add_argument("--print-env", action="store_true",
                       help="print only shell lines (export KUBECONFIG, GRADER_ROUTER, ...), for eval or a file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    lang = _early_lang(args_list)
    debug = "--debug" in args_list
    try:
        if args_list and args_list[0] in COMMANDS:
            cmd = args_list[0]
            ns = _sub_parser(cmd).parse_args(args_list[1:])
            settings = resolve(vars(ns))
            lang = settings.lang
            from . import commands
            commands.prepare_outputs(ns)
            run = {"list": commands.list_exercises, "show": commands.show, "demo": commands.demo,
                   "sandbox": commands.sandbox, "selftest": commands.selftest}[cmd]
            return run(ns, settings)
        if args_list[:1] in (["-h"], ["--help"]):
            build_parser().print_help()
            return 0
        if args_list[:1] == ["--version"]:
            print(f"grade {__version__}")
            return 0
        ns = build_parser().parse_args(args_list)
        if not ns.exercises:
            build_parser().print_usage(sys.stderr)
            raise UsageError(t("採点する演習を指定してください (例: grade ex1)。`grade list` で一覧を表示できます。",
                               "no exercise given: name the one(s) to grade, e.g. `grade ex1`; `grade list` shows them."))
        settings = resolve(vars(ns))
        lang = settings.lang
        from . import commands
        commands.prepare_outputs(ns)
        return commands.grade(ns, settings)
    except UsageError as e:
        for line in e.message.get(lang).splitlines() or [""]:
            print(f"grade: {line}", file=sys.stderr)
        return 2
    except ClusterUnavailable as e:
        print(f"grade: {e.message.get(lang)}", file=sys.stderr)
        return 3
    except InfraError as e:
        print(f"grade: {e.message.get(lang)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("grade: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (| head): not an error of ours, nothing to say
        _silence_stdout()
        return SIGPIPE_EXIT
    except GraderError as e:  # pragma: no cover - every branch above is more specific
        print(f"grade: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.filename is None or debug:
            return _internal(e, debug)
        # a file the grader had to read or write (a report, a course file): not a bug of ours
        print("grade: " + t("{f} を読み書きできません: {why}", "cannot read or write {f}: {why}",
                            f=Raw(str(e.filename)), why=Raw(e.strerror or type(e).__name__)).get(lang),
              file=sys.stderr)
        return 3
    except Exception as e:  # an internal bug: one line unless --debug
        return _internal(e, debug)


def _internal(e: Exception, debug: bool) -> int:
    if debug:
        raise e
    print(f"grade: internal error: {type(e).__name__}: {e} (run with --debug for details)", file=sys.stderr)
    return 4


def _fewer_collections() -> None:
    """A class is read as hundreds of thousands of small dicts decoded from JSON, which hold no
    reference cycle, yet with the default thresholds the cyclic collector traversed them every
    700 allocations and again at each full collection: 10-15 % of a batch's CPU
    (bench/RESULTS.md). The young generation is collected every 50,000 allocations instead. Set
    for the grader's own process only: ``main`` also runs inside other programs (the tests)."""
    gc.set_threshold(50_000, 20, 100)


def entry() -> None:  # console_scripts entry point
    _fewer_collections()
    code = main()
    try:  # flush here, where a closed pipe can still be handled, not in the interpreter's exit
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code)


__all__ = ["main", "entry", "build_parser"]
