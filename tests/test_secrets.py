"""Secrets stay secret: a sentinel Secret value never reaches stdout, stderr, JUnit, CSV or JSON, passing or failing, with or without --debug.

Every ex4 case (the solution and each broken variant) is rewritten so that the password is a
sentinel, applied into the shared embedded cluster, and graded by ``python -m grader`` in child
processes: a batch with ``--out``, and student runs with ``--json``, ``--junit`` and ``--debug``.
The sentinel is searched for as text, in base64 and in every base64 alignment of a longer blob.
"""
from __future__ import annotations

import base64
import secrets

import pytest

from grader.apply import apply_files
from grader.selftest import cases
from grader.settings import Settings
from tests.conftest import run_grade

SETTINGS = Settings(lang="en", wait=0.0)
ORIGINAL = "r3dh4t-s3cret"


def _needles(value: str) -> list[str]:
    raw = value.encode()
    found = {value}
    for pad in range(3):    # the sentinel inside a longer base64 blob, at each alignment
        enc = base64.b64encode(b"x" * pad + raw + b"yyy").decode()
        found.add(enc[(pad + 2) // 3 * 4: -8])
    return sorted(found, key=len)


@pytest.fixture(scope="module")
def graded(cluster, tmp_path_factory):
    if "ex4" not in SETTINGS.available():
        pytest.skip("ex4 (ConfigMap and Secret) is not there yet")
    tmp = tmp_path_factory.mktemp("secrets")
    sentinel = "S3NT1NEL-" + secrets.token_hex(8)
    kc = cluster.write_kubeconfig(tmp / "kc")
    from grader.kube import Api
    api = Api(kubeconfig=str(kc))
    namespaces = []
    for case in cases(SETTINGS.exercise("ex4")):
        ns = f"secret-{case.name}"[:50]
        cluster.create_namespace(ns)
        files = []
        for f in case.files:
            text = f.read_text().replace(ORIGINAL, sentinel).replace(
                base64.b64encode(ORIGINAL.encode()).decode(), base64.b64encode(sentinel.encode()).decode())
            (tmp / ns).mkdir(exist_ok=True)
            (tmp / ns / f.name).write_text(text)
            files.append(tmp / ns / f.name)
        assert apply_files(api, files, ns) == []
        namespaces.append(ns)
    # one more: the sentinel under a key the exercise does not ask for, and in stringData form
    cluster.create_namespace("secret-extra-keys")
    api.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hello-secret"},
                "stringData": {"PASSWD": sentinel, "note": f"the password is {sentinel}"}}, "secret-extra-keys")
    namespaces.append("secret-extra-keys")
    api.close()
    cluster.settle()
    runs = {}
    ns_args = [a for ns in namespaces for a in ("-n", ns)]
    runs["batch"] = run_grade("ex4", *ns_args, "--out", str(tmp / "out"), "--debug", "--kubeconfig", str(kc),
                              "--wait", "0", timeout=120)
    for ns in ("secret-solution", "secret-password-literal", "secret-extra-keys", "secret-secret-key-missing"):
        for extra in ((), ("--debug",), ("--json", "--debug")):
            junit = tmp / f"{ns}-{len(extra)}.xml"
            runs[(ns, extra)] = run_grade("ex4", "-n", ns, "--kubeconfig", str(kc), "--wait", "0",
                                          "--junit", str(junit), *extra, timeout=120)
    files = {p: p.read_bytes() for p in tmp.rglob("*") if p.is_file() and p.suffix not in (".yaml", ".yml")
             and p.name != "kc"}
    inputs = [p.read_text() for p in tmp.rglob("secret.yaml")]
    assert inputs and all(any(n in text for n in _needles(sentinel)) for text in inputs)  # the search works
    return sentinel, runs, files


def test_batch_and_student_runs_really_graded(graded):
    _, runs, files = graded
    assert runs["batch"].returncode == 1, runs["batch"].stderr          # some variants fail
    assert runs[("secret-solution", ())].returncode == 0
    assert "PASS" in runs[("secret-solution", ())].stdout
    assert runs[("secret-password-literal", ())].returncode == 1
    assert "FAIL" in runs[("secret-password-literal", ())].stdout
    assert any(p.name == "gradebook.csv" for p in files) and any(p.suffix == ".json" for p in files)
    assert sum(1 for p in files if p.suffix == ".xml") >= 12


def test_the_sentinel_appears_nowhere(graded):
    sentinel, runs, files = graded
    needles = _needles(sentinel)
    leaks = []
    for key, proc in runs.items():
        for stream, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            leaks += [(key, stream, n) for n in needles if n in text]
    for path, data in files.items():
        text = data.decode("utf-8", "replace")
        leaks += [(str(path), "file", n) for n in needles if n in text]
    assert leaks == []
