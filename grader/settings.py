"""Settings, in one place, with one precedence:

    command line  >  environment (GRADER_*)  >  course file  >  exercise defaults

Environment variables: ``GRADER_LANG`` (ja|en), ``GRADER_WAIT`` (seconds), ``GRADER_COURSE``
(path of a course file), ``GRADER_ROUTER`` (HOST:PORT), ``GRADER_ROUTE_DOMAIN``,
``GRADER_EXERCISES`` (extra exercise directories, ``os.pathsep``-separated).

A course file (YAML) lets an instructor set, for a whole class::

    lang: ja
    wait: 60
    route_domain: apps.ocp.example.com
    router: 10.0.0.5:80          # optional
    due: 2026-12-01T00:00:00Z    # after it, after_due_date checks count for students too
    params:
      "*":  {image: registry.example.com/ubi9/httpd-24}   # every exercise that has the parameter
      ex1:  {pod_name: web}
    lms:                         # column of each exercise in the LMS gradebook (--roster)
      ex3: "Lab 3: Storage (1234)"   # Canvas's "Title (id)", or Moodle's grade item name
"""
from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import SpecError, UsageError
from .i18n import Raw, clean, detect_lang, t
from .sanitize import valid_namespace
from .specs import ExerciseSpec, load_exercise

DEFAULT_WAIT = 30.0
# What Kubernetes accepts as a namespace name (a DNS-1123 label).
_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """``exercises``/``solutions``: inside the installed package, else beside it in a checkout."""
    installed = _PKG / name
    return installed if installed.is_dir() else _PKG.parent / name


@dataclass
class CourseFile:
    path: str
    lang: str | None = None
    wait: float | None = None
    route_domain: str | None = None
    router: str | None = None
    due: dt.datetime | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    lms: dict[str, str] = field(default_factory=dict)


