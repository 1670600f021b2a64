"""Transient API faults (429/5xx, resets, Retry-After) never change a grade: retries, backoff, and ERROR-not-FAILED.

Everything runs against a private embedded cluster (its fault injection is process-wide for that
server, so the shared session cluster stays healthy), through the real client over HTTP/TLS.
Backoff runs on a ``FakeClock``: requests take real time, sleeps none, and what the client chose
to sleep is asserted exactly instead of being timed on a machine that may be busy.
"""
from __future__ import annotations

import time
import pytest

from grader.apply import apply_files
from grader.grading import grade_on
from grader.errors import ApiError, CannotSee
from grader.kube import Api, RetryPolicy
from grader.results import Outcome
from grader.selftest import cases
from grader.settings import Settings
from tests.conftest import FakeClock

SETTINGS = Settings(lang="en", wait=0.0)
EXERCISES = ("ex1", "ex2")
BATCH = 200


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """(cluster, api, namespaces): 200 namespaces, each holding one case of ex1 or ex2."""
    from grader.cluster import EmbeddedCluster

    with EmbeddedCluster() as c:
        kc = c.write_kubeconfig(tmp_path_factory.mktemp("faults") / "config")
        api = Api(kubeconfig=str(kc))
        all_cases = [case for ex in EXERCISES for case in cases(SETTINGS.exercise(ex))]
        namespaces = []
        for i in range(BATCH):
            case = all_cases[i % len(all_cases)]
            ns = f"f{i:03d}-{case.exercise}-{case.name}"[:60]
            c.create_namespace(ns)
            assert apply_files(api, list(case.files), ns) == []
            namespaces.append(ns)
        c.settle()
        yield c, api, namespaces
        api.close()


@pytest.fixture(autouse=True)
def _healthy_after(request):
    yield
    if "faulty" in request.fixturenames:
        request.getfixturevalue("faulty")[0].server.faults.clear()


def settled_log(cluster, at_least: int = 0, where=lambda record: True) -> list:
    """The server's request log once the last answer is recorded (it is written after the answer
    is sent, so a test reading it right away can miss the last line): at least ``at_least``
    records that ``where`` accepts, waited for up to 10 s (a loaded machine)."""
    deadline = time.monotonic() + 10
    while sum(1 for r in cluster.server.requests if where(r)) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    return cluster.server.requests


def _outcomes(run) -> dict[tuple[str, str, str], tuple[str, float]]:
    return {(r.exercise_id, r.namespace, c.check_id): (c.outcome.value, c.earned)
            for r in run.results for c in r.checks}


def test_batch_under_30_percent_faults_scores_exactly_as_without(faulty):
    cluster, api, namespaces = faulty
    specs = [SETTINGS.exercise(ex) for ex in EXERCISES]
    clean = _outcomes(grade_on(api, SETTINGS, specs, namespaces, student=False, wait=0))
    # the fault-free run is itself a meaningful baseline: passes, failures (real 503/502 from the
    # service proxy among them) and no errors
    values = [o for o, _ in clean.values()]
    assert len(clean) == BATCH * sum(len(s.checks) for s in specs)
    assert values.count("passed") > 0 and values.count("failed") > 0 and values.count("error") == 0

    faults = cluster.server.faults
    faults.seed = 5
    faults.error_rate = 0.3
    faults.reset_rate = 0.05
    cluster.server.reset_requests()
    clock = FakeClock()
    patient = Api(kubeconfig=api.source, retry=clock.policy())   # the default policy, on a fake clock
    try:
        faulted = _outcomes(grade_on(patient, SETTINGS, specs, namespaces, student=False, wait=0))
    finally:
        patient.close()
    log = settled_log(cluster)
    faults.clear()

    injected = [r for r in log if r.status >= 500 or r.status == 429]
    resets = [r for r in log if r.status == 0]
    proxy_faults = [r for r in injected if "/proxy" in r.path]
    assert len(injected) > 20 and resets and proxy_faults, (len(injected), len(resets), len(proxy_faults))
    api_faults = [r for r in injected + resets if "/proxy" not in r.path]
    assert api_faults and len(clock.slept) == len(api_faults), "the client backs off once per fault it retries"
    diff = {k: (clean[k], faulted.get(k)) for k in clean if clean[k] != faulted.get(k)}
    assert diff == {}


