"""Shared fixtures: one embedded cluster per test session, reached over real HTTP by the real client."""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
XSD = ROOT.parent / "shared" / "junit" / "junit-10.xsd"


@pytest.fixture(scope="session")
def cluster() -> Iterator["object"]:
    from grader.cluster import EmbeddedCluster

    with EmbeddedCluster() as c:
        yield c


@pytest.fixture(scope="session")
def kubeconfig(cluster, tmp_path_factory) -> Path:
    return cluster.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="session")
def api(kubeconfig):
    from grader.kube import Api

    a = Api(kubeconfig=str(kubeconfig))
    yield a
    a.close()


@pytest.fixture
def fresh_ns(cluster, request) -> str:
    """A new, empty namespace named after the test."""
    import re
    import secrets

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + "-" + secrets.token_hex(2)
    cluster.create_namespace(name)
    return name


@pytest.fixture(autouse=True)
def _english_locale(monkeypatch):
    """Tests assert on messages: fix the language unless a test sets it."""
    monkeypatch.setenv("LANG", "C.UTF-8")
    for var in ("LC_ALL", "LC_MESSAGES", "LANGUAGE", "GRADER_LANG", "GRADER_WAIT", "GRADER_COURSE",
                "KUBECONFIG", "GRADER_ROUTER", "GRADER_ROUTE_DOMAIN", "GRADER_EXERCISES"):
        monkeypatch.delenv(var, raising=False)


class FakeClock:
    """Real time plus every sleep asked for, which returns at once: requests still take the time
    they take, backoff takes none. Given to ``RetryPolicy(clock=c, sleep=c.sleep)``, retry and
    deadline logic run exactly as in production (what is slept is in ``slept``) without waiting."""

    def __init__(self) -> None:
        import threading
        self.slept: list[float] = []
        self._ahead = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        import time
        return time.monotonic() + self._ahead

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._ahead += seconds

    def policy(self, **kwargs: float):
        """A ``RetryPolicy`` (with ``kwargs``) that lives on this clock."""
        from grader.kube import RetryPolicy
        return RetryPolicy(**kwargs, clock=self, sleep=self.sleep)


def run_grade(*args: str, cwd: Path | None = None, timeout: float = 120, env: dict | None = None):
    """``python -m grader ARGS`` in a child process, finding this checkout's package first."""
    import subprocess
    import sys
    environ = {**os.environ, **(env or {})}
    environ["PYTHONPATH"] = str(ROOT) + (os.pathsep + environ["PYTHONPATH"] if environ.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, "-m", "grader", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environ)


def ctrl_c_works() -> None:
    """``preexec_fn`` for a child a test will stop with SIGINT, as a person's Ctrl-C would: a
    shell that starts a script in the background without job control starts it with SIGINT
    ignored, the ignoring is inherited, and Python then keeps it ignored. A terminal does not."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def needs_kubectl() -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def xsd_or_skip():
    if not XSD.is_file():
        pytest.skip(f"JUnit schema not found at {XSD} (it comes with the project's shared/ folder)")
    from lxml import etree
    return etree.XMLSchema(etree.parse(str(XSD)))


