"""Exercise specs and course files: every mistake is a clear error naming the file and field."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from grader.errors import SpecError, UsageError
from grader.settings import data_dir, load_course_file, resolve
from grader.specs import load_exercise
from tests.conftest import run_grade

EX1 = data_dir("exercises") / "ex1"


@pytest.fixture
def ex(tmp_path) -> Path:
    """A private copy of ex1 to break."""
    d = tmp_path / "ex1"
    shutil.copytree(EX1, d)
    return d


def _edit(ex: Path, change) -> None:
    path = ex / "exercise.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def _error(ex: Path) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_exercise(ex)
    assert info.value.path.endswith(("exercise.yaml", ".py"))
    return info.value


def test_shipped_specs_load():
    spec = load_exercise(EX1)
    assert [c.id for c in spec.checks] == ["pod-exists", "pod-label", "pod-image", "pod-port", "pod-ready"]
    assert spec.max_score == 10
    assert spec.render(spec.checks[0].title).en == "Pod hello exists"


@pytest.mark.parametrize("change,field,words", [
    (lambda d: d.pop("title"), "title", "missing"),
    (lambda d: d["title"].pop("ja"), "title.ja", "missing"),
    (lambda d: d["checks"][1].update(points="two"), "checks[1].points", "expected int or float"),
    (lambda d: d["checks"][1].update(points=-1), "checks[1].points", "negative"),
    (lambda d: d["checks"][2].pop("hint"), "checks[2].hint", "missing"),
    (lambda d: d["checks"][0].update(id="Pod Exists"), "checks[0].id", "lowercase"),
    (lambda d: d["checks"].append(dict(d["checks"][0])), "checks[5].id", "duplicate"),
    (lambda d: d["checks"][0].update(visibility="secret"), "checks[0].visibility", "hidden"),
    (lambda d: d["checks"][0]["title"].update(en="Pod {pod_nmae} exists"), "checks[0].title.en", "pod_nmae"),
    (lambda d: d.update(colour="red"), "colour", "unknown field"),
    (lambda d: d.update(id="ex9"), "id", "directory"),
    (lambda d: d.update(checks=[]), "checks", "at least one"),
    (lambda d: d.update(wait=-3), "wait", "≥ 0"),
])
def test_broken_spec_names_file_and_field(ex, change, field, words):
    _edit(ex, change)
    err = _error(ex)
    assert err.field == field
    assert words in err.problem


def test_check_without_function(ex):
    _edit(ex, lambda d: d["checks"].append({**d["checks"][0], "id": "pod-extra"}))
    err = _error(ex)
    assert err.field == "checks[5].id" and "test_pod_extra" in err.problem


def test_function_without_check(ex):
    (ex / "test_ex1.py").write_text((ex / "test_ex1.py").read_text() + "\n\ndef test_orphan(view):\n    pass\n")
    err = _error(ex)
    assert err.path.endswith("test_ex1.py") and err.field == "test_orphan"


def test_syntax_error_in_module(ex):
    (ex / "test_ex1.py").write_text("def test_pod_exists(view:\n")
    err = _error(ex)
    assert "syntax error" in err.problem and err.field.startswith("line ")


def test_invalid_yaml_names_the_line(ex):
    (ex / "exercise.yaml").write_text("id: ex1\ntitle: [unclosed\n")
    err = _error(ex)
    assert err.field.startswith("line ")


def test_cli_reports_a_broken_spec_with_exit_2(ex, tmp_path):
    _edit(ex, lambda d: d["checks"][1].update(points="two"))
    proc = run_grade("ex1", "--exercises-dir", str(ex.parent), "--kubeconfig", str(tmp_path / "none"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "exercise.yaml: checks[1].points: expected int or float" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- course files and precedence -----------------------------------------------------------------
def _course(tmp_path, data) -> Path:
    p = tmp_path / "course.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_course_parameters_override_defaults(tmp_path):
    course = _course(tmp_path, {"params": {"*": {"container_port": 9090}, "ex1": {"pod_name": "web"}}})
    settings = resolve({"params": str(course)}, environ={})
    spec = settings.exercise("ex1")
    assert spec.params["pod_name"] == "web" and spec.params["container_port"] == 9090
    assert spec.render(spec.checks[0].title).en == "Pod web exists"
    # "*" applies only where the exercise has the parameter: ex2 has no container_port
    assert "container_port" not in settings.exercise("ex2").params


@pytest.mark.parametrize("data,field", [
    ({"params": {"ex1": {"pod_name": 3}}}, "params.ex1.pod_name"),
    ({"params": {"ex1": {"no_such": "x"}}}, "params.ex1.no_such"),
    ({"params": {"ex1": {"container_port": True}}}, "params.ex1.container_port"),
    ({"lang": "fr"}, "lang"),
    ({"wait": "soon"}, "wait"),
    ({"due": "tomorrow"}, "due"),
    ({"colour": 1}, "colour"),
])
def test_bad_course_file(tmp_path, data, field):
    course = _course(tmp_path, data)
    with pytest.raises(SpecError) as info:
        resolve({"params": str(course)}, environ={}).exercise("ex1")
    assert info.value.field == field and info.value.path == str(course)


def test_precedence_cli_over_env_over_course(tmp_path):
    course = _course(tmp_path, {"lang": "ja", "wait": 5, "route_domain": "apps.course"})
    s = resolve({"params": str(course)}, environ={})
    assert (s.lang, s.wait, s.route_domain) == ("ja", 5, "apps.course")
    s = resolve({"params": str(course)}, environ={"GRADER_LANG": "en", "GRADER_WAIT": "7"})
    assert (s.lang, s.wait) == ("en", 7.0)
    s = resolve({"params": str(course), "lang": "ja", "wait": 0.0}, environ={"GRADER_LANG": "en", "GRADER_WAIT": "7"})
    assert (s.lang, s.wait) == ("ja", 0.0)
    # the course file may come from the environment
    s = resolve({}, environ={"GRADER_COURSE": str(course)})
    assert s.route_domain == "apps.course"


def test_language_from_locale():
    assert resolve({}, environ={"LANG": "ja_JP.UTF-8"}).lang == "ja"
    assert resolve({}, environ={"LANG": "en_US.UTF-8"}).lang == "en"
    assert resolve({}, environ={"LC_ALL": "ja_JP.UTF-8", "LANG": "en_US.UTF-8"}).lang == "ja"


def test_bad_env_value_is_a_usage_error():
    with pytest.raises(UsageError, match="GRADER_WAIT"):
        resolve({}, environ={"GRADER_WAIT": "soon"})


def test_course_file_missing():
    with pytest.raises(SpecError, match="not found"):
        load_course_file("/nonexistent/course.yaml")
