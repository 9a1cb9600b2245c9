"""The Polars evaluator and its plain Python twin agree, status and evidence, on random input."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.compliance import bundled_checks, evaluate, evaluate_slow
from secmon.compliance.checks import Check
from secmon.compliance.conditions import parse_condition
from secmon.compliance.docker import container_doc
from secmon.compliance.facts import Resource
from secmon.compliance.k8s import link_namespaces, resources_from_objects

# Values that are right, wrong, and wrongly typed: the normalizer and both evaluators must agree
# on all of them (a string "true", a number where a bool goes, nested junk, nulls).
weird = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(["true", "false", "yes", "0", "", "latest", "*", "ALL", "x.y"]),
    st.floats(allow_nan=True, allow_infinity=True, width=32), st.lists(st.sampled_from(["a", "*", "ALL"]), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
)
maybe_bool = st.one_of(st.none(), st.booleans(), st.sampled_from(["true", "false", "yes"]), st.integers(0, 2))
caps = st.lists(st.sampled_from(["ALL", "all", "NET_RAW", "SYS_ADMIN", "CAP_SYS_ADMIN", "CHOWN", "NET_BIND_SERVICE"]), max_size=3)
uid = st.one_of(st.none(), st.integers(-1, 20000), st.sampled_from(["1000", "abc"]))


@st.composite
def security_context(draw: st.DrawFn) -> dict[str, Any]:
    sc: dict[str, Any] = {}
    for key, strat in [
        ("privileged", maybe_bool), ("allowPrivilegeEscalation", maybe_bool), ("readOnlyRootFilesystem", maybe_bool),
        ("runAsNonRoot", maybe_bool), ("runAsUser", uid), ("runAsGroup", uid), ("procMount", st.sampled_from(["Default", "Unmasked", None])),
    ]:
        if draw(st.booleans()):
            sc[key] = draw(strat)
    if draw(st.booleans()):
        sc["capabilities"] = {"add": draw(caps), "drop": draw(st.one_of(caps, weird))}
    if draw(st.booleans()):
        sc["seccompProfile"] = {"type": draw(st.sampled_from(["RuntimeDefault", "Unconfined", "Localhost", ""]))}
    if draw(st.booleans()):
        sc["seLinuxOptions"] = draw(st.dictionaries(st.sampled_from(["type", "user", "role"]), st.sampled_from(["container_t", "spc_t", "x"]), max_size=2))
    return sc


@st.composite
def container(draw: st.DrawFn, i: int) -> dict[str, Any]:
    c: dict[str, Any] = {"name": f"c{i}", "image": draw(st.sampled_from(["nginx", "nginx:latest", "nginx:1.25", "reg:5000/app", "app@sha256:abc123", "tiller", "", "x:y:z"]))}
    if draw(st.booleans()):
        c["securityContext"] = draw(st.one_of(security_context(), weird))
    if draw(st.booleans()):
        c["resources"] = {k: draw(st.dictionaries(st.sampled_from(["cpu", "memory"]), st.sampled_from(["100m", 1, None]), max_size=2))
                          for k in draw(st.lists(st.sampled_from(["limits", "requests"]), max_size=2, unique=True))}
    if draw(st.booleans()):
        c["ports"] = draw(st.lists(st.fixed_dictionaries({"containerPort": st.integers(1, 9000)}, optional={"hostPort": st.one_of(st.integers(0, 9000), weird)}), max_size=2))
    if draw(st.booleans()):
        c["env"] = [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}} if draw(st.booleans()) else {"name": "B", "value": "v"}]
    for key in ("livenessProbe", "readinessProbe", "imagePullPolicy"):
        if draw(st.booleans()):
            c[key] = {"exec": {}} if key != "imagePullPolicy" else draw(st.sampled_from(["Always", "IfNotPresent"]))
    return c


@st.composite
def workload(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "ReplicationController"]))
    n = draw(st.integers(0, 3))
    spec: dict[str, Any] = {"containers": [draw(container(i)) for i in range(n)]}
    if draw(st.booleans()):
        spec["initContainers"] = [draw(container(9))]
    for key in ("hostPID", "hostIPC", "hostNetwork", "automountServiceAccountToken"):
        if draw(st.booleans()):
            spec[key] = draw(maybe_bool)
    if draw(st.booleans()):
        spec["volumes"] = draw(st.lists(st.one_of(
            st.just({"name": "d", "hostPath": {"path": "/var/run/docker.sock"}}), st.just({"name": "h", "hostPath": {"path": "/data"}}),
            st.just({"name": "e", "emptyDir": {}}), st.just({"name": "n", "nfs": {"server": "x"}}), weird), max_size=3))
    if draw(st.booleans()):
        spec["securityContext"] = {"runAsNonRoot": draw(maybe_bool), "runAsUser": draw(uid),
                                   "sysctls": [{"name": draw(st.sampled_from(["kernel.shm_rmid_forced", "net.core.somaxconn"])), "value": "1"}]}
    meta: dict[str, Any] = {"name": draw(st.sampled_from(["a", "b", "tiller"])), "namespace": draw(st.sampled_from([None, "default", "kube-system", "prod"]))}
    if draw(st.booleans()):
        meta["annotations"] = {"container.apparmor.security.beta.kubernetes.io/c0": draw(st.sampled_from(["runtime/default", "unconfined", "localhost/p"]))}
    template = {"metadata": {"labels": {"app": draw(st.sampled_from(["web", "helm"]))}}, "spec": spec}
    if kind == "Pod":
        return {"kind": kind, "metadata": meta, "spec": spec}
    if kind == "CronJob":
        return {"kind": kind, "metadata": meta, "spec": {"jobTemplate": {"spec": {"template": template}}}}
    return {"kind": kind, "metadata": meta, "spec": {"template": template}}


@st.composite
def other_object(draw: st.DrawFn) -> dict[str, Any]:
    verbs = st.lists(st.sampled_from(["get", "list", "watch", "create", "*", "bind", "impersonate"]), max_size=3)
    resources = st.lists(st.sampled_from(["pods", "secrets", "*", "nodes/proxy", "serviceaccounts/token"]), max_size=3)
    kind = draw(st.sampled_from(["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "Namespace", "NetworkPolicy", "ConfigMap", "ServiceAccount", "Ingress"]))
    name = draw(st.sampled_from(["default", "system:x", "ops", "prod", "cluster-admin"]))
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": draw(st.sampled_from([None, "prod", "default"]))}}
    if kind in ("Role", "ClusterRole"):
        obj["rules"] = draw(st.lists(st.fixed_dictionaries({"apiGroups": st.just([""]), "resources": resources, "verbs": verbs}), max_size=3))
    elif kind.endswith("Binding"):
        obj["roleRef"] = {"name": draw(st.sampled_from(["cluster-admin", "view"]))}
        obj["subjects"] = draw(st.lists(st.fixed_dictionaries({"kind": st.sampled_from(["Group", "User"]), "name": st.sampled_from(["system:masters", "bob"])}), max_size=2))
    elif kind == "NetworkPolicy" and draw(st.booleans()):
        obj["spec"] = {"podSelector": {}}
    elif kind == "ConfigMap":
        obj["data"] = draw(st.dictionaries(st.sampled_from(["password", "config", "x"]), st.sampled_from(["", "pw=1", "PASSWORD=abc", "${X}"]), max_size=2))
    elif kind == "ServiceAccount" and draw(st.booleans()):
        obj["automountServiceAccountToken"] = draw(maybe_bool)
    elif kind == "Ingress":
        obj["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/auth-url": draw(st.sampled_from(["https://ok", "http://x|y", "a;b"]))}
    return obj


@st.composite
def control_plane_pod(draw: st.DrawFn) -> dict[str, Any]:
    binary = draw(st.sampled_from(["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd"]))
    flags = draw(st.lists(st.sampled_from([
        "--profiling=false", "--profiling", "--anonymous-auth=false", "--authorization-mode=Node,RBAC", "--authorization-mode=AlwaysAllow",
        "--authorization-mode", "RBACX", "--enable-admission-plugins=NodeRestriction,AlwaysAdmit", "--audit-log-maxage=45", "--audit-log-maxage=x",
        "--bind-address=127.0.0.1", "--client-cert-auth=true", "--auto-tls", "--tls-cipher-suites=TLS_AES_128_GCM_SHA256,TLS_RSA_WITH_RC4_128_SHA",
        "--feature-gates=RotateKubeletServerCertificate=false", "--token-auth-file=/t.csv", "--cert-file=/c", "--key-file", "/k",
    ]), max_size=8))
    return {"kind": "Pod", "metadata": {"name": binary, "namespace": "kube-system"},
            "spec": {"containers": [{"name": binary, "image": f"registry.k8s.io/{binary}:v1.30.0", "command": [binary, *flags]}]}}


def _agree(checks: tuple[Check, ...] | list[Check], resources: list[Resource]) -> None:
    fast = evaluate(checks, resources)
    slow = evaluate_slow(checks, resources)
    assert fast.to_dicts() == slow


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.one_of(workload(), other_object(), control_plane_pod()), min_size=1, max_size=8))
def test_k8s_checks_fast_equals_slow(objects: list[dict[str, Any]]) -> None:
    resources, _, _ = resources_from_objects([(o, i + 1) for i, o in enumerate(objects)], "random.yaml")
    link_namespaces(resources)
    _agree(bundled_checks("k8s"), resources)


@st.composite
def inspect_container(draw: st.DrawFn) -> dict[str, Any]:
    host = {k: draw(v) for k, v in [
        ("Privileged", maybe_bool), ("NetworkMode", st.sampled_from(["host", "bridge", "default", "net1"])), ("Memory", st.integers(0, 10**9)),
        ("PidMode", st.sampled_from(["", "host"])), ("ReadonlyRootfs", maybe_bool), ("CapAdd", st.one_of(st.none(), caps)),
        ("SecurityOpt", st.one_of(st.none(), st.lists(st.sampled_from(["no-new-privileges", "seccomp=unconfined", "label=type:x", "no-new-privileges:true"]), max_size=2))),
        ("PidsLimit", st.one_of(st.none(), st.integers(-1, 100))), ("RestartPolicy", st.fixed_dictionaries({"Name": st.sampled_from(["no", "always", "on-failure", ""]), "MaximumRetryCount": st.integers(0, 9)})),
        ("PortBindings", st.dictionaries(st.sampled_from(["80/tcp", "22/tcp"]), st.lists(st.fixed_dictionaries({"HostIp": st.sampled_from(["", "127.0.0.1", "0.0.0.0"]), "HostPort": st.sampled_from(["80", "8080", ""])}), max_size=2), max_size=2)),
    ] if draw(st.booleans())}
    mounts = draw(st.lists(st.fixed_dictionaries({"Source": st.sampled_from(["/", "/etc", "/data", "/var/run/docker.sock"]), "Destination": st.just("/m"),
                                                  "RW": maybe_bool, "Propagation": st.sampled_from(["", "rprivate", "rshared"])}), max_size=2))
    return {"Id": "abc", "Name": "/c", "HostConfig": host, "Config": {"User": draw(st.sampled_from(["", "root", "0:0", "app", "1000"]))},
            "Mounts": mounts, "AppArmorProfile": draw(st.sampled_from(["", "unconfined", "docker-default"])), "State": {}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(inspect_container(), min_size=1, max_size=5))
def test_docker_container_checks_fast_equals_slow(objs: list[dict[str, Any]]) -> None:
    resources = [Resource("container", f"container/c{i}", "inspect.json", container_doc(o)) for i, o in enumerate(objs)]
    _agree(bundled_checks("docker"), resources)


# Random conditions over random documents: every operator, quantifier and combinator.
facts = st.sampled_from(["a", "b", "c.d", "item", "key", "value"])
values = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from(["x", "y", "", "*"]))


@st.composite
def leaf(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "matches", "not_matches", "exists", "missing",
                               "has", "lacks", "subset_of", "intersects", "disjoint", "empty", "nonempty", "mode_within"]))
    out: dict[str, Any] = {"fact": draw(facts), "op": op}
    if op in ("eq", "ne"):
        out["value"] = draw(values)
    elif op in ("in", "not_in"):
        kind = draw(st.sampled_from([st.booleans(), st.integers(-3, 3), st.sampled_from(["x", "y"])]))
        out["value"] = draw(st.lists(kind, min_size=1, max_size=3))
    elif op in ("lt", "le", "gt", "ge"):
        out["value"] = draw(st.integers(-3, 3))
    elif op in ("matches", "not_matches"):
        out["value"] = draw(st.sampled_from(["^x", "y$", "[0-9]", r"\S"]))
    elif op in ("has", "lacks"):
        out["value"] = draw(st.sampled_from(["x", "*"]))
    elif op in ("subset_of", "intersects", "disjoint"):
        out["value"] = draw(st.lists(st.sampled_from(["x", "y", "*"]), min_size=1, max_size=2))
    elif op == "mode_within":
        out["value"] = draw(st.sampled_from(["600", "644", "0755"]))
    if op in ("eq", "ne", "lt", "ge") and draw(st.booleans()):
        out["default"] = out["value"]
    return out


conditions = st.recursive(
    leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
        st.builds(lambda q, s, w: {q: s, "where": w}, st.sampled_from(["for_all", "for_any", "for_none"]), st.sampled_from(["items", "m", "c"]), inner),
    ),
    max_leaves=6,
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-4, 0o777), st.sampled_from(["x", "y", "xy", "3", "", "*", "true"]),
                    st.floats(-1e3, 1e3), st.lists(st.sampled_from(["x", "y", "*"]), max_size=3))
docs = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "c", "d", "items", "m", "item", "key", "value"]), inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions, st.lists(docs, min_size=1, max_size=6))
def test_random_conditions_fast_equals_slow(raw: dict[str, Any], documents: list[Any]) -> None:
    cond = parse_condition(raw, "random")
    check = Check("T", "random", "T", 1, True, "low", "workload", None, None, cond, "fix", (), "test", "t.yaml", 1)
    resources = [Resource("workload", f"r{i}", "f", d if isinstance(d, dict) else {"a": d}) for i, d in enumerate(documents)]
    _agree([check], resources)


def test_status_values_and_order() -> None:
    objs = [{"kind": "Pod", "metadata": {"name": "p"}, "spec": {"hostPID": True, "containers": [{"name": "c", "image": "x:1"}]}}]
    resources, _, _ = resources_from_objects([(o, 1) for o in objs], "f.yaml")
    frame = evaluate(bundled_checks("k8s"), resources)
    assert set(frame["status"].unique()) <= {"pass", "fail", "not_applicable", "manual"}
    row = frame.filter(pl.col("check_id") == "5.2.3").row(0, named=True)
    assert row["status"] == "fail" and row["evidence"] == "spec.hostPID=true" and row["location"] == "spec"


DOCKERFILE_LINES = [
    "FROM ubuntu", "FROM ubuntu:latest AS build", "FROM alpine:3.20 AS build", "FROM build", "FROM scratch", "FROM ${BASE:-debian}:12",
    "ARG BASE=debian", "ENV PASSWORD=hunter2", "ENV A=1", "USER root", "USER 10001", "USER app:app", "EXPOSE 22", "EXPOSE 80/tcp 70000",
    "RUN apt-get update", "RUN apt-get update && apt-get install -y curl", "RUN apt-get install curl", "RUN sudo make install",
    "RUN cd /app && make", "RUN yum install -y x && yum clean all", "RUN yum install x", "RUN wget -q u", "RUN curl -s u",
    "RUN apt-get dist-upgrade -y", "RUN <<EOF\napk update\napk add curl\nEOF", "ADD app.tar.gz /app/", "ADD app.jar /app.jar",
    "ADD https://example.com/x /x", "COPY --from=build /a /b", "COPY a b c", "COPY a b c /d/", "WORKDIR app", "WORKDIR /srv",
    "WORKDIR $HOME", "CMD [\"a\"]", "CMD b", "ENTRYPOINT [\"x\"]", "HEALTHCHECK CMD true", "HEALTHCHECK NONE", "MAINTAINER me",
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(DOCKERFILE_LINES), min_size=1, max_size=12), min_size=1, max_size=4))
def test_dockerfile_checks_fast_equals_slow(files: list[list[str]]) -> None:
    from secmon.compliance.docker import dockerfile_resource

    resources: list[Resource] = []
    for i, lines in enumerate(files):
        found, _issues = dockerfile_resource(f"Dockerfile.{i}", "FROM base:1\n" + "\n".join(lines) + "\n")
        resources.extend(found)
    _agree(bundled_checks("docker"), resources)
