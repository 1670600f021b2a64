"""Hostile answers (gzip bomb, 1 GiB, endless chunked, 1 B/s, forged Status 500/401/403) through a route and the service proxy: bounded in memory and time, graded as the student's answer, never ERROR.

The hostile servers are real loopback HTTP servers: a router for route probes, and the
independent API double (``tests/apidouble.py``) for the service proxy, whose proxy path hands
the request to the hostile handler exactly as kube-apiserver streams a pod's answer. Memory and
time are measured in a child process that grades a class of 16 hostile namespaces and 4 good ones.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from grader.grading import grade_on
from grader.errors import ApiError, CannotSee
from grader.kube import Api, RetryPolicy
from grader.probes import MAX_BODY, Probe
from grader.results import Outcome
from grader.settings import Settings
from grader.wire import HttpAnswer
from tests.apidouble import ApiDouble, load_fixture, relocated, status
from tests.loopback import Handler, LoopbackServer, send_page

FIXTURE = Path(__file__).parent / "fixtures" / "real" / "isolation-hello-httpd.yaml"
SETTINGS = Settings(lang="en", wait=0.0, quiet=True)


# --- hostile answers --------------------------------------------------------------------------
def _gzip_bomb_pieces() -> tuple[bytes, bytes]:
    """(first, next): a gzip stream of 16 MiB zero blocks, each fully flushed so the next block's
    compressed bytes repeat exactly; 640 blocks inflate to 10 GiB, sent without holding them."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(16 << 20)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    return first, c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)


_BOMB: list[tuple[bytes, bytes]] = []
_BOMB_LOCK = threading.Lock()


def _write(h: BaseHTTPRequestHandler, code: int, headers: dict[str, str], pieces: Iterator[bytes],
           pause: float = 0.0) -> None:
    """Send an answer piece by piece until done or until the grader hangs up."""
    try:
        h.send_response(code)
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        for piece in pieces:
            h.wfile.write(piece)
            h.wfile.flush()
            if pause:
                time.sleep(pause)
    except OSError:
        pass                    # the grader hung up: that is the point
    h.close_connection = True


def gzip_bomb(h: BaseHTTPRequestHandler) -> None:
    with _BOMB_LOCK:
        if not _BOMB:
            _BOMB.append(_gzip_bomb_pieces())
    first, again = _BOMB[0]
    _write(h, 200, {"Content-Type": "text/html", "Content-Encoding": "gzip", "Connection": "close"},
           iter([first, *[again] * 639]))


def gib_body(h: BaseHTTPRequestHandler) -> None:
    piece = b"x" * (64 << 10)
    _write(h, 200, {"Content-Type": "text/plain", "Content-Length": str(1 << 30)}, (piece for _ in range(1 << 14)))


def endless_chunked(h: BaseHTTPRequestHandler) -> None:
    chunk = b"%x\r\n%s\r\n" % (8192, b"y" * 8192)

    def forever() -> Iterator[bytes]:
        while True:
            yield chunk
    _write(h, 200, {"Content-Type": "text/plain", "Transfer-Encoding": "chunked"}, forever())


def one_byte_a_second(h: BaseHTTPRequestHandler) -> None:
    _write(h, 200, {"Content-Type": "text/plain", "Content-Length": "1000"}, (b"z" for _ in range(1000)), pause=1.0)


def brotli(h: BaseHTTPRequestHandler) -> None:
    _write(h, 200, {"Content-Encoding": "br", "Content-Length": "4"}, iter([b"\x0b\x01\x80\x00"]))


def _forged(code: int, reason: str, message: str) -> Handler:
    """A pod answering a Status body that reads exactly like the API server's own."""
    body = json.dumps(status(code, reason, message)).encode()

    def handler(h: BaseHTTPRequestHandler) -> None:
        _write(h, code, {"Content-Type": "application/json", "Content-Length": str(len(body))}, iter([body]))
    return handler


FORGED_500 = _forged(500, "InternalError", "Internal error occurred: etcdserver: request timed out \x1b[2J")
FORGED_401 = _forged(401, "Unauthorized", "Unauthorized")
FORGED_403 = _forged(403, "Forbidden", 'services "hello:80" is forbidden: User "grader" cannot get resource '
                                       '"services/proxy" in API group "" in the namespace')