def load_course_file(path: str | os.PathLike[str]) -> CourseFile:
    p = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SpecError(p, "(file)", "not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise SpecError(p, f"line {mark.line + 1}" if mark else "(file)", "invalid YAML") from None
    if not isinstance(data, dict):
        raise SpecError(p, "(top level)", "expected a mapping")
    known = {"lang", "wait", "route_domain", "router", "due", "params", "course", "lms"}
    for key in data:
        if key not in known:
            raise SpecError(p, str(key), f"unknown field (known: {', '.join(sorted(known))})")
    cf = CourseFile(p)
    if "lang" in data:
        if data["lang"] not in ("ja", "en"):
            raise SpecError(p, "lang", "use ja or en")
        cf.lang = data["lang"]
    if "wait" in data:
        w = data["wait"]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0:
            raise SpecError(p, "wait", "expected a number of seconds ≥ 0")
        cf.wait = float(w)
    for key in ("route_domain", "router"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise SpecError(p, key, "expected a non-empty string")
            setattr(cf, key, data[key])
    if "due" in data:
        due = data["due"]
        if isinstance(due, str):
            try:
                due = dt.datetime.fromisoformat(due.replace("Z", "+00:00"))
            except ValueError:
                raise SpecError(p, "due", "expected an ISO 8601 date-time") from None
        if isinstance(due, dt.date) and not isinstance(due, dt.datetime):
            due = dt.datetime.combine(due, dt.time())
        if not isinstance(due, dt.datetime):
            raise SpecError(p, "due", "expected an ISO 8601 date-time")
        cf.due = due if due.tzinfo else due.replace(tzinfo=dt.timezone.utc)
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise SpecError(p, "params", "expected a mapping of exercise id to parameters")
    for ex, values in params.items():
        if not isinstance(values, dict):
            raise SpecError(p, f"params.{ex}", "expected a mapping of parameter names to values")
        cf.params[str(ex)] = values
    cf.lms = _lms_columns(p, data.get("lms"))
    return cf


def _lms_columns(p: str, lms: Any) -> dict[str, str]:
    """``lms: {exercise id: column name}``: one line of plain text each, as an LMS header cell."""
    if lms is None:
        return {}
    if not isinstance(lms, dict):
        raise SpecError(p, "lms", "expected a mapping of exercise id to the LMS column name")
    out: dict[str, str] = {}
    for ex, name in lms.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 255 or any(ord(c) < 32 for c in name):
            raise SpecError(p, f"lms.{ex}", "expected the LMS column name: one line of text, at most 255 characters")
        out[str(ex)] = name.strip()
    return out


@dataclass
class Settings:
    """Resolved settings for one invocation (see the module docstring for precedence)."""

    lang: str = "en"
    wait: float | None = None          # None: the exercise's default, else DEFAULT_WAIT
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: list[str] = field(default_factory=list)
    namespace_pattern: str | None = None
    namespace_selector: str | None = None
    router: str | None = None
    route_domain: str | None = None
    course: CourseFile | None = None
    exercise_dirs: list[Path] = field(default_factory=list)
    debug: bool = False
    quiet: bool = False

    def wait_for(self, spec: ExerciseSpec) -> float:
        if self.wait is not None:
            return self.wait
        return spec.wait if spec.wait is not None else DEFAULT_WAIT

    def due_passed(self, now: dt.datetime | None = None) -> bool:
        if not self.course or not self.course.due:
            return False
        return (now or dt.datetime.now(dt.timezone.utc)) >= self.course.due

    def exercise_roots(self) -> list[Path]:
        return [*self.exercise_dirs, data_dir("exercises")]

    def available(self) -> dict[str, Path]:
        """Exercise id → directory; earlier roots win, so a course may replace an exercise."""
        found: dict[str, Path] = {}
        for root in self.exercise_roots():
            if not root.is_dir():
                continue
            for d in sorted(root.iterdir()):
                if (d / "exercise.yaml").is_file():
                    found.setdefault(d.name, d)
        return dict(sorted(found.items(), key=lambda kv: _natural(kv[0])))

    def exercise(self, ex_id: str) -> ExerciseSpec:
        """Load a spec and apply course parameters (``*`` first, then the exercise's own)."""
        available = self.available()
        if ex_id not in available:
            raise UsageError(t("演習 {ex} はありません。`grade list` で一覧を表示できます ({all})。",
                               "unknown exercise {ex}; `grade list` shows them ({all}).",
                               ex=ex_id, all=Raw(", ".join(available))))
        spec = load_exercise(available[ex_id])
        if self.course:
            common = {k: v for k, v in self.course.params.get("*", {}).items() if k in spec.params}
            if common:
                spec = spec.with_params(common, self.course.path)
            own = self.course.params.get(ex_id)
            if own:
                spec = spec.with_params(own, self.course.path)
        return spec


def _natural(s: str) -> tuple[Any, ...]:
    import re
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


def resolve(cli: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Merge command-line values (None = not given) with the environment and the course file."""
    env = os.environ if environ is None else environ
    course_path = cli.get("params") or env.get("GRADER_COURSE")
    course = load_course_file(course_path) if course_path else None

    def pick(key: str, env_key: str, course_value: Any, cast: Any = str) -> Any:
        if cli.get(key) is not None:
            return cli[key]
        if env.get(env_key):
            try:
                return cast(env[env_key])
            except ValueError:
                raise UsageError(f"{env_key}={env[env_key]!r} is not valid") from None
        return course_value

    lang = pick("lang", "GRADER_LANG", course.lang if course else None) or detect_lang(env)
    if lang not in ("ja", "en"):
        raise UsageError(f"language {lang!r}: use ja or en")
    wait = pick("wait", "GRADER_WAIT", course.wait if course else None, float)
    if wait is not None and wait < 0:
        raise UsageError("--wait must be ≥ 0")
    dirs = [Path(d) for d in (env.get("GRADER_EXERCISES") or "").split(os.pathsep) if d]
    dirs += [Path(d) for d in cli.get("exercises_dir") or []]
    settings = Settings(
        lang=lang,
        wait=wait,
        kubeconfig=cli.get("kubeconfig"),
        context=cli.get("context"),
        namespaces=_namespace_names(cli.get("namespace")),
        namespace_pattern=cli.get("namespace_pattern"),
        namespace_selector=cli.get("namespace_selector"),
        router=pick("router", "GRADER_ROUTER", course.router if course else None),
        route_domain=pick("route_domain", "GRADER_ROUTE_DOMAIN", course.route_domain if course else None),
        course=course,
        exercise_dirs=dirs,
        debug=bool(cli.get("debug")),
        quiet=bool(cli.get("quiet")),
    )
    for option in ("namespace_pattern", "namespace_selector"):
        if cli.get(option) is not None and not str(cli[option]).strip():
            raise UsageError(t("--{o} が空です。値を指定してください。", "--{o} is empty: give it a value.",
                               o=Raw(option.replace("_", "-"))))
    if course:
        _check_course_exercises(course, settings.available())
    return settings


def _namespace_names(given: Any) -> list[str]:
    """The -n names. A blank one is refused: the client would read an empty namespace as "every
    namespace", and a student would be graded on someone else's pod. A name Kubernetes would not
    accept cannot exist, and must never reach a URL path (``-n default/pods`` reads pods)."""
    names = [given] if isinstance(given, str) else list(given or [])
    for name in names:
        if not name.strip():
            raise UsageError(t("-n/--namespace の名前が空です。採点する名前空間の名前を指定してください。",
                               "-n/--namespace is blank: give the name of the namespace to grade."))
        if not valid_namespace(name):
            raise UsageError(t("-n {ns}: 名前空間の名前ではありません (英小文字・数字・ハイフン、63 文字以内)",
                               "-n {ns}: not a namespace name (lowercase letters, digits and '-', at most 63)",
                               ns=name))
    return names


def _check_course_exercises(course: CourseFile, available: Mapping[str, Path]) -> None:
    """A ``params`` key must name an exercise: a typo (``ex01``) would otherwise be ignored and the
    class graded with the defaults the instructor meant to replace."""
    for key in [*(k for k in course.params if k != "*"), *course.lms]:
        if key not in available:
            raise UsageError(t("コースファイル {p}: {f}.{k}: その演習はありません (ある演習: {all})",
                               "course file {p}: {f}.{k}: no such exercise (exercises: {all})",
                               p=Raw(course.path), f=Raw("params" if key in course.params else "lms"), k=Raw(clean(key)[:80]),
                               all=Raw(", ".join(available))))
