"""Safe probes: only route-domain hosts (or via --router), never IPs/localhost/another namespace's host; no redirects, 1 MiB, 5 s.

Each "no request goes there" claim is proved with a local HTTP server that records every request
it gets (with its Host header); routes live in the embedded cluster and are graded through the
same path as ``grade``.
"""
from __future__ import annotations

import http.client
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from typing import Callable, Iterator

import pytest
import yaml

from grader.apply import apply_files, solution_dir
from grader.bounded import Connections
from grader.grading import grade_on, probe_for
from grader.errors import CheckFailed
from grader.kube import Api
from grader.probes import MAX_BODY, TIMEOUT, Probe
from grader.results import Outcome
from grader.settings import Settings
from tests.loopback import QuietServer


class Recorder:
    """A loopback HTTP server that logs (Host, path) and answers with ``respond`` or forwards."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler], None] | None = None,
                 forward_to: str | None = None, port: int = 0) -> None:
        self.seen: list[tuple[str, str]] = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                rec.seen.append((self.headers.get("Host", ""), self.path))
                if respond is not None:
                    respond(self)
                    return
                req = urllib.request.Request(f"http://{forward_to}{self.path}",
                                             headers={"Host": self.headers.get("Host", "")})
                try:
                    with urllib.request.urlopen(req, timeout=5) as r:
                        code, body = r.status, r.read()
                except urllib.error.HTTPError as e:
                    code, body = e.code, e.read()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = QuietServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recorder() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(*args, **kwargs) -> Recorder:
        made.append(Recorder(*args, **kwargs))
        return made[-1]
    yield make
    for r in made:
        r.close()


def _route(name: str, host: str | None) -> dict:
    spec: dict = {"to": {"kind": "Service", "name": "hello"}}
    if host is not None:
        spec["host"] = host
    return {"apiVersion": "route.openshift.io/v1", "kind": "Route", "metadata": {"name": name}, "spec": spec}


def _ex6_namespace(cluster, api, ns: str, host: str | None) -> None:
    """The ex6 reference solution, with the route's host replaced by ``host``."""
    cluster.create_namespace(ns)
    files = [p for p in solution_dir("ex6").iterdir() if p.suffix == ".yaml" and p.name != "route.yaml"]
    assert apply_files(api, files, ns) == []
    api.create(_route("hello", host), ns)


def _page_check(result) -> tuple[Outcome, str]:
    c = next(c for c in result.checks if c.check_id == "page-answers")
    return c.outcome, c.message.en if c.message else ""


def test_hostile_route_hosts_fail_and_are_never_requested(cluster, api, recorder):
    """Batch: a good route passes through the router; routes pointing at the metadata service,
    localhost or a classmate's host each fail with the reason, and the router never sees them."""
    router = recorder(forward_to=cluster.router_address)
    tag = str(int(time.time() * 1000))[-6:]
    good_host = f"hello-pgood{tag}.{cluster.route_domain}"
    cases = {f"pgood{tag}": good_host, f"pmeta{tag}": "169.254.169.254", f"plocal{tag}": "localhost",
             f"pthief{tag}": good_host}
    for ns, host in cases.items():       # the thief's route is created last: the good one is older
        _ex6_namespace(cluster, api, ns, host)
        time.sleep(1.05 if ns.startswith("pgood") else 0)  # creationTimestamps have 1 s resolution
    cluster.settle()
    settings = Settings(lang="en", wait=0.0, router=router.address, route_domain=cluster.route_domain)
    run = grade_on(api, settings, [settings.exercise("ex6")], list(cases), student=False, wait=0)
    by_ns = {r.namespace: _page_check(r) for r in run.results}

    assert by_ns[f"pgood{tag}"] == (Outcome.PASSED, "")
    assert by_ns[f"pmeta{tag}"][0] is Outcome.FAILED and "IP address" in by_ns[f"pmeta{tag}"][1]
    assert by_ns[f"plocal{tag}"][0] is Outcome.FAILED and "localhost" in by_ns[f"plocal{tag}"][1]
    assert by_ns[f"pthief{tag}"][0] is Outcome.FAILED and "already claimed" in by_ns[f"pthief{tag}"][1]
    assert router.seen == [(good_host, "/")]

    # student mode: only the thief's own namespace is visible; the router's admission says it
    router.seen.clear()
    student = grade_on(api, settings, [settings.exercise("ex6")], [f"pthief{tag}"], student=True, wait=0)
    outcome, message = _page_check(student.results[0])
    assert outcome is Outcome.FAILED and "HostAlreadyClaimed" in message
    admitted = next(c for c in student.results[0].checks if c.check_id == "route-admitted")
    assert admitted.outcome is Outcome.FAILED and "HostAlreadyClaimed" in admitted.message.en
    assert f"a route in another namespace holds {good_host}" in admitted.message.en   # the router's own words
    assert router.seen == []


