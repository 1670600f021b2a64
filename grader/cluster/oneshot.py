"""Containers that run a command to its end: ``kubectl run tmp --rm -i --restart=Never
--image=ubi9/ubi -- curl -s http://hello/``, the usual way to try a service from inside the cluster.

The kubelet runs the command once, with the sandbox's read-only command set (``shell.py``), when
the container's ``command``+``args`` is one of those commands or an ``sh -c`` made only of them;
anything else (a ``sleep``, a server, a command the sandbox does not know) keeps running as before,
so this never turns a long-lived container into a finished one. The output becomes the
container's log, and the container ends as a real one does (kubelet ``kuberuntime``): state
``terminated`` with ``exitCode`` and ``reason`` ``Completed`` (0) or ``Error``; with
``restartPolicy: Never`` the pod's phase is ``Succeeded`` or ``Failed``, otherwise the kubelet
restarts it (``CrashLoopBackOff``). kubectl then prints the log and removes the pod (``--rm``),
as against a cluster.
"""
from __future__ import annotations

import posixpath
import shlex
import threading
from collections import OrderedDict
from typing import Any

from .shell import Container, exec_argv

ONE_SHOT = frozenset(("curl", "wget", "echo", "env", "printenv", "cat", "ls", "df", "hostname", "id", "whoami",
                      "pwd", "true", "false"))
_SHELLS = ("sh", "bash", "ash")
_MAX_RUNS = 2000
_runs: OrderedDict[str, tuple[str, int, str]] = OrderedDict()
_lock = threading.Lock()


def argv_of(c: dict) -> list[str] | None:
    """The command line a container runs to completion, or None if it is not one we run."""
    argv = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
    if not argv:
        return None
    cmd = posixpath.basename(argv[0])
    if cmd in _SHELLS and argv[1:2] == ["-c"] and len(argv) >= 3:
        try:
            lex = shlex.shlex(argv[2], posix=True, punctuation_chars=";&|")
            lex.whitespace_split = True
            tokens = list(lex)
        except ValueError:
            return None
        starts, expect = [], True
        for tok in tokens:
            if tok in (";", "&&", "||"):
                expect = True
            elif tok in ("|", "&") or set(tok) <= set(";&|<>"):
                return None
            elif expect:
                starts.append(posixpath.basename(tok))
                expect = False
        return argv if starts and all(s in ONE_SHOT for s in starts) else None
    return argv if cmd in ONE_SHOT else None


def run_once(api: Any, store: Any, pod: dict, c: dict, argv: list[str]) -> tuple[int, str]:
    """(exit code, finishedAt) of the container's one run; the first call runs it and writes its
    output to the pod's log, later calls (every resync) answer the same."""
    from .ctlutil import now
    from .podlogs import of as pod_logs
    key = f"{pod['metadata'].get('uid', '')}/{c.get('name', '')}"
    with _lock:
        done = _runs.get(key)
    if done is not None:
        return done[1], done[2]
    logs = pod_logs(api)
    out, err, code = exec_argv(Container(store, pod, c, on_request=logs.access), argv)
    text = (out + err).decode("utf-8", "replace")
    logs.write(pod, c.get("name", ""), text.splitlines())
    with _lock:
        _runs[key] = (text, code, now())
        while len(_runs) > _MAX_RUNS:
            _runs.popitem(last=False)
        return code, _runs[key][2]


def terminated(code: int, started: str | None, finished: str) -> dict:
    """A container state as the kubelet reports an exited one."""
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                           "startedAt": started or finished, "finishedAt": finished}}
