"""Reading an answer a student's pod wrote, within hard bounds: a byte cap, one deadline, no unbounded inflation.

Both probes read such answers: a route page through the router (``Probe._get``) and a service
through the API server's proxy (``Api.fetch``). Whatever the pod sends -- a 1 GiB page, an
endless chunked stream, one byte a second, a gzip bomb -- the grader keeps at most ``max_body``
bytes and returns by the deadline:

* The body is read raw (``read1``, no transparent decoding) in slices, so nothing larger than a
  slice is ever buffered beyond the cap.
* The grader asks for ``Accept-Encoding: identity``. A pod that compresses anyway with ``gzip``
  or ``deflate`` is unpacked incrementally with zlib's ``max_length``, so the *output* stops at
  the cap however small the input (10 GB of zeros compress to ~10 MB); any other encoding (br,
  zstd, compress...) is refused as the answer's problem.
* A watchdog shuts the socket at the deadline: a per-read timeout cannot end a trickle, because
  every byte resets it, and a chunk-size line read at one byte a second would outlast any.

Both probes send their GET the same way too (``Connections``): the standard library's
``http.client`` on a connection kept for the next GET only after a complete, clean answer.
"""
from __future__ import annotations

import heapq
import http.client
import itertools
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable

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

    ``expired`` tells the reader that a failed or empty read was the watchdog's doing. ``stop``
    must only ever affect this exchange's own socket: a connection whose watchdog fired is closed,
    never handed back to the pool (``Api.fetch``), and once the block is left it cannot fire.
    Every watchdog of the process shares one timer thread (``_Timers``): a thread per probe was
    thousands of thread starts per batch, and their wake-ups, for deadlines that almost never come.
    """

    def __init__(self, deadline: float, stop: Callable[[], Any]) -> None:
        self.expired = threading.Event()
        self.deadline = deadline
        self._stop = stop
        self._done = False
        self._lock = threading.Lock()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired.set()
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


def read_body(read1: Callable[[int], bytes], encoding: str | None, max_body: int, deadline: float,
              expired: threading.Event, seconds: float) -> Body:
    """The body through ``read1`` (raw bytes, at most n per call), bounded as the module says.

    ``seconds`` is the probe's whole time limit, for the message when the deadline ends it.
    """
    coding = (encoding or "identity").strip().lower()
    if coding not in ("", "identity") and coding not in _INFLATE:
        return Body(b"", error=f"the answer is compressed ({coding[:40]}), which the grader does not unpack "
                               "(it asks for Accept-Encoding: identity)")
    inflater = zlib.decompressobj(_INFLATE[coding]) if coding in _INFLATE else None
    out = bytearray()
    raw = 0
    limit = max_body + 1        # one byte more than kept: tells a body of exactly max_body from a longer one
    try:
        while len(out) < limit:
            if expired.is_set() or time.monotonic() >= deadline:
                raise TimeoutError
            chunk = read1(min(SLICE, limit - len(out)) if inflater is None else SLICE)
            if not chunk:
                if expired.is_set():
                    raise TimeoutError
                break
            raw += len(chunk)
            if inflater is None:
                out += chunk
                continue
            while chunk and len(out) < limit:
                out += inflater.decompress(chunk, limit - len(out))
                chunk = inflater.unconsumed_tail
                if inflater.eof:        # a gzip member ended: another may follow (RFC 1952 allows several)
                    chunk = inflater.unused_data + chunk
                    inflater = zlib.decompressobj(_INFLATE[coding]) if chunk else inflater
                    if not chunk:
                        break
    except zlib.error as e:
        return Body(_kept(out, max_body), error=f"the answer's {coding} content is corrupt ({str(e)[:80]})")
    except Exception as e:      # the socket, TLS or chunked framing failed mid-body
        if expired.is_set() or time.monotonic() >= deadline - 0.01:
            return Body(_kept(out, max_body), error=too_slow(seconds))
        return Body(_kept(out, max_body),
                    error=f"the answer broke off after {raw} bytes ({type(e).__name__}: {str(e)[:80]})")
    cut = len(out) > max_body
    return Body(_kept(out, max_body), cut=cut)


def _kept(out: bytearray, max_body: int) -> bytes:
    """The first ``max_body`` bytes, truncated in place: one copy per answer, not two."""
    del out[max_body:]
    return bytes(out)


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


class Connections:
    """GETs to one address, each bounded as this module says, over HTTP/1.1 connections of the
    standard library's ``http.client``, each kept for the next GET after a complete, clean answer
    (its whole body read to the end its framing gives, within the cap, before the deadline, and no
    ``Connection: close``). Anything else -- a cut, a broken or slow body, an answer the watchdog
    ended -- closes it, so an unread rest or a shut socket is never lent to another GET. A kept
    connection the other end closed meanwhile fails before any answer; that one GET is then sent
    again on a new connection.

    ``connect(seconds)`` makes a connection (it may open it, bounded by ``seconds``); it is called
    under the GET's watchdog. With ``keep=0`` nothing is kept and every GET says
    ``Connection: close``. Why not urllib3, which the API client uses: its pool and response
    wrappers cost a third of a probe's CPU (a service-proxy probe took 0.9–1.1 ms of CPU through
    the client, 0.63 ms this way), and what parses the answer is ``http.client`` either way."""

    def __init__(self, connect: Callable[[float], http.client.HTTPConnection], keep: int) -> None:
        self._connect = connect
        self.keep = keep
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self, path: str, headers: dict[str, str], deadline: float, max_body: int, seconds: float) -> Answer:
        """The answer to ``GET path``, or ``NoAnswer``; ``seconds``: the whole limit, for messages."""
        with self._lock:
            kept = self._idle.pop() if self._idle else None
        try:
            return self._exchange(kept, path, headers, deadline, max_body, seconds)
        except _Stale:
            return self._exchange(None, path, headers, deadline, max_body, seconds)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _exchange(self, kept: http.client.HTTPConnection | None, path: str, headers: dict[str, str],
                  deadline: float, max_body: int, seconds: float) -> Answer:
        conn = kept
        answered = keep = False

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
                if dog.expired.is_set() or conn.sock is None:
                    raise TimeoutError("timed out")
                conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
                conn.request("GET", path, headers=headers if self.keep else {**headers, "Connection": "close"})
                resp = conn.getresponse()
                status, got = resp.status, dict(resp.getheaders())
                answered = True
                body = read_body(resp.read1, resp.getheader("Content-Encoding"), max_body, deadline,
                                 dog.expired, seconds)
            # the body ended where its framing says: the last chunk (http.client closes the
            # response there) or all of its Content-Length (it does not: closed here)
            ended = resp.isclosed() or resp.length == 0
            if ended:
                resp.close()
            keep = bool(self.keep) and ended and not (body.cut or body.error or dog.expired.is_set()
                                                       or resp.will_close)
            return Answer(status, got, body)
        except (OSError, http.client.HTTPException, ValueError) as e:
            late = time.monotonic() >= deadline - 0.05
            if answered:        # read_body keeps the body's own failures; this is what came after
                return Answer(status, got, Body(b"", error=too_slow(seconds) if late else
                                                f"{type(e).__name__}: {str(e)[:160]}"))
            if kept is not None and not late and isinstance(
                    e, (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine)):
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
