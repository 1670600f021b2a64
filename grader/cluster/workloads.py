"""What the simulated containers are: which images exist, what they listen on, what they serve.

The catalogue is explicit on purpose: a typo in an image name must fail to pull exactly as it
would on a cluster, so there is no "unknown but pullable" image.  It is generous about registry
prefixes and tags, because students copy image names from many places.  Pages are produced from
the pod's ConfigMap/Secret volumes, so "mount your index.html at the document root" is graded on
what a browser would really see.

``serve`` raises ``ConnectionRefusedError`` when nothing listens on the port; the service proxy
turns that into 502 and the router into its own error page.
"""
from __future__ import annotations

import base64
import itertools
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from .ctlutil import resolve_target

__all__ = ["Image", "lookup_image", "serve", "listening_ports", "Unavailable",
           "service_backend", "endpoint_backend"]


@dataclass(frozen=True)
class Image:
    """One catalogue entry; ``http_ports`` answer HTTP, ``ports`` merely accept connections."""

    name: str
    ports: tuple[int, ...] = ()
    http_ports: tuple[int, ...] = ()
    docroot: str = ""
    default_status: int = 200
    default_page: str = ""
    content_type: str = "text/html"
    runs: bool = True   # False: the process exits at once without a command (base images)


_IT_WORKS = "<html><body><h1>It works!</h1></body></html>\n"
_NGINX = ("<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n"
          "<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully "
          "installed and working.</p>\n</body>\n</html>\n")
_RH_TEST = ("<!DOCTYPE html>\n<html><head><title>Test Page for the HTTP Server on Red Hat Enterprise "
            "Linux</title></head>\n<body><h1>Red Hat Enterprise Linux <strong>Test Page</strong></h1>\n"
            "<p>This page is used to test the proper operation of the HTTP server after it has been "
            "installed. If you can read this page, it means that the HTTP server installed at this site "
            "is working properly.</p></body></html>\n")
_RH_NGINX = _RH_TEST.replace("HTTP Server", "Nginx HTTP Server")

# (regex over the repository path without registry and tag, entry).  First match wins.
_CATALOGUE: list[tuple[re.Pattern[str], Image]] = [
    (re.compile(r"^(.*/)?httpd-24[-\w.]*$"),
     Image("httpd-24 (s2i)", (8080, 8443), (8080,), "/var/www/html", 403, _RH_TEST)),
    (re.compile(r"^(library/)?httpd$"),
     Image("httpd", (80,), (80,), "/usr/local/apache2/htdocs", 200, _IT_WORKS)),
    (re.compile(r"^(.*/)?nginx-1\d+[-\w.]*$"),
     Image("nginx (s2i)", (8080, 8443), (8080,), "/opt/app-root/src", 200, _RH_NGINX)),
    (re.compile(r"^(nginxinc/nginx-unprivileged|bitnami/nginx)$"),
     Image("nginx-unprivileged", (8080,), (8080,), "/usr/share/nginx/html", 200, _NGINX)),
    (re.compile(r"^(library/)?nginx$"),
     Image("nginx", (80,), (80,), "/usr/share/nginx/html", 200, _NGINX)),
    (re.compile(r"^(openshift|openshift-examples)/hello-openshift$"),
     Image("hello-openshift", (8080, 8888), (8080, 8888), "", 200, "Hello OpenShift!\n", "text/plain")),
    (re.compile(r"^(library/)?(mysql|mariadb)$|^(.*/)?(mysql|mariadb)-\d+[-\w.]*$"), Image("mysql", (3306,))),
    (re.compile(r"^(library/)?postgres$|^(.*/)?postgresql(-\d+[-\w.]*)?$"), Image("postgresql", (5432,))),
    (re.compile(r"^(library/)?redis$|^(.*/)?redis-\d+[-\w.]*$"), Image("redis", (6379,))),
    (re.compile(r"^(library/)?mongo$"), Image("mongo", (27017,))),
    (re.compile(r"^(library/)?(busybox|alpine|ubuntu|debian|fedora|centos)$"), Image("base", runs=False)),
    (re.compile(r"^(.*/)?ubi\d*(-minimal|-micro|-init)?$|^(ubi\d+|rhel\d+)/(ubi|ubi-minimal|ubi-micro|toolbox|support-tools)$"),
     Image("ubi", runs=False)),
    (re.compile(r"^(library/)?(python|node)$|^(.*/)?(python|nodejs)-\d+[-\w.]*$"), Image("runtime", runs=False)),
]


def _repository(ref: str) -> str:
    """Registry, tag and digest stripped: ``quay.io/org/httpd-24:2.4`` -> ``org/httpd-24``."""
    ref = ref.strip().lower().split("@", 1)[0]
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    repo = "/".join(parts)
    if ":" in parts[-1]:
        repo = repo.rsplit(":", 1)[0]
    return repo


def lookup_image(ref: str) -> Image | None:
    """The catalogue entry for an image reference, or None when it cannot be pulled."""
    if not ref or any(c.isspace() for c in ref) or ref != ref.strip():
        return None
    repo = _repository(ref)
    for rx, img in _CATALOGUE:
        if rx.match(repo):
            return img
    return None


def listening_ports(container: dict) -> tuple[int, ...]:
    """Ports the container's process accepts connections on (a command override listens nowhere)."""
    img = lookup_image(container.get("image", ""))
    if img is None or container.get("command"):
        return ()
    return img.ports


