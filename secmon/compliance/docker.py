"""Docker facts: daemon.json + dockerd flags, ``docker inspect`` JSON, Dockerfiles, host files,
audit rules, and a live mode over the local Docker socket (stdlib HTTP over a unix socket).

The daemon document uses daemon.json's key names; a dockerd flag sets the same key (dockerd
itself refuses to start when both set one, so the merge never hides a conflict that runs).
"""

from __future__ import annotations

import http.client
import json
import re
import socket
from pathlib import Path
from typing import Any

from secmon.compliance.dockerfile import DockerfileError, dockerfile_facts
from secmon.compliance.facts import PATH_KEY, Resource
from secmon.compliance.files import file_resources
from secmon.compliance.flags import parse_flags, systemd_exec_start, systemd_service_under
from secmon.compliance.k8s import InputIssue
from secmon.errors import InputError


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []

# dockerd flag -> daemon.json key, where they differ (list flags become the plural key).
DOCKERD_FLAG_KEYS: dict[str, str] = {
    "H": "hosts",
    "host": "hosts",
    "insecure-registry": "insecure-registries",
    "authorization-plugin": "authorization-plugins",
    "default-ulimit": "default-ulimits",
    "storage-opt": "storage-opts",
    "log-opt": "log-opts",
    "l": "log-level",
    "D": "debug",
    "s": "storage-driver",
    "g": "data-root",
    "G": "group",
    "registry-mirror": "registry-mirrors",
    "add-runtime": "runtimes",
    "exec-opt": "exec-opts",
    "label": "labels",
}
DOCKERD_LIST_KEYS = frozenset(
    {"hosts", "insecure-registries", "authorization-plugins", "default-ulimits", "storage-opts", "log-opts", "registry-mirrors", "exec-opts", "labels"}
)


def daemon_resource(daemon_json: dict[str, Any] | None, json_file: str, argv: list[str], argv_source: str) -> Resource:
    doc: dict[str, Any] = dict(daemon_json or {})
    flags = parse_flags(argv)
    for flag, values in flags.items():
        key = DOCKERD_FLAG_KEYS.get(flag, flag)
        if key in DOCKERD_LIST_KEYS:
            existing = doc.get(key)
            base = list(existing) if isinstance(existing, list) else list(existing) if isinstance(existing, dict) else []
            doc[key] = base + list(values)
        else:
            doc[key] = values
    hosts = doc.get("hosts")
    hosts = [hosts] if isinstance(hosts, str) else list(hosts) if isinstance(hosts, list | tuple) else []
    doc["tcp_hosts"] = [h for h in hosts if isinstance(h, str) and h.startswith("tcp://")]
    opts = doc.get("storage-opts")
    doc["storage_opt_names"] = [str(o).split("=", 1)[0] for o in (opts if isinstance(opts, list | tuple) else [])]
    doc["flags"] = flags
    origin = " + ".join(s for s in (json_file, argv_source) if s) or "(defaults)"
    return Resource("daemon", "dockerd", origin, doc, "daemon.json keys; dockerd flags mapped onto them")


def load_daemon_json(path: str) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON in daemon configuration: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: daemon.json must be a JSON object, got {type(data).__name__}")
    return data


_CAP = re.compile(r"^(CAP_)?", re.I)


def _caps(values: Any) -> list[str]:
    return [_CAP.sub("", str(v)).upper() for v in values] if isinstance(values, list) else []


SENSITIVE_HOST_DIRS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr")


def container_doc(obj: dict[str, Any]) -> dict[str, Any]:
    doc = dict(obj)
    host = _as_dict(obj.get("HostConfig"))
    cfg = _as_dict(obj.get("Config"))
    mounts = _as_list(obj.get("Mounts"))
    doc["caps_add"] = _caps(host.get("CapAdd"))
    doc["caps_drop"] = _caps(host.get("CapDrop"))
    doc["security_opt"] = [str(s) for s in host.get("SecurityOpt") or []]
    doc["user"] = cfg.get("User")
    doc["mounts"] = [
        {
            **m,
            PATH_KEY: f"Mounts[{i}]",
            "sensitive": str(m.get("Source", "")).rstrip("/") in {d.rstrip("/") for d in SENSITIVE_HOST_DIRS} or str(m.get("Source")) == "/",
        }
        for i, m in enumerate(mounts)
        if isinstance(m, dict)
    ]
    bindings = _as_dict(host.get("PortBindings"))
    doc["host_ports"] = [
        {PATH_KEY: f"HostConfig.PortBindings.{port}[{i}]", "container_port": port, "HostIp": b.get("HostIp") or "", "HostPort": b.get("HostPort")}
        for port, binds in bindings.items()
        for i, b in enumerate(binds or [])
        if isinstance(b, dict)
    ]
    doc["has_healthcheck"] = isinstance(cfg.get("Healthcheck"), dict) and cfg["Healthcheck"].get("Test") not in (None, [], ["NONE"])
    return doc


