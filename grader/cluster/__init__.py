"""The embedded cluster: a small Kubernetes/OpenShift API server, controllers and a router on
loopback, so the demo, ``grade sandbox``, ``selftest``, ``--manifests`` and the tests have a cluster
to talk to without one.

It is a test double, not the reference: checks are written against what a real API server returns.
The grading core never imports this package except through ``grader.embedded`` (the commands that
start a cluster), and this package imports nothing of the grading core; it speaks to the grader
only over HTTP and a kubeconfig, as a real cluster does (``pyproject.toml``'s import-linter
contracts hold both rules).

Public face (everything else here is internal and may change without notice):

* ``EmbeddedCluster`` -- ``start()``/``stop()`` (or ``with``), ``write_kubeconfig()``, ``url``,
  ``token``, ``router_address``, ``settle()``, ``create_namespace()``, ``apply()``;
* ``EmbeddedCluster.faults`` (a ``Faults``) -- fault settings of the API port: ``latency``,
  ``error_rate``, ``fail_next()``, ``reset_rate``, ``clear()``, and for open watch streams
  ``expire_watches()``, ``drop_watches()``, ``open_watches()``;
* ``RequestRefused`` -- what ``create_namespace``/``apply`` raise when the server says no;
* ``known_kinds()`` -- the (apiVersion, kind) pairs it serves;
* ``SANDBOX_EXTENSION`` -- the kubeconfig extension carrying the router address and route domain.

Internal modules: ``apiserver`` (HTTP, auth, request log), ``apiwatch`` (watch streams), ``apiport`` (plain+TLS port, faults),
``apirequests``/``apiproto`` (request parsing, protobuf), ``apistore`` (objects), ``apitypes``
(resource table, Status, selectors, patches), ``apidocs`` (discovery, OpenAPI), ``admission``,
``controllers`` (workload controllers), ``netcontrollers`` (endpoints, routes), ``kubelet`` (pods),
``workloads`` (the pages pods serve), ``ctlutil`` (shared helpers), ``sandbox`` (the assembly).
"""
from __future__ import annotations

from .apiport import Faults
from .apitypes import known_kinds
from .sandbox import SANDBOX_EXTENSION, EmbeddedCluster, RequestRefused

__all__ = ["EmbeddedCluster", "Faults", "RequestRefused", "SANDBOX_EXTENSION", "known_kinds"]
