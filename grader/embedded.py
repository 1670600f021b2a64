"""The grading core's one door to the embedded cluster (``grader.cluster``).

Only the commands that start a cluster come through here: ``demo``, ``sandbox``, ``selftest``
without ``--kubeconfig`` and ``--manifests``. The rest of the grader talks to any cluster through
a kubeconfig and ``grader.kube.Api``, so it grades the embedded cluster exactly as a real one;
the import-linter contracts in ``pyproject.toml`` allow ``grader.cluster`` to be imported from
this module only.
"""
from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .cluster import EmbeddedCluster, RequestRefused
from .errors import UsageError
from .kube import Api


@contextmanager
def embedded(pod_start_delay: float = 0.0, **kwargs: object) -> Iterator[tuple[EmbeddedCluster, Api]]:
    """An embedded cluster and an Api on it through a generated kubeconfig (the real client path)."""
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp, \
            EmbeddedCluster(pod_start_delay=pod_start_delay, **kwargs) as cluster:  # type: ignore[arg-type]
        kubeconfig = cluster.write_kubeconfig(Path(tmp) / "kubeconfig")
        api = Api(kubeconfig=str(kubeconfig))
        try:
            yield cluster, api
        finally:
            api.close()


@contextmanager
def sandbox(pod_start_delay: float, namespace: str, kubeconfig_out: Path) -> Iterator[tuple[str, Path, str, str]]:
    """A cluster for a student to practise on: ``namespace`` created and selected in a kubeconfig
    written to ``kubeconfig_out``; yields (server URL, kubeconfig path, router HOST:PORT, route
    domain). A namespace the server
    refuses is a usage error (exit 2), as any bad command-line value is."""
    with EmbeddedCluster(pod_start_delay=pod_start_delay) as cluster:
        try:
            cluster.create_namespace(namespace)
        except RequestRefused as e:
            raise UsageError(str(e)) from None
        yield (cluster.url, cluster.write_kubeconfig(kubeconfig_out, namespace=namespace),
               cluster.router_address, cluster.route_domain)


__all__ = ["embedded", "sandbox"]