def test_direct_requests_only_under_the_route_domain(api, recorder):
    """Without --router the probe connects to the host itself: a host outside the route domain,
    localhost or an IP is refused before any connection (a server on port 80 proves it)."""
    try:
        port80 = recorder(respond=lambda h: (h.send_response(200), h.send_header("Content-Length", "0"),
                                             h.end_headers()), port=80)
    except OSError as e:
        pytest.skip(f"cannot listen on 127.0.0.1:80 here ({e})")
    probe = Probe(api, route_domains=["apps.sandbox.local"])
    for host, why in [("localhost", "localhost"), ("127.0.0.1", "IP address"), ("2130706433", "route domain"),
                      ("evil.example.com", "not under the route domain"), ("apps.sandbox.local", "not under"),
                      ("x.apps.sandbox.local.evil.com", "not under"), ("a\r\nHost: x.apps.sandbox.local", "valid DNS"),
                      ("foo.localhost", "localhost")]:
        with pytest.raises(CheckFailed) as info:
            probe.url(host, "/")
        assert why in info.value.message.en, (host, info.value.message.en)
    with pytest.raises(CheckFailed) as info:
        Probe(api).url("hello.apps.sandbox.local", "/")
    assert "route domain is unknown" in info.value.message.en
    assert port80.seen == []


def test_redirects_are_not_followed(api, recorder):
    elsewhere = recorder(respond=lambda h: (h.send_response(200), h.send_header("Content-Length", "0"),
                                            h.end_headers()))

    def redirect(h: BaseHTTPRequestHandler) -> None:
        h.send_response(302)
        h.send_header("Location", f"http://{elsewhere.address}/latest/meta-data/")
        h.send_header("Content-Length", "0")
        h.end_headers()

    router = recorder(respond=redirect)
    answer = Probe(api, router=router.address).url("hello.apps.sandbox.local", "/")
    assert answer.status == 302
    assert router.seen == [("hello.apps.sandbox.local", "/")]
    assert elsewhere.seen == []


def _send_page(h: BaseHTTPRequestHandler, body: bytes) -> None:
    """A 200 with its Content-Length; a probe that hangs up at its cap is no error here."""
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    try:
        h.wfile.write(body)
    except OSError:
        pass


def test_big_page_is_cut_at_one_mebibyte(api, recorder):
    big = b"<p>" + b"x" * (3 * MAX_BODY) + b"</p>"

    router = recorder(respond=lambda h: _send_page(h, big))
    answer = Probe(api, router=router.address).url("big.apps.sandbox.local")
    assert MAX_BODY == 1 << 20
    assert answer.status == 200 and len(answer.body) == MAX_BODY and answer.body.startswith(b"<p>x")


