"""``pods/log``: what ``kubectl logs`` shows for the simulated containers.

A container's log is its image's start-up lines (as the real images print them: httpd's
``AH00558``/``AH00489``/``AH00094`` notices, nginx's docker-entrypoint lines and ``[notice]``s,
hello-openshift's ``serving on``), then one access-log line per request the router or the
service proxy sent it, in the image's format (Apache's combined log format; nginx's adds the
``X-Forwarded-For`` field). The parameters are the real ones (``PodLogOptions``): ``container``,
``tailLines``, ``limitBytes``, ``timestamps``, ``sinceSeconds``, ``previous`` and ``follow``
(streamed, chunked, until the container stops, the pod goes or the client hangs up). Refusals
are the kubelet's 400s: ``container "c" in pod "p" is waiting to start: …``, ``previous
terminated container "c" in pod "p" not found``, ``a container name must be specified for pod
p, choose one of: [...]``.

Memory is bounded: ``MAX_LINES`` access lines per pod, ``MAX_PODS`` pods (the least recently
written forgotten first).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from datetime import datetime, timezone
from typing import Any

from .apitypes import ApiStatus
from .workloads import listening_ports, lookup_image

MAX_LINES = 500
MAX_PODS = 5000
_FOLLOW_POLL = 0.2
_made = threading.Lock()


class PodLogs:
    """Access-log lines per pod uid: (time, container, text)."""

    def __init__(self) -> None:
        self._lines: OrderedDict[str, deque[tuple[int, float, str, str]]] = OrderedDict()
        self._lock = threading.Lock()
        self._seq = 0

    def access(self, pod: dict, port: int, client: str, method: str, path: str, code: int, size: int,
               agent: str = "-") -> None:
        """One request served by ``pod`` on ``port``: an access-log line in its container's log."""
        for c in (pod.get("spec") or {}).get("containers") or []:
            if port in listening_ports(c):
                break
        else:
            return
        img = lookup_image(c.get("image", ""))
        if img is None or img.name == "hello-openshift":
            line = "Servicing request." if img is not None else ""
        else:
            t = datetime.now(timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
            line = f'{client} - - [{t}] "{method} {path} HTTP/1.1" {code} {size} "-" "{agent}"'
            if img.name.startswith("nginx"):
                line += ' "-"'
        if not line:
            return
        uid = pod["metadata"].get("uid", "")
        with self._lock:
            lines = self._lines.pop(uid, None) or deque(maxlen=MAX_LINES)
            self._seq += 1
            lines.append((self._seq, time.time(), c.get("name", ""), line))
            self._lines[uid] = lines
            while len(self._lines) > MAX_PODS:
                self._lines.popitem(last=False)

    def write(self, pod: dict, container: str, texts: list[str]) -> None:
        """What a command printed (a container that ran to its end, ``oneshot.py``), as log lines."""
        uid = pod["metadata"].get("uid", "")
        with self._lock:
            lines = self._lines.pop(uid, None) or deque(maxlen=MAX_LINES)
            for text in texts[-MAX_LINES:]:
                self._seq += 1
                lines.append((self._seq, time.time(), container, text))
            self._lines[uid] = lines
            while len(self._lines) > MAX_PODS:
                self._lines.popitem(last=False)

    def since(self, uid: str, container: str, after: int = 0, upto: int | None = None) -> list[tuple[float, str]]:
        """The container's access lines (time, text) with sequence numbers in (after, upto]."""
        with self._lock:
            return [(t, text) for n, t, c, text in self._lines.get(uid, ())
                    if c == container and n > after and (upto is None or n <= upto)]

    @property
    def last(self) -> int:
        """Sequence number of the latest line written (of any pod)."""
        with self._lock:
            return self._seq


def of(api: Any) -> PodLogs:
    """The server's log keeper (made on first use)."""
    with _made:
        logs = getattr(api, "pod_logs", None)
        if logs is None:
            logs = api.pod_logs = PodLogs()
        return logs


def _ts(value: str | None) -> float:
    try:
        return datetime.strptime((value or "")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return time.time()


def startup_lines(c: dict, pod: dict, started: str | None) -> list[tuple[float, str]]:
    """What the image prints when it starts (empty for an image that prints nothing)."""
    img = lookup_image(c.get("image", ""))
    if img is None or c.get("command"):
        return []
    t = _ts(started)
    ip = (pod.get("status") or {}).get("podIP", "127.0.0.1")
    when = datetime.fromtimestamp(t, timezone.utc)
    apache = when.strftime("%a %b %d %H:%M:%S.000000 %Y")
    fqdn = (f"AH00558: httpd: Could not reliably determine the server's fully qualified domain name, using {ip}. "
            "Set the 'ServerName' directive globally to suppress this message")
    if img.name == "httpd-24 (s2i)":
        text = ["=> sourcing 10-set-mpm.sh ...", "=> sourcing 20-copy-config.sh ...", "=> sourcing 40-ssl-certs.sh ...", fqdn,
                f"[{apache}] [ssl:warn] [pid 1:tid 140000000000000] AH01909: {ip}:8443:0 server certificate does NOT include an ID which matches the server name",
                f"[{apache}] [mpm_event:notice] [pid 1:tid 140000000000000] AH00489: Apache/2.4.34 (Red Hat) OpenSSL/1.0.2k-fips configured -- resuming normal operations",
                f"[{apache}] [core:notice] [pid 1:tid 140000000000000] AH00094: Command line: 'httpd -D FOREGROUND'"]
    elif img.name == "httpd":
        text = [fqdn, fqdn,
                f"[{apache}] [mpm_event:notice] [pid 1:tid 1] AH00489: Apache/2.4.62 (Unix) configured -- resuming normal operations",
                f"[{apache}] [core:notice] [pid 1:tid 1] AH00094: Command line: 'httpd -D FOREGROUND'"]
    elif img.name.startswith("nginx"):
        n = when.strftime("%Y/%m/%d %H:%M:%S")
        text = ["/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration",
                "/docker-entrypoint.sh: Looking for shell scripts in /docker-entrypoint.d/",
                "/docker-entrypoint.sh: Launching /docker-entrypoint.d/20-envsubst-on-templates.sh",
                "/docker-entrypoint.sh: Configuration complete; ready for start up",
                f'{n} [notice] 1#1: using the "epoll" event method', f"{n} [notice] 1#1: nginx/1.27.3",
                f"{n} [notice] 1#1: start worker processes", f"{n} [notice] 1#1: start worker process 29"]
    elif img.name == "hello-openshift":
        text = [f"serving on {p}" for p in sorted(img.http_ports, reverse=True)]
    else:
        text = []
    return [(t, line) for line in text]


def _bad(message: str) -> ApiStatus:
    return ApiStatus(400, "BadRequest", message)


def _container(pod: dict, params: dict[str, str]) -> tuple[dict, dict]:
    """(spec container, its status) the request names; the kubelet's 400s otherwise."""
    name, spec = pod["metadata"]["name"], pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    want = params.get("container") or ""
    if not want:
        if len(names) != 1:
            raise _bad(f"a container name must be specified for pod {name}, choose one of: [{' '.join(map(str, names))}]")
        want = names[0]
    if want not in names:
        raise _bad(f"container {want} is not valid for pod {name}")
    cs = next((s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s.get("name") == want), {})
    return spec["containers"][names.index(want)], cs


def _int(params: dict[str, str], key: str) -> int | None:
    raw = params.get(key)
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise _bad(f'invalid value for {key}: "{raw}"') from None
    if value < 0:
        raise _bad(f"{key}: Invalid value: {value}: must be greater than or equal to 0")
    return value


def read(api: Any, pod: dict, params: dict[str, str]) -> tuple[list[tuple[float, str]], dict, dict]:
    """The log lines a request asks for, with the container and its status."""
    c, cs = _container(pod, params)
    meta, name = pod["metadata"], c.get("name", "")
    state = cs.get("state") or {}
    if params.get("previous") in ("true", "1"):
        if not (cs.get("lastState") or {}).get("terminated"):
            raise _bad(f'previous terminated container "{name}" in pod "{meta["name"]}" not found')
        return [], c, cs
    waiting = (state.get("waiting") or {}).get("reason") or ("" if state else "ContainerCreating")
    if waiting == "CrashLoopBackOff":   # the last run's output: nothing, or a one-shot command's (oneshot.py)
        return of(api).since(meta.get("uid", ""), name), c, cs
    if waiting:
        why = "trying and failing to pull image" if waiting in ("ErrImagePull", "ImagePullBackOff") else waiting
        raise _bad(f'container "{name}" in pod "{meta["name"]}" is waiting to start: {why}')
    lines = startup_lines(c, pod, (state.get("running") or {}).get("startedAt")) + of(api).since(meta.get("uid", ""), name)
    return lines, c, cs


def _render(lines: list[tuple[float, str]], stamps: bool) -> bytes:
    out = []
    for t, text in lines:
        prefix = datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z ") if stamps else ""
        out.append(f"{prefix}{text}\n")
    return "".join(out).encode()


def serve(handler: Any, api: Any, route: Any, params: dict[str, str]) -> None:
    """GET .../pods/NAME/log."""
    if route.rt.plural != "pods" or route.rt.group or handler.command not in ("GET", "HEAD"):
        raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
    store = api.store
    pod = store.get(route.rt, route.namespace, route.name, raise_missing=True)
    lines, c, _ = read(api, pod, params)
    tail, limit, since = _int(params, "tailLines"), _int(params, "limitBytes"), _int(params, "sinceSeconds")
    if since is not None:
        lines = [ln for ln in lines if ln[0] >= time.time() - since]
    if tail is not None:
        lines = lines[len(lines) - tail:] if tail else []
    stamps = params.get("timestamps") in ("true", "1")
    body = _render(lines, stamps)
    if limit is not None:
        body = body[:limit]
    if params.get("follow") not in ("true", "1"):
        handler._send(200, body, "text/plain")
        return
    start_stream(handler, 200, "text/plain")
    handler.close_connection = True
    logs = of(api)
    seen = logs.last
    try:
        chunk(handler, body)
        while getattr(api, "_httpd", None) is not None:
            time.sleep(_FOLLOW_POLL)
            now = store.get(route.rt, route.namespace, route.name)
            uid = pod["metadata"].get("uid", "")
            mark = logs.last
            chunk(handler, _render(logs.since(uid, c.get("name", ""), seen, mark), stamps))
            seen = mark
            cs = next((s for s in ((now or {}).get("status") or {}).get("containerStatuses") or []
                       if s.get("name") == c.get("name")), {})
            if now is None or now["metadata"].get("uid") != uid or now["metadata"].get("deletionTimestamp") \
                    or "running" not in (cs.get("state") or {}):
                break
        end_stream(handler)
    except OSError:    # the client hung up (Ctrl-C on kubectl logs -f)
        pass


def start_stream(handler: Any, code: int, ctype: str, headers: dict[str, str] | None = None) -> None:
    """Send a chunked answer's head (the body follows with ``chunk`` and ``end_stream``)."""
    handler.send_response(code)
    handler.send_header("Content-Type", ctype)
    handler.send_header("Transfer-Encoding", "chunked")
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler._record_once(code)
    handler._status = code


def chunk(handler: Any, data: bytes) -> None:
    if data:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        handler.wfile.flush()


def end_stream(handler: Any) -> None:
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()
