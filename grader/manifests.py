"""Loading submitted YAML/JSON manifests without ever raising on the student's input.

Offline grading (``--manifests``) and the sandbox read files the student wrote; every defect is a
``ManifestProblem`` with the file, the line and a bilingual message, so a single bad document
does not hide what is wrong with the others.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

from .apitypes import known_kinds
from .i18n import Raw, Text, clean, t

__all__ = ["Document", "ManifestProblem", "load_path", "load_text", "SUFFIXES"]

SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Document:
    """One Kubernetes object and where it came from (1-based line of the document start)."""

    obj: dict
    path: str
    line: int


@dataclass(frozen=True)
class ManifestProblem:
    """Why a document (or file) cannot be used."""

    path: str
    line: int
    message: Text


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as strings, as the API server would receive them."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _files(root: pathlib.Path) -> list[pathlib.Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_path(path: str | pathlib.Path) -> tuple[list[Document], list[ManifestProblem]]:
    """Every object under ``path`` (a file, or a directory searched recursively), in file order."""
    root = pathlib.Path(path)
    docs: list[Document] = []
    problems: list[ManifestProblem] = []
    if not root.exists():
        return [], [ManifestProblem(str(root), 0, t("{p} が見つかりません。", "{p} does not exist.", p=str(root)))]
    files = _files(root)
    if not files:
        problems.append(ManifestProblem(str(root), 0, t(
            "{p} にマニフェスト (*.yaml, *.yml, *.json) がありません。",
            "No manifests (*.yaml, *.yml, *.json) in {p}.", p=str(root))))
    for f in files:
        try:
            text = f.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(ManifestProblem(str(f), 0, t("読み込めません: {e}", "Cannot read: {e}", e=str(exc))))
            continue
        d, p = load_text(text, str(f))
        docs.extend(d)
        problems.extend(p)
    return docs, problems


def load_text(text: str, path: str = "<string>") -> tuple[list[Document], list[ManifestProblem]]:
    """Documents and problems from one file's text."""
    docs: list[Document] = []
    problems: list[ManifestProblem] = []
    raw: list[tuple[Any, int]] = []
    if path.endswith(".json"):
        try:
            raw.append((json.loads(text), 1))
        except ValueError as exc:
            line = getattr(exc, "lineno", 1)
            problems.append(ManifestProblem(path, line, t("JSON の構文エラー: {e}", "JSON syntax error: {e}",
                                                          e=getattr(exc, "msg", str(exc)))))
            return docs, problems
    else:
        try:
            for node in yaml.compose_all(text, Loader=_Loader):
                if node is None:
                    continue
                raw.append((_construct(node),
                            node.start_mark.line + 1))
        except yaml.YAMLError as exc:
            # The construct that was left open (context) is where the student's mistake is; the
            # parser only notices it later (problem), often at the end of the file.
            context = getattr(exc, "context_mark", None)
            mark = context or getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            what = " ".join(str(x) for x in (getattr(exc, "context", None), getattr(exc, "problem", None)) if x) \
                or str(exc)
            problems.append(ManifestProblem(path, line, t(
                "YAML の構文エラー ({n} 行目): {e}", "YAML syntax error at line {n}: {e}", n=line, e=Raw(clean(what)))))
    for obj, line in raw:
        _check(obj, path, line, docs, problems)
    return docs, problems


def _construct(node: yaml.Node) -> Any:
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check(obj: Any, path: str, line: int, docs: list[Document], problems: list[ManifestProblem]) -> None:
    if obj is None:
        return
    if not isinstance(obj, dict):
        problems.append(ManifestProblem(path, line, t(
            "ドキュメントがマッピング (キー: 値) ではありません。",
            "The document is not a mapping (key: value).")))
        return
    if obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        for item in obj["items"]:
            _check(item, path, line, docs, problems)
        return
    missing = [f for f in ("apiVersion", "kind") if not isinstance(obj.get(f), str) or not obj.get(f)]
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        missing.append("metadata.name")
    if missing:
        problems.append(ManifestProblem(path, line, t(
            "必須フィールドがありません: {f}", "Missing required field(s): {f}", f=", ".join(missing))))
        return
    api_version, kind = obj["apiVersion"], obj["kind"]
    if (api_version, kind) not in known_kinds():
        versions = sorted(v for v, k in known_kinds() if k == kind)
        if versions:
            problems.append(ManifestProblem(path, line, t(
                "{k} は apiVersion {v} にはありません ({ok} を使ってください)。",
                "Kind {k} does not exist in apiVersion {v} (use {ok}).", k=kind, v=api_version, ok=" / ".join(versions))))
        else:
            problems.append(ManifestProblem(path, line, t(
                "未知の kind です: {k} ({v})。", "Unknown kind {k} ({v}).", k=kind, v=api_version)))
        return
    docs.append(Document(obj, path, line))
