"""Instructor batch grading (`grade EX -n ... --out DIR`): reports, hidden checks, request count,
a namespace the grader may not read, and --resume. All through the CLI on the embedded cluster."""
from __future__ import annotations

import csv
import io
import json
import os
import secrets
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.cli import main
from grader.apply import apply_files, manifest_files, solution_dir
from tests.conftest import xsd_or_skip

VARIANT = solution_dir("ex2") / "variants" / "wrong-port"


def _ns(cluster, api, what: str) -> str:
    """A namespace holding the ex2 solution, its wrong-port variant, or nothing."""
    name = f"b-{what}-{secrets.token_hex(3)}"
    cluster.create_namespace(name)
    files = {p.name: p for p in manifest_files(solution_dir("ex2"))}
    if what == "broken":
        files.update({p.name: p for p in manifest_files(VARIANT) if p.name != "expect.yaml"})
    if what != "empty":
        assert apply_files(api, list(files.values()), name) == []
    return name


@pytest.fixture(scope="module")
def three(cluster, api) -> list[str]:
    names = [_ns(cluster, api, w) for w in ("good", "broken", "empty")]
    cluster.settle()
    return names


def _grade(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, _ = capsys.readouterr()
    return code, out


def _batch(capsys, kubeconfig, namespaces, out: Path, *extra: str) -> tuple[int, str]:
    args = ["ex2", "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet", "--lang", "en", "--out", str(out)]
    for ns in namespaces:
        args += ["-n", ns]
    return _grade(capsys, *args, *extra)


def _gradebook(out: Path) -> dict[str, dict[str, str]]:
    rows = csv.DictReader(io.StringIO((out / "gradebook.csv").read_text(encoding="utf-8")))
    return {r["namespace"]: r for r in rows}


def test_out_writes_junit_gradescope_and_gradebook(capsys, kubeconfig, three, tmp_path):
    good, broken, empty = three
    out = tmp_path / "out"
    code, printed = _batch(capsys, kubeconfig, three, out)
    assert code == 1
    assert "graded 3 namespace(s)" in printed and "skipped by --resume: 0" in printed
    schema = xsd_or_skip()
    from lxml import etree
    for ns in three:
        doc = etree.parse(str(out / ns / "ex2.xml"))
        assert schema.validate(doc), schema.error_log
        results = json.loads((out / ns / "results.json").read_text())
        assert {t["extra_data"]["namespace"] for t in results["tests"]} == {ns}
    assert json.loads((out / good / "results.json").read_text())["score"] == 10
    assert json.loads((out / broken / "results.json").read_text())["score"] == 4
    assert json.loads((out / empty / "results.json").read_text())["score"] == 0
    book = _gradebook(out)
    assert {ns: (row["ex2"], row["total"], row["errors"]) for ns, row in book.items()} == {
        good: ("10", "10", ""), broken: ("4", "4", ""), empty: ("0", "0", "")}
    assert not list(out.rglob("*.tmp")), "temp files left behind"


def test_all_passing_batch_exits_0(capsys, kubeconfig, three, tmp_path):
    code, _ = _batch(capsys, kubeconfig, three[:1], tmp_path / "out")
    assert code == 0


def test_bad_namespace_name_cannot_escape_out_dir(capsys, kubeconfig, tmp_path):
    code, _ = _batch(capsys, kubeconfig, ["../escape"], tmp_path / "out")
    assert code == 2
    assert not (tmp_path / "escape").exists()


# --- hidden checks -------------------------------------------------------------------------------
HIDDEN_SPEC = """\
id: hx
title: {ja: 隠しチェック, en: Hidden check}
instructions: {ja: Pod を作成, en: Create the pod}
params: {pod_name: hello}
checks:
  - id: pod-exists
    points: 1
    title: {ja: "Pod がある", en: "the pod exists"}
    hint: {ja: 作成してください, en: create it}
  - id: pod-secret-rule
    points: 3
    visibility: hidden
    title: {ja: "隠し規則", en: "the hidden rule"}
    hint: {ja: 秘密, en: secret}
"""
HIDDEN_MODULE = """\
from grader.checks import need


def test_pod_exists(view, params):
    need(view, "Pod", params["pod_name"])


def test_pod_secret_rule(view, params):
    need(view, "Pod", params["pod_name"])
"""


@pytest.fixture
def hidden_dir(tmp_path) -> Path:
    root = tmp_path / "exercises"
    (root / "hx").mkdir(parents=True)
    (root / "hx" / "exercise.yaml").write_text(HIDDEN_SPEC, encoding="utf-8")
    (root / "hx" / "test_hx.py").write_text(HIDDEN_MODULE, encoding="utf-8")
    return root


def test_hidden_check_left_out_of_a_students_run_and_counted_in_batch(capsys, kubeconfig, three, hidden_dir,
                                                                      tmp_path):
    good = three[0]
    common = ["hx", "--exercises-dir", str(hidden_dir), "--kubeconfig", str(kubeconfig), "--wait", "0",
              "--lang", "en"]
    code, printed = _grade(capsys, *common, "-n", good, "--json")
    student = json.loads(printed)["results"][0]
    assert code == 0
    assert [c["id"] for c in student["checks"]] == ["pod-exists"]
    assert student["max_score"] == 1

    out = tmp_path / "out"
    code, _ = _grade(capsys, *common, "-n", good, "-n", three[2], "--out", str(out), "--quiet")
    assert code == 1
    tests = json.loads((out / good / "results.json").read_text())["tests"]
    assert {t["extra_data"]["check_id"]: t["visibility"] for t in tests} == {
        "pod-exists": "visible", "pod-secret-rule": "hidden"}
    assert _gradebook(out)[good]["hx"] == "4"
    xml = (out / good / "hx.xml").read_text()
    assert "pod-secret-rule" in xml

    code, printed = _grade(capsys, *common, "-n", good, "-n", three[2])
    assert "the hidden rule" in printed   # a multi-namespace console run is an instructor's


# --- cost: requests do not grow with the class ---------------------------------------------------
def _list_requests(cluster) -> list:
    return [r for r in cluster.server.requests if "/proxy" not in r.path]


def test_api_requests_do_not_grow_with_the_number_of_students(capsys, cluster, api, kubeconfig, tmp_path):
    small = [_ns(cluster, api, "good") for _ in range(2)]
    large = small + [_ns(cluster, api, w) for w in ("good", "broken", "empty") * 4]
    cluster.settle()
    counts = []
    for i, namespaces in enumerate((small, large)):
        cluster.server.reset_requests()
        _batch(capsys, kubeconfig, namespaces, tmp_path / f"out{i}")
        reqs = _list_requests(cluster)
        counts.append(len({(r.path, r.query) for r in reqs}))  # a retried page is the same request
        assert all(r.verb == "list" and not r.namespace for r in reqs if r.resource), \
            [(r.verb, r.resource, r.namespace) for r in reqs]
    assert counts[0] == counts[1] and counts[0] <= 6, (counts, [(r.path, r.query, r.status) for r in reqs])


def test_cluster_wide_lists_are_paginated(capsys, cluster, api, kubeconfig, tmp_path):
    """More objects than a page: the grader follows `continue` and still sees every namespace."""
    from grader.kube import Api
    from grader.snapshot import Snapshot

    names = [_ns(cluster, api, "good") for _ in range(3)]
    cluster.settle()
    small_pages = Api(kubeconfig=str(kubeconfig))
    original = small_pages.list
    small_pages.list = lambda kind, namespace=None, **kw: original(kind, namespace, **{**kw, "limit": 2})
    cluster.server.reset_requests()
    snap = Snapshot(small_pages, names)
    assert all(snap.view(n).get("Pod", "hello") is not None for n in names)
    pods = [r for r in cluster.server.requests if r.resource == "pods"]
    assert len(pods) >= 2 and any("continue=" in r.query for r in pods)
    small_pages.close()


# --- a namespace the grader may not read ---------------------------------------------------------
def test_forbidden_namespace_is_an_error_for_that_student_alone(capsys, cluster, api, tmp_path):
    ok1, forbidden, ok2 = (_ns(cluster, api, "good") for _ in range(3))
    cluster.settle()

    def authorize(a) -> bool:
        if a.verb == "list" and not a.namespace and a.resource != "namespaces":
            return False          # no cluster-wide lists: the grader must fall back per namespace
        return a.namespace != forbidden

    token = secrets.token_hex(8)
    cluster.server.add_user(token, "ta", authorize)
    kc = cluster.write_kubeconfig(tmp_path / "kc", token=token)
    out = tmp_path / "out"
    cluster.server.reset_requests()
    code, printed = _batch(capsys, kc, [ok1, forbidden, ok2], out)
    assert code == 3            # nothing failed; one student could not be graded
    assert "namespaces with errors: 1" in printed and forbidden in printed

    for ns in (ok1, ok2):
        doc = json.loads((out / ns / "results.json").read_text())
        assert doc["score"] == 10 and {t["extra_data"]["outcome"] for t in doc["tests"]} == {"passed"}
    bad = json.loads((out / forbidden / "results.json").read_text())
    assert bad["tests"] == [] and len(bad["extra_data"]["unobserved"]) == 5     # left out, said at the top
    assert "must be re-run" in bad["output"]
    xml = ET.parse(out / forbidden / "ex2.xml").getroot()
    assert len(xml.findall(".//error")) == 5 and not xml.findall(".//failure")
    book = _gradebook(out)
    assert (book[forbidden]["ex2"], book[forbidden]["total"], book[forbidden]["errors"]) == ("", "", "ex2")
    assert book[ok1]["ex2"] == "10"

    lists = [r for r in cluster.server.requests if r.verb == "list"]
    per_kind: dict[str, list] = {}
    for r in lists:
        per_kind.setdefault(r.resource, []).append(r)
    # The -n names' existence check lists namespaces once (cluster-scoped, so allowed here).
    assert [(r.namespace, r.status) for r in per_kind.pop("namespaces", [])] == [("", 200)]
    for kind, reqs in per_kind.items():   # one refused cluster-wide try, then one per namespace
        assert sorted(r.namespace for r in reqs) == sorted(["", ok1, forbidden, ok2]), kind
        assert [r.status for r in reqs if r.namespace in ("", forbidden)] == [403, 403], kind


# --- resume ------------------------------------------------------------------------------------------
def test_resume_skips_complete_namespaces_and_regrades_the_rest(capsys, kubeconfig, three, tmp_path):
    good, broken, empty = three
    out = tmp_path / "out"
    _batch(capsys, kubeconfig, three, out)
    before = (out / "gradebook.csv").read_text()
    (out / broken / "results.json").unlink()                      # never finished
    (out / empty / "ex2.xml").write_text("<testsuites><testsuite")  # torn by hand
    stamp = (out / good / "results.json").stat().st_mtime_ns

    code, printed = _batch(capsys, kubeconfig, three, out, "--resume")
    assert code == 1
    assert "graded 2 namespace(s)" in printed and "skipped by --resume: 1" in printed
    assert (out / good / "results.json").stat().st_mtime_ns == stamp
    ET.parse(out / empty / "ex2.xml")
    assert (out / "gradebook.csv").read_text() == before

    code, printed = _batch(capsys, kubeconfig, three[:1], out, "--resume")
    assert "graded 0 namespace(s)" in printed and code == 0
    assert set(_gradebook(out)) == set(three), "namespaces of earlier runs stay in the gradebook"


def test_a_batch_sweeps_what_a_killed_batch_left_in_out(capsys, kubeconfig, three, tmp_path):
    from tests.test_report_writes import killed_writer_leftovers
    out = tmp_path / "out"
    out.mkdir()
    left = killed_writer_leftovers(out)
    assert len(left) == 2
    old = time.time() - 3600
    for name in left:
        os.utime(out / name, (old, old))
    _batch(capsys, kubeconfig, three[:1], out)
    assert sorted(os.listdir(out)) == sorted([three[0], "gradebook.csv", "index.html"])


def test_manifests_out_writes_the_batch_layout(capsys, tmp_path):
    import shutil
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    for f in manifest_files(solution_dir("ex2")):
        shutil.copy(f, submitted)
    out = tmp_path / "out"
    code, _ = _grade(capsys, "ex2", "--manifests", str(submitted), "--out", str(out), "--wait", "0", "--lang", "en")
    assert code == 0
    ET.parse(out / "submission" / "ex2.xml")
    assert json.loads((out / "submission" / "results.json").read_text())["score"] == 10
    assert _gradebook(out)["submission"]["ex2"] == "10"


# --- Ctrl-C inside a check -------------------------------------------------------------------------
INTERRUPT_MODULE = """\
import os
from grader.checks import need


def test_pod_exists(view, params):
    if view.namespace == os.environ["STOP_AT"]:
        raise KeyboardInterrupt   # what Ctrl-C looks like when it lands inside a check
    need(view, "Pod", params["pod_name"])


def test_pod_secret_rule(view, params):
    need(view, "Pod", params["pod_name"])
"""


def test_ctrl_c_inside_a_check_drops_that_chunk_and_exits_130(capsys, kubeconfig, three, hidden_dir, tmp_path,
                                                                monkeypatch):
    """pytest turns Ctrl-C into an exit status; the runner must not hand back partial results."""
    (hidden_dir / "hx" / "test_hx.py").write_text(INTERRUPT_MODULE, encoding="utf-8")
    monkeypatch.setenv("GRADER_BATCH_CHUNK", "1")
    monkeypatch.setenv("STOP_AT", three[1])
    out = tmp_path / "out"
    code, _ = _grade(capsys, "hx", "--exercises-dir", str(hidden_dir), "--kubeconfig", str(kubeconfig),
                     "--wait", "0", "--quiet", "--out", str(out), *(a for ns in three for a in ("-n", ns)))
    assert code == 130
    assert (out / three[0] / "results.json").is_file()
    assert not (out / three[1]).exists() and not (out / three[2]).exists()
    assert list(_gradebook(out)) == [three[0]]


def test_selection_by_list_pattern_and_label(capsys, cluster, api, kubeconfig, tmp_path):
    """-n, --namespace-pattern and --namespace-selector pick exactly the namespaces they name."""
    tag = secrets.token_hex(2)
    names = [f"sel{tag}-a", f"sel{tag}-b", f"sel{tag}-c", f"other{tag}"]
    for n in names:
        cluster.create_namespace(n, {"course": f"c{tag}"} if n.endswith(("-a", "-c")) else {})

    def graded(*how: str) -> set[str]:
        out = tmp_path / secrets.token_hex(2)
        _grade(capsys, "ex1", "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet", "--out", str(out), *how)
        return {d.name for d in out.iterdir() if d.is_dir()}

    assert graded("-n", names[1], "-n", names[3]) == {names[1], names[3]}
    assert graded("--namespace-pattern", f"sel{tag}-*") == set(names[:3])
    assert graded("--namespace-selector", f"course=c{tag}") == {names[0], names[2]}
    assert graded("--namespace-pattern", f"sel{tag}-*", "--namespace-selector", f"course=c{tag}") == {names[0], names[2]}
    code, _ = _grade(capsys, "ex1", "--kubeconfig", str(kubeconfig), "--namespace-pattern", f"nothing{tag}-*")
    assert code == 2


def test_reports_agree_on_every_score(capsys, cluster, api, kubeconfig, three, tmp_path):
    """JUnit properties, Gradescope results.json and the gradebook give the same score for every
    (namespace, exercise), over two exercises and a mix of correct, broken and empty work."""
    out = tmp_path / "out"
    args = ["ex1", "ex2", "--kubeconfig", str(kubeconfig), "--wait", "0", "--quiet", "--out", str(out)]
    for ns in three:
        args += ["-n", ns]
    _grade(capsys, *args)
    book = _gradebook(out)
    seen = set()
    for ns in three:
        results = json.loads((out / ns / "results.json").read_text())
        by_ex: dict[str, float] = {}
        for test in results["tests"]:
            by_ex[test["extra_data"]["exercise"]] = by_ex.get(test["extra_data"]["exercise"], 0) + test["score"]
        assert results["score"] == sum(by_ex.values())
        total = 0.0
        for ex in ("ex1", "ex2"):
            props = {p.get("name"): p.get("value")
                     for p in ET.parse(out / ns / f"{ex}.xml").getroot().find("testsuite/properties")}
            junit_score = float(props["score"])
            per_check = sum(float(v) for k, v in props.items() if k.startswith("check.") and k.endswith(".earned"))
            assert junit_score == per_check == by_ex[ex] == float(book[ns][ex]), (ns, ex)
            total += junit_score
            seen.add(junit_score)
        assert float(book[ns]["total"]) == total
    assert len(seen) > 1, "the data should give different scores"
