"""``grade``: the command line.

    grade EX [EX...] [-n NS]...      grade exercises in the current (or given) namespaces
    grade list | show EX             what exercises exist, and one's instructions
    grade demo [EX...]               embedded cluster + reference solutions, graded
    grade sandbox                    embedded cluster to practise on, with a kubeconfig
    grade selftest [EX...]           prove each solution scores full marks and each broken
                                     variant loses exactly its checks

Exit codes: 0 every check passed; 1 some check failed; 2 usage or spec error; 3 the cluster
could not be used (or only grader-side errors kept a check from passing); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import __version__
from .errors import ClusterUnavailable, GraderError, InfraError, UsageError
from .results import RunResult
from .settings import Settings, resolve

COMMANDS = ("list", "show", "demo", "sandbox", "selftest")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # exit 2 with one line, as for every usage error
        raise UsageError(f"{message} (see `grade --help`)")


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
    p.add_argument("exercises", nargs="+", metavar="EX", help="exercise id(s), e.g. ex1")
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
    p.add_argument("--out", metavar="DIR", help="batch: JUnit per namespace, gradebook.csv, results.json")
    p.add_argument("--resume", action="store_true", help="with --out: skip namespaces already reported")
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    lang = "en"
    debug = "--debug" in args_list
    try:
        if args_list and args_list[0] in COMMANDS:
            cmd = args_list[0]
            ns = _sub_parser(cmd).parse_args(args_list[1:])
            settings = resolve(vars(ns))
            lang = settings.lang
            from . import commands
            run = {"list": commands.list_exercises, "show": commands.show, "demo": commands.demo,
                   "sandbox": commands.sandbox, "selftest": commands.selftest}[cmd]
            return run(ns, settings)
        if not args_list:
            build_parser().print_usage(sys.stderr)
            return 2
        if args_list[0] in ("-h", "--help"):
            build_parser().print_help()
            return 0
        if args_list[0] == "--version":
            print(f"grade {__version__}")
            return 0
        ns = build_parser().parse_args(args_list)
        settings = resolve(vars(ns))
        lang = settings.lang
        from . import commands
        return commands.grade(ns, settings)
    except UsageError as e:
        print(f"grade: {e.message.get(lang)}", file=sys.stderr)
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
    except GraderError as e:  # pragma: no cover - every branch above is more specific
        print(f"grade: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # an internal bug: one line unless --debug
        if debug:
            raise
        print(f"grade: internal error: {type(e).__name__}: {e} (run with --debug for details)", file=sys.stderr)
        return 4


def emit(result: RunResult, ns: argparse.Namespace, settings: Settings, *, include_hidden: bool = False) -> int:
    """Render a run: console or --json on stdout, --junit file; returns the exit code."""
    from .junit import write_junit
    from .reports import render_console, to_json

    if getattr(ns, "junit", None):
        write_junit(ns.junit, result.results, settings.lang)
    if getattr(ns, "json", False):
        print(json.dumps(to_json(result.results, settings.lang), ensure_ascii=False, indent=2))
    else:
        print(render_console(result.results, settings.lang, color=sys.stdout.isatty(),
                             include_hidden=include_hidden).rstrip("\n"))
    return result.exit_code


def entry() -> None:  # console_scripts entry point
    sys.exit(main())


__all__ = ["main", "entry", "emit", "build_parser"]
