"""The OpenAPI v3 schema of ``route.openshift.io/v1`` Route, for ``kubectl explain route``.

The ``kubernetes`` client has no Route model to generate it from, so this one is written out: the
fields the embedded cluster serves, named and typed as in openshift/api route/v1 types.go
(``RouteSpec``, ``RouteTargetReference``, ``RoutePort``, ``TLSConfig``, ``RouteStatus``,
``RouteIngress``), with short descriptions in our own words. Object metadata refers to the
generated ``ObjectMeta`` schema.
"""
from __future__ import annotations

from typing import Any

_P = "io.openshift.api.route.v1."


def _s(desc: str, typ: str = "string", **more: Any) -> dict:
    return {"type": typ, "description": desc, **more}


def _ref(name: str, desc: str) -> dict:
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}], "description": desc}


def route_schemas(object_meta: str) -> dict[str, dict]:
    """Route and its parts; ``object_meta`` is the ObjectMeta schema's name in the document."""
    target = {"type": "object", "required": ["kind", "name"], "description": "A service (or other backend) the route sends traffic to.",
              "properties": {"kind": _s("The kind of the backend: Service."), "name": _s("The name of the service."),
                             "weight": _s("The share of traffic this backend gets, 0 to 256 (default 100).", "integer", format="int32")}}
    return {
        _P + "Route": {
            "type": "object", "description": "A route exposes a service under a host name, through the cluster's router.",
            "x-kubernetes-group-version-kind": [{"group": "route.openshift.io", "version": "v1", "kind": "Route"}],
            "properties": {"apiVersion": _s("The versioned schema of this object: route.openshift.io/v1."),
                           "kind": _s("The kind of this object: Route."),
                           "metadata": _ref(object_meta, "Standard object metadata."),
                           "spec": _ref(_P + "RouteSpec", "What the route should expose, and how."),
                           "status": _ref(_P + "RouteStatus", "What the routers did with the route.")}},
        _P + "RouteSpec": {
            "type": "object", "required": ["to"], "description": "The desired state of a route.",
            "properties": {
                "host": _s("The host name the route answers for; the router assigns one under its domain when empty."),
                "subdomain": _s("A name the router combines with its own domain into the host, when host is empty."),
                "path": _s("A path prefix: only requests under it are sent to the backend."),
                "to": _ref(_P + "RouteTargetReference", "The service traffic goes to."),
                "alternateBackends": {"type": "array", "items": _ref(_P + "RouteTargetReference", ""),
                                      "description": "Further services that share the traffic by weight."},
                "port": _ref(_P + "RoutePort", "The service port traffic goes to; all ports when unset."),
                "tls": _ref(_P + "TLSConfig", "How the route terminates TLS; plain HTTP when unset."),
                "wildcardPolicy": _s("Whether the route also answers for the host's sibling names: None or Subdomain.")}},
        _P + "RouteTargetReference": target,
        _P + "RoutePort": {"type": "object", "required": ["targetPort"], "description": "The port of the backend service.",
                           "properties": {"targetPort": _s("The service port, by name or number.", "string", format="int-or-string")}},
        _P + "TLSConfig": {
            "type": "object", "required": ["termination"], "description": "TLS settings of a route.",
            "properties": {
                "termination": _s("Where TLS ends: edge (at the router), passthrough (at the pod) or reencrypt."),
                "insecureEdgeTerminationPolicy": _s("What plain HTTP requests get: None, Allow or Redirect."),
                "certificate": _s("The certificate the router presents (PEM)."),
                "key": _s("The certificate's private key (PEM)."),
                "caCertificate": _s("The certificate chain of the certificate (PEM)."),
                "destinationCACertificate": _s("For reencrypt: the CA the router trusts for the pod's certificate (PEM).")}},
        _P + "RouteStatus": {
            "type": "object", "description": "What the routers report about the route.",
            "properties": {"ingress": {"type": "array", "items": _ref(_P + "RouteIngress", ""),
                                       "description": "One entry per router that considered the route."}}},
        _P + "RouteIngress": {
            "type": "object", "description": "One router's view of the route.",
            "properties": {"host": _s("The host the router serves the route under."),
                           "routerName": _s("The router's name."),
                           "routerCanonicalHostname": _s("The router's own host name, for DNS CNAMEs."),
                           "wildcardPolicy": _s("The wildcard policy the router applied."),
                           "conditions": {"type": "array", "description": "Whether the router admitted the route (type Admitted).",
                                          "items": {"type": "object", "properties": {
                                              "type": _s("Admitted."), "status": _s("True, False or Unknown."),
                                              "reason": _s("Why, in a word."), "message": _s("Why, in a sentence."),
                                              "lastTransitionTime": _s("When the status last changed.", format="date-time")}}}}},
    }