def inspect_resources(path: str, text: str) -> tuple[list[Resource], list[InputIssue]]:
    """Containers and images from ``docker inspect`` output (a JSON array, or one object)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [InputIssue(path, f"invalid JSON: {exc.msg}", exc.lineno)]
    items = data if isinstance(data, list) else [data]
    out: list[Resource] = []
    issues: list[InputIssue] = []
    for i, obj in enumerate(items):
        if not isinstance(obj, dict) or "Id" not in obj:
            issues.append(InputIssue(path, f"item {i} is not docker inspect output (no 'Id')"))
            continue
        if "HostConfig" in obj or "State" in obj:
            name = str(obj.get("Name") or obj["Id"][:12]).lstrip("/")
            out.append(Resource("container", f"container/{name}", path, container_doc(obj), f"[{i}]"))
        elif "RootFS" in obj or "RepoTags" in obj:
            tags = obj.get("RepoTags") or []
            name = tags[0] if tags else str(obj["Id"])[:19]
            cfg = _as_dict(obj.get("Config"))
            doc = {**obj, "user": cfg.get("User"), "has_healthcheck": isinstance(cfg.get("Healthcheck"), dict)
                   and cfg["Healthcheck"].get("Test") not in (None, [], ["NONE"])}
            out.append(Resource("image", f"image/{name}", path, doc, f"[{i}]"))
        else:
            issues.append(InputIssue(path, f"item {i} is neither a container nor an image"))
    return out, issues


def dockerfile_resource(path: str, text: str) -> tuple[list[Resource], list[InputIssue]]:
    try:
        doc = dockerfile_facts(text, path)
    except DockerfileError as exc:
        reason = str(exc)[len(f"{path}:{exc.line}: "):] if str(exc).startswith(f"{path}:") else str(exc)
        return [], [InputIssue(path, reason, exc.line)]
    return [Resource("dockerfile", path, path, doc, "")], []


HOST_FILES = (
    "etc/systemd/system/docker.service", "lib/systemd/system/docker.service", "usr/lib/systemd/system/docker.service",
    "etc/systemd/system/docker.socket", "lib/systemd/system/docker.socket", "usr/lib/systemd/system/docker.socket",
    "etc/docker", "etc/docker/daemon.json", "etc/default/docker", "etc/sysconfig/docker",
    "var/run/docker.sock", "run/containerd/containerd.sock",
)
HOST_TREES = ("etc/docker/certs.d",)


def host_file_resources(root: Path, daemon: Resource | None) -> list[Resource]:
    extra: list[str] = []
    if daemon is not None:
        for key in ("tlscacert", "tlscert", "tlskey"):
            value = daemon.doc.get(key)
            value = value[-1] if isinstance(value, tuple) else value
            if isinstance(value, str) and value:
                extra.append(value)
    resources = file_resources("host-file", root, [*HOST_FILES, *extra], HOST_TREES)
    tls = {"/" + e.lstrip("/"): key for e, key in zip(extra, ("tlscacert", "tlscert", "tlskey"), strict=False)}
    for r in resources:
        r.doc["tls_role"] = tls.get(r.name)
    return resources


_AUDIT_WATCH = re.compile(r"(?:^|\s)-w\s+(\S+)|(?:^|\s)-F\s+(?:path|dir)=(\S+)")


def audit_resource(root: Path) -> Resource | None:
    files = [root / "etc/audit/audit.rules", *sorted((root / "etc/audit/rules.d").glob("*.rules"))]
    watched: list[str] = []
    used: list[str] = []
    for f in files:
        if f.is_file():
            used.append(str(f))
            for line in f.read_text(errors="replace").splitlines():
                if line.lstrip().startswith("#"):
                    continue
                for m in _AUDIT_WATCH.finditer(line):
                    watched.append((m.group(1) or m.group(2)).rstrip("/") or "/")
    if not used:
        return None
    return Resource("audit", "audit rules", ", ".join(used), {"watched": watched}, "")


def dockerd_argv_from_root(root: Path) -> tuple[list[str], str]:
    env, text, used = systemd_service_under(root, "docker", ("etc/default/docker", "etc/sysconfig/docker"))
    if not text:
        return [], ""
    argv = systemd_exec_start(text, env)
    return argv[1:], ", ".join(used)


# ---------------------------------------------------------------------------------------------
# Live mode: the Docker Engine API over the local unix socket.


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float = 10.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


def docker_api_get(socket_path: str, path: str) -> Any:
    conn = _UnixHTTPConnection(socket_path)
    try:
        conn.request("GET", path, headers={"Host": "docker"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise InputError(f"docker API {path} answered {response.status}: {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


def live_resources(socket_path: str = "/var/run/docker.sock") -> list[Resource]:
    """Running containers and local images inspected through the Docker socket."""
    out: list[Resource] = []
    for summary in docker_api_get(socket_path, "/containers/json?all=1"):
        obj = docker_api_get(socket_path, f"/containers/{summary['Id']}/json")
        out.extend(inspect_resources(f"docker://{socket_path}", json.dumps([obj]))[0])
    for summary in docker_api_get(socket_path, "/images/json"):
        obj = docker_api_get(socket_path, f"/images/{summary['Id']}/json")
        out.extend(inspect_resources(f"docker://{socket_path}", json.dumps([obj]))[0])
    return out