def _serve_http(h: BaseHTTPRequestHandler) -> None:
    _write(h, 200, {"Content-Type": "text/html", "Content-Length": "35"}, iter([b"<html><body>It works!</body></html>"]))


# --- route probes -----------------------------------------------------------------------------
@pytest.fixture
def router() -> Iterator[Callable[[Handler], LoopbackServer]]:
    """Loopback servers answering every request with a handler (the grader's --router)."""
    made: list[LoopbackServer] = []

    def make(handler: Handler) -> LoopbackServer:
        made.append(LoopbackServer(handler))
        return made[-1]
    yield make
    for r in made:
        r.close()


def _url(address: str, timeout: float = 5.0) -> tuple[Any, float]:
    started = time.monotonic()
    answer = Probe(None, router=address, timeout=timeout).url("hostile.apps.sandbox.local")  # type: ignore[arg-type]
    return answer, time.monotonic() - started


@pytest.mark.parametrize("handler", [gzip_bomb, gib_body, endless_chunked], ids=["gzip-bomb", "1-gib", "endless-chunked"])
def test_route_page_is_cut_at_one_mebibyte(router, handler):
    answer, _ = _url(router(handler).address)
    assert answer.status == 200 and answer.error is None, answer.error
    assert len(answer.body) == MAX_BODY and answer.cut
    assert set(answer.body) == {0 if handler is gzip_bomb else answer.body[0]}   # the bomb is unpacked, capped


def test_route_page_that_trickles_ends_at_the_deadline(router):
    answer, elapsed = _url(router(one_byte_a_second).address, timeout=2.0)
    assert answer.status == 200 and answer.error == "no complete answer within 2 s"
    assert 1.9 <= elapsed < 3 * 2.0, elapsed


def test_route_connect_time_counts_in_the_deadline():
    """A router whose accept queue is full never completes the TCP handshake (the kernel drops
    the SYN): the probe still ends at its one deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(4):          # fill the accept queue; later handshakes are dropped
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        time.sleep(0.2)
        answer, elapsed = _url("%s:%d" % listener.getsockname(), timeout=1.5)
    finally:
        for s in fillers:
            s.close()
        listener.close()
    assert answer.status == 0 and answer.error is not None
    if "within" not in answer.error:
        pytest.skip(f"this kernel completed or refused the handshake ({answer.error})")
    assert answer.error == "no complete answer within 1.5 s" and 1.4 <= elapsed < 3 * 1.5, (answer.error, elapsed)


def test_route_compressed_page_the_grader_does_not_unpack_is_refused(router):
    answer, _ = _url(router(brotli).address)
    assert answer.status == 200 and answer.body == b""
    assert answer.error is not None and "compressed (br)" in answer.error


# --- the service proxy (API double) -----------------------------------------------------------
def _student(namespace: str, n: int) -> list[dict[str, Any]]:
    """The recorded ex1 + ex2 solution moved to ``namespace`` with a pod IP of its own, and the
    Namespace itself (shape of `kubectl get namespace NAME -o yaml`, kubernetes/website
    content/en/docs/tasks/administer-cluster/namespaces.md: spec.finalizers, status.phase)."""
    ip = f"10.88.{n // 250}.{n % 250 + 2}"
    out: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": namespace, "labels": {"kubernetes.io/metadata.name": namespace}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}]
    return out + relocated(load_fixture(FIXTURE), namespace, ip)


def _double(answers: dict[str, Handler]) -> ApiDouble:
    """A class: one namespace per entry, each student's service answering with its handler."""
    double = ApiDouble([o for n, ns in enumerate(answers) for o in _student(ns, n)])
    for ns, handler in answers.items():
        double.route(f"/api/v1/namespaces/{ns}/services/hello:80/proxy", handler)
    return double


def _api(double: ApiDouble, tmp_path: Path, deadline: float = 4.0) -> Api:
    return Api(kubeconfig=str(double.write_kubeconfig(tmp_path / "kubeconfig")), retry=RetryPolicy(deadline=deadline))


def _probe(double: ApiDouble, tmp_path: Path, namespace: str, timeout: float = 5.0, deadline: float = 4.0) -> HttpAnswer:
    """One service-proxy probe of the namespace's ``hello:80`` by a client of its own."""
    api = _api(double, tmp_path, deadline)
    try:
        return api.service_proxy(namespace, "hello", 80, "/", timeout=timeout)
    finally:
        api.close()


