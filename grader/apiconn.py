"""The API server's connections for service-proxy probes, opened as the API client opens its own.

A probe's GET goes over a kept connection of its own (``bounded.Connections``, which parses the
answer with llhttp): the client's request path and urllib3's pool and response wrappers were a
third of a probe's CPU. The connection itself is still opened by urllib3
with the settings the client gives its pool (``kubernetes/client/rest.py``,
``RESTClientObject.__init__``): the kubeconfig's CA, client certificate and key,
``tls-server-name``, hostname check, and ``proxy-url`` (a CONNECT tunnel through an HTTP proxy).
So a probe trusts exactly what every other request of the grader trusts. Only ``grader.kube``
uses the client itself: this module reads its ``Configuration`` and opens sockets with urllib3.
"""
from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import urlsplit

from .bounded import Connections
from .i18n import Raw, t
from .sanitize import clean

# As many kept connections as the probes' workers (16) can use, with room for a second batch.
KEEP = 32


class ProxyNotSupported(OSError):
    """The kubeconfig's ``proxy-url`` is not an ``http://`` proxy (the probes tunnel through one
    with CONNECT; a SOCKS or TLS proxy needs libraries the grader does not install)."""

    def __init__(self, proxy: str) -> None:
        super().__init__(proxy)
        self.text = t(
            "kubeconfig の proxy-url ({p}) は http:// のプロキシではありません。採点のサービスプロキシ確認は http:// のプロキシ (CONNECT) だけを通ります。http:// のプロキシを指定してください。",
            "the kubeconfig's proxy-url ({p}) is not an http:// proxy, and the grader's service-proxy probes tunnel only through one (CONNECT); use an http:// proxy.",
            p=Raw(clean(proxy, 120)))


def target(cfg: Any, path: str) -> tuple[str, str]:
    """(``Host`` header, request target) of a GET of ``path``, as the client sends them: a server
    URL with a path (Rancher's ``https://rancher/k8s/clusters/c-1``) prefixes every request."""
    url = urlsplit(cfg.host)
    return url.netloc, url.path.rstrip("/") + path


def connections(cfg: Any, proxy_url: str | None, connect_timeout: float) -> Connections:
    """``bounded.Connections`` to the server of a ``kubernetes.client.Configuration``, through
    ``proxy_url`` if the client would go through it (``kube.Api.fetch`` applies ``no_proxy``);
    opening one takes at most ``connect_timeout`` (``RetryPolicy.connect_timeout``, as for the
    client's requests) within the probe's own deadline."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.exceptions import HTTPError

    url = urlsplit(cfg.host)
    host, port, tls = url.hostname or "", url.port, url.scheme == "https"
    kw: dict[str, Any] = {}
    if tls:
        kw = {"cert_reqs": ssl.CERT_REQUIRED if cfg.verify_ssl else ssl.CERT_NONE, "ca_certs": cfg.ssl_ca_cert,
              "cert_file": cfg.cert_file, "key_file": cfg.key_file, "ca_cert_data": cfg.ca_cert_data}
        if cfg.assert_hostname is not None:
            kw["assert_hostname"] = cfg.assert_hostname
        if cfg.tls_server_name:
            kw["server_hostname"] = cfg.tls_server_name
    proxy = urlsplit(proxy_url) if proxy_url else None

    def connect(seconds: float) -> http.client.HTTPConnection:
        seconds = min(seconds, connect_timeout)     # the rest of the deadline is the exchange's
        kind = HTTPSConnection if tls else HTTPConnection
        if proxy is None:
            opened = kind(host, port, timeout=seconds, **kw)
        elif proxy.scheme == "http" and proxy.hostname:
            opened = kind(proxy.hostname, proxy.port or 80, timeout=seconds, **kw)
            opened.set_tunnel(host, port, headers=cfg.proxy_headers)
        else:
            raise ProxyNotSupported(proxy_url or "")
        try:
            opened.connect()
        except HTTPError as e:      # urllib3's own (refused, no such host, connect timeout): no answer
            raise ConnectionError(f"{type(e).__name__}: {e}") from None
        conn = http.client.HTTPConnection(host, port, timeout=seconds)
        conn.sock = opened.sock
        return conn
    return Connections(connect, KEEP)
