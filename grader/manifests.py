"""Loading submitted YAML/JSON manifests without ever raising on the student's input.

Offline grading (``--manifests``) and the sandbox read files the student wrote; every defect is a
``ManifestProblem`` with the file, the line and a bilingual message, so a single bad document
does not hide what is wrong with the others.

A directory is read as ``kubectl apply -f DIR`` reads it: the ``.yaml``/``.yml``/``.json`` files
directly in it, subfolders only with ``recursive`` (``-R``). A submission is untrusted, so no
symbolic link is ever followed (a link to the installed reference solution would score full marks,
one to ``/etc/passwd`` or a kubeconfig would leak it into messages): a link is a problem naming the
link, and every file is opened relative to its folder's descriptor with ``O_NOFOLLOW`` so it cannot
be swapped for a link between listing and reading. Sizes, document counts, YAML alias expansion and
nesting are bounded (see the ``MAX_*`` constants) so a few lines cannot make the grader hang or
run out of memory.
"""
from __future__ import annotations

import errno
import json
import os
import pathlib
import stat
from dataclasses import dataclass
from typing import Any, Iterator

import yaml

from .i18n import Raw, Text, clean, t

__all__ = ["Document", "ManifestProblem", "Budget", "load_path", "load_text", "SUFFIXES",
           "MAX_FILE_BYTES", "MAX_TOTAL_BYTES", "MAX_DOCUMENTS", "MAX_NODES", "MAX_ALIAS_NODES",
           "MAX_DEPTH"]

SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 1 << 20          # one file
MAX_TOTAL_BYTES = 10 << 20        # everything read for one submission
MAX_DOCUMENTS = 500               # objects in all (items of a List count one by one)
MAX_NODES = 200_000               # values written out in all (parsing costs ~10 µs each)
MAX_ALIAS_NODES = 100_000         # values that YAML aliases (*a) copy in, in all
MAX_DEPTH = 100                   # nesting of mappings/lists; real objects stay under 30
MAX_ENTRIES = 10_000              # directory entries looked at (with -R a tree can be wide)
MAX_FOLDER_DEPTH = 32             # subfolder levels followed with -R
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_FILE = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_OPEN_DIR = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


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


@dataclass
class Budget:
    """What is left of the limits for one submission, shared by all its files: a limit must hold
    for the whole submission, not per file, or splitting a bomb over files would get round it."""

    bytes: int = MAX_TOTAL_BYTES
    documents: int = MAX_DOCUMENTS
    nodes: int = MAX_NODES
    aliases: int = MAX_ALIAS_NODES
    entries: int = MAX_ENTRIES
    exhausted: bool = False       # a total limit was hit: nothing more is read
    # (apiVersion, kind) pairs the target cluster serves, to name a wrong kind with its line; None
    # leaves it to the server (a real cluster knows kinds this grader has never heard of).
    kinds: frozenset[tuple[str, str]] | None = None


class _Limit(Exception):
    """A bound was passed while composing YAML; carries the line and the student-facing text."""

    def __init__(self, line: int, message: Text) -> None:
        super().__init__(message.en)
        self.line, self.message = line, message


class _Events:
    """YAML events from libyaml where PyYAML has it: the pure-Python scanner looks ahead for
    simple keys at every flow level, and a 1 MiB file of nested ``[[[...]]]`` takes it about
    a minute; libyaml parses the same file in well under a second."""

    def __init__(self, stream: str) -> None:
        if _CParser is not None:
            _CParser.__init__(self, stream)
        else:
            yaml.reader.Reader.__init__(self, stream)  # type: ignore[arg-type]
            yaml.scanner.Scanner.__init__(self)  # type: ignore[arg-type]
            yaml.parser.Parser.__init__(self)  # type: ignore[arg-type]


try:
    from yaml.cyaml import CParser as _CParser
    _Source: tuple[type, ...] = (_Events, _CParser)
except ImportError:   # PyYAML built without libyaml
    _CParser = None
    _Source = (_Events, yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)


