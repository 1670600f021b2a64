"""The few protobuf bodies kubectl sends to the embedded API server.

``kubectl create namespace|configmap|secret`` build typed objects and POST them as
``application/vnd.kubernetes.protobuf`` (the ``k8s\\0`` envelope around a ``runtime.Unknown``);
there is no fallback to JSON. Students use exactly these commands in the ConfigMap/Secret
exercise, so the sandbox decodes them: a small wire-format reader and the field numbers of
``ObjectMeta``, ``Namespace``, ``ConfigMap`` and ``Secret`` from Kubernetes' ``generated.proto``.
Anything else in protobuf is refused with 415 and a hint to use ``-f`` (YAML/JSON), which every
kubectl command that takes a manifest sends as JSON.
"""
from __future__ import annotations

import base64
from typing import Any, Callable, Iterator

MAGIC = b"k8s\x00"


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
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise Unsupported(f"wire type {wire}")


def _text(v: int | bytes) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _map(pairs: list[bytes], value: Callable[[bytes], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in pairs:
        k: str = ""
        v: Any = value(b"")
        for n, x in _fields(entry):
            if n == 1:
                k = _text(x)
            elif n == 2 and isinstance(x, bytes):
                v = value(x)
        out[k] = v
    return out


def _message(buf: bytes, schema: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """Decode with ``schema``: field number → (json name, how); unknown fields are skipped."""
    out: dict[str, Any] = {}
    repeated: dict[int, list[bytes]] = {}
    for number, value in _fields(buf):
        if number not in schema:
            continue
        name, how = schema[number]
        if how in ("map-str", "map-bytes", "strings"):
            if isinstance(value, bytes):
                repeated.setdefault(number, []).append(value)
        elif how == "str":
            out[name] = _text(value)
        elif how == "bool":
            out[name] = bool(value)
        elif how == "meta" and isinstance(value, bytes):
            out[name] = _message(value, _OBJECT_META)
        elif how == "ns-spec" and isinstance(value, bytes):
            out[name] = _message(value, {1: ("finalizers", "strings")})
    for number, values in repeated.items():
        name, how = schema[number]
        if how == "map-str":
            out[name] = _map(values, lambda b: b.decode("utf-8"))
        elif how == "map-bytes":
            out[name] = _map(values, lambda b: base64.b64encode(b).decode("ascii"))
        else:
            out[name] = [v.decode("utf-8") for v in values]
    return out


_OBJECT_META = {1: ("name", "str"), 2: ("generateName", "str"), 3: ("namespace", "str"),
                11: ("labels", "map-str"), 12: ("annotations", "map-str"), 14: ("finalizers", "strings")}
_KINDS: dict[tuple[str, str], dict[int, tuple[str, str]]] = {
    ("v1", "Namespace"): {1: ("metadata", "meta"), 2: ("spec", "ns-spec")},
    ("v1", "ConfigMap"): {1: ("metadata", "meta"), 2: ("data", "map-str"), 3: ("binaryData", "map-bytes"),
                          4: ("immutable", "bool")},
    ("v1", "Secret"): {1: ("metadata", "meta"), 2: ("data", "map-bytes"), 3: ("type", "str"),
                       4: ("stringData", "map-str"), 5: ("immutable", "bool")},
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
    schema = _KINDS.get((api_version, kind))
    if schema is None:
        raise Unsupported(f"{kind or 'this kind'} ({api_version or '?'})")
    return {"apiVersion": api_version, "kind": kind, **_message(raw, schema)}