# --- serving ---------------------------------------------------------------------------------
def _files(store: Any, namespace: str, pod: dict, container: dict) -> tuple[dict[str, bytes], set[str]]:
    """File path -> content from ConfigMap/Secret volumes, plus directories hidden by other mounts."""
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    files: dict[str, bytes] = {}
    opaque: set[str] = set()
    for m in container.get("volumeMounts") or []:
        vol = volumes.get(m.get("name")) or {}
        mount = posixpath.normpath(m.get("mountPath") or "/")
        data: dict[str, bytes] | None = None
        items: list[dict] = []
        if "configMap" in vol:
            cm = store.get(store.rt("configmaps"), namespace, vol["configMap"].get("name", ""))
            if cm is not None:
                data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
                data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
            items = vol["configMap"].get("items") or []
        elif "secret" in vol:
            sec = store.get(store.rt("secrets"), namespace, vol["secret"].get("secretName", ""))
            if sec is not None:
                data = {k: base64.b64decode(v) for k, v in (sec.get("data") or {}).items()}
                data.update({k: v.encode() for k, v in (sec.get("stringData") or {}).items()})
            items = vol["secret"].get("items") or []
        else:
            opaque.add(mount)
            continue
        if data is None:
            continue
        paths = {i.get("path", i.get("key")): i.get("key") for i in items} if items else {k: k for k in data}
        sub = m.get("subPath")
        if sub:
            if paths.get(sub) in data:
                files[mount] = data[paths[sub]]
            continue
        for p in list(files):   # a directory mount hides what the image had there
            if p.startswith(mount.rstrip("/") + "/"):
                del files[p]
        opaque.add(mount)
        for rel, key in paths.items():
            if key in data:
                files[posixpath.join(mount, rel)] = data[key]
    return files, opaque


def _page(status: int, title: str, text: str) -> bytes:
    return (f"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{status} "
            f"{title}</title>\n</head><body>\n<h1>{title}</h1>\n<p>{text}</p>\n</body></html>\n").encode()


def serve(store_view: Any, namespace: str, pod: dict, port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """What ``GET path`` on ``pod:port`` returns.  Raises ConnectionRefusedError if nothing listens."""
    status = pod.get("status") or {}
    running = {c.get("name") for c in status.get("containerStatuses") or [] if "running" in (c.get("state") or {})}
    for c in (pod.get("spec") or {}).get("containers") or []:
        if c.get("name") in running and port in listening_ports(c):
            img = lookup_image(c["image"])
            assert img is not None
            break
    else:
        raise ConnectionRefusedError(f"dial tcp {status.get('podIP', '')}:{port}: connect: connection refused")
    if port not in img.http_ports:
        return 502, {"Content-Type": "text/plain"}, b"malformed HTTP response\n"
    if not img.docroot:
        return 200, {"Content-Type": img.content_type}, img.default_page.encode()
    clean = posixpath.normpath("/" + path.split("?", 1)[0].lstrip("/"))
    files, opaque = _files(store_view, namespace, pod, c)
    docroot = img.docroot
    target = posixpath.join(docroot, clean.lstrip("/"))
    if path.split("?", 1)[0].endswith("/") or clean == "/":
        target = posixpath.join(target, "index.html")
    if target in files:
        ctype = "text/html" if target.endswith((".html", ".htm")) else "text/plain"
        return 200, {"Content-Type": ctype}, files[target]
    hidden = any(target.startswith(d.rstrip("/") + "/") for d in opaque)
    if clean in ("/", "/index.html") and not hidden and docroot not in opaque:
        return img.default_status, {"Content-Type": "text/html"}, img.default_page.encode()
    if clean == "/" and target.endswith("index.html"):
        return 403, {"Content-Type": "text/html"}, _page(403, "Forbidden", "You don't have permission to access this resource.")
    return 404, {"Content-Type": "text/html"}, _page(404, "Not Found", "The requested URL was not found on this server.")


# --- from a service to a pod -----------------------------------------------------------------
class Unavailable(Exception):
    """No backend: ``code`` is what the proxy answers (404 no service, 503 no endpoints)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


_rr = itertools.count()


def endpoint_backend(store: Any, namespace: str, service: str, port_match: Any) -> tuple[dict, int]:
    """A ready (pod, port) behind a service's Endpoints; ``port_match(ep_port) -> bool``."""
    ep = store.get(store.rt("endpoints"), namespace, service)
    choices: list[tuple[str, int]] = []
    for subset in (ep or {}).get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or [] if port_match(p)]
        for a in subset.get("addresses") or []:
            ref = a.get("targetRef") or {}
            if ref.get("kind") == "Pod":
                choices.extend((ref.get("name"), p) for p in ports)
    while choices:
        name, port = choices.pop(next(_rr) % len(choices))
        pod = store.get(store.rt("pods"), namespace, name)
        if pod is not None:
            return pod, port
    raise Unavailable(503, f'no endpoints available for service "{service}"')


def service_backend(store: Any, namespace: str, service: str, port_ref: str) -> tuple[dict, int]:
    """Service port (number or name, '' for the only one) -> a ready (pod, target port)."""
    svc = store.get(store.rt("services"), namespace, service)
    if svc is None:
        raise Unavailable(404, f'services "{service}" not found')
    ports = (svc.get("spec") or {}).get("ports") or []
    if port_ref:
        sp = next((p for p in ports if str(p.get("port")) == port_ref or p.get("name") == port_ref), None)
    else:
        sp = ports[0] if len(ports) == 1 else None
    if sp is None:
        raise Unavailable(503, f'no endpoints available for service "{service}"') if not ports else \
            Unavailable(503, f"no service port {port_ref!r} found for service \"{service}\"")
    name = sp.get("name", "")
    return endpoint_backend(store, namespace, service, lambda p: p.get("name", "") == name)


def pod_port(pod: dict, port_ref: str) -> int:
    """A pod port given by number or container port name, resolved as a Service's targetPort is."""
    port = resolve_target(pod, port_ref)
    if port is None:
        raise Unavailable(503, f"no such port {port_ref!r} on pod \"{pod['metadata']['name']}\"")
    return port
