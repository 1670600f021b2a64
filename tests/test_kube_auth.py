"""Credentials from a kubeconfig exec plugin: requests authenticate, and the client's per-request
refresh hook (the plugin re-run for a token the loader calls expired) runs at most every
``REFRESH_SECONDS``, not once per request."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

from grader.kube import REFRESH_SECONDS, Api

# An exec credential plugin as client-go and the Python client run it: it prints an ExecCredential
# (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#input-and-output-formats).
# The expiry is one second away, inside the loader's 5-minute renewal margin, so every hook call
# that is not throttled runs the plugin again; each run appends a line to a counter file.
PLUGIN = '''
import datetime, json, sys
with open(sys.argv[1], "a") as f:
    f.write("run\\n")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"token": sys.argv[2], "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}))
'''


def test_exec_plugin_token_authenticates_and_is_not_renewed_per_request(cluster, tmp_path: Path) -> None:
    base = yaml.safe_load(cluster.write_kubeconfig(tmp_path / "base").read_text())
    plugin, runs = tmp_path / "plugin.py", tmp_path / "runs"
    plugin.write_text(PLUGIN)
    base["users"][0]["user"] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": sys.executable,
        "args": [str(plugin), str(runs), cluster.token], "interactiveMode": "Never"}}
    kubeconfig = tmp_path / "exec-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(base))
    api = Api(kubeconfig=str(kubeconfig))
    try:
        for _ in range(20):
            assert api.get("Namespace", "default")["metadata"]["name"] == "default"
    finally:
        api.close()
    # one run when the kubeconfig is loaded, at most one more per REFRESH_SECONDS of requests
    # (20 local requests take well under 10 s; unthrottled, it would be 21 runs)
    assert REFRESH_SECONDS >= 5
    assert 1 <= len(runs.read_text().splitlines()) <= 3
