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
"""
from __future__ import annotations

import heapq
import itertools
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
