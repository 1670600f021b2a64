"""The probes' watchdog: it fires at its deadline, never once its block has ended, and all
watchdogs share one timer thread however many probes run."""
from __future__ import annotations

import threading
import time

from grader.bounded import Watchdog


def test_fires_at_the_deadline_and_never_after_the_block_ended() -> None:
    fired: list[str] = []
    start = time.monotonic()
    # many finished watchdogs with earlier deadlines must not hide a later live one
    for i in range(200):
        with Watchdog(start + 0.05 + i / 10000, lambda i=i: fired.append(f"done-{i}")):
            pass
    stopped = threading.Event()
    with Watchdog(start + 0.3, stopped.set) as dog:
        assert stopped.wait(10), "the live watchdog never fired"
        assert dog.expired
        assert time.monotonic() - start >= 0.3
    # an earlier deadline added after a later one is still honoured
    early = threading.Event()
    with Watchdog(time.monotonic() + 30, lambda: fired.append("late")):
        with Watchdog(time.monotonic() + 0.1, early.set):
            assert early.wait(10), "an earlier deadline waited for a later one"
    time.sleep(0.3)     # long past every finished watchdog's deadline
    assert fired == []


def test_one_thread_for_many_watchdogs() -> None:
    before = threading.active_count()
    dogs = [Watchdog(time.monotonic() + 60, lambda: None) for _ in range(100)]
    for dog in dogs:
        dog.__enter__()
    try:
        assert threading.active_count() <= before + 1
        assert not any(dog.expired for dog in dogs)
    finally:
        for dog in dogs:
            dog.__exit__(None, None, None)
