"""The probes' HTTP/1.1 exchange (``bounded.Connections``, llhttp through httptools) on answers a real server can send: interim answers, bodies the connection ends, bytes after an answer, oversized heads, broken chunking, garbage, and request targets that would split a request.

The server is a real loopback TCP socket that writes scripted bytes, so the answers can be what
``http.server`` would never write. Each test says which part of the exchange it proves; the
end-to-end bounds (gzip bomb, 1 GiB, trickle) are in ``tests/test_probe_bounds.py``.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Callable, Iterator

import pytest

from grader.bounded import MAX_HEAD, Connections, NoAnswer

Script = Callable[[int, bytes], tuple[bytes, bool]]   # (connection number, request) -> (bytes, then close)


class RawServer:
    """Accepts connections on 127.0.0.1 and answers each request with ``script``'s bytes."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[tuple[int, bytes]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self._n = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._n += 1
            threading.Thread(target=self._serve, args=(conn, self._n), daemon=True).start()

    def _serve(self, conn: socket.socket, n: int) -> None:
        buf = b""
        with conn:
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    request, _, buf = buf.partition(b"\r\n\r\n")
                    self.requests.append((n, request))
                    answer, close = self.script(n, request)
                    conn.sendall(answer)
                    if close:
                        return
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def make(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def _conns(server: RawServer, keep: int = 4) -> Connections:
    return Connections(lambda s: http.client.HTTPConnection(server.address, timeout=s), keep)


def _get(conns: Connections, path: str = "/", max_body: int = 1000, seconds: float = 5.0):
    return conns.get(path, {"Host": "a.apps.example.com", "Accept-Encoding": "identity"},
                     time.monotonic() + seconds, max_body, seconds)


def _page(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def test_an_interim_answer_is_skipped_for_the_final_one(serve):
    """A 103 Early Hints (or 100 Continue) before the answer is not the answer: its status and
    headers are dropped, as http.client drops a 100."""
    server = serve(lambda n, r: (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
                                 + _page(b"hello", b"X-Final: yes\r\n"), False))
    got = _get(_conns(server))
    assert (got.status, got.body.data, got.body.error) == (200, b"hello", None)
    assert got.headers.get("X-Final") == "yes" and "Link" not in got.headers


def test_a_body_without_length_ends_with_the_connection(serve):
    """An HTTP/1.0-style answer (no Content-Length, not chunked) is complete when the server
    closes: the whole page, no error, and its connection is not used again."""
    server = serve(lambda n, r: (b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\npage %d" % n, True))
    conns = _conns(server)
    first, second = _get(conns), _get(conns)
    assert (first.status, first.body.data, first.body.error, first.body.cut) == (200, b"page 1", None, False)
    assert second.body.data == b"page 2"
    assert [n for n, _ in server.requests] == [1, 2]


def test_a_clean_answer_keeps_its_connection(serve):
    """The control for the two tests around it: HTTP/1.1 with a length, nothing after it."""
    server = serve(lambda n, r: (_page(b"page %d" % n), False))
    conns = _conns(server)
    assert [_get(conns).body.data for _ in range(3)] == [b"page 1"] * 3
    assert [n for n, _ in server.requests] == [1, 1, 1]


@pytest.mark.parametrize("answer", [
    pytest.param(b"HTTP/1.0 200 OK\nContent-Type: text/html\nContent-Length: 5\n\nhello", id="bare-lf"),
    pytest.param(b"HTTP/1.0 200 OK\nContent-Type: text/html\n\nhello", id="bare-lf-body-to-the-end"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 5\r\n\r\nhello", id="folded-header"),
    pytest.param(b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 5\r\n\r\nhello", id="control-in-a-value"),
    pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                 b"5\r\nhello\r\n0\r\n\r\n", id="length-beside-chunked"),
])
def test_an_answer_http_client_read_is_still_read(serve, answer):
    """A hand-written server's answer that http.client read, and HTTP lets a client read, is still
    the student's page, not "no answer": llhttp is told to be as lenient (``bounded``)."""
    server = serve(lambda n, r: (answer, True))
    got = _get(_conns(server))
    assert (got.status, got.body.data, got.body.error) == (200, b"hello", None)


@pytest.mark.parametrize("answer", [
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", id="connection-close"),
    pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", id="http-1.0"),
])
def test_an_answer_that_ends_its_connection_is_not_kept(serve, answer):
    """``Connection: close`` (or HTTP/1.0 without keep-alive) means the server may close at any
    moment: the connection is not used again, even when this server happens to leave it open."""
    server = serve(lambda n, r: (answer, False))
    conns = _conns(server)
    assert [_get(conns).body.data for _ in range(2)] == [b"x", b"x"]
    assert [n for n, _ in server.requests] == [1, 2]


def test_bytes_after_an_answer_do_not_become_the_next_students_answer(serve):
    """A server that writes a second, unasked-for answer behind the first: the first stands, and
    the connection is closed, so the next GET reads its own answer on a new connection."""
    def script(n: int, request: bytes) -> tuple[bytes, bool]:
        return (_page(b"mine") + _page(b"forged for the next one") if n == 1 else _page(b"page %d" % n)), False
    server = serve(script)
    conns = _conns(server)
    first, second = _get(conns), _get(conns)
    assert (first.status, first.body.data, first.body.error) == (200, b"mine", None)
    assert second.body.data == b"page 2"


def test_a_chunked_bodys_trailer_is_not_a_header(serve):
    """Fields after the last chunk (a trailer) are not the answer's headers: one named like a
    header does not replace it."""
    server = serve(lambda n, r: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n"
                                 b"5\r\nhello\r\n0\r\nContent-Type: application/json\r\nX-Trailer: 1\r\n\r\n", False))
    got = _get(_conns(server))
    assert (got.status, got.body.data, got.body.error) == (200, b"hello", None)
    assert got.headers.get("Content-Type") == "text/html" and "X-Trailer" not in got.headers


def test_a_chunked_body_that_breaks_off_is_the_answers_failure(serve):
    """The status came, then the connection closed in the middle of a chunk: an answer with an
    error that says so (the student's page), not "no answer"."""
    server = serve(lambda n, r: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", True))
    got = _get(_conns(server))
    assert got.status == 200 and got.body.data == b"hel"
    assert got.body.error is not None and got.body.error.startswith("the answer broke off after 3 bytes")


def test_broken_chunk_framing_is_the_answers_failure(serve):
    server = serve(lambda n, r: (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", False))
    got = _get(_conns(server))
    assert got.status == 200 and got.body.error is not None and "broke off" in got.body.error


@pytest.mark.parametrize("head", [
    pytest.param(b"X-Pad: " + b"a" * (MAX_HEAD + 10) + b"\r\n", id="one-header-over-64-kib"),
    pytest.param(b"".join(b"X-%d: 1\r\n" % i for i in range(150)), id="more-than-100-headers"),
])
def test_a_head_over_the_bounds_is_no_answer(serve, head):
    """http.client's bounds on a head (64 KiB, 100 headers) hold: the server is cut off there,
    not read to its end, however much it would send."""
    server = serve(lambda n, r: (b"HTTP/1.1 200 OK\r\n" + head + b"\r\n", False))
    with pytest.raises(NoAnswer) as e:
        _get(_conns(server))
    assert not e.value.late and ("64 KiB" in str(e.value) or "100 headers" in str(e.value))


@pytest.mark.parametrize("garbage", [
    pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="not-http"),
    pytest.param(b"HTTP/1.1 2OO OK\r\n\r\n", id="bad-status"),
    pytest.param(b"", id="closed-without-a-word"),
])
def test_garbage_or_silence_is_no_answer(serve, garbage):
    server = serve(lambda n, r: (garbage, True))
    with pytest.raises(NoAnswer) as e:
        _get(_conns(server))
    assert not e.value.late


@pytest.mark.parametrize("path", ["/a\r\nX-Injected: 1", "/a b", "/\x00", "/ページ", "/caf\u00e9"])
def test_a_target_that_would_split_the_request_is_never_sent(serve, path):
    """A route's path is the student's: control characters, a space or non-ASCII are refused
    before anything is written, as http.client refuses them."""
    server = serve(lambda n, r: (_page(b"x"), False))
    with pytest.raises(NoAnswer):
        _get(_conns(server), path)
    time.sleep(0.05)    # let the server record anything that might have been written
    assert server.requests == []


def test_a_refused_target_costs_no_kept_connection(serve):
    """One student's unsendable path does not close the connection kept for the next."""
    server = serve(lambda n, r: (_page(b"page %d" % n), False))
    conns = _conns(server)
    assert _get(conns).body.data == b"page 1"
    with pytest.raises(NoAnswer):
        _get(conns, "/a b")
    assert _get(conns).body.data == b"page 1"
    assert [n for n, _ in server.requests] == [1, 1]


def test_a_stale_kept_connection_is_replaced_once(serve):
    """The server closes a kept connection while it is idle: the next GET goes again on a new one
    and gets its answer."""
    server = serve(lambda n, r: (_page(b"page %d" % n), n == 1))
    conns = _conns(server)
    assert _get(conns).body.data == b"page 1"
    time.sleep(0.05)
    assert _get(conns).body.data == b"page 2"
