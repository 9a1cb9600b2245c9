"""Kubernetes facts: manifests, control-plane static pods, kubelet configuration and node files.

Manifests are multi-document YAML, JSON objects, JSON lists and ``kind: List`` objects. Every
workload kind's pod template is normalized into one document shaped like a Pod (``metadata``,
``spec``) plus derived facts that Kubernetes itself would compute: ``containers`` merges
containers, initContainers and ephemeralContainers (each element keeps its real path), and each
container gets ``effective.*`` values where the container setting overrides the pod setting
(runAsNonRoot, runAsUser, seccomp and AppArmor profiles, including the legacy annotations).

Problems are per file: a file that does not parse, holds an unrendered Helm template or an object
of an unknown kind yields an :class:`InputIssue` and the other files are still checked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from secmon.compliance.facts import PATH_KEY, Resource
from secmon.compliance.flags import parse_flags, split_command, systemd_exec_start, systemd_service_under
from secmon.errors import InputError

try:  # libyaml is ~10x faster; the pure-Python loader gives the same documents.
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader



def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []

@dataclass(frozen=True)
class InputIssue:
    """One input problem: the file, where in it, and why it was not (fully) checked."""

    file: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.reason}"


class ManifestError(InputError):
    """A manifest file that cannot be checked."""


# kind -> path of the pod template's metadata/spec parent inside the object.
WORKLOAD_TEMPLATES: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}
OTHER_KINDS: dict[str, str] = {
    "Role": "role",
    "ClusterRole": "role",
    "RoleBinding": "rolebinding",
    "ClusterRoleBinding": "rolebinding",
    "ServiceAccount": "serviceaccount",
    "NetworkPolicy": "networkpolicy",
    "Namespace": "namespace",
    "ConfigMap": "configmap",
    "Ingress": "ingress",
}
# Kinds that are valid Kubernetes objects but have no checks: counted, reported, not errors.
KINDS_WITHOUT_CHECKS = frozenset(
    {
        "Service", "Secret", "Endpoints", "EndpointSlice", "PersistentVolume", "PersistentVolumeClaim",
        "StorageClass", "HorizontalPodAutoscaler", "PodDisruptionBudget", "CustomResourceDefinition",
        "LimitRange", "ResourceQuota", "PriorityClass", "IngressClass", "Event", "Node", "Lease",
        "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding", "APIService", "CSIDriver", "RuntimeClass", "VolumeAttachment",
        "CertificateSigningRequest", "ControllerRevision", "PodSecurityPolicy",
    }
)
CONTROL_PLANE_BINARIES = {
    "kube-apiserver": "apiserver",
    "kube-controller-manager": "controller-manager",
    "kube-scheduler": "scheduler",
    "etcd": "etcd",
    "kube-proxy": "kube-proxy",
}
_HELM = re.compile(r"\{\{.*?\}\}", re.S)


def _documents(text: str) -> Iterator[tuple[Any, int]]:
    """(document, 1-based start line) for every YAML document; the libyaml loader's own loop."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield loader.construct_document(node), node.start_mark.line + 1
    finally:
        loader.dispose()


try:  # A Rust YAML parser: ~5x faster than libyaml + PyYAML's Python constructor on manifests.
    import yaml_rs as _yaml_rs
except ImportError:  # pragma: no cover - the dependency is declared; PyYAML remains correct
    _yaml_rs = None  # type: ignore[assignment]

_DOC_MARKER = re.compile(r"^(---|\.\.\.)(?=\s|$)", re.M)
_LINE_COL = re.compile(r"line (\d+), column (\d+)")
# Constructs the fast parser reads differently from Kubernetes' YAML 1.1 reader (merge keys,
# explicit tags, directives): such files go through PyYAML.
_NEEDS_PYYAML = re.compile("<<\\s*:|!!|^%|[\x85\u2028\u2029\ufeff]", re.M)  # also YAML 1.1-only line breaks, BOM
# Plain scalars that YAML 1.1 (Kubernetes' reader, PyYAML) and YAML 1.2 (the fast parser) resolve
# differently: yes/no/on/off/y/n booleans, 0644 octals, 1e3 / 0E0 floats, 1:20 sexagesimals.
# A file holding one unquoted is read by PyYAML so both readers never disagree.
_YAML11_SCALAR = re.compile(
    r"(?:^|[:\-,\[{?]\s)\s*(?:y|n|yes|no|on|off|[-+]?0[0-7_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
    r"|[-+]?(?:[0-9][0-9_]*)?\.?[0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|nan)|=)\s*(?:$|[,\]}#]|:(?:\s|$))",
    re.M | re.I,
)


