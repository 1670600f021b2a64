"""The check library: small observations that exercises' pytest modules compose.

Every function reads a ``View`` (never the API), and either returns what it found or raises
``CheckFailed`` saying what was expected, what was seen, and which ``oc`` command shows it.
This package is the one place exercises import from (``from grader.checks import ...``); the
functions live in modules named after what they check:

* ``base`` -- tolerant access to untrusted objects, ``fail``, ``need``, ``NotApplicable``;
* ``pods`` -- pods: images, container ports, readiness and why a pod is not ready;
* ``workloads`` -- Deployments/ReplicationControllers: replicas, selectors, owned pods, spread;
* ``services`` -- services: named target ports, EndpointSlices (v1 Endpoints only where slices
  are not served or not readable);
* ``http`` -- HTTP answers through the service proxy or the router;
* ``routes`` -- Routes and Ingresses: backends, admission by any router, host, page;
* ``storage`` -- quantities, claims, mounts;
* ``config`` -- config maps, secrets, environment variables taken from them.
"""
from __future__ import annotations

from .base import (  # noqa: F401
    NotApplicable, PassedWithNote, as_dict, as_list, containers, dig, expect_labels, fail, fmt_labels,
    kind_of, labels_of, name_of, need, oc, pod_spec, short_name, show, tagged)
from .pods import (  # noqa: F401
    container_ports, expect_container_port, expect_image, expect_pod_ready, pod_problem, pod_ready,
    pod_terminating)
from .workloads import (  # noqa: F401
    expect_ready_replicas, expect_replicas, expect_selector_matches_template, expect_spread, need_workload,
    owned_pods, schedulable_nodes, selector_of_workload)
from .services import (  # noqa: F401
    Endpoints, SERVICE_NAME_LABEL, endpoint_addresses, expect_endpoints_exactly, expect_selects_running_pod,
    expect_service_port, expect_service_type, pod_ips, resolve_target_port, selected_pods, selector_of,
    service_endpoints, service_ports)
from .http import expect_http_answer, expect_http_ok  # noqa: F401
from .routes import (  # noqa: F401
    expect_admitted, expect_exposes_service, expect_host, expect_page, exposure_host, exposure_kind,
    refusal_text, route_admission, route_or_ingress)
from .storage import expect_mount, expect_pvc_bound, expect_pvc_request, mounts, parse_quantity, pvc_request  # noqa: F401
from .config import expect_env_from, expect_key_nonempty, expect_secret_type  # noqa: F401