class _Loader(yaml.composer.Composer, *_Source, yaml.constructor.SafeConstructor,  # type: ignore[misc]
              yaml.resolver.Resolver):
    """A safe loader that keeps timestamps as strings, as the API server would receive them, and
    bounds what an alias may bring in and how deep nodes nest. The composer is PyYAML's Python
    one (over libyaml's events where available), so that it can count.

    PyYAML shares an aliased node (and the object built from it), so loading a "billion laughs"
    bomb is cheap; the blow-up comes later, when the object is walked or serialised to JSON. Each
    composed node therefore records its expanded size (``_size``: nodes when every alias is
    replaced by a copy), and every alias charges that size to the submission's budget; an alias
    past it fails its document only. Composed nodes are charged to a budget of their own, whose
    end stops the submission: Python composes about 100 000 nodes a second, and 1 MiB of ``[[]]``
    holds half a million."""

    def __init__(self, stream: str, budget: Budget) -> None:
        _Events.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self.budget = budget
        self.depth = 0
        self.line = 0   # of the node last composed or constructed, for errors without a mark

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        self.line = node.start_mark.line + 1
        return super().construct_object(node, deep)

    def compose_node(self, parent: Any, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            line = self.line = event.start_mark.line + 1
            if target is not None:
                size = getattr(target, "_size", None)
                if size is None:
                    raise _Limit(line, t("エイリアス *{a} が自分を含むノードを指しています。",
                                         "Alias *{a} refers to the node that contains it.", a=event.anchor))
                if size > self.budget.aliases:
                    raise _Limit(line, t(
                        "YAML のエイリアス (*) を展開すると大きすぎます (全体で {n} 個の値まで)。",
                        "YAML aliases (*) expand to too much (at most {n} values in all).", n=MAX_ALIAS_NODES))
                self.budget.aliases -= size
            return super().compose_node(parent, index)
        self.depth += 1
        self.line = self.peek_event().start_mark.line + 1
        self.budget.nodes -= 1
        if self.budget.nodes < 0:
            self.budget.exhausted = True
            raise _Limit(self.line, _too_many())
        try:
            if self.depth > MAX_DEPTH:
                raise _Limit(self.line, t(
                    "入れ子が深すぎます ({n} 段まで)。", "Nested too deeply (at most {n} levels).", n=MAX_DEPTH))
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, yaml.SequenceNode):
            node._size = 1 + sum(getattr(c, "_size", 1) for c in node.value)  # type: ignore[attr-defined]
        elif isinstance(node, yaml.MappingNode):
            node._size = 1 + sum(getattr(k, "_size", 1) + getattr(v, "_size", 1)  # type: ignore[attr-defined]
                                 for k, v in node.value)
        else:
            node._size = 1  # type: ignore[attr-defined]
        return node


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _link(shown: str) -> ManifestProblem:
    return ManifestProblem(shown, 0, t(
        "{p} はシンボリックリンクです。リンクはたどりません (実体のファイルを提出してください)。",
        "{p} is a symbolic link; links are not followed (submit the file itself).", p=shown))


