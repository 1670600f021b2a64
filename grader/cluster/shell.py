"""The read-only commands ``kubectl exec`` may run in a simulated container.

How a student checks an exercise from inside a pod: ``env``/``printenv`` (the container's
environment as the kubelet builds it: ``env``, ``envFrom`` with prefixes, ``valueFrom`` of
ConfigMaps, Secrets and the downward API, the ``KUBERNETES_*`` and per-service variables),
``cat``/``ls`` over the mounted ConfigMap and Secret files and the claim's mount point,
``df -h``, ``hostname``, ``id``, ``curl``/``wget`` of a service or pod inside the sandbox, and
``sh -c`` of those joined by ``;``, ``&&`` or ``||`` (with ``$VAR`` expanded). Anything else
answers as a shell does inside ``sh -c`` (``sh: X: command not found``, exit 127) and as the
runtime does when exec'd directly (exit 126, ``exec_argv``). Nothing here writes: the commands
only read the store.
"""
from __future__ import annotations

import base64
import posixpath
import shlex
from typing import Any

from .workloads import Unavailable, _files as volume_files, lookup_image, serve, service_backend

Result = tuple[bytes, bytes, int]
# Directories every UBI/s2i image has (and httpd's empty document root, /var/www/html, which the
# Red Hat httpd-24 image creates; a student looks there before mounting an index.html).
_BASE_DIRS = frozenset(("/etc", "/var", "/var/lib", "/var/log", "/tmp", "/usr", "/bin", "/proc", "/dev",
                        "/opt", "/opt/app-root", "/opt/app-root/src", "/root", "/home", "/run", "/sys"))
_MAX_OUT = 1 << 20