def test_retry_after_is_honoured(faulty):
    cluster, api, namespaces = faulty
    faults = cluster.server.faults
    faults.retry_after = 1
    faults.fail_next(2, 429)
    cluster.server.reset_requests()
    clock = FakeClock()
    patient = Api(kubeconfig=api.source, retry=clock.policy())
    try:
        pods = patient.list("Pod", namespaces[0])
    finally:
        patient.close()
    statuses = [r.status for r in settled_log(cluster, 3)]
    assert statuses == [429, 429, 200]
    assert len(clock.slept) == 2 and all(1.0 <= s <= 1.0 + RetryPolicy().base for s in clock.slept), clock.slept
    assert isinstance(pods, list)


def test_backoff_is_capped_exponential_with_jitter():
    policy = RetryPolicy(base=0.1, cap=2.0)
    for attempt in range(1, 12):
        delays = [policy.delay(attempt, None) for _ in range(200)]
        assert max(delays) <= min(2.0, 0.1 * 2 ** attempt)
        assert len(set(delays)) > 150          # jitter: no two clients retry in lockstep
    assert 3.0 <= policy.delay(1, 3.0) <= 3.1  # Retry-After wins over the backoff


def test_persistent_5xx_is_an_api_error_within_the_deadline(faulty):
    cluster, api, namespaces = faulty
    faults = cluster.server.faults
    faults.match = lambda method, path: path.endswith("/pods")
    faults.error_rate = 1.0
    faults.error_statuses = (503,)
    clock = FakeClock()
    fast = Api(kubeconfig=api.source, retry=clock.policy(deadline=2.0))
    cluster.server.reset_requests()
    started = clock()
    try:
        with pytest.raises(ApiError) as info:
            fast.list("Pod", namespaces[0])
    finally:
        fast.close()
    made = fast.requests_made
    spent = clock() - started
    assert not isinstance(info.value, CannotSee)
    assert info.value.status == 503 and "503" in info.value.message.en
    # given up by the deadline: the backoff slept stays inside it, and the whole call overruns it
    # by at most the one last request (milliseconds; 3 s allows for a busy machine, where each of
    # the real requests before it also counts on this clock)
    assert 0 < sum(clock.slept) < 2.0 and spent < 2.0 + 3.0, (clock.slept, spent)
    pods = lambda r: r.path.endswith("/pods")  # noqa: E731
    tries = [r for r in settled_log(cluster, made, pods) if pods(r)]
    assert len(tries) == made >= 3 and {r.status for r in tries} == {503}
    # a try after every sleep (the last one, on a loaded machine, may find the deadline reached)
    assert made - len(clock.slept) in (0, 1), (made, clock.slept)
    assert fast._down is None          # the server answered: it is not "unreachable"


def test_check_that_cannot_be_evaluated_is_an_error_not_a_lost_point(faulty):
    """The Pod list keeps failing: every ex1 check in every namespace of a batch is an ERROR
    that says why, and none is FAILED (the snapshot must not cache the failed list as empty)."""
    cluster, api, namespaces = faulty
    faults = cluster.server.faults
    faults.match = lambda method, path: path.endswith("/pods")
    faults.error_rate = 1.0
    faults.error_statuses = (500,)
    fast = Api(kubeconfig=api.source, retry=FakeClock().policy(deadline=1.0))
    try:
        run = grade_on(fast, SETTINGS, [SETTINGS.exercise("ex1")], namespaces[:3], student=False, wait=0)
    finally:
        fast.close()
    outcomes = {(r.namespace, c.check_id): (c.outcome, c.message.en if c.message else "")
                for r in run.results for c in r.checks}
    assert len(outcomes) == 3 * len(SETTINGS.exercise("ex1").checks)
    assert {o for o, _ in outcomes.values()} == {Outcome.ERROR}
    assert all("500" in m and "injected fault" in m for _, m in outcomes.values())
    assert all(r.score == 0 for r in run.results)


