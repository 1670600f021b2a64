"""Reading an answer a student's pod wrote, within hard bounds: a byte cap, one deadline, no unbounded inflation.

Both probes read such answers: a route page through the router (``Probe._get``) and a service
through the API server's proxy (``Api.fetch``). Whatever the pod sends -- a 1 GiB page, an
endless chunked stream, one byte a second, a gzip bomb, a head of a million headers -- the grader
keeps at most ``max_body`` bytes and returns by the deadline:

* The answer is read from the socket in slices and parsed as it comes (llhttp, through
  ``httptools``), so nothing larger than a slice is ever buffered beyond the cap; the status line
  and headers are bounded like http.client's (100 headers; 64 KiB, which http.client allows
  each line and the grader the whole head).
* The grader asks for ``Accept-Encoding: identity``. A pod that compresses anyway with ``gzip``
  or ``deflate`` is unpacked incrementally with zlib's ``max_length``, so the *output* stops at
  the cap however small the input (10 GB of zeros compress to ~10 MB); any other encoding (br,
  zstd, compress...) is refused as the answer's problem.
* A watchdog shuts the socket at the deadline: a per-read timeout cannot end a trickle, because
  every byte resets it, and a chunk-size line read at one byte a second would outlast any.

Both probes send their GET the same way too (``Connections``), on a connection kept for the next
GET only after a complete, clean answer.
"""
from __future__ import annotations

import heapq
import http.client
import itertools
import re
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import httptools

SLICE = 64 << 10
_INFLATE = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 32 + zlib.MAX_WBITS}


@dataclass(frozen=True)
class Body:
    data: bytes
    cut: bool = False            # more was coming than the cap: ``data`` is its first ``max_body`` bytes
    error: str | None = None     # why the answer is incomplete or unusable (English, like ``HttpAnswer.error``)


def too_slow(seconds: float) -> str:
    return f"no complete answer within {seconds:g} s"


class Watchdog:
    """Calls ``stop`` once at ``deadline`` (``time.monotonic``) unless the reader finished first.

    ``expired`` (set before ``stop`` runs) tells the reader that a failed or empty read was the
    watchdog's doing; a plain flag, not an ``Event``, since nobody waits on it. ``stop``
    must only ever affect this exchange's own socket: a connection whose watchdog fired is closed,
    never handed back to the pool (``Api.fetch``), and once the block is left it cannot fire.
    Every watchdog of the process shares one timer thread (``_Timers``): a thread per probe was
    thousands of thread starts per batch, and their wake-ups, for deadlines that almost never come.
    """

    def __init__(self, deadline: float, stop: Callable[[], Any]) -> None:
        self.expired = False
        self.deadline = deadline
        self._stop = stop
        self._done = False
        self._lock = threading.Lock()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
        try:
            self._stop()
        except Exception:   # already closed or released: nothing left to cut
            pass

    def __enter__(self) -> "Watchdog":
        _TIMERS.add(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._done = True


class _Timers:
    """One daemon thread firing watchdogs whose deadline has come. A finished watchdog is not
    removed when its block ends (that would cost a search); the thread drops finished ones
    whenever it wakes, and it wakes only for the earliest deadline still pending, so a batch of
    probes that all answer in time costs a few wake-ups, not one each. The thread ends when
    nothing is pending for a while and starts again with the next watchdog."""

    IDLE = 30.0

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Watchdog]] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, dog: Watchdog) -> None:
        with self._cv:
            heapq.heappush(self._heap, (dog.deadline, next(self._seq), dog))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="grader-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is dog:       # earlier than what the thread waits for
                self._cv.notify()

    def _run(self) -> None:
        with self._cv:
            while True:
                now = time.monotonic()
                due: list[Watchdog] = []
                while self._heap and (self._heap[0][2]._done or self._heap[0][0] <= now):
                    dog = heapq.heappop(self._heap)[2]
                    if not dog._done:
                        due.append(dog)
                if due:
                    self._cv.release()      # a stop is a socket shutdown: quick, but not under the lock
                    try:
                        for dog in due:
                            dog._fire()
                    finally:
                        self._cv.acquire()
                    continue
                if not self._heap:
                    self._cv.wait(self.IDLE)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                self._cv.wait(self._heap[0][0] - now)