class _DocumentError(Exception):
    def __init__(self, line: int | None, problem: str) -> None:
        self.line = line
        self.problem = problem


def _split_documents(text: str) -> list[tuple[str, int]]:
    """Document texts with their first line. A ``---``/``...`` marker is only ever at column 0
    (block scalars are indented), so splitting lines there is exact for block-style manifests."""
    if not text.startswith(("---", "...")) and "\n---" not in text and "\n..." not in text:
        return [(text, 1)] if text.strip() else []  # one document, the common case
    docs: list[tuple[str, int]] = []
    lines = text.split("\n")
    current: list[str] = []
    start = 1
    for number, line in enumerate(lines, 1):
        m = _DOC_MARKER.match(line)
        if m:
            if any(x.strip() and not x.lstrip().startswith("#") for x in current):
                docs.append(("\n".join(current), start))
            rest = line[3:]
            current = [" " * 3 + rest] if m.group(1) == "---" and rest.strip() and not rest.strip().startswith("#") else []
            start = number if current else number + 1
            continue
        current.append(line)
    if any(x.strip() and not x.lstrip().startswith("#") for x in current):
        docs.append(("\n".join(current), start))
    return docs


def _fast_documents(text: str) -> list[tuple[Any, int]]:
    out: list[tuple[Any, int]] = []
    for doc_text, start in _split_documents(text):
        try:
            out.append((_yaml_rs.loads(doc_text, parse_datetime=False), start))
        except _yaml_rs.YAMLDecodeError as exc:
            message = str(exc)
            m = _LINE_COL.search(message)
            problem = message.strip().splitlines()[-1].strip() if message.strip() else "parse error"
            raise _DocumentError(start + int(m.group(1)) - 1 if m else start, problem) from None
    return out


@lru_cache(maxsize=1 << 16)
def _line_needs_yaml11(line: str) -> bool:
    # Manifests repeat most lines verbatim, so the regex runs once per distinct line.
    return _YAML11_SCALAR.search(line) is not None


_PYYAML_MARKERS = ("<<", "!!", "\x85", "\u2028", "\u2029", "\ufeff")


def _fast_path_safe(text: str) -> bool:
    if any(marker in text for marker in _PYYAML_MARKERS) or text.startswith("%") or "\n%" in text:
        return False
    return not any(map(_line_needs_yaml11, text.split("\n")))


def load_documents(text: str) -> list[tuple[Any, int]]:
    """Every YAML document of a text with its start line; raises _DocumentError on bad YAML."""
    if _yaml_rs is not None and _fast_path_safe(text):
        return _fast_documents(text)
    try:
        return list(_documents(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _DocumentError(mark.line + 1 if mark else None, problem) from None


def parse_manifest_text(text: str, file: str) -> tuple[list[tuple[dict[str, Any], int | None]], list[InputIssue]]:
    """The Kubernetes objects of one file (``kind: List`` and JSON arrays flattened) with lines."""
    helm = _HELM.search(text) if "{{" in text else None
    if helm:
        line = text.count("\n", 0, helm.start()) + 1
        return [], [InputIssue(file, f"unrendered Helm template {helm.group(0)[:40]!r}; render it first (helm template)", line)]
    stripped = text.lstrip()
    docs: list[tuple[Any, int | None]] = []
    try:
        if stripped.startswith(("{", "[")):
            try:
                docs = [(json.loads(text), 1)]
            except json.JSONDecodeError:
                docs = list(load_documents(text))  # JSON-looking YAML flow style
        else:
            docs = list(load_documents(text))
    except _DocumentError as exc:
        return [], [InputIssue(file, f"invalid YAML: {exc.problem}", exc.line)]
    objects: list[tuple[dict[str, Any], int | None]] = []
    issues: list[InputIssue] = []

    def add(doc: Any, line: int | None, where: str) -> None:
        if doc is None:
            return
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                add(item, line, f"{where}[{i}]")
            return
        if not isinstance(doc, dict):
            issues.append(InputIssue(file, f"{where} is a {type(doc).__name__}, not a Kubernetes object", line))
            return
        kind = doc.get("kind")
        if not isinstance(kind, str) or not kind:
            issues.append(InputIssue(file, f"{where} has no 'kind': not a Kubernetes manifest", line))
            return
        if kind.endswith("List") and isinstance(doc.get("items"), list):
            for i, item in enumerate(doc["items"]):
                add(item, line, f"{where}.items[{i}]")
            return
        objects.append((doc, line))

    for index, (doc, doc_line) in enumerate(docs):
        add(doc, doc_line, f"document {index + 1}")
    return objects, issues


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def object_name(obj: dict[str, Any]) -> str:
    meta = _meta(obj)
    kind = obj.get("kind", "?")
    ns = meta.get("namespace")
    name = meta.get("name", "<unnamed>")
    return f"{kind}/{ns}/{name}" if ns else f"{kind}/{name}"


def _dig(obj: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


_IMAGE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z0-9_+.-]+:[0-9a-fA-F]+))?$")