def _read(name: str, dir_fd: int | None, shown: str, budget: Budget) -> bytes | ManifestProblem:
    """The bytes of one regular file, opened without following a link, within the limits."""
    try:
        fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK):   # the name became a link after listing
            return _link(shown)
        return ManifestProblem(shown, 0, t("読み込めません: {e}", "Cannot read: {e}", e=exc.strerror or str(exc)))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ManifestProblem(shown, 0, t("通常のファイルではありません。", "Not a regular file."))
        want = min(MAX_FILE_BYTES, budget.bytes) + 1
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = os.read(fd, min(want - got, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        return ManifestProblem(shown, 0, t("読み込めません: {e}", "Cannot read: {e}", e=exc.strerror or str(exc)))
    finally:
        os.close(fd)
    if got > MAX_FILE_BYTES:
        return ManifestProblem(shown, 0, t("ファイルが大きすぎます ({n} MiB まで)。",
                                           "File too large (at most {n} MiB).", n=MAX_FILE_BYTES >> 20))
    if got > budget.bytes:
        budget.exhausted = True
        return ManifestProblem(shown, 0, t(
            "提出物全体が大きすぎます (合計 {n} MiB まで)。ここから先のファイルは読みません。",
            "The submission is too large (at most {n} MiB in all); this and later files are not read.",
            n=MAX_TOTAL_BYTES >> 20))
    budget.bytes -= got
    return b"".join(chunks)


def _is_manifest(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _walk(root: pathlib.Path, recursive: bool, budget: Budget,
          problems: list[ManifestProblem]) -> Iterator[tuple[str, bytes]]:
    """(shown path, bytes) of each manifest under ``root`` in kubectl's lexical order; links,
    unreadable files and limits become problems."""
    shown_root = str(root)
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        problems.append(ManifestProblem(shown_root, 0, t("{p} が見つかりません。", "{p} does not exist.", p=shown_root)))
        return
    except OSError as exc:
        problems.append(ManifestProblem(shown_root, 0, t("読み込めません: {e}", "Cannot read: {e}",
                                                         e=exc.strerror or str(exc))))
        return
    if stat.S_ISLNK(st.st_mode):
        problems.append(_link(shown_root))
        return
    if not stat.S_ISDIR(st.st_mode):
        data = _read(str(root), None, shown_root, budget)
        if isinstance(data, ManifestProblem):
            problems.append(data)
        else:
            yield shown_root, data
        return
    try:
        top = os.open(root, _OPEN_DIR)
    except OSError as exc:
        problems.append(_link(shown_root) if exc.errno in (errno.ELOOP, errno.ENOTDIR) else ManifestProblem(
            shown_root, 0, t("読み込めません: {e}", "Cannot read: {e}", e=exc.strerror or str(exc))))
        return
    found, skipped = 0, 0
    stack: list[tuple[int, str, Iterator[tuple[str, str]]]] = []
    try:
        stack.append((top, shown_root, _list(top, budget)))
        while stack and not budget.exhausted:
            fd, shown_dir, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                os.close(stack.pop()[0])
                continue
            name, kind = entry
            shown = os.path.join(shown_dir, name)
            if kind == "over":
                budget.exhausted = True
                problems.append(ManifestProblem(shown_root, 0, t(
                    "ファイルとフォルダーが多すぎます ({n} 個まで)。", "Too many files and folders (at most {n}).",
                    n=MAX_ENTRIES)))
            elif kind == "link":
                if _is_manifest(name) or recursive:
                    problems.append(_link(shown))
            elif kind == "dir":
                if not recursive:
                    skipped += 1
                elif len(stack) > MAX_FOLDER_DEPTH:
                    problems.append(ManifestProblem(shown, 0, t(
                        "フォルダーの階層が深すぎます ({n} 段まで)。", "Folders nested too deeply (at most {n}).",
                        n=MAX_FOLDER_DEPTH)))
                else:
                    try:
                        sub = os.open(name, _OPEN_DIR, dir_fd=fd)
                    except OSError as exc:
                        problems.append(_link(shown) if exc.errno in (errno.ELOOP, errno.ENOTDIR) else ManifestProblem(
                            shown, 0, t("読み込めません: {e}", "Cannot read: {e}", e=exc.strerror or str(exc))))
                        continue
                    stack.append((sub, shown, _list(sub, budget)))
            elif _is_manifest(name):
                found += 1
                data = _read(name, fd, shown, budget)
                if isinstance(data, ManifestProblem):
                    problems.append(data)
                else:
                    yield shown, data
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    if not found and not budget.exhausted:
        hint = t(" (サブフォルダーは -R を付けたときだけ読みます)", " (subfolders are read only with -R)") \
            if skipped else Text("", "")
        problems.append(ManifestProblem(shown_root, 0, t(
            "{p} にマニフェスト (*.yaml, *.yml, *.json) がありません", "No manifests (*.yaml, *.yml, *.json) in {p}",
            p=shown_root) + hint + Text("。", ".")))


def _list(fd: int, budget: Budget) -> Iterator[tuple[str, str]]:
    """Names in a folder, sorted, each with its kind as ``lstat`` sees it (never following a link)."""
    out: list[tuple[str, str]] = []
    with os.scandir(fd) as it:
        for e in it:
            budget.entries -= 1
            if budget.entries < 0:
                out.sort()
                yield from out
                yield e.name, "over"
                return
            kind = "link" if e.is_symlink() else "dir" if e.is_dir(follow_symlinks=False) else "file"
            out.append((e.name, kind))
    out.sort()
    yield from out


def load_path(path: str | pathlib.Path, recursive: bool = False,
              budget: Budget | None = None) -> tuple[list[Document], list[ManifestProblem]]:
    """Every object in ``path`` (a file, or the manifests directly in a directory; with
    ``recursive`` its subfolders too), in file order. ``budget`` is shared by the calls that make
    up one submission."""
    budget = budget if budget is not None else Budget()
    docs: list[Document] = []
    problems: list[ManifestProblem] = []
    for shown, data in _walk(pathlib.Path(path), recursive, budget, problems):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            problems.append(ManifestProblem(shown, data[:exc.start].count(b"\n") + 1, t(
                "UTF-8 ではありません ({n} バイト目)。", "Not UTF-8 (byte {n}).", n=exc.start + 1)))
            continue
        d, p = load_text(text, shown, budget)
        docs.extend(d)
        problems.extend(p)
    return docs, problems


def load_text(text: str, path: str = "<string>",
              budget: Budget | None = None) -> tuple[list[Document], list[ManifestProblem]]:
    """Documents and problems from one file's text; a load problem ends the file, not the run."""
    budget = budget if budget is not None else Budget()
    docs: list[Document] = []
    problems: list[ManifestProblem] = []
    if path.lower().endswith(".json"):
        try:
            obj = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", 1)
            problems.append(ManifestProblem(path, line, t("JSON の構文エラー: {e}", "JSON syntax error: {e}",
                                                          e=getattr(exc, "msg", str(exc)))))
        except RecursionError:
            problems.append(_too_deep(path, 1))
        else:
            _use(obj, path, 1, docs, problems, budget, json_values=True)
        return docs, problems
    loader = _Loader(text, budget)
    kept = budget.aliases
    try:
        while not budget.exhausted and loader.check_node():
            node = loader.get_node()
            if node is not None:
                _use(loader.construct_document(node), path, node.start_mark.line + 1, docs, problems, budget)
            kept = budget.aliases
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
    except _Limit as exc:
        problems.append(ManifestProblem(path, exc.line, exc.message))
    except RecursionError:   # not expected past MAX_DEPTH; a traceback must never be the answer
        problems.append(_too_deep(path, loader.line))
    except (ValueError, TypeError, OverflowError) as exc:   # e.g. an integer of 5000 digits
        problems.append(ManifestProblem(path, loader.line, t(
            "読み込めない値があります: {e}", "A value cannot be loaded: {e}", e=str(exc)[:200])))
    finally:
        budget.aliases = kept   # a document that did not load keeps none of its copies
        loader.dispose()
    return docs, problems


def _too_many() -> Text:
    return t("値が多すぎます (全体で {n} 個まで)。ここから先は読みません。",
             "Too many values (at most {n} in all); the rest is not read.", n=MAX_NODES)


def _too_deep(path: str, line: int) -> ManifestProblem:
    return ManifestProblem(path, line, t("入れ子が深すぎます ({n} 段まで)。", "Nested too deeply (at most {n} levels).",
                                         n=MAX_DEPTH))


_JSON_SCALARS = (str, int, float, bool, type(None))


def _shape(obj: Any, budget: Budget | None) -> Text | None:
    """Why ``obj`` could not be sent as JSON (too deep, a set, bytes, a date, too many values),
    without recursion: a JSON file may nest nearly to the interpreter's limit, and serialising it
    would overflow. JSON values are charged to ``budget`` (YAML nodes were, when composed)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if budget is not None:
            if budget.nodes <= 0:
                budget.exhausted = True
                return _too_many()
            budget.nodes -= 1
        if depth > MAX_DEPTH:
            return t("入れ子が深すぎます ({n} 段まで)。", "Nested too deeply (at most {n} levels).", n=MAX_DEPTH)
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, _JSON_SCALARS):
                    return t("マッピングのキーに使えない値です: {v}", "A mapping key cannot be {v}.", v=type(k).__name__)
                stack.append((v, depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, depth + 1) for v in value)
        elif not isinstance(value, _JSON_SCALARS):
            return t("JSON にできない値です ({v})。クォートで囲んでください。",
                     "A value cannot be JSON ({v}); quote it.", v=type(value).__name__)
    return None


def _use(obj: Any, path: str, line: int, docs: list[Document], problems: list[ManifestProblem],
         budget: Budget, json_values: bool = False) -> None:
    why = _shape(obj, budget if json_values else None)
    if why is not None:
        problems.append(ManifestProblem(path, line, why))
        return
    _check(obj, path, line, docs, problems, budget)


def _check(obj: Any, path: str, line: int, docs: list[Document], problems: list[ManifestProblem],
           budget: Budget) -> None:
    if obj is None or budget.exhausted:
        return
    if isinstance(obj, dict) and obj.get("kind") == "List" and isinstance(obj.get("items"), list):
        for item in obj["items"]:
            _check(item, path, line, docs, problems, budget)
        return
    budget.documents -= 1
    if budget.documents < 0:
        budget.exhausted = True
        problems.append(ManifestProblem(path, line, t(
            "オブジェクトが多すぎます ({n} 個まで)。ここから先は読みません。",
            "Too many objects (at most {n}); the rest is not read.", n=MAX_DOCUMENTS)))
        return
    if not isinstance(obj, dict):
        problems.append(ManifestProblem(path, line, t(
            "ドキュメントがマッピング (キー: 値) ではありません。",
            "The document is not a mapping (key: value).")))
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
    if budget.kinds is not None and (api_version, kind) not in budget.kinds:
        versions = sorted(v for v, k in budget.kinds if k == kind)
        if versions:
            problems.append(ManifestProblem(path, line, t(
                "{k} は apiVersion {v} にはありません ({ok} を使ってください)。",
                "Kind {k} does not exist in apiVersion {v} (use {ok}).", k=kind, v=api_version, ok=" / ".join(versions))))
        else:
            problems.append(ManifestProblem(path, line, t(
                "未知の kind です: {k} ({v})。", "Unknown kind {k} ({v}).", k=kind, v=api_version)))
        return
    docs.append(Document(obj, path, line))