_TIMERS = _Timers()


class _Sink:
    """A body as the parser hands it over, decoded and capped as the module says.

    ``error`` is set (and nothing more is taken) for an encoding the grader does not unpack or
    corrupt compressed content; ``full`` once one byte more than ``max_body`` is kept, which tells a
    body of exactly ``max_body`` from a longer one."""

    __slots__ = ("coding", "max_body", "limit", "out", "raw", "inflater", "error", "full")

    def __init__(self, encoding: str | None, max_body: int) -> None:
        self.coding = coding = (encoding or "identity").strip().lower()
        self.max_body = max_body
        self.limit = max_body + 1
        self.out = bytearray()
        self.raw = 0
        self.full = False
        self.error: str | None = None
        self.inflater = zlib.decompressobj(_INFLATE[coding]) if coding in _INFLATE else None
        if coding not in ("", "identity") and coding not in _INFLATE:
            self.error = (f"the answer is compressed ({coding[:40]}), which the grader does not unpack "
                          "(it asks for Accept-Encoding: identity)")

    def add(self, chunk: bytes) -> None:
        if self.full or self.error is not None:
            return
        self.raw += len(chunk)
        out, limit = self.out, self.limit
        if self.inflater is None:
            out += chunk[: limit - len(out)]
        else:
            try:
                while chunk and len(out) < limit:
                    out += self.inflater.decompress(chunk, limit - len(out))
                    chunk = self.inflater.unconsumed_tail
                    if self.inflater.eof:   # a gzip member ended: another may follow (RFC 1952 allows several)
                        chunk = self.inflater.unused_data + chunk
                        if chunk:
                            self.inflater = zlib.decompressobj(_INFLATE[self.coding])
            except zlib.error as e:
                self.error = f"the answer's {self.coding} content is corrupt ({str(e)[:80]})"
                return
        self.full = len(out) >= limit

    def body(self, error: str | None = None) -> "Body":
        """What was kept (its first ``max_body`` bytes, truncated in place: one copy per answer)."""
        out = self.out
        cut = len(out) > self.max_body
        del out[self.max_body:]
        return Body(bytes(out), cut=cut and error is None and self.error is None, error=self.error or error)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Body