def parse_image(ref: Any) -> dict[str, Any]:
    """``registry:5000/team/app:1.2@sha256:...`` -> name, tag, digest (a registry port is not a tag)."""
    if not isinstance(ref, str) or not ref:
        return {}
    m = _IMAGE.match(ref.strip())
    if not m:
        return {"name": ref}
    name, tag, digest = m.group("name"), m.group("tag"), m.group("digest")
    if tag and "/" in tag:  # "host:5000/app": the colon belonged to the registry
        name, tag = f"{name}:{tag}", None
    return {"name": name, "tag": tag, "digest": digest}


_PROFILE_FROM_ANNOTATION = {"runtime/default": "RuntimeDefault", "docker/default": "RuntimeDefault", "unconfined": "Unconfined"}


def _annotation_profile(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if value.startswith("localhost/"):
        return "Localhost"
    return _PROFILE_FROM_ANNOTATION.get(value, value)


def _caps(values: Any) -> list[str]:
    """Capability names as the runtime reads them: upper case, without the CAP_ prefix."""
    if not isinstance(values, list):
        return []
    return [str(v).upper().removeprefix("CAP_") for v in values]


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def normalize_workload(obj: dict[str, Any], template_path: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """The Pod-shaped document of a workload and the path of its pod spec in the object."""
    template = _dig(obj, template_path) if template_path else obj
    template = template if isinstance(template, dict) else {}
    spec = _as_dict(template.get("spec"))
    tmeta = _as_dict(template.get("metadata"))
    spec_path = ".".join((*template_path, "spec"))
    annotations = {**(_meta(obj).get("annotations") or {}), **(tmeta.get("annotations") or {})} if template_path else (
        _meta(obj).get("annotations") or {}
    )
    annotations = annotations if isinstance(annotations, dict) else {}
    pod_sc = _as_dict(spec.get("securityContext"))
    containers: list[dict[str, Any]] = []
    for field, role in (("containers", "container"), ("initContainers", "init"), ("ephemeralContainers", "ephemeral")):
        items = spec.get(field)
        if not isinstance(items, list):
            continue
        for i, c in enumerate(items):
            if not isinstance(c, dict):
                continue
            sc = _as_dict(c.get("securityContext"))
            name = c.get("name")
            seccomp = _first(
                _dig(sc, ("seccompProfile", "type")),
                _dig(pod_sc, ("seccompProfile", "type")),
                _annotation_profile(annotations.get(f"container.seccomp.security.alpha.kubernetes.io/{name}")),
                _annotation_profile(annotations.get("seccomp.security.alpha.kubernetes.io/pod")),
            )
            apparmor = _first(
                _dig(sc, ("appArmorProfile", "type")),
                _annotation_profile(annotations.get(f"container.apparmor.security.beta.kubernetes.io/{name}")),
                _dig(pod_sc, ("appArmorProfile", "type")),
            )
            effective = {
                "runAsNonRoot": _first(sc.get("runAsNonRoot"), pod_sc.get("runAsNonRoot")),
                "runAsUser": _first(sc.get("runAsUser"), pod_sc.get("runAsUser")),
                "runAsGroup": _first(sc.get("runAsGroup"), pod_sc.get("runAsGroup")),
                "seccompProfile": seccomp,
                "appArmorProfile": apparmor,
                "seLinuxOptions": _first(sc.get("seLinuxOptions"), pod_sc.get("seLinuxOptions")),
                "windowsHostProcess": _first(
                    _dig(sc, ("windowsOptions", "hostProcess")), _dig(pod_sc, ("windowsOptions", "hostProcess"))
                ),
            }
            caps = _as_dict(sc.get("capabilities"))
            containers.append(
                {**c, PATH_KEY: f"{spec_path}.{field}[{i}]", "role": role, "caps": {"add": _caps(caps.get("add")), "drop": _caps(caps.get("drop"))}, "image_ref": parse_image(c.get("image")), "effective": effective}
            )
    volumes = _as_list(spec.get("volumes"))
    volumes = [
        {**v, PATH_KEY: f"{spec_path}.volumes[{i}]", "types": [k for k in v if k != "name"]}
        for i, v in enumerate(volumes)
        if isinstance(v, dict)
    ]
    meta = _meta(obj)
    doc = {
        "kind": obj.get("kind"),
        "metadata": meta,
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "labels": {**(meta.get("labels") or {}), **(tmeta.get("labels") or {})} if isinstance(meta.get("labels") or {}, dict) and isinstance(tmeta.get("labels") or {}, dict) else {},
        "annotations": annotations,
        "spec": spec,
        "containers": containers,
        "volumes": volumes,
        "sysctls": _as_list(pod_sc.get("sysctls")),
    }
    return doc, spec_path


def control_plane_processes(doc: dict[str, Any], file: str, name: str, line: int | None) -> list[Resource]:
    """A static pod running kube-apiserver/controller-manager/scheduler/etcd gives a process
    resource with its flags (command + args), and for etcd its ETCD_* environment."""
    out: list[Resource] = []
    for c in doc["containers"]:
        raw = [*(c.get("command") or []), *(c.get("args") or [])] if isinstance(c.get("command") or [], list) and isinstance(c.get("args") or [], list) else []
        # YAML turns a bare `false` or `30` in a command list into a bool or int; argv is text.
        argv = [("true" if w else "false") if isinstance(w, bool) else str(w) for w in raw]
        binary = os.path.basename(str(argv[0])) if argv else ""
        kind = CONTROL_PLANE_BINARIES.get(binary)
        if kind is None:
            continue
        env: dict[str, Any] = {str(e.get("name")): e.get("value") for e in c.get("env") or [] if isinstance(e, dict) and e.get("value") is not None}
        out.append(process_resource(kind, argv[1:], env, file, f"{name} ({binary})", c[PATH_KEY], line))
    return out


def process_resource(
    kind: str, argv: list[str], env: dict[str, Any], file: str, name: str, location: str, line: int | None = None
) -> Resource:
    flags = parse_flags(argv)
    if kind == "etcd":
        # etcd reads ETCD_<FLAG> from the environment when the flag is absent; the flag wins.
        for key, value in env.items():
            if isinstance(key, str) and key.startswith("ETCD_"):
                flag = key[5:].lower().replace("_", "-")
                flags.setdefault(flag, parse_flags([f"--{flag}={value}"])[flag])
    doc = {"flags": flags, "env": env, "argv": argv}
    return Resource(kind, name, file, doc, location, line)


def resources_from_objects(objects: list[tuple[dict[str, Any], int | None]], file: str) -> tuple[list[Resource], list[InputIssue], dict[str, int]]:
    resources: list[Resource] = []
    issues: list[InputIssue] = []
    skipped: dict[str, int] = {}
    for obj, line in objects:
        kind = obj["kind"]
        name = object_name(obj)
        if kind in WORKLOAD_TEMPLATES:
            doc, spec_path = normalize_workload(obj, WORKLOAD_TEMPLATES[kind])
            resources.append(Resource("workload", name, file, doc, spec_path, line))
            # Static pods carry the control plane; kube-proxy usually runs as a DaemonSet.
            resources.extend(control_plane_processes(doc, file, name, line))
        elif kind in OTHER_KINDS:
            doc = dict(obj)
            meta = _meta(obj)
            doc["namespace"] = meta.get("namespace")
            doc["name"] = meta.get("name")
            doc["annotations"] = _as_dict(meta.get("annotations"))
            if kind in ("Role", "ClusterRole"):
                rules = _as_list(obj.get("rules"))
                doc["rules"] = [{**r, PATH_KEY: f"rules[{i}]"} for i, r in enumerate(rules) if isinstance(r, dict)]
            resources.append(Resource(OTHER_KINDS[kind], name, file, doc, "", line))
        elif kind in KINDS_WITHOUT_CHECKS:
            skipped[kind] = skipped.get(kind, 0) + 1
        else:
            issues.append(
                InputIssue(file, f"unknown kind {kind!r} ({name}); checked kinds: {', '.join([*WORKLOAD_TEMPLATES, *OTHER_KINDS])}", line)
            )
    return resources, issues, skipped


def link_namespaces(resources: list[Resource]) -> None:
    """Give every Namespace the count of NetworkPolicies found for it in the same inputs."""
    policies: dict[str, int] = {}
    for r in resources:
        if r.kind == "networkpolicy":
            ns = r.doc.get("namespace") or "default"
            policies[ns] = policies.get(ns, 0) + 1
    for r in resources:
        if r.kind == "namespace":
            r.doc["network_policy_count"] = policies.get(r.doc.get("name") or "", 0)


# ---------------------------------------------------------------------------------------------
# Node: kubelet configuration + flags, static pod manifests, file modes and owners.

# kubelet flag -> KubeletConfiguration field path: the kubelet lets flags override the file.
KUBELET_FLAG_TO_CONFIG: dict[str, tuple[str, ...]] = {
    "anonymous-auth": ("authentication", "anonymous", "enabled"),
    "authorization-mode": ("authorization", "mode"),
    "client-ca-file": ("authentication", "x509", "clientCAFile"),
    "read-only-port": ("readOnlyPort",),
    "streaming-connection-idle-timeout": ("streamingConnectionIdleTimeout",),
    "make-iptables-util-chains": ("makeIPTablesUtilChains",),
    "event-qps": ("eventRecordQPS",),
    "tls-cert-file": ("tlsCertFile",),
    "tls-private-key-file": ("tlsPrivateKeyFile",),
    "rotate-certificates": ("rotateCertificates",),
    "tls-cipher-suites": ("tlsCipherSuites",),
    "pod-max-pids": ("podPidsLimit",),
    "seccomp-default": ("seccompDefault",),
    "protect-kernel-defaults": ("protectKernelDefaults",),
    "authentication-token-webhook": ("authentication", "webhook", "enabled"),
}


def kubelet_resource(config: dict[str, Any] | None, config_file: str, flags_argv: list[str], flags_source: str) -> Resource:
    """The kubelet's effective settings: config file, then flags on top (the kubelet's precedence)."""
    import copy

    doc: dict[str, Any] = copy.deepcopy(config) if isinstance(config, dict) else {}
    flags = parse_flags(flags_argv)
    overridden: list[str] = []
    for flag, path in KUBELET_FLAG_TO_CONFIG.items():
        if flag in flags:
            node = doc
            for key in path[:-1]:
                node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
            node[path[-1]] = flags[flag]
            overridden.append(flag)
    gates = flags.get("feature-gates")
    if gates:
        merged = dict(doc.get("featureGates") or {})
        for item in ",".join(gates).split(","):
            if "=" in item:
                key, value = item.split("=", 1)
                merged[key.strip()] = value.strip()
        doc["featureGates"] = merged
    doc["flags"] = flags
    sources = [s for s in (config_file, flags_source) if s]
    location = f"config {config_file or '(none)'}" + (f"; flags from {flags_source} override {', '.join(overridden)}" if overridden else "")
    return Resource("kubelet", "kubelet", " + ".join(sources), doc, location)


def load_kubelet_config(path: str) -> dict[str, Any]:
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_Loader) if not text.lstrip().startswith("{") else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: invalid kubelet configuration: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a kubelet configuration must be a mapping (KubeletConfiguration)")
    if data.get("kind") not in (None, "KubeletConfiguration"):
        raise ManifestError(f"{path}: kind is {data.get('kind')!r}, expected KubeletConfiguration")
    return data


def kubelet_flags_from_node(root: Path) -> tuple[list[str], str]:
    """kubelet argv from the systemd unit and kubeadm's env files under ``root``."""
    env, unit_text, used = systemd_service_under(
        root, "kubelet", ("var/lib/kubelet/kubeadm-flags.env", "etc/default/kubelet", "etc/sysconfig/kubelet")
    )
    argv = systemd_exec_start(unit_text, env) if unit_text else split_command(
        " ".join(env.get(k, "") for k in ("KUBELET_KUBEADM_ARGS", "KUBELET_EXTRA_ARGS"))
    )
    return argv[1:] if argv and not argv[0].startswith("-") else argv, ", ".join(used)


# Node files that CIS section 1.1 and 4.1 look at (paths relative to the node root).
NODE_FILES = (
    "etc/kubernetes/manifests/kube-apiserver.yaml",
    "etc/kubernetes/manifests/kube-controller-manager.yaml",
    "etc/kubernetes/manifests/kube-scheduler.yaml",
    "etc/kubernetes/manifests/etcd.yaml",
    "var/lib/etcd",
    "etc/kubernetes/admin.conf",
    "etc/kubernetes/super-admin.conf",
    "etc/kubernetes/scheduler.conf",
    "etc/kubernetes/controller-manager.conf",
    "etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    "etc/kubernetes/proxy.conf",
    "etc/kubernetes/kubelet.conf",
    "etc/kubernetes/pki/ca.crt",
    "var/lib/kubelet/config.yaml",
)
NODE_TREES = ("etc/kubernetes/pki", "etc/cni/net.d")


def node_manifest_files(root: Path) -> list[Path]:
    d = root / "etc/kubernetes/manifests"
    return sorted(p for p in d.glob("*") if p.suffix in (".yaml", ".yml", ".json")) if d.is_dir() else []