def test_slow_page_times_out_even_when_it_trickles(api, recorder):
    """A page sending one byte every 0.2 s never trips a per-read timeout; the probe's deadline
    covers the whole exchange."""
    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        try:
            for _ in range(1000):
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def silent(h: BaseHTTPRequestHandler) -> None:
        time.sleep(10)      # longer than the bound below: only the probe's own deadline ends it

    assert TIMEOUT == 5.0 and Probe(None).timeout == 5.0   # type: ignore[arg-type]
    for respond in (trickle, silent):
        router = recorder(respond=respond)
        started = time.monotonic()
        answer = Probe(api, router=router.address, timeout=1.0).url("slow.apps.sandbox.local")
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed < 3 * 1.0, elapsed     # the 1 s deadline, with 3x headroom for a busy machine
        assert answer.error is not None and "within 1 s" in answer.error
        assert answer.status in (0, 200) and len(answer.body) < 10


def test_route_domain_comes_from_the_openshift_ingress_config(cluster, tmp_path):
    """Without --router/--route-domain or the sandbox extension, the probe learns the domain from
    ``ingresses.config.openshift.io/cluster``; unreadable, it knows none and refuses every host."""
    def no_extension(path, token=None):
        kc = cluster.write_kubeconfig(path, token=token)
        doc = yaml.safe_load(kc.read_text())
        doc["clusters"][0]["cluster"].pop("extensions")
        kc.write_text(yaml.safe_dump(doc))
        return str(kc)

    plain = Api(kubeconfig=no_extension(tmp_path / "kc"))
    cluster.server.add_user("no-config-token", "student-x", lambda a: a.api_group != "config.openshift.io")
    denied = Api(kubeconfig=no_extension(tmp_path / "kc2", token="no-config-token"))
    try:
        probe = probe_for(plain, Settings(lang="en"))
        assert probe.route_domains == (cluster.route_domain,) and probe.router is None
        assert probe.host_problem(f"hello-ns.{cluster.route_domain}") is None
        assert "not under" in probe.host_problem("hello-ns.apps.other.test")
        blind = probe_for(denied, Settings(lang="en"))
        assert blind.route_domains == () and blind.router is None
        assert "route domain is unknown" in blind.host_problem(f"hello-ns.{cluster.route_domain}")
        assert probe_for(denied, Settings(lang="en", route_domain="apps.given.test")).route_domains == ("apps.given.test",)
    finally:
        cluster.server.remove_user("no-config-token")
        plain.close()
        denied.close()


def test_service_proxy_is_bounded_too(cluster, api, fresh_ns):
    """The service proxy answer is cut at the probe's body cap like a route page."""
    assert apply_files(api, [p for p in solution_dir("ex6").iterdir() if p.suffix == ".yaml"], fresh_ns) == []
    cluster.settle()
    answer = Probe(api, max_body=10).service(fresh_ns, "hello", 80, "/")
    assert answer.status == 200 and len(answer.body) == 10


def test_a_class_of_big_pages_stays_within_the_memory_budget(api, recorder):
    """Past the probe cache's budget, bodies are clipped; a check that needed the clipped part is
    an ERROR (the grader could not keep it), never a FAILED check."""
    from grader.checks import expect_http_ok
    from grader.errors import InfraError
    from grader.i18n import Text
    from grader.probes import CLIPPED
    page = b"<p>" + b"x" * (200 << 10) + b" the end</p>"

    def serve(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(page)))
        h.end_headers()
        h.wfile.write(page)

    router = recorder(respond=serve)
    probe = Probe(api, router=router.address, cache_budget=300 << 10)
    first = probe.url("a.apps.sandbox.local")
    second = probe.url("b.apps.sandbox.local")
    assert not first.clipped and len(first.body) == len(page)
    assert second.clipped and len(second.body) == CLIPPED
    assert probe.url("b.apps.sandbox.local") is second           # cached, not fetched again
    expect_http_ok(first, Text.same("a"), "curl a", contains="the end")
    with pytest.raises(InfraError):
        expect_http_ok(second, Text.same("b"), "curl b", contains="the end")
    expect_http_ok(second, Text.same("b"), "curl b", contains="<p>xxx")   # found in what was kept
    probe.reset()
    assert not probe.url("b.apps.sandbox.local").clipped           # a new observation, a new budget