class NoAnswer(Exception):
    """No HTTP answer at all: ``error`` is why, ``late`` whether the deadline ended the wait."""

    def __init__(self, error: BaseException, late: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.late = late


class _Stale(Exception):
    """A kept connection the other end had closed: nothing was answered on it."""


# The answer's status line and headers: http.client's bounds (a line of 64 KiB, 100 headers),
# the first as a bound on the whole head (http.client would read 100 lines of 64 KiB).
MAX_HEAD = 64 << 10
MAX_HEADERS = 100
# What llhttp refuses by default, but http.client read and HTTP lets a client read (a
# hand-written server's answer is still the student's page): lines ended by a bare LF (RFC 9112
# 2.2: a recipient MAY), a header folded over two lines (5.2: a user agent MUST read it as
# spaces), a control character in a header's value (RFC 9110 5.5: MAY be kept), Content-Length
# beside chunked (RFC 9112 6.3: chunked overrides it). llhttp's other refusals (a space before a
# header's colon, two Content-Lengths, one that is not a number) stay refusals: no answer.
_AS_LENIENT_AS_HTTP_CLIENT = {"lenient_optional_cr_before_lf": True, "lenient_headers": True,
                              "lenient_chunked_length": True}
# What http.client refuses in a request target: controls and space (request splitting).
_BAD_TARGET = re.compile("[\x00-\x20\x7f]").search


class _TooLarge(Exception):
    pass


class _Beyond(Exception):
    """Bytes after the answer's end."""


class _Reader:
    """The parser's callbacks for one answer (``httptools.HttpResponseParser``): the status and
    headers of the final answer (an interim 1xx is skipped, as http.client skips 100 Continue),
    its body into a ``_Sink``, and whether the answer ended where its framing says."""

    __slots__ = ("parser", "max_body", "status", "headers", "head", "sink", "done", "extra", "eof_ends", "alive")

    def __init__(self, max_body: int) -> None:
        self.parser: Any = None
        self.max_body = max_body
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = False           # the final answer's headers are complete
        self.sink: _Sink | None = None
        self.done = False           # its body ended where its framing says
        self.extra = False          # something followed the answer on the connection
        self.eof_ends = False       # no length and not chunked: the body ends when the connection does
        self.alive = False          # the answer lets the connection be used again (asked when it ends:
                                    # llhttp forgets it once the message is complete)

    def on_message_begin(self) -> None:
        if self.done:   # a second answer nobody asked for: stop parsing (the first stands)
            self.extra = True
            raise _Beyond

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head:       # a chunked body's trailer: not the answer's headers (http.client drops it too)
            return
        if len(self.headers) >= MAX_HEADERS:
            raise _TooLarge(f"got more than {MAX_HEADERS} headers")
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self.headers = []       # interim: the final answer follows
            return
        self.status, self.head = status, True
        length = chunked = False
        coding = None
        for name, value in self.headers:
            name = name.lower()
            if name == b"content-length":
                length = True
            elif name == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
            elif name == b"content-encoding":
                coding = value.decode("latin-1")
        self.eof_ends = not (length or chunked or status in (204, 304))
        self.sink = _Sink(coding, self.max_body)

    def on_body(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink.add(data)

    def on_message_complete(self) -> None:
        if self.head:
            self.done = True
            self.alive = self.parser.should_keep_alive()

    def stop(self) -> bool:
        """Nothing more to read: the answer ended, or its body is full or unusable."""
        sink = self.sink
        return self.done or self.extra or (sink is not None and (sink.full or sink.error is not None))


def _request(path: str, headers: dict[str, str]) -> bytes:
    """``GET path`` with exactly ``headers``, refused as http.client refuses it (a control
    character, space or non-ASCII in the target, a line break in a header)."""
    if _BAD_TARGET(path):
        raise http.client.InvalidURL(f"URL can't contain control characters. {path!r}")
    lines = [f"GET {path} HTTP/1.1"]
    for name, value in headers.items():
        if "\r" in name or "\n" in name or ":" in name or "\r" in value or "\n" in value:
            raise ValueError(f"Invalid header {name!r}")
        lines.append(f"{name}: {value}")
    path.encode("ascii")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Connections:
    """GETs to one address, each bounded as this module says, over HTTP/1.1 connections, each
    kept for the next GET after a complete, clean answer (its whole body read to the end its
    framing gives, within the cap, before the deadline, nothing after it, and no ``Connection:
    close``). Anything else -- a cut, a broken or slow body, an answer the watchdog ended -- closes
    it, so an unread rest or a shut socket is never lent to another GET. A kept connection the
    other end closed meanwhile fails before any answer; that one GET is then sent again on a new
    connection.

    ``connect(seconds)`` makes an ``http.client.HTTPConnection`` (it may open it, bounded by
    ``seconds``), which opens the socket; it is called under the GET's watchdog. The GET is
    written on that socket and the answer parsed by llhttp (``httptools``, the parser of uvicorn;
    llhttp is Node.js's): read through http.client, whose headers go through the ``email``
    package, parsing was over half of a probe's CPU (a service-proxy probe took 0.59–0.75 ms of
    CPU, this way 0.38–0.48: ``bench/probe.py``). With ``keep=0`` nothing is kept and every GET
    says ``Connection: close``."""

    def __init__(self, connect: Callable[[float], http.client.HTTPConnection], keep: int) -> None:
        self._connect = connect
        self.keep = keep
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, path: str, headers: dict[str, str], deadline: float, max_body: int, seconds: float) -> Answer:
        """The answer to ``GET path``, or ``NoAnswer``; ``seconds``: the whole limit, for messages."""
        try:    # a request refused is sent nowhere, and costs no kept connection
            request = _request(path, headers if self.keep else {**headers, "Connection": "close"})
        except (ValueError, http.client.HTTPException) as e:
            raise NoAnswer(e, False) from None
        with self._lock:
            kept = self._idle.pop() if self._idle else None
        try:
            return self._exchange(kept, request, deadline, max_body, seconds)
        except _Stale:
            return self._exchange(None, request, deadline, max_body, seconds)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _exchange(self, kept: http.client.HTTPConnection | None, request: bytes, deadline: float, max_body: int,
                  seconds: float) -> Answer:
        conn = kept
        keep = False
        reader = _Reader(max_body)
        got = 0

        def cut() -> None:
            sock = conn.sock if conn is not None else None
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)

        try:
            with Watchdog(deadline, cut) as dog:
                if conn is None:
                    conn = self._connect(max(0.01, deadline - time.monotonic()))
                if conn.sock is None:
                    conn.connect()      # bounded by the socket timeout, which is the time left
                sock = conn.sock
                if dog.expired or sock is None:
                    raise TimeoutError("timed out")
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                sock.sendall(request)
                parser = reader.parser = httptools.HttpResponseParser(reader)
                parser.set_dangerous_leniencies(**_AS_LENIENT_AS_HTTP_CLIENT)
                while not reader.stop():
                    if dog.expired or time.monotonic() >= deadline:
                        raise TimeoutError("timed out")
                    data = sock.recv(SLICE)
                    if not data:
                        if dog.expired:
                            raise TimeoutError("timed out")
                        if reader.head and reader.eof_ends:
                            reader.done = True      # the body ended with the connection, as its framing says
                            break
                        raise (http.client.RemoteDisconnected("Remote end closed connection without response")
                               if not reader.head else EOFError("the connection closed before the answer's end"))
                    got += len(data)
                    if not reader.head and got > MAX_HEAD:
                        raise _TooLarge(f"the answer's status line and headers are over {MAX_HEAD >> 10} KiB")
                    try:
                        parser.feed_data(data)
                    except httptools.HttpParserUpgrade:     # a 101 answer: what follows is not HTTP
                        reader.done = reader.extra = True
                    except httptools.HttpParserError as e:
                        if not reader.done:
                            raise (e.__context__ if isinstance(e.__context__, _TooLarge) else e) from None
                        reader.extra = True     # after the answer's end: it stands, the connection goes
            sink = reader.sink or _Sink(None, max_body)
            keep = (bool(self.keep) and reader.done and not (reader.extra or sink.full or sink.error is not None
                                                             or dog.expired) and reader.alive)
            return Answer(reader.status, _headers(reader.headers), sink.body())
        except (OSError, http.client.HTTPException, ValueError, EOFError, _TooLarge, httptools.HttpParserError) as e:
            late = time.monotonic() >= deadline - 0.05
            if reader.head and reader.sink is not None:     # the answer came; what failed is its body
                error = too_slow(seconds) if late else (
                    f"the answer broke off after {reader.sink.raw} bytes ({type(e).__name__}: {str(e)[:80]})")
                return Answer(reader.status, _headers(reader.headers), reader.sink.body(error))
            if kept is not None and not late and got == 0 and isinstance(
                    e, (ConnectionError, http.client.RemoteDisconnected)):
                raise _Stale() from None
            raise NoAnswer(e, late) from None
        finally:
            if keep:
                with self._lock:
                    keep = len(self._idle) < self.keep
                    if keep:
                        self._idle.append(conn)   # type: ignore[arg-type]
            if not keep and conn is not None:
                conn.close()


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names and values as http.client gives them (ISO-8859-1; a repeated name: its last)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}
