"""Kubernetes collection: manifest shapes, bad input per file, control plane, kubelet, node files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from secmon.compliance import scan_k8s


def _status(report, check_id: str, resource: str | None = None) -> list[str]:
    rows = report.results.filter(pl.col("check_id") == check_id)
    if resource is not None:
        rows = rows.filter(pl.col("resource") == resource)
    return rows["status"].to_list()


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"},
       "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "nginx:1.25"}]}}


def test_multidoc_json_list_and_kind_list(tmp_path: Path) -> None:
    (tmp_path / "multi.yaml").write_text(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: prod}\nspec:\n  template:\n    spec:\n"
        "      containers: [{name: c, image: x:1, securityContext: {privileged: true}}]\n---\n---\n"
        "kind: CronJob\nmetadata: {name: cj}\nspec: {jobTemplate: {spec: {template: {spec: {hostPID: true, containers: []}}}}}\n"
    )
    (tmp_path / "list.json").write_text(json.dumps([POD]))
    (tmp_path / "kindlist.yaml").write_text(json.dumps({"kind": "List", "items": [dict(POD, metadata={"name": "q"})]}))
    report = scan_k8s([str(tmp_path)])
    assert report.issues == []
    assert _status(report, "5.2.2", "Deployment/prod/d") == ["fail"]
    row = report.results.filter((pl.col("check_id") == "5.2.2") & (pl.col("resource") == "Deployment/prod/d")).row(0, named=True)
    assert row["evidence"] == "spec.template.spec.containers[0]: securityContext.privileged=true"
    assert row["line"] == 2 and row["file"].endswith("multi.yaml")
    assert _status(report, "5.2.3", "CronJob/cj") == ["fail"]
    assert _status(report, "5.2.5", "Pod/prod/p") == ["fail"]
    assert _status(report, "5.2.5", "Pod/q") == ["fail"]


def test_bad_files_are_reported_and_others_still_checked(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(json.dumps(POD))
    (tmp_path / "helm.yaml").write_text("kind: Pod\nmetadata:\n  name: {{ .Values.name }}\n")
    (tmp_path / "broken.yaml").write_text("kind: Pod\nmetadata: [unclosed\n")
    (tmp_path / "typo.yaml").write_text("kind: Deploymnet\nmetadata: {name: x}\n")
    (tmp_path / "notk8s.yaml").write_text("just: a config\n")
    (tmp_path / "scalar.yaml").write_text("42\n")
    (tmp_path / "svc.yaml").write_text("kind: Service\nmetadata: {name: s}\n")
    report = scan_k8s([str(tmp_path)])
    reasons = {Path(i.file).name: i.reason for i in report.issues}
    assert "unrendered Helm template" in reasons["helm.yaml"]
    assert "invalid YAML" in reasons["broken.yaml"]
    assert "unknown kind 'Deploymnet'" in reasons["typo.yaml"]
    assert "no 'kind'" in reasons["notk8s.yaml"]
    assert "not a Kubernetes object" in reasons["scalar.yaml"]
    assert report.skipped_kinds == {"Service": 1}
    assert _status(report, "5.2.5", "Pod/prod/p") == ["fail"]


APISERVER = """\
apiVersion: v1
kind: Pod
metadata: {name: kube-apiserver, namespace: kube-system, labels: {tier: control-plane}}
spec:
  containers:
  - name: kube-apiserver
    image: registry.k8s.io/kube-apiserver:v1.30.0
    command:
    - kube-apiserver
    - --authorization-mode=Node,RBACX
    - --enable-admission-plugins=NodeRestriction
    - --enable-admission-plugins=AlwaysAdmit
    - --profiling
    - false
    - --audit-log-maxage=45
    - --anonymous-auth=false
