"""``pods/exec`` over the WebSocket protocol kubectl 1.30+ and the kubernetes client speak.

The request is a GET with ``command=`` repeated, ``container``, ``stdin``/``stdout``/``stderr``
/``tty``, upgraded to a WebSocket whose subprotocol names the channel protocol: kubectl offers
``v5.channel.k8s.io`` first, then ``v4.channel.k8s.io`` (the kubernetes Python client offers v4,
newer ones v5). Every binary message starts with its channel byte: 0 stdin, 1 stdout, 2 stderr,
3 the error channel, 4 resize, 255 close (v5); the error channel carries one ``metav1.Status``
at the end, ``Success`` or ``Failure`` with reason ``NonZeroExitCode`` and the exit code as the
``ExitCode`` cause (k8s.io/apimachinery/pkg/util/remotecommand and
k8s.io/client-go/tools/remotecommand: v4 ``errorDecoderV4``, which is how kubectl learns the exit
code). The WebSocket itself is ``wsproto``'s, a sans-IO implementation of RFC 6455, on the
handler's socket: the handshake, masking and framing are not ours to get subtly wrong.

Refusals are the real ones, before the upgrade: ``container not found ("c")`` for a container
that is not running (kubectl prints ``unable to upgrade connection: …``), ``you must specify at
least 1 command``. SPDY (the pre-1.30 upgrade) is not spoken: 400 ``Upgrade request required``.
The commands themselves are ``shell.exec_argv``'s.
"""
from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Request

from .apitypes import ApiStatus
from .podlogs import _container, of as pod_logs
from .shell import Container, exec_argv

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
_MAX_FRAME = 32 * 1024
_MAX_OUTPUT = 1 << 20     # per stream: a command's answer is bounded whatever it is asked


def exit_status(argv: list[str], code: int) -> dict:
    """The error channel's last word (v4+)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {_go_list(argv)}, exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def _go_list(argv: list[str]) -> str:
    return "[" + " ".join(argv) + "]"


def serve(handler: Any, api: Any, route: Any) -> None:
    """GET .../pods/NAME/exec?command=…, upgraded to a WebSocket."""
    if route.rt.plural != "pods" or route.rt.group:
        raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
    query = parse_qs(urlsplit(handler.path).query, keep_blank_values=True)
    params = {k: v[-1] for k, v in query.items()}
    argv = query.get("command", [])
    pod = api.store.get(route.rt, route.namespace, route.name, raise_missing=True)
    c, cs = _container(pod, params)
    if "running" not in (cs.get("state") or {}) or pod["metadata"].get("deletionTimestamp"):
        raise ApiStatus(400, "BadRequest", f'container not found ("{c.get("name", "")}")')
    if not argv:
        raise ApiStatus(400, "BadRequest", "you must specify at least 1 command")
    offered = [p.strip() for p in (handler.headers.get("Sec-WebSocket-Protocol") or "").split(",") if p.strip()]
    chosen = next((p for p in PROTOCOLS if p in offered), None)
    if (handler.headers.get("Upgrade") or "").lower() != "websocket" or chosen is None:
        raise ApiStatus(400, "BadRequest", "Upgrade request required")
    ws = WSConnection(ConnectionType.SERVER)
    head = handler.requestline + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in handler.headers.items()) + "\r\n"
    ws.receive_data(head.encode("latin-1"))
    if not any(isinstance(ev, Request) for ev in ws.events()):
        raise ApiStatus(400, "BadRequest", "not a WebSocket handshake")
    handler.close_connection = True
    handler._record_once(101)
    handler._status = 101
    send = handler.wfile.write
    send(ws.send(AcceptConnection(subprotocol=chosen)))
    out, err, code = exec_argv(Container(api.store, pod, c, on_request=pod_logs(api).access), argv)
    out, err = out[:_MAX_OUTPUT], err[:_MAX_OUTPUT]
    for channel, data in ((1, out if params.get("stdout", "true") != "false" else b""),
                          (2, err if params.get("stderr", "true") != "false" else b"")):
        for i in range(0, len(data), _MAX_FRAME):
            send(ws.send(BytesMessage(data=bytes([channel]) + data[i:i + _MAX_FRAME])))
    send(ws.send(BytesMessage(data=b"\x03" + json.dumps(exit_status(argv, code)).encode())))
    send(ws.send(CloseConnection(code=1000)))
    handler.wfile.flush()
    _await_close(handler, ws)


def _await_close(handler: Any, ws: WSConnection) -> None:
    """Read until the client answers our close (or 5 s pass), so it sees a clean close."""
    try:
        handler.connection.settimeout(5)
        while True:
            data = handler.connection.recv(4096)
            if not data:
                return
            ws.receive_data(data)
            if any(isinstance(ev, CloseConnection) for ev in ws.events()):
                return
    except (OSError, socket.timeout):
        return
    except Exception:   # a malformed frame from the client: the answer is already sent
        return