@pytest.mark.parametrize("handler", [gzip_bomb, gib_body, endless_chunked], ids=["gzip-bomb", "1-gib", "endless-chunked"])
def test_proxy_answer_is_cut_at_one_mebibyte_and_asked_uncompressed(tmp_path, handler):
    seen: list[str | None] = []

    def recording(h: BaseHTTPRequestHandler) -> None:
        seen.append(h.headers.get("Accept-Encoding"))
        handler(h)

    with _double({"student": recording}) as double:
        answer = _probe(double, tmp_path, "student")
    assert seen == ["identity"]
    assert answer.status == 200 and answer.error is None and answer.cut and len(answer.body) == MAX_BODY
    assert set(answer.body) == {0 if handler is gzip_bomb else answer.body[0]}


def _sleeps(seconds: float) -> Handler:
    def handler(h: BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        _serve_http(h)
    return handler


@pytest.mark.parametrize("handler", [one_byte_a_second, _sleeps(8)], ids=["1-byte-a-second", "headers-after-8-s"])
def test_proxy_answer_ends_at_the_deadline(tmp_path, handler):
    """Connect, headers and body share one deadline: a trickle is cut by the watchdog, a pod
    that never sends its headers by the socket's timeout; the API server answers the control
    request, so both are the student's slow page."""
    with _double({"student": handler}) as double:
        started = time.monotonic()
        answer = _probe(double, tmp_path, "student", timeout=1.5)
        elapsed = time.monotonic() - started
    assert answer.error == "no complete answer within 1.5 s", answer
    assert 1.4 <= elapsed < 3 * 1.5, elapsed


@pytest.mark.parametrize("handler,code,said", [
    (FORGED_500, 500, "Internal error occurred: etcdserver: request timed out"),
    (FORGED_401, 401, "Unauthorized"),
    (FORGED_403, 403, 'services "hello:80" is forbidden'),
], ids=["forged-status-500", "forged-status-401", "forged-status-403"])
def test_a_forged_status_is_the_students_answer(tmp_path, handler, code, said):
    """The pod's Status reads like the API server's; the control request (a port no pod can
    serve) is answered by the API server, so it is the student's failure, never an ERROR, and a
    forged 401 does not stop the run."""
    with _double({"forger": handler}) as double:
        # the answer is immediate; the time limit only has to outlast a loaded machine
        answer = _probe(double, tmp_path, "forger", timeout=5.0)
        controls = [r for r in double.requests if "grader-control-probe" in r]
    assert answer.status == code and answer.error is not None
    assert answer.error.startswith("from the service itself: ") and said in answer.error
    assert "\x1b" not in answer.error
    assert len(controls) == 1


def test_a_retry_the_deadline_cuts_does_not_erase_the_answer_before_it(tmp_path):
    """The pod answered a Status-looking 500 (retried, as the API server's could be), then the
    retry got nothing before the deadline: the student's answer is the 500 that was seen, not
    "no complete answer" (on a loaded machine a last retry often has only milliseconds left)."""
    release = threading.Event()
    seen: list[int] = []

    def then_silent(h: BaseHTTPRequestHandler) -> None:
        seen.append(1)
        if len(seen) > 1:
            release.wait(10)        # the retry: no answer until the probe has given up
            return
        FORGED_500(h)

    with _double({"forger": then_silent}) as double:
        try:
            answer = _probe(double, tmp_path, "forger", timeout=1.5)
        finally:
            release.set()
    assert len(seen) >= 2                  # it was retried
    assert answer.status == 500 and answer.error is not None
    assert answer.error.startswith("from the service itself: ") and "etcdserver" in answer.error


def test_the_grader_may_not_use_the_proxy_is_an_error(tmp_path):
    """A real RBAC denial: the control request is refused too, so the check is an ERROR that
    names the permission, not the student's failure."""
    denied = _forged(403, "Forbidden", 'services "hello" is forbidden: User "grader" cannot get resource '
                                       '"services/proxy" in API group "" in the namespace "student"')
    with ApiDouble([o for o in _student("student", 1)]) as double:
        double.route("/api/v1/namespaces/student/services/", denied)    # the control path too
        with pytest.raises(CannotSee) as info:
            _probe(double, tmp_path, "student")
    assert info.value.status == 403 and "may not use the service proxy" in info.value.message.en


def test_an_api_server_outage_on_the_proxy_is_an_error(tmp_path):
    """The API server itself keeps failing (the control request as well): ERROR with its words."""
    down = _forged(503, "ServiceUnavailable", "the server is currently unable to handle the request")
    with ApiDouble([o for o in _student("student", 1)]) as double:
        double.route("/api/v1/namespaces/student/services/", down)
        with pytest.raises(ApiError) as info:
            _probe(double, tmp_path, "student", timeout=1.0, deadline=1.0)
    assert not isinstance(info.value, CannotSee)
    assert info.value.status == 503 and "kept answering 503" in info.value.message.en
    assert "unable to handle the request" in info.value.message.en


# --- a class of hostile students, in a child process -------------------------------------------
HOSTILE: dict[str, Handler] = {
    **{f"bomb-{i}": gzip_bomb for i in range(3)},
    **{f"gib-{i}": gib_body for i in range(3)},
    **{f"chunked-{i}": endless_chunked for i in range(3)},
    **{f"trickle-{i}": one_byte_a_second for i in range(2)},
    **{f"forged500-{i}": FORGED_500 for i in range(2)},
    "forged401": FORGED_401, "forged403": FORGED_403, "brotli": brotli,
}
GOOD = [f"good-{i}" for i in range(4)]
# The service-answers verdict each hostile answer gets (see README, "Security and reliability").
EXPECTED = {"bomb": (Outcome.PASSED, None), "gib": (Outcome.PASSED, None), "chunked": (Outcome.PASSED, None),
            "trickle": (Outcome.FAILED, "no complete answer within 5 s"),
            "forged500": (Outcome.FAILED, "status 500"), "forged401": (Outcome.FAILED, "status 401"),
            "forged403": (Outcome.FAILED, "status 403"), "brotli": (Outcome.FAILED, "compressed (br)")}

CHILD = """
import json, resource, sys, time
from concurrent.futures import ThreadPoolExecutor
started = time.monotonic()
from grader.grading import grade_on
from grader.kube import Api, RetryPolicy
from grader.probes import Probe
from grader.settings import Settings
settings = Settings(lang="en", wait=0.0, quiet=True)
api = Api(kubeconfig=sys.argv[1], retry=RetryPolicy(deadline=4.0))
probe = Probe(api, router=sys.argv[3])
with ThreadPoolExecutor(16) as pool:      # 16 hostile route pages while the class is graded
    pages = pool.map(lambda i: probe.url(f"h{i}.apps.sandbox.local"), range(16))
    run = grade_on(api, settings, [settings.exercise("ex2")], sys.argv[2].split(","), student=False, wait=0)
    graded = time.monotonic()
    pages = list(pages)
print(json.dumps({
    "checks": {r.namespace: {c.check_id: [c.outcome.value, c.message.en if c.message else None] for c in r.checks}
               for r in run.results},
    "pages": [[p.status, len(p.body), p.error] for p in pages],
    "graded_s": graded - started, "wall_s": time.monotonic() - started,
    "rss_mb": peak_mb()}))
"""
# Peak RSS of the child's own address space. ``ru_maxrss`` would do on a fresh process, but Linux
# carries the parent's RSS at fork (vfork) time into a child's ``ru_maxrss`` across exec, so under
# a big pytest process it reports the parent; ``VmHWM`` is the high-water mark of this image only.
PEAK = """
import resource
def peak_mb():
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""


def test_a_class_of_hostile_services_is_graded_in_bounded_memory_and_time(tmp_path):
    """16 hostile services probed in parallel next to 4 good ones, and 16 hostile route pages:
    the child grading them stays under 300 MB and 20 s, the good students get full marks, and
    each hostile answer gets its documented verdict with every other check unaffected."""
    kinds = list(HOSTILE.values())
    by_path = {f"/h{i}": kinds[i] for i in range(16)}

    def page(h: BaseHTTPRequestHandler) -> None:
        by_path.get(f"/{h.headers.get('Host', '').split('.')[0]}", _serve_http)(h)

    namespaces = [*HOSTILE, *GOOD]
    with _double({**HOSTILE, **{ns: _serve_http for ns in GOOD}}) as double:
        hostile_router = LoopbackServer(page)
        try:
            kubeconfig = double.write_kubeconfig(tmp_path / "kubeconfig")
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-c", PEAK + CHILD, str(kubeconfig), ",".join(namespaces),
                                   hostile_router.address], capture_output=True, text=True, timeout=120,
                                  env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
            wall = time.monotonic() - started
        finally:
            hostile_router.close()
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    assert got["rss_mb"] < 300, got["rss_mb"]
    # the child's own clock (from before its imports): the probes' 5 s deadlines, paid in parallel,
    # are what it controls; starting an interpreter on a busy machine is not (measured: 5-7 s)
    assert got["wall_s"] < 20, (wall, got["graded_s"], got["wall_s"])
    print(f"child: {got['rss_mb']:.0f} MB, graded in {got['graded_s']:.1f} s, {got['wall_s']:.1f} s in all, {wall:.1f} s wall")
    checks = got["checks"]
    for ns in GOOD:
        assert {o for o, _ in checks[ns].values()} == {"passed"}, checks[ns]
    for ns in HOSTILE:
        outcome, message = checks[ns].pop("service-answers")
        want, says = EXPECTED[ns.split("-")[0]]
        assert outcome == want.value and (says is None or says in (message or "")), (ns, outcome, message)
        if ns.startswith("forged"):
            assert "from the service itself" in message and "\x1b" not in message, message
        assert {o for o, _ in checks[ns].values()} == {"passed"}, (ns, checks[ns])
    pages = got["pages"]
    for i, (code, size, error) in enumerate(pages):
        kind = kinds[i]
        if kind in (gzip_bomb, gib_body, endless_chunked):
            assert (code, size, error) == (200, MAX_BODY, None), (i, code, size, error)
        elif kind is one_byte_a_second:
            assert error == "no complete answer within 5 s", (i, error)
        elif kind is brotli:
            assert error is not None and "compressed (br)" in error
        else:
            assert code in (500, 401, 403) and error is None    # a route page: its status is the verdict


def test_a_page_over_the_cap_that_misses_the_text_says_the_grader_read_one_mebibyte(router):
    """The expected text past the first MiB is a failure (the student's page is abnormal), and the
    message says why the grader did not see it."""
    from grader.checks import expect_http_ok
    from grader.errors import CheckFailed
    from grader.i18n import t
    answer, _ = _url(router(gib_body).address)
    with pytest.raises(CheckFailed) as e:
        expect_http_ok(answer, t("ページ", "the page"), "curl", contains="Hello from OpenShift")
    assert "over 1 MiB; the grader reads only its first MiB" in e.value.message.en
    assert "1 MiB を超えた" in e.value.message.ja


def _keep_alive_page(h: BaseHTTPRequestHandler) -> None:
    """A clean answer that leaves the connection open, as kube-apiserver does for its clients."""
    send_page(h, b"<html><body>It works!</body></html>")


def test_only_a_clean_answer_hands_its_connection_back(tmp_path):
    """Connections are reused after a complete answer (a TLS handshake per probe was most of its
    cost), and never after a cut, a trickle the watchdog ended, or a broken body: the next
    student's probe comes on a new connection and reads its own page."""
    ports: dict[str, list[int]] = {}

    def by_port(name: str, handler: Handler) -> Handler:
        def recording(h: BaseHTTPRequestHandler) -> None:
            ports.setdefault(name, []).append(h.client_address[1])
            handler(h)
        return recording

    answers = {"good": by_port("good", _keep_alive_page), "cut": by_port("cut", gib_body),
               "trickle": by_port("trickle", one_byte_a_second)}
    with _double(answers) as double:
        api = _api(double, tmp_path)
        try:
            pages = [api.service_proxy("good", "hello", 80, "/") for _ in range(2)]
            cut = api.service_proxy("cut", "hello", 80, "/")
            pages.append(api.service_proxy("good", "hello", 80, "/"))
            slow = api.service_proxy("trickle", "hello", 80, "/", timeout=1.5)
            pages.append(api.service_proxy("good", "hello", 80, "/"))
        finally:
            api.close()
    assert cut.cut and slow.error == "no complete answer within 1.5 s"
    assert all(p.status == 200 and p.error is None and p.body.endswith(b"It works!</body></html>") for p in pages)
    good = ports["good"]
    assert good[0] == good[1]                                  # a clean answer's connection is reused
    assert good[2] not in ports["cut"] and good[3] not in ports["trickle"]
