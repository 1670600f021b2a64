"""Putting manifest files on a cluster, as ``kubectl create -f`` would, and finding the reference
solutions that ``demo`` and ``selftest`` put there.
"""
from __future__ import annotations

from pathlib import Path

from .errors import InfraError, UsageError
from .i18n import Raw, Text, t
from .kube import Api
from .manifests import SUFFIXES, Budget, load_path
from .settings import Settings, data_dir
from .specs import ExerciseSpec


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


def apply_files(api: Api, paths: list[Path], namespace: str, recursive: bool = False,
                kinds: frozenset[tuple[str, str]] | None = None) -> list[Text]:
    """Create every object of these manifest files (or directories, read like ``kubectl apply -f``:
    subfolders only with ``recursive``); returns the problems, each ``file:line: message`` in both
    languages: a file that does not load, a link, a limit passed, an object refused. The limits of
    ``grader.manifests`` hold for all the paths together, as one submission. ``kinds``: the
    (apiVersion, kind) pairs the cluster serves, where known (the embedded cluster's), so a wrong
    kind is named with its file and line; None leaves it to the server."""
    problems: list[Text] = []
    budget = Budget(kinds=kinds)
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
    return sorted(p for p in directory.iterdir() if p.name.lower().endswith(SUFFIXES)
                  and (p.is_symlink() or p.is_file()))


__all__ = ["apply_files", "manifest_files", "solution_dir", "solutions_of", "with_solutions"]
