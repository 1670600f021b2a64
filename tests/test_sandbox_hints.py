"""Every ``Try:`` command the grader prints, for every exercise's empty namespace and every broken
variant, run in the sandbox as a student would (``oc`` read as ``kubectl``): none may get an
answer a real cluster would not give (issue 11)."""
from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from grader.apply import apply_files, solution_dir
from grader.grading import grade_on
from grader.results import Outcome
from grader.selftest import cases
from grader.settings import Settings
from tests.conftest import needs_kubectl

SETTINGS = Settings(lang="en", wait=0.0)
EXERCISES = [ex for ex in SETTINGS.available() if solution_dir(ex).is_dir()]
# What kubectl prints when the server lacks what a real one has (a resource, a subresource, a kind),
# or breaks: none of it may follow a hint.
WRONG = ("the server doesn't have a resource type", "the server could not find the requested resource",
         "is not registered", "no kind", "panic", "unknown command", "unknown flag", "unknown shorthand flag",
         "not found in OpenAPI schema", "Internal error occurred")
# oc verbs kubectl does not have: a hint must not send a kubectl user to them
OC_ONLY = {"project", "projects", "new-app", "new-project", "status", "start-build", "rsh", "adm", "policy",
           "process", "rollback", "whoami", "login", "logout", "import-image", "tag", "idle"}


def _commands(cluster, api) -> list[tuple[str, str, str]]:
    """(exercise/case, check id, command) of every failed check, each case in its own namespace."""
    out = []
    for ex in EXERCISES:
        spec = SETTINGS.exercise(ex)
        picked = [c for c in cases(spec) if c.name != "solution"]
        namespaces = []
        for case in picked:
            ns = f"h-{ex}-{case.name}"[:60]
            cluster.create_namespace(ns)
            assert apply_files(api, list(case.files), ns) == [], f"{ex}/{case.name} does not apply"
            namespaces.append(ns)
        cluster.settle()
        result = grade_on(api, SETTINGS, [spec], namespaces, student=False, wait=0.0)
        for case, res in zip(picked, result.results):
            for c in res.checks:
                if c.outcome is Outcome.FAILED and c.command:
                    out.append((f"{ex}/{case.name}", c.check_id, c.command))
    return out


@pytest.fixture(scope="module")
def hints(cluster, api):
    return _commands(cluster, api)


def test_every_failed_check_has_a_command(hints):
    assert len(hints) > 20 and {w for w, _, _ in hints} >= {f"{ex}/empty" for ex in EXERCISES}


@needs_kubectl()
def test_every_try_command_works_in_the_sandbox(hints, kubeconfig):
    bad = []
    for where, check, command in hints:
        for part in command.split(";"):
            argv = shlex.split(part.strip())
            if not argv:
                continue
            if argv[0] == "curl":
                if shutil.which("curl") is None:
                    continue
                r = subprocess.run([*argv[:1], "-sS", "--max-time", "20", *argv[1:]], capture_output=True, text=True, timeout=60)
                if r.returncode != 0:
                    bad.append((where, check, part, r.stderr.strip()[:200]))
                continue
            if argv[0] not in ("oc", "kubectl"):
                bad.append((where, check, part, "neither oc, kubectl nor curl"))
                continue
            verb = next((a for a in argv[1:] if not a.startswith("-")), "")
            if verb in OC_ONLY:
                bad.append((where, check, part, f"oc-only verb {verb!r}"))
                continue
            r = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *argv[1:]], capture_output=True,
                               text=True, timeout=60)
            err = r.stderr
            if "--raw" in argv and "error trying to reach service" in err:
                continue     # the service proxy's 502, as a real API server answers it
            if any(w in err for w in WRONG) or ("InternalError" in err):
                bad.append((where, check, part, err.strip()[:200]))
    assert bad == []
