"""Service-proxy probes reach the API server as the client does: its CA and token, its kubeconfig
proxy (a CONNECT tunnel), one kept connection for many probes; an unsupported proxy is named."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from grader.errors import ClusterUnavailable
from grader.kube import Api
from grader.wire import Unreachable
from tests.loopback import QuietServer


class ConnectProxy:
    """A loopback HTTP proxy that only tunnels (CONNECT), recording each tunnel's target."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.tunnels: list[str] = []
        self.clients: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return client.close()
            head += chunk
        method, target, _ = head.split(b"\r\n")[0].decode().split(" ")
        if method != "CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return client.close()
        self.tunnels.append(target)
        self.clients.append(client)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host.strip("[]"), int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def drop_tunnels(self) -> None:
        """Every open tunnel ends, as when a proxy restarts or a NAT forgets an idle connection."""
        for c in self.clients:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy()
    yield p
    p.close()


def _with(kubeconfig: Path, tmp_path: Path, **cluster: str) -> str:
    """A copy of the test session's kubeconfig with some of its cluster's fields changed."""
    doc = yaml.safe_load(kubeconfig.read_text())
    doc["clusters"][0]["cluster"].update(cluster)
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _control_probe(api: Api, namespace: str = "default"):
    """A probe the API server answers itself (no such service): an HTTP answer, whatever the pods."""
    return api.fetch(f"/api/v1/namespaces/{namespace}/services/no-such-service:80/proxy/",
                     deadline=time.monotonic() + 10, max_body=1 << 20, seconds=10)


def test_probes_share_one_kept_connection_with_the_clients_credentials(kubeconfig):
    """Many probes, one TLS connection: the server answers with its own 404 (the token and the CA
    were accepted), and the connection stays open for the next probe. (A client of its own: the
    session's has kept whatever connections other tests' parallel probes left.)"""
    api = Api(kubeconfig=str(kubeconfig))
    try:
        answers = [_control_probe(api) for _ in range(5)]
        assert {a.status for a in answers} == {404}, answers[0]
        assert all(b"no-such-service" in a.body for a in answers)
        assert len(api._conns._idle) == 1       # every probe went back to the one kept connection
    finally:
        api.close()


def test_probes_tunnel_through_the_kubeconfigs_proxy(kubeconfig, tmp_path, proxy):
    """``proxy-url`` in the kubeconfig: the client's reads and the probes both go through it; a
    kept connection that died while idle costs the student nothing: the GET is sent again."""
    api = Api(kubeconfig=_with(kubeconfig, tmp_path, **{"proxy-url": f"http://{proxy.address}"}))
    try:
        server = api.server.split("//", 1)[1]
        api.list("Pod", "default")
        assert proxy.tunnels == [server]            # the client's own request, tunnelled
        answers = [_control_probe(api) for _ in range(3)]
        assert [a.status for a in answers] == [404, 404, 404] and answers[0].error is None
        assert proxy.tunnels == [server, server]    # one tunnel more, kept for all three probes
        proxy.drop_tunnels()
        again = _control_probe(api)                 # the kept connection is dead: sent again on a new one
        assert (again.status, again.error) == (404, None)
        assert proxy.tunnels == [server, server, server]
    finally:
        api.close()


def test_a_proxy_the_probes_cannot_use_is_named(kubeconfig, tmp_path):
    """An https:// proxy (the client could use one; the probes only tunnel through http://): the
    run stops with a message that names it, not a traceback or a student's failure."""
    api = Api(kubeconfig=_with(kubeconfig, tmp_path, **{"proxy-url": "https://127.0.0.1:9"}))
    try:
        with pytest.raises(ClusterUnavailable) as e:
            _control_probe(api)
        assert "proxy-url (https://127.0.0.1:9) is not an http:// proxy" in str(e.value)
    finally:
        api.close()


def _closed_port() -> int:
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    return port


def _another_ca() -> str:
    """A CA that did not sign the embedded cluster's certificate: a public one (certifi's first)."""
    import base64

    import certifi

    pem = certifi.contents().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


@pytest.mark.parametrize("what, cause, said", [
    ("nothing-listens", "refused", "connection refused"),
    ("untrusted-certificate", "tls", "certificate verify failed"),
])
def test_a_probe_without_an_answer_is_unreachable_not_a_traceback(kubeconfig, tmp_path, what, cause, said):
    """Nothing listens at the server's address, or the kubeconfig trusts another CA: the probe's
    own connect fails as the client's would, and that is the grader's "cannot reach" with the
    reason, not an exception from the HTTP library nor a talk with an unverified server."""
    fields = ({"server": f"https://127.0.0.1:{_closed_port()}"} if what == "nothing-listens"
              else {"certificate-authority-data": _another_ca()})
    api = Api(kubeconfig=_with(kubeconfig, tmp_path, **fields))
    try:
        with pytest.raises(Unreachable) as e:
            _control_probe(api)
        assert e.value.cause == cause and said in str(e.value)
    finally:
        api.close()


def test_a_server_url_with_a_path_keeps_it_and_the_token_rides_along(tmp_path):
    """A server URL with a path (Rancher's ``https://rancher/k8s/clusters/c-1`` form) is a prefix
    of every request the client sends: the probes keep it too, and carry the kubeconfig's token."""
    from http.server import BaseHTTPRequestHandler

    seen: list[tuple[str, str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Host", ""), self.headers.get("Authorization", "")))
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

    server = QuietServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    netloc = "127.0.0.1:%d" % server.server_address[1]
    (tmp_path / "config").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://{netloc}/k8s/clusters/c-1"}}],
        "users": [{"name": "u", "user": {"token": "sekret-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    api = Api(kubeconfig=str(tmp_path / "config"))
    try:
        answer = _control_probe(api, "student-a")
        assert (answer.status, answer.body) == (200, b"hello")
        assert seen == [("/k8s/clusters/c-1/api/v1/namespaces/student-a/services/no-such-service:80/proxy/",
                         netloc, "Bearer sekret-token")]
    finally:
        api.close()
        server.shutdown()
