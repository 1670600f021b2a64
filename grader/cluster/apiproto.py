"""The protobuf bodies kubectl sends to the embedded API server.

kubectl's generator commands (``kubectl create namespace|configmap|secret|deployment|service``)
build typed objects and POST them as ``application/vnd.kubernetes.protobuf`` (the ``k8s\\0``
envelope around a ``runtime.Unknown``), with no fallback to JSON; students use these commands in
the lessons. This module decodes exactly those kinds: a small wire-format reader and the field
numbers of the messages involved, taken from Kubernetes' ``generated.proto``. Fields it does not
know are skipped (kubectl leaves them empty for these commands); anything else in protobuf is
refused with 415 and a hint to use ``-f``, which kubectl always sends as JSON.
``tests/test_embedded_cluster.py`` checks each kind against ``kubectl create ... --dry-run=client
-o json``.
"""
from __future__ import annotations

import base64
from typing import Any, Iterator, Union

MAGIC = b"k8s\x00"

# A field's decoding: a scalar kind, or ("msg"|"msgs", schema) for (repeated) nested messages.
How = Union[str, tuple[str, "Schema"]]
Schema = dict[int, tuple[str, How]]


class Unsupported(ValueError):
    """A protobuf body this server does not decode."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise Unsupported("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > len(buf):
                raise Unsupported("truncated field")
            yield number, buf[i:i + size]
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise Unsupported(f"wire type {wire}")


def _text(v: int | bytes) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _int(v: int | bytes) -> int:
    if isinstance(v, bytes):
        raise Unsupported("a number was expected")
    return v - (1 << 64) if v >= 1 << 63 else v          # int32/int64 negatives are 10-byte varints


def _entry(buf: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for n, x in _fields(buf):
        if n == 1:
            key = _text(x)
        elif n == 2 and isinstance(x, bytes):
            value = x
    return key, value


def _int_or_string(buf: bytes) -> int | str:
    parts = dict(_fields(buf))
    return _text(parts.get(3, b"")) if _int(parts.get(1, 0)) == 1 else _int(parts.get(2, 0))


def _message(buf: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number not in schema:
            continue
        name, how = schema[number]
        if how == "str":
            if value:                 # gogo-proto writes empty strings; Go's JSON omits them (omitempty)
                out[name] = _text(value)
        elif how == "int":
            out[name] = _int(value)
        elif how == "int0":           # a non-pointer int32 with omitempty: gogo writes 0, JSON omits it
            if _int(value):
                out[name] = _int(value)
        elif how == "bool":
            out[name] = bool(value)
        elif not isinstance(value, bytes):
            raise Unsupported(f"field {name} is not length-delimited")
        elif how == "strs":
            out.setdefault(name, []).append(value.decode("utf-8"))
        elif how == "map":
            k, v = _entry(value)
            out.setdefault(name, {})[k] = v.decode("utf-8")
        elif how == "bmap":
            k, v = _entry(value)
            out.setdefault(name, {})[k] = base64.b64encode(v).decode("ascii")
        elif how == "ios":
            out[name] = _int_or_string(value)
        elif isinstance(how, tuple) and how[0] == "msg":
            out[name] = _message(value, how[1])
        elif isinstance(how, tuple) and how[0] == "inline":   # an embedded struct (json:",inline")
            out.update(_message(value, how[1]))
        elif isinstance(how, tuple) and how[0] == "msgs":
            out.setdefault(name, []).append(_message(value, how[1]))
    return out


META: Schema = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
                11: ("labels", "map"), 12: ("annotations", "map"), 14: ("finalizers", "strs")}
LABEL_SELECTOR: Schema = {1: ("matchLabels", "map"), 2: ("matchExpressions", ("msgs", {
    1: ("key", "str"), 2: ("operator", "str"), 3: ("values", "strs")}))}
CONTAINER: Schema = {1: ("name", "str"), 2: ("image", "str"), 3: ("command", "strs"), 4: ("args", "strs"),
                     5: ("workingDir", "str"),
                     6: ("ports", ("msgs", {1: ("name", "str"), 2: ("hostPort", "int"), 3: ("containerPort", "int"),
                                            4: ("protocol", "str"), 5: ("hostIP", "str")})),
                     14: ("imagePullPolicy", "str")}
POD_TEMPLATE: Schema = {1: ("metadata", ("msg", META)), 2: ("spec", ("msg", {
    2: ("containers", ("msgs", CONTAINER)), 3: ("restartPolicy", "str")}))}
SERVICE_SPEC: Schema = {1: ("ports", ("msgs", {1: ("name", "str"), 2: ("protocol", "str"), 3: ("port", "int"),
                                               4: ("targetPort", "ios"), 5: ("nodePort", "int")})),
                        2: ("selector", "map"), 3: ("clusterIP", "str"), 4: ("type", "str"),
                        5: ("externalIPs", "strs"), 12: ("externalName", "str")}

# networking.k8s.io/v1 generated.proto (field numbers as in kube-rs/k8s-pb src/api/networking/v1):
# what `kubectl create ingress NAME --rule=HOST/PATH=SVC:PORT [--class=C]` sends.
INGRESS_BACKEND: Schema = {4: ("service", ("msg", {1: ("name", "str"), 2: ("port", ("msg", {
    1: ("name", "str"), 2: ("number", "int0")}))}))}
INGRESS_SPEC: Schema = {
    1: ("defaultBackend", ("msg", INGRESS_BACKEND)),
    2: ("tls", ("msgs", {1: ("hosts", "strs"), 2: ("secretName", "str")})),
    3: ("rules", ("msgs", {1: ("host", "str"), 2: ("", ("inline", {1: ("http", ("msg", {
        1: ("paths", ("msgs", {1: ("path", "str"), 2: ("backend", ("msg", INGRESS_BACKEND)),
                               3: ("pathType", "str")}))}))}))})),
    4: ("ingressClassName", "str")}

KINDS: dict[tuple[str, str], Schema] = {
    ("networking.k8s.io/v1", "Ingress"): {1: ("metadata", ("msg", META)), 2: ("spec", ("msg", INGRESS_SPEC))},
    ("v1", "Namespace"): {1: ("metadata", ("msg", META)), 2: ("spec", ("msg", {1: ("finalizers", "strs")}))},
    ("v1", "ConfigMap"): {1: ("metadata", ("msg", META)), 2: ("data", "map"), 3: ("binaryData", "bmap"),
                          4: ("immutable", "bool")},
    ("v1", "Secret"): {1: ("metadata", ("msg", META)), 2: ("data", "bmap"), 3: ("type", "str"),
                       4: ("stringData", "map"), 5: ("immutable", "bool")},
    ("v1", "Service"): {1: ("metadata", ("msg", META)), 2: ("spec", ("msg", SERVICE_SPEC))},
    ("apps/v1", "Deployment"): {1: ("metadata", ("msg", META)), 2: ("spec", ("msg", {
        1: ("replicas", "int"), 2: ("selector", ("msg", LABEL_SELECTOR)), 3: ("template", ("msg", POD_TEMPLATE)),
        5: ("minReadySeconds", "int")}))},
}


def decode(body: bytes) -> dict[str, Any]:
    """A Kubernetes protobuf body as the JSON object it stands for; ``Unsupported`` otherwise."""
    if not body.startswith(MAGIC):
        raise Unsupported("no k8s protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[len(MAGIC):]):
        if number == 1 and isinstance(value, bytes):
            for n, x in _fields(value):
                if n == 1:
                    api_version = _text(x)
                elif n == 2:
                    kind = _text(x)
        elif number == 2 and isinstance(value, bytes):
            raw = value
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise Unsupported(f"{kind or 'this kind'} ({api_version or '?'})")
    return {"apiVersion": api_version, "kind": kind, **_message(raw, schema)}