"""


def test_static_pod_flags_parsed_properly(tmp_path: Path) -> None:
    (tmp_path / "kube-apiserver.yaml").write_text(APISERVER)
    report = scan_k8s([str(tmp_path)])
    name = "Pod/kube-system/kube-apiserver (kube-apiserver)"
    assert _status(report, "1.2.8", name) == ["fail"]  # RBACX is not RBAC
    assert _status(report, "1.2.7", name) == ["pass"]
    assert _status(report, "1.2.14", name) == ["pass"]
    assert _status(report, "1.2.10", name) == ["fail"]  # repeated list flag accumulates
    assert _status(report, "1.2.15", name) == ["fail"]  # bare --profiling means true
    assert _status(report, "1.2.17", name) == ["pass"]
    assert _status(report, "1.2.1", name) == ["pass"]
    assert _status(report, "1.2.16", name) == ["fail"]


def _node(tmp_path: Path) -> Path:
    root = tmp_path / "node"
    (root / "etc/kubernetes/manifests").mkdir(parents=True)
    (root / "etc/kubernetes/pki").mkdir(parents=True)
    (root / "var/lib/kubelet").mkdir(parents=True)
    (root / "etc/systemd/system/kubelet.service.d").mkdir(parents=True)
    (root / "etc/kubernetes/manifests/kube-apiserver.yaml").write_text(APISERVER)
    (root / "etc/kubernetes/pki/ca.key").write_text("k")
    (root / "etc/kubernetes/admin.conf").write_text("x")
    (root / "var/lib/kubelet/config.yaml").write_text(
        "kind: KubeletConfiguration\nauthentication: {anonymous: {enabled: false}, x509: {clientCAFile: /ca}}\n"
        "authorization: {mode: Webhook}\nreadOnlyPort: 0\nrotateCertificates: true\n"
    )
    (root / "var/lib/kubelet/kubeadm-flags.env").write_text('KUBELET_KUBEADM_ARGS="--anonymous-auth=true --read-only-port=10255"\n')
    (root / "etc/systemd/system/kubelet.service.d/10-kubeadm.conf").write_text(
        "[Service]\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBEADM_ARGS --hostname-override=n1\n"
    )
    os.chmod(root / "etc/kubernetes/manifests/kube-apiserver.yaml", 0o611)
    os.chmod(root / "etc/kubernetes/pki/ca.key", 0o600)
    os.chmod(root / "etc/kubernetes/admin.conf", 0o400)
    return root


def test_node_root_kubelet_precedence_and_file_modes(tmp_path: Path) -> None:
    root = _node(tmp_path)
    report = scan_k8s([], node_root=str(root))
    assert report.issues == []
    # Flags override the config file, as the kubelet applies them.
    assert _status(report, "4.2.1", "kubelet") == ["fail"]
    assert _status(report, "4.2.4", "kubelet") == ["fail"]
    assert _status(report, "4.2.2", "kubelet") == ["pass"]
    assert _status(report, "4.2.7", "kubelet") == ["fail"]
    # 611 is "<= 644" as decimal digits (docker-bench/kube-bench style) but grants execute bits: a bitmask fails it.
    assert _status(report, "1.1.1", "/etc/kubernetes/manifests/kube-apiserver.yaml") == ["fail"]
    assert _status(report, "1.1.13", "/etc/kubernetes/admin.conf") == ["pass"]
    assert _status(report, "1.1.21", "/etc/kubernetes/pki/ca.key") == ["pass"]
    assert _status(report, "1.1.13", "/etc/kubernetes/super-admin.conf") == ["not_applicable"]
    # The static pod of the node root is checked too.
    assert _status(report, "1.2.8") == ["fail"]


def test_kubelet_config_file_alone(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("kind: KubeletConfiguration\nauthentication: {anonymous: {enabled: false}}\nstreamingConnectionIdleTimeout: 0s\n")
    report = scan_k8s([], kubelet_config=str(cfg))
    assert _status(report, "4.2.1") == ["pass"]
    assert _status(report, "4.2.5") == ["fail"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\n")
    from secmon.errors import InputError

    with pytest.raises(InputError, match="expected KubeletConfiguration"):
        scan_k8s([], kubelet_config=str(bad))


def test_namespaces_need_network_policies(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(
        "kind: Namespace\nmetadata: {name: a}\n---\nkind: Namespace\nmetadata: {name: b}\n---\n"
        "kind: NetworkPolicy\nmetadata: {name: deny, namespace: a}\nspec: {podSelector: {}}\n"
    )
    report = scan_k8s([str(tmp_path)])
    assert _status(report, "5.3.2", "Namespace/a") == ["pass"]
    assert _status(report, "5.3.2", "Namespace/b") == ["fail"]


# The fast YAML path (Rust parser, our document splitter) against PyYAML on random manifests.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from secmon.compliance.k8s import _documents, load_documents  # noqa: E402

yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
                         st.sampled_from(["---", "...", "- a", "a: b", "#x", "yes", "on", "0644", "1e3", "~", "|", "'q'", '"d"']))
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(min_size=1, max_size=6), inner, max_size=4)), max_leaves=15)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["kind", "metadata", "spec", "data"]), yaml_values, min_size=1), min_size=1, max_size=4),
       st.booleans(), st.sampled_from([None, 2, 4]), st.integers(20, 200))
def test_fast_yaml_documents_equal_pyyaml(docs: list, explicit_start: bool, indent: int | None, width: int) -> None:
    import yaml

    text = yaml.safe_dump_all(docs, explicit_start=explicit_start, indent=indent, allow_unicode=True, sort_keys=False, width=width)
    assert load_documents(text) == list(_documents(text))


def test_merge_keys_fall_back_to_pyyaml() -> None:
    text = "kind: Pod\nmetadata: &m {name: p}\nspec:\n  <<: {hostPID: true}\n  containers: []\n"
    ((doc, line),) = load_documents(text)
    assert doc["spec"]["hostPID"] is True and line == 1
