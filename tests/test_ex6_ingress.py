"""ex6 on a cluster without route.openshift.io: the same checks judge an Ingress, found by API discovery."""
from __future__ import annotations

import pytest
import yaml

from grader.apply import apply_files, solution_dir
from grader.embedded import embedded
from grader.grading import grade_on
from grader.results import Outcome
from grader.settings import Settings

SETTINGS = Settings(lang="en", wait=0.0)
SOLUTION = solution_dir("ex6")
INGRESS = SOLUTION / "ingress" / "ingress.yaml"
BASE = [SOLUTION / n for n in ("configmap.yaml", "pod.yaml", "service.yaml")]   # no route.yaml: not served


def _ingress(tmp_path, name: str, change) -> object:
    doc = yaml.safe_load(INGRESS.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _no_host(doc):
    del doc["spec"]["rules"][0]["host"]


def _wrong_service(doc):
    doc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "helo"


def _target_port(doc):
    doc["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"] = 8080


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """case → {check id: CheckResult}, for the solution and broken Ingress variants, plus the
    solution graded with an expected text that is on the page and one that is not."""
    tmp = tmp_path_factory.mktemp("ex6-ingress")
    cases = {
        "solution": [*BASE, INGRESS],
        "no-ingress": BASE,
        "no-host": [*BASE, _ingress(tmp, "no-host", _no_host)],
        "wrong-service": [*BASE, _ingress(tmp, "wrong-service", _wrong_service)],
        "target-port": [*BASE, _ingress(tmp, "target-port", _target_port)],
    }
    spec = SETTINGS.exercise("ex6")
    out = {}
    with embedded(route_api=False) as (cluster, api):
        assert not api.served("Route")
        for name, files in cases.items():
            api.create_namespace(f"ing-{name}")
            assert apply_files(api, list(files), f"ing-{name}") == [], name
        cluster.settle()
        namespaces = [f"ing-{n}" for n in cases]
        result = grade_on(api, SETTINGS, [spec], namespaces, student=False, wait=0.0)
        for name, res in zip(cases, result.results):
            out[name] = {c.check_id: c for c in res.checks}
        for label, text in (("text-found", "Hello from OpenShift"), ("text-missing", "Goodbye")):
            res = grade_on(api, SETTINGS, [spec.with_params({"expected_text": text}, "test")], ["ing-solution"],
                           student=False, wait=0.0).results[0]
            out[label] = {c.check_id: c for c in res.checks}
    return out


def _failed(checks) -> set[str]:
    assert not [c for c in checks.values() if c.outcome is Outcome.ERROR]
    return {cid for cid, c in checks.items() if c.outcome is Outcome.FAILED}


def test_ingress_solution_scores_full_marks(graded):
    assert _failed(graded["solution"]) == set()


@pytest.mark.parametrize("case,fails", [
    ("no-ingress", {"route-exists", "route-service", "route-admitted", "route-host", "page-answers"}),
    ("no-host", {"route-host", "page-answers"}),
    ("wrong-service", {"route-service", "page-answers"}),
    ("target-port", {"route-service", "page-answers"}),
])
def test_ingress_variants_fail_exactly(graded, case, fails):
    assert _failed(graded[case]) == fails


def test_messages_name_the_ingress(graded):
    assert "Ingress" in graded["no-ingress"]["route-exists"].message.en
    assert "ingresses" in graded["no-ingress"]["route-exists"].command
    assert "no host name" in graded["no-host"]["route-host"].message.en
    assert "not a port of service" in graded["target-port"]["route-service"].message.en


def test_expected_text_is_checked_when_given(graded):
    assert _failed(graded["text-found"]) == set()
    assert _failed(graded["text-missing"]) == {"page-answers"}
    assert "Goodbye" in graded["text-missing"]["page-answers"].message.en
