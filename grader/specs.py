"""Exercise specs (``exercises/<id>/exercise.yaml``) and course files, validated up front.

A spec is the contract between an exercise author and the runner: every check it lists has
exactly one pytest function (``test_<id with - as _>``) in the exercise's module, and the other
way round. Everything is checked before any cluster is touched, and a problem is a ``SpecError``
naming the file and the field, never a traceback.
"""
from __future__ import annotations

import ast
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import SpecError
from .i18n import LANGS, Text
from .results import Visibility

_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")
_PARAM_TYPES = (str, int, float, bool, list, dict)


@dataclass(frozen=True)
class CheckSpec:
    id: str
    points: float
    title: Text
    hint: Text
    visibility: Visibility = Visibility.VISIBLE

    @property
    def function(self) -> str:
        return check_function_name(self.id)


@dataclass(frozen=True)
class ExerciseSpec:
    id: str
    title: Text
    instructions: Text
    params: Mapping[str, Any]
    checks: tuple[CheckSpec, ...]
    path: Path                      # the exercise.yaml
    module: Path                    # the pytest module holding the checks
    wait: float | None = None       # default re-observation window for this exercise
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    def check(self, check_id: str) -> CheckSpec:
        for c in self.checks:
            if c.id == check_id:
                return c
        raise KeyError(check_id)

    def with_params(self, overrides: Mapping[str, Any], source: str) -> "ExerciseSpec":
        """A copy whose parameters are overridden, with the same type rules as the spec."""
        merged = dict(self.params)
        for key, value in overrides.items():
            where = f"params.{self.id}.{key}"
            if key not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise SpecError(source, where, f"unknown parameter for {self.id} (known: {known})")
            _check_same_type(source, where, self.params[key], value)
            merged[key] = value
        spec = ExerciseSpec(self.id, self.title, self.instructions, merged, self.checks,
                            self.path, self.module, self.wait, self.extra)
        _check_templates(spec, source)
        return spec

    def render(self, text: Text) -> Text:
        """Fill ``{param}`` placeholders of a spec text (titles, hints, instructions)."""
        values = {k: _fmt(v) for k, v in self.params.items()}
        return text.format(**values)


def check_function_name(check_id: str) -> str:
    return "test_" + check_id.replace("-", "_")


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _check_same_type(path: str, where: str, default: Any, value: Any) -> None:
    expected = type(default)
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise SpecError(path, where, f"expected {expected.__name__}, got {type(value).__name__} ({value!r:.60})")


def _need(path: str, data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in data:
        raise SpecError(path, name, "missing")
    value = data[key]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool) and kind in (int, float, (int, float))):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SpecError(path, name, f"expected {names}, got {type(value).__name__}")
    return value


def _text(path: str, data: Mapping[str, Any], key: str, where: str = "") -> Text:
    value = _need(path, data, key, dict, where)
    for lang in LANGS:
        s = value.get(lang)
        if not isinstance(s, str) or not s.strip():
            raise SpecError(path, f"{where}{key}.{lang}", "missing or empty (every text needs ja and en)")
    extra = set(value) - set(LANGS)
    if extra:
        raise SpecError(path, f"{where}{key}", f"unknown language(s) {sorted(extra)}; use ja and en")
    return Text(value["ja"], value["en"])


def _module_functions(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as e:
        raise SpecError(str(path), f"line {e.lineno}", f"syntax error: {e.msg}") from None
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def _check_templates(spec: ExerciseSpec, path: str) -> None:
    texts: list[tuple[str, Text]] = [("title", spec.title), ("instructions", spec.instructions)]
    for i, c in enumerate(spec.checks):
        texts += [(f"checks[{i}].title", c.title), (f"checks[{i}].hint", c.hint)]
    for where, text in texts:
        for lang in LANGS:
            try:
                names = [f for _, f, _, _ in string.Formatter().parse(text.get(lang)) if f is not None]
            except ValueError as e:
                raise SpecError(path, f"{where}.{lang}", f"bad placeholder: {e}") from None
            for name in names:
                if name not in spec.params:
                    raise SpecError(path, f"{where}.{lang}", f"placeholder {{{name}}} is not a parameter")


def load_exercise(directory: Path) -> ExerciseSpec:
    path = directory / "exercise.yaml"
    p = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(p, "(file)", "not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise SpecError(p, where, f"invalid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(data, dict):
        raise SpecError(p, "(top level)", "expected a mapping")
    known = {"id", "title", "instructions", "params", "checks", "module", "wait", "extra"}
    unknown = set(data) - known
    if unknown:
        raise SpecError(p, sorted(unknown)[0], f"unknown field (known: {', '.join(sorted(known))})")
    ex_id = _need(p, data, "id", str)
    if ex_id != directory.name:
        raise SpecError(p, "id", f"{ex_id!r} does not match the directory name {directory.name!r}")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise SpecError(p, "params", "expected a mapping")
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise SpecError(p, f"params.{key}", "parameter names must be identifiers")
        if not isinstance(value, _PARAM_TYPES):
            raise SpecError(p, f"params.{key}", f"unsupported type {type(value).__name__}")
    module = directory / data.get("module", f"test_{ex_id}.py")
    if not module.is_file():
        raise SpecError(p, "module", f"{module.name} not found beside the spec")
    raw_checks = _need(p, data, "checks", list)
    if not raw_checks:
        raise SpecError(p, "checks", "an exercise needs at least one check")
    checks: list[CheckSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_checks):
        where = f"checks[{i}]."
        if not isinstance(raw, dict):
            raise SpecError(p, f"checks[{i}]", "expected a mapping")
        cid = _need(p, raw, "id", str, where)
        if not cid or not set(cid) <= _ID_CHARS or cid[0] == "-":
            raise SpecError(p, f"{where}id", f"{cid!r}: use lowercase letters, digits and '-'")
        if cid in seen:
            raise SpecError(p, f"{where}id", f"duplicate check id {cid!r}")
        seen.add(cid)
        points = _need(p, raw, "points", (int, float), where)
        if points < 0:
            raise SpecError(p, f"{where}points", "must not be negative")
        vis = raw.get("visibility", "visible")
        try:
            visibility = Visibility(vis)
        except ValueError:
            raise SpecError(p, f"{where}visibility", f"{vis!r}: use visible, hidden or after_due_date") from None
        unknown = set(raw) - {"id", "points", "title", "hint", "visibility"}
        if unknown:
            raise SpecError(p, f"{where}{sorted(unknown)[0]}", "unknown field")
        checks.append(CheckSpec(cid, float(points), _text(p, raw, "title", where), _text(p, raw, "hint", where), visibility))
    wait = data.get("wait")
    if wait is not None and (not isinstance(wait, (int, float)) or isinstance(wait, bool) or wait < 0):
        raise SpecError(p, "wait", "expected a number of seconds ≥ 0")
    spec = ExerciseSpec(ex_id, _text(p, data, "title"), _text(p, data, "instructions"), params,
                        tuple(checks), path, module, wait, data.get("extra") or {})
    functions = _module_functions(module)
    wanted = {c.function for c in checks}
    for fn in sorted(wanted - functions):
        raise SpecError(p, f"checks[{[c.function for c in checks].index(fn)}].id",
                        f"no function {fn}() in {module.name}")
    for fn in sorted(functions - wanted):
        raise SpecError(str(module), fn, "check function has no entry in exercise.yaml checks")
    _check_templates(spec, p)
    return spec