def _case_ns(namespaces, ex, name):
    return next(ns for ns in namespaces if ns.endswith(f"-{ex}-{name}"))


def test_service_proxy_fault_is_never_the_students_failure(faulty):
    """Injected 502/503 on the proxy path are retried; the proxy's own 503 'no endpoints' and
    502 'error trying to reach service' are the student's answers, at once."""
    cluster, api, namespaces = faulty
    good = _case_ns(namespaces, "ex2", "solution")
    faults = cluster.server.faults
    faults.match = lambda method, path: "/proxy" in path
    faults.fail_next(4, 502)
    faults.fail_next(3, 503)
    cluster.server.reset_requests()
    answer = api.service_proxy(good, "hello", 80, "/")
    assert answer.status < 500 and answer.error is None
    log = settled_log(cluster, 8)
    assert [r.status for r in log] == [502] * 4 + [503] * 3 + [answer.status]

    faults.clear()
    empty = _case_ns(namespaces, "ex2", "pod-not-ready")
    cluster.server.reset_requests()
    answer = api.service_proxy(empty, "hello", 80, "/")
    assert answer.status == 503 and "no endpoints available" in (answer.error or "")
    assert [r.status for r in settled_log(cluster, 1)] == [503]   # a real verdict costs one request


def test_service_proxy_persistent_fault_is_an_error(faulty):
    cluster, api, namespaces = faulty
    good = _case_ns(namespaces, "ex2", "solution")
    faults = cluster.server.faults
    faults.match = lambda method, path: "/proxy" in path
    faults.error_rate = 1.0
    faults.error_statuses = (503,)
    fast = Api(kubeconfig=api.source, retry=FakeClock().policy(deadline=1.5))
    try:
        run = grade_on(fast, SETTINGS, [SETTINGS.exercise("ex2")], [good], student=False, wait=0)
    finally:
        fast.close()
    by_id = {c.check_id: c for c in run.results[0].checks}
    assert by_id["service-answers"].outcome is Outcome.ERROR
    assert "kept answering 503" in by_id["service-answers"].message.en
    assert {c.outcome for k, c in by_id.items() if k != "service-answers"} == {Outcome.PASSED}


def test_read_timeouts_are_retried(faulty):
    """A slow answer (latency above the read timeout) is retried like a reset, within the deadline."""
    cluster, api, namespaces = faulty
    clock = FakeClock()     # the read timeouts are real; only the backoff between them is skipped
    slow = Api(kubeconfig=api.source, retry=clock.policy(read_timeout=0.3, deadline=5.0))
    faults = cluster.server.faults
    calls = {"n": 0}

    def first_two(method: str, path: str) -> bool:
        calls["n"] += 1
        return path.endswith("/configmaps") and calls["n"] <= 2

    try:
        faults.latency = 1.0
        faults.match = first_two
        assert slow.list("ConfigMap", namespaces[0]) == []
    finally:
        slow.close()
    assert calls["n"] == 3


def test_writes_are_not_retried(faulty):
    """Retries are for reads: a failed write is reported at once (it may have been applied)."""
    cluster, api, _ = faulty
    cluster.server.reset_requests()
    cluster.server.faults.fail_next(1, 503)
    with pytest.raises(ApiError) as info:
        api.create_namespace("never-retried")
    assert info.value.status == 503
    assert [r.status for r in settled_log(cluster, 1) if r.method == "POST"] == [503]