def test_an_interrupt_drops_the_probes_still_queued():
    """Ctrl-C or SIGTERM in a class's probe pass stops it now: it waits neither for the probes in
    flight nor runs those still queued."""
    from grader.probes import Deferred, Probe
    from grader.wire import HttpAnswer
    probe = Probe(None, workers=1)  # type: ignore[arg-type]
    probe.defer = True
    ran: list[int] = []
    finished: list[int] = []
    interrupted = threading.Event()

    def fetch(i: int):
        def call():
            ran.append(i)
            if i == 0:
                raise KeyboardInterrupt
            interrupted.wait(10)      # a probe in flight while the interrupt is handled
            finished.append(i)
            return HttpAnswer(200, b"ok")
        return call

    for i in range(20):
        with pytest.raises(Deferred):
            probe._cached(("svc", str(i)), fetch(i))
    with pytest.raises(KeyboardInterrupt):
        probe.run_deferred()
    assert finished == []       # it did not wait for the probe in flight (that one ends by its deadline)
    interrupted.set()
    time.sleep(0.2)     # were the queued probes not dropped, the freed worker would now run them
    assert ran in ([0], [0, 1]), ran    # at most the one the single worker had already taken


def test_router_connection_is_kept_only_after_a_clean_answer(api, recorder):
    """Through --router every student's page comes over one kept connection (not one TCP
    connection per page), but never after a cut answer, and a kept
    connection the router closed meanwhile is replaced without losing that student's page."""
    ports: list[tuple[str, int]] = []

    def serve(h: BaseHTTPRequestHandler) -> None:
        host = h.headers.get("Host", "")
        ports.append((host.split(".")[0], h.client_address[1]))
        _send_page(h, b"x" * 5000 if host.startswith("big.") else f"page of {host}".encode())
        if host.startswith("bye."):
            h.close_connection = True   # closed after a clean answer that did not say so

    router = recorder(respond=serve)
    probe = Probe(api, router=router.address, max_body=1000)
    pages = {name: probe.url(f"{name}.apps.sandbox.local") for name in ("a", "b", "big", "c", "bye", "d")}
    port = dict(ports)
    assert pages["big"].cut and len(pages["big"].body) == 1000
    for name in ("a", "b", "c", "bye", "d"):
        assert pages[name].status == 200 and pages[name].error is None
        assert pages[name].body == f"page of {name}.apps.sandbox.local".encode()
    assert port["a"] == port["b"] == port["big"]       # kept after each clean answer
    assert port["c"] != port["big"]                    # never after a cut
    assert port["bye"] == port["c"] and port["d"] != port["bye"]   # closed by the router: a new one
    assert [name for name, _ in ports].count("d") in (1, 2)   # the stale one got nothing, or an unanswered GET


def test_without_a_router_each_page_has_its_own_connection(api, recorder):
    """Without --router each host is its own address: nothing is kept, every GET says close."""
    seen: list[tuple[int, str | None]] = []

    def serve(h: BaseHTTPRequestHandler) -> None:
        seen.append((h.client_address[1], h.headers.get("Connection")))
        h.send_response(204)
        h.send_header("Content-Length", "0")
        h.end_headers()

    router = recorder(respond=serve)
    conns = Connections(lambda s: http.client.HTTPConnection(router.address, timeout=s), 0)   # what Probe._get
    for name in ("a", "b"):                                                                  # makes per host
        got = conns.get("/", {"Host": f"{name}.apps.sandbox.local"}, time.monotonic() + 5, 1000, 5)
        assert got.status == 204
    assert len({port for port, _ in seen}) == 2 and {c for _, c in seen} == {"close"}