class Container:
    """One container's view: its environment and files, read from the store at exec time."""

    def __init__(self, store: Any, pod: dict, container: dict, on_request: Any = None) -> None:
        """``on_request(pod, port, client, method, path, code, size, agent)`` hears each HTTP
        request a command sends (the access log of the pod that answered)."""
        self.store, self.pod, self.c = store, pod, container
        self.on_request = on_request
        self.ns = pod["metadata"].get("namespace", "")
        files, mounts = volume_files(store, self.ns, pod, container)
        self.files = dict(files)
        self.mounts = {m: self._mount_kind(m) for m in mounts}
        name = pod["metadata"]["name"]
        ip = (pod.get("status") or {}).get("podIP", "")
        sa = "/var/run/secrets/kubernetes.io/serviceaccount"
        self.files.update({"/etc/hostname": f"{name}\n".encode(), "/etc/resolv.conf":
                           f"search {self.ns}.svc.cluster.local svc.cluster.local cluster.local\nnameserver 172.30.0.10\noptions ndots:5\n".encode(),
                           "/etc/hosts": f"127.0.0.1\tlocalhost\n{ip}\t{name}\n".encode(),
                           f"{sa}/namespace": self.ns.encode(), f"{sa}/token": b"eyJhbGciOiJSUzI1NiJ9.sandbox.token",
                           f"{sa}/ca.crt": b"-----BEGIN CERTIFICATE-----\n(sandbox)\n-----END CERTIFICATE-----\n"})

    def _mount_kind(self, mount: str) -> str:
        vols = {v.get("name"): v for v in (self.pod.get("spec") or {}).get("volumes") or []}
        for m in self.c.get("volumeMounts") or []:
            if posixpath.normpath(m.get("mountPath") or "/") == mount:
                vol = vols.get(m.get("name")) or {}
                if "persistentVolumeClaim" in vol:
                    return "pvc:" + vol["persistentVolumeClaim"].get("claimName", "")
                return "configMap" if "configMap" in vol else "secret" if "secret" in vol else "emptyDir"
        return "emptyDir"

    # --- environment -------------------------------------------------------------------------------
    def env(self) -> list[tuple[str, str]]:
        """As the kubelet sets it (kubelet_pods.go makeEnvironmentVariables): image defaults,
        service variables, envFrom, then env (later wins)."""
        name, ip = self.pod["metadata"]["name"], (self.pod.get("status") or {}).get("podIP", "")
        out: dict[str, str] = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "HOSTNAME": name, "HOME": "/root" if self._root() else "/opt/app-root/src"}
        svcs = [("kubernetes", "172.30.0.1", [{"port": 443, "name": "https", "protocol": "TCP"}])]
        for s in self.store.list(self.store.rt("services"), self.ns)[0]:
            svcs.append((s["metadata"]["name"], (s.get("spec") or {}).get("clusterIP", ""), (s.get("spec") or {}).get("ports") or []))
        for sname, cip, ports in svcs:
            if not cip or cip == "None" or not ports:
                continue
            key = sname.upper().replace("-", "_")
            out[f"{key}_SERVICE_HOST"], out[f"{key}_SERVICE_PORT"] = cip, str(ports[0].get("port"))
            out[f"{key}_PORT"] = f"{ports[0].get('protocol', 'TCP').lower()}://{cip}:{ports[0].get('port')}"
            for p in ports:
                proto = p.get("protocol", "TCP")
                base = f"{key}_PORT_{p.get('port')}_{proto}"
                out[base] = f"{proto.lower()}://{cip}:{p.get('port')}"
                out[base + "_PROTO"], out[base + "_PORT"], out[base + "_ADDR"] = proto.lower(), str(p.get("port")), cip
                if p.get("name"):
                    out[f"{key}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p.get("port"))
        for ef in self.c.get("envFrom") or []:
            for field, plural in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
                ref = ef.get(field)
                if ref:
                    for k, v in self._data(plural, ref.get("name", "")).items():
                        out[ef.get("prefix", "") + k] = v
        fields = {"metadata.name": name, "metadata.namespace": self.ns, "status.podIP": ip,
                  "spec.nodeName": (self.pod.get("spec") or {}).get("nodeName", ""),
                  "spec.serviceAccountName": (self.pod.get("spec") or {}).get("serviceAccountName", "default")}
        for e in self.c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if "value" in e or not vf:
                out[e.get("name", "")] = str(e.get("value", ""))
            elif vf.get("fieldRef"):
                out[e.get("name", "")] = fields.get(vf["fieldRef"].get("fieldPath", ""), "")
            else:
                for field, plural in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
                    ref = vf.get(field)
                    if ref:
                        value = self._data(plural, ref.get("name", "")).get(ref.get("key", ""))
                        if value is not None:
                            out[e.get("name", "")] = value
        return list(out.items())

    def _data(self, plural: str, name: str) -> dict[str, str]:
        obj = self.store.get(self.store.rt(plural), self.ns, name) or {}
        if plural == "secrets":
            return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
        return dict(obj.get("data") or {})

    def _root(self) -> bool:
        img = lookup_image(self.c.get("image", ""))
        return img is None or "s2i" not in img.name

    # --- filesystem ----------------------------------------------------------------------------
    def is_dir(self, path: str) -> bool:
        p = path.rstrip("/") or "/"
        return p == "/" or p in self.mounts or any(f.startswith(p + "/") for f in self.files) or \
            any(m.startswith(p + "/") for m in self.mounts) or p in _BASE_DIRS or \
            ("httpd" in (self.c.get("image") or "") and p in ("/var/www", "/var/www/html"))

    def listing(self, path: str) -> list[str]:
        p = path.rstrip("/") or "/"
        names = {f[len(p):].lstrip("/").split("/")[0] for f in list(self.files) + list(self.mounts) if f.startswith(p.rstrip("/") + "/")}
        return sorted(n for n in names if n)


def _long(ctr: Container, directory: str, name: str, projected: bool) -> str:
    """One ``ls -l`` line; a ConfigMap/Secret volume's keys are links into ``..data``, as there."""
    when = "Nov 28 00:00"
    if name in (".", ".."):
        return f"drwxrwsrwx. 3 root root 100 {when} {name}"
    if name == "..data":
        return f"lrwxrwxrwx. 1 root root  31 {when} ..data -> ..2026_11_28_00_00_00.000000000"
    path = posixpath.join(directory, name)
    if projected:
        return f"lrwxrwxrwx. 1 root root {len(name) + 7:>3} {when} {name} -> ..data/{name}"
    if path in ctr.files:
        return f"-rw-r--r--. 1 root root {len(ctr.files[path]):>3} {when} {name}"
    return f"drwxr-xr-x. 2 root root   6 {when} {name}"


def _resolve(ctr: Container, host: str) -> tuple[str, str]:
    """(namespace, service) for a service host name or cluster IP; ('', pod name) for a pod IP."""
    parts = host.lower().split(".")
    if parts[-3:] == ["svc", "cluster", "local"]:
        parts = parts[:-3]
    elif parts[-1:] == ["svc"]:
        parts = parts[:-1]
    if len(parts) <= 2 and all(parts) and not host.replace(".", "").isdigit():
        ns = parts[1] if len(parts) == 2 else ctr.ns
        if not ctr.store.exists(ctr.store.rt("services"), ns, parts[0]):
            raise LookupError(host)    # no DNS record: curl's exit 6
        return ns, parts[0]
    for s in ctr.store.find(ctr.store.rt("services"), lambda o: (o.get("spec") or {}).get("clusterIP") == host):
        return s["metadata"]["namespace"], s["metadata"]["name"]
    for p in ctr.store.find(ctr.store.rt("pods"), lambda o: (o.get("status") or {}).get("podIP") == host):
        return "", f"{p['metadata']['namespace']}/{p['metadata']['name']}"
    raise LookupError(host)


def _http(ctr: Container, url: str, agent: str) -> tuple[int, dict[str, str], bytes]:
    """GET ``url`` from inside the pod; OSError(code, text) as curl reports a failure."""
    rest = url.split("://", 1)[-1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    try:
        ns, name = _resolve(ctr, host)
    except LookupError:
        raise OSError(6, f"Could not resolve host: {host}") from None
    store = ctr.store
    try:
        if ns:
            pod, target = service_backend(store, ns, name, port or "80")
        else:
            pod = store.get(store.rt("pods"), *name.split("/", 1)) or {}
            target = int(port or 80)
        answer = serve(store, pod["metadata"]["namespace"], pod, target, "/" + path)
        if ctr.on_request is not None:
            ctr.on_request(pod, target, (ctr.pod.get("status") or {}).get("podIP", ""), "GET", "/" + path,
                           answer[0], len(answer[2]), agent)
        return answer
    except (Unavailable, ConnectionRefusedError, KeyError, ValueError):
        raise OSError(7, f"Failed to connect to {host} port {port or 80} after 0 ms: Couldn't connect to server") from None


def _curl(ctr: Container, args: list[str], wget: bool) -> Result:
    url = next((a for a in args if not a.startswith("-") and "://" in a or (not a.startswith("-") and "." in a)), "")
    flags = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
    if not url:
        return b"", (b"wget: missing URL\n" if wget else b"curl: try 'curl --help' for more information\n"), 2 if wget else 2
    try:
        code, headers, body = _http(ctr, url if "://" in url else "http://" + url,
                                    "Wget" if wget else "curl/7.29.0")
    except OSError as exc:
        if wget:       # busybox wget's words for a name that does not resolve / a refused connection
            host = (url.split("://", 1)[-1].split("/", 1)[0]).split(":", 1)[0]
            why = f"bad address '{host}'" if exc.errno == 6 else "can't connect to remote host: Connection refused"
            return b"", f"wget: {why}\n".encode(), 1
        return b"", (f"curl: ({exc.errno}) {exc.strerror}\n".encode() if "s" not in flags or "S" in flags else b""), exc.errno or 7
    if wget:
        if code >= 400:
            return b"", f"wget: server returned error: HTTP/1.1 {code}\n".encode(), 1
        return body, b"", 0
    head = f"HTTP/1.1 {code}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {len(body)}\r\n\r\n"
    out = head.encode() if "I" in flags else (head.encode() if "i" in flags else b"") + body
    if "-o" in args or "o" in flags:
        out = head.encode() if "I" in flags else b""
    if "-w" in args:
        fmt = args[args.index("-w") + 1] if args.index("-w") + 1 < len(args) else ""
        out += fmt.replace("%{http_code}", str(code)).replace("\\n", "\n").encode()
    return out, b"", 22 if "f" in flags and code >= 400 else 0


def run(ctr: Container, argv: list[str]) -> Result:
    """Run one command line (already split); the shell's own forms included."""
    if not argv:
        return b"", b"", 0
    cmd, args = posixpath.basename(argv[0]), argv[1:]
    if cmd in ("sh", "bash", "ash") and args[:1] == ["-c"]:
        return script(ctr, " ".join(args[1:2]))
    if cmd in ("sh", "bash", "ash"):
        return b"", (f"{cmd}: interactive shells are not available in the sandbox; run one command at a time, "
                      "e.g. kubectl exec POD -- ls /\n").encode(), 1
    if cmd in ("env", "printenv"):
        env = dict(ctr.env())
        if cmd == "printenv" and args:
            vals = [env[a] for a in args if a in env]
            return "".join(v + "\n" for v in vals).encode(), b"", 0 if len(vals) == len(args) else 1
        return "".join(f"{k}={v}\n" for k, v in env.items()).encode(), b"", 0
    if cmd == "cat":
        out, err, rc = b"", b"", 0
        for a in args:
            p = posixpath.normpath(a)
            if len(out) > _MAX_OUT:   # ``cat big big big …``: bounded, as every answer here is
                break
            if p in ctr.files:
                out += ctr.files[p]
            elif ctr.is_dir(p):
                err, rc = err + f"cat: {a}: Is a directory\n".encode(), 1
            else:
                err, rc = err + f"cat: {a}: No such file or directory\n".encode(), 1
        return out, err, rc
    if cmd == "ls":
        paths = [a for a in args if not a.startswith("-")] or ["/opt/app-root/src" if not ctr._root() else "/"]
        show_all = any("a" in a for a in args if a.startswith("-"))
        long = any("l" in a for a in args if a.startswith("-"))
        out, err, rc = b"", b"", 0
        for a in paths:
            p = posixpath.normpath(a)
            if p in ctr.files:
                out += f"{a}\n".encode()
            elif ctr.is_dir(p):
                names = ctr.listing(p)
                projected = ctr.mounts.get(p) in ("configMap", "secret")
                if show_all and projected:
                    names = [".", "..", "..data"] + names
                lines = [_long(ctr, p, n, projected) for n in names] if long else names
                out += (("\n" if out else "") + f"{a}:\n" if len(paths) > 1 else "").encode() + (b"total 0\n" if long else b"")
                out += "".join(n + "\n" for n in lines).encode()
            else:
                err, rc = err + f"ls: cannot access '{a}': No such file or directory\n".encode(), 2
        return out, err, rc
    if cmd == "df":
        rows = [("overlay", "120G", "18G", "102G", "15%", "/"), ("tmpfs", "64M", "0", "64M", "0%", "/dev")]
        for m, kind in sorted(ctr.mounts.items()):
            if kind.startswith("pvc:"):
                pvc = ctr.store.get(ctr.store.rt("persistentvolumeclaims"), ctr.ns, kind[4:]) or {}
                size = ((pvc.get("status") or {}).get("capacity") or {}).get("storage", "1Gi").replace("i", "")
                rows.append((f"/dev/rbd{len(rows)}", size, "24K", size, "1%", m))
            elif kind in ("configMap", "secret"):
                rows.append(("tmpfs", "15G", "12K", "15G", "1%", m))
        wanted = [posixpath.normpath(a) for a in args if not a.startswith("-")]
        if wanted:     # ``df PATH``: the one filesystem holding each path (coreutils df)
            missing = [a for a in wanted if a not in ctr.files and not ctr.is_dir(a)]
            if missing:
                return b"", f"df: {missing[0]}: No such file or directory\n".encode(), 1
            rows = [max((r for r in rows if a == r[5] or a.startswith(r[5].rstrip("/") + "/")),
                        key=lambda r: len(r[5])) for a in wanted]
        text = "Filesystem      Size  Used Avail Use% Mounted on\n" + "".join(
            f"{a:<15} {b:>4}  {c:>4} {d:>5} {e:>4} {f}\n" for a, b, c, d, e, f in rows)
        return text.encode(), b"", 0
    if cmd == "hostname":
        return f"{ctr.pod['metadata']['name']}\n".encode(), b"", 0
    if cmd in ("id", "whoami"):
        if ctr._root():
            return (b"root\n" if cmd == "whoami" else b"uid=0(root) gid=0(root) groups=0(root)\n"), b"", 0
        return (b"default\n" if cmd == "whoami" else b"uid=1001(default) gid=0(root) groups=0(root)\n"), b"", 0
    if cmd in ("curl", "wget"):
        return _curl(ctr, args, cmd == "wget")
    if cmd == "echo":
        return (" ".join(args) + "\n").encode(), b"", 0
    if cmd == "pwd":
        return (b"/\n" if ctr._root() else b"/opt/app-root/src\n"), b"", 0
    if cmd in ("true", ":"):
        return b"", b"", 0
    if cmd == "false":
        return b"", b"", 1
    return b"", f"sh: {argv[0]}: command not found\n".encode(), 127


_PROGRAMS = frozenset(("sh", "bash", "ash", "env", "printenv", "cat", "ls", "df", "hostname", "id", "whoami",
                       "curl", "wget", "echo", "pwd", "true", "false"))


def exec_argv(ctr: Container, argv: list[str]) -> Result:
    """What ``kubectl exec POD -- CMD ARGS`` runs: the runtime starts CMD itself, no shell, so a
    program the image lacks is the OCI runtime's refusal and exit 126, as runc reports it through
    CRI-O (recorded in docker/for-linux#246 and joeferner/redis-commander#516: ``OCI runtime exec
    failed: exec failed: unable to start container process: exec: "X": executable file not found
    in $PATH: unknown`` then ``command terminated with exit code 126``); inside ``sh -c`` it is the
    shell's ``command not found``, 127."""
    if argv and "/" not in argv[0] and argv[0] not in _PROGRAMS:
        return b"", (f'OCI runtime exec failed: exec failed: unable to start container process: exec: "{argv[0]}": '
                     "executable file not found in $PATH: unknown\n").encode(), 126
    return run(ctr, argv)


def script(ctr: Container, text: str) -> Result:
    """``sh -c TEXT``: commands joined by ``;``, ``&&`` and ``||`` (no pipes or redirections)."""
    text = _expand(text, dict(ctr.env()))
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        tokens = list(lex)
    except ValueError as exc:
        return b"", f"sh: syntax error: {exc}\n".encode(), 2
    out, err, rc = b"", b"", 0
    cur: list[str] = []
    op = ";"
    for tok in tokens + [";"]:
        if tok in (";", "&&", "||"):
            if cur and (op == ";" or (op == "&&" and rc == 0) or (op == "||" and rc != 0)):
                o, e, rc = run(ctr, cur)
                out, err = (out + o)[:_MAX_OUT], (err + e)[:_MAX_OUT]
            cur, op = [], tok
        elif tok in ("|", "&", ">", "<") or set(tok) <= set(";&|"):
            return out, err + f"sh: '{tok}' is not supported in the sandbox (no pipes or redirections)\n".encode(), 2
        else:
            cur.append(tok)
    return out, err, rc


def _expand(text: str, env: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` as sh expands them before it runs a line: not inside single
    quotes; the value stays one word inside double quotes and is split on blanks outside, and
    never becomes an operator (a ``;`` in a Secret's value is text)."""
    out, i, quote = [], 0, ""
    while i < len(text):
        ch = text[i]
        if ch == "'" and quote != '"':
            quote = "" if quote == "'" else "'"
        elif ch == '"' and quote != "'":
            quote = "" if quote == '"' else '"'
        elif ch == "\\" and quote != "'" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        elif ch == "$" and quote != "'":
            braced = text[i + 1:i + 2] == "{"
            j = i + 2 if braced else i + 1
            k = j
            while k < len(text) and (text[k].isalnum() or text[k] == "_"):
                k += 1
            if k > j and (not braced or text[k:k + 1] == "}"):
                value = env.get(text[j:k], "")
                if quote:
                    out.append("".join("\\" + c if c in '"\\' else c for c in value))
                else:
                    out.append("".join(c if c.isalnum() or c in " \t" else "\\" + c for c in value))
                i = k + 1 if braced else k
                continue
        out.append(ch)
        i += 1
    return "".join(out)
