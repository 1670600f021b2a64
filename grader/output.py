"""Showing a run: the console or ``--json`` report on stdout, then the ``--junit`` file.

Every command that prints a grade (``grade EX``, ``demo``, ``--manifests``) ends here, below the
commands and above the report formats (``reports``, ``junit``), so no command has to reach up
into ``cli`` to print.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .i18n import Raw, t
from .junit import write_junit
from .reports import render_console, to_json
from .results import RunResult
from .settings import Settings

REPORT_NOT_WRITTEN = 3   # the grade is known and printed, but a report file could not be saved


def silence_stdout() -> None:
    """The reader closed stdout (``| head``): send what is left to /dev/null, so neither this
    write nor the flush at exit raises again (the recipe of Python's signal docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def emit(result: RunResult, ns: argparse.Namespace, settings: Settings, *, include_hidden: bool = False) -> int:
    """Render a run: console or --json on stdout, then the --junit file; returns the exit code.

    The console report comes first and always: the student sees the grade even when the JUnit
    file cannot be written (then one line on stderr and exit ``REPORT_NOT_WRITTEN``). A reader
    that stops early (``| head``) does not keep the JUnit file from being written."""
    try:
        if getattr(ns, "json", False):
            print(json.dumps(to_json(result.results, settings.lang), ensure_ascii=False, indent=2))
        else:
            print(render_console(result.results, settings.lang, color=sys.stdout.isatty(),
                                 include_hidden=include_hidden).rstrip("\n"))
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
    if getattr(ns, "junit", None):
        try:
            os.makedirs(os.path.dirname(ns.junit) or ".", exist_ok=True)
            write_junit(ns.junit, result.results, settings.lang)
        except OSError as e:
            print("grade: " + t("JUnit レポート {p} を書けませんでした ({why})。採点結果は上に表示したとおりです。",
                                "could not write the JUnit report {p} ({why}); the grade is the one shown above.",
                                p=Raw(str(ns.junit)), why=Raw(e.strerror or type(e).__name__)).get(settings.lang),
                  file=sys.stderr)
            return REPORT_NOT_WRITTEN
    return result.exit_code


__all__ = ["emit", "silence_stdout", "REPORT_NOT_WRITTEN"]
