"""The native manifest reader (``scan_k8s``) and the Python path (``scan_k8s(native=False)``) give
the same report: rows, evidence, lines, input problems and skipped kinds, on random manifests
written in many YAML and JSON spellings, and on odd and bad files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from secmon.compliance import bundled_checks, scan_k8s
from secmon.compliance.fast import native_file_count

from .test_engine_twin import control_plane_pod, other_object, workload

CHECKS = bundled_checks("k8s")


def _same_report(directory: Path) -> None:
    fast = scan_k8s([str(directory)])
    slow = scan_k8s([str(directory)], native=False)
    differ = [(f, s) for f, s in zip(fast.results.to_dicts(), slow.results.to_dicts(), strict=False) if f != s]
    assert not differ, f"{len(differ)} rows differ, first: {differ[0]}"
    assert_frame_equal(fast.results, slow.results)
    assert fast.issues == slow.issues
    assert fast.skipped_kinds == slow.skipped_kinds
    assert fast.resources == slow.resources


def _write(directory: Path, texts: list[str]) -> None:
    for i, text in enumerate(texts):
        (directory / f"m{i:03d}.yaml").write_text(text, newline="")


# Spellings of one object: block YAML, flow YAML, JSON, with comments, CRLF line ends.
def _spell(obj: dict[str, Any], style: str) -> str:
    if style == "block":
        return yaml.safe_dump(obj, sort_keys=False)
    if style == "flow":
        return yaml.safe_dump(obj, default_flow_style=True, sort_keys=False)
    if style == "json":
        return json.dumps(obj, indent=1)
    if style == "commented":
        return "# generated\n" + yaml.safe_dump(obj, sort_keys=True).replace("\n", "  # c\n", 2)
    return yaml.safe_dump(obj, sort_keys=False).replace("\n", "\r\n")


objects = st.one_of(workload(), workload(), workload(), other_object(), control_plane_pod())
styles = st.sampled_from(["block", "block", "flow", "json", "commented", "crlf"])


@st.composite
def manifest_file(draw: st.DrawFn) -> str:
    shape = draw(st.sampled_from(["one", "one", "multi", "json-list", "kind-list", "leading-marker"]))
    objs = draw(st.lists(objects, min_size=1, max_size=3))
    if shape == "one":
        return _spell(objs[0], draw(styles))
    if shape == "multi":
        return "".join(f"---{draw(st.sampled_from(['', ' # doc']))}\n{_spell(o, 'block')}" for o in objs) + draw(st.sampled_from(["", "...\n", "---\n"]))
    if shape == "json-list":
        return json.dumps(objs)
    if shape == "kind-list":
        return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objs}, sort_keys=False)
    return "---\n" + _spell(objs[0], "block")


# Hand-written odd YAML: each either read natively with the same facts or handed back.
ODD_FILES = [
    # anchors and aliases
    "kind: Pod\nmetadata: {name: anchors}\nspec:\n  securityContext: &sc {runAsUser: 0}\n  containers:\n  - name: c\n    image: x:1\n    securityContext: *sc\n",
    # block and folded multi-line strings
    "kind: Pod\nmetadata:\n  name: multiline\n  annotations:\n    note: |\n      line one\n      line two\nspec:\n  containers:\n  - name: c\n    image: >-\n      nginx:1.25\n",
    # numbers as strings, strings as numbers
    "kind: Pod\nmetadata: {name: numbers}\nspec:\n  securityContext: {runAsUser: '1000', runAsGroup: \"0\"}\n  containers:\n  - {name: c, image: 'x:1', ports: [{containerPort: 80, hostPort: '8080'}]}\n",
    "kind: Pod\nmetadata: {name: floats}\nspec:\n  securityContext: {runAsUser: 1000.0}\n  containers:\n  - {name: c, image: 'x:1', securityContext: {runAsUser: 10001.5}}\n",
    # YAML 1.1 booleans and octals: the 1.1 reader decides
    "kind: Pod\nmetadata: {name: yaml11}\nspec:\n  hostNetwork: yes\n  hostPID: on\n  containers:\n  - {name: c, image: x:1, securityContext: {privileged: y}}\n",
    "kind: Pod\nmetadata: {name: octal}\nspec:\n  securityContext: {runAsUser: 0644}\n  containers: [{name: c, image: x}]\n",
    # YAML 1.2-only number spellings
    "kind: Pod\nmetadata: {name: hex}\nspec:\n  securityContext: {runAsUser: 0x10, runAsGroup: 1_000}\n  containers: [{name: c, image: x, securityContext: {runAsUser: 0o17}}]\n",
    # quoted keys, empty values, nulls, tilde
    "\"kind\": Pod\nmetadata: {name: ~, namespace: null}\nspec:\n  hostIPC:\n  containers:\n  - name: c\n    image:\n",
    # capabilities of odd case and types, images with registries and digests
    "kind: Deployment\nmetadata: {name: caps, namespace: prod}\nspec:\n  template:\n    metadata:\n      annotations: {seccomp.security.alpha.kubernetes.io/pod: runtime/default}\n    spec:\n      containers:\n      - name: c\n        image: reg.local:5000/team/app@sha256:abcdef0123\n        securityContext: {capabilities: {add: [cap_sys_admin, 7, true], drop: [all]}}\n",
    # tabs and trailing spaces inside values, a bare document end
    "kind: Pod\nmetadata: {name: \"tab\\tname\"}\nspec:\n  containers:\n  - name: c  \n    image: \"nginx:latest\"\n...\n",
    # a UTF-8 byte order mark and non-ASCII text
    "\ufeffkind: Pod\nmetadata: {name: bom}\nspec:\n  containers: [{name: c, image: x:1}]\n",
    "kind: Pod\nmetadata: {name: ünïcode, namespace: prod}\nspec:\n  containers: [{name: c, image: 'x:1', securityContext: {capabilities: {add: [ŝys_admin]}}}]\n",
    # duplicate keys, non-string keys, tags
    "kind: Pod\nmetadata: {name: dup}\nspec:\n  hostPID: true\n  hostPID: false\n  containers: []\n",
    "kind: Pod\nmetadata: {name: intkey}\nspec:\n  1: x\n  containers: []\n",
    "kind: Pod\nmetadata: {name: tagged}\nspec:\n  hostPID: !!str true\n  containers: []\n",
    # bad input: invalid YAML, Helm template, not a manifest, unknown kind, scalar document
    "kind: Pod\nmetadata: [unclosed\n",
    "kind: Pod\nmetadata:\n  name: {{ .Values.name }}\n",
    "just: a config\n",
    "kind: Deploymnet\nmetadata: {name: typo}\n",
    "42\n",
    "kind: Service\nmetadata: {name: s}\n",
    # empty and comment-only files
    "",
    "# nothing here\n---\n# still nothing\n",
]


def test_plain_generated_manifests_are_read_natively(tmp_path: Path) -> None:
    """The twin test below is only meaningful if the native reader takes ordinary files."""
    from benchmarks.bench_compliance import write_manifests

    write_manifests(tmp_path, 30)
    assert native_file_count([str(tmp_path)], CHECKS) == (30, 0)
    _same_report(tmp_path)


def test_trivy_fixtures_give_the_same_report(dataset: Path) -> None:
    """The shared Trivy good/bad manifests: most read natively, all with the Python path's answers."""
    native, _ = native_file_count([str(dataset / "k8s")], CHECKS)
    assert native > 0
    _same_report(dataset / "k8s")


def test_odd_and_bad_files_give_the_same_report(tmp_path: Path) -> None:
    _write(tmp_path, ODD_FILES)
    _same_report(tmp_path)
    native, handed_back = native_file_count([str(tmp_path)], CHECKS)
    assert native >= 5 and handed_back >= 10


def test_each_odd_file_alone_gives_the_same_report(tmp_path: Path) -> None:
    for i, text in enumerate(ODD_FILES):
        directory = tmp_path / f"f{i}"
        directory.mkdir()
        _write(directory, [text])
        _same_report(directory)


def test_bad_file_among_good_ones_is_reported_and_others_checked(tmp_path: Path) -> None:
    _write(tmp_path, ["kind: Pod\nmetadata: {name: ok}\nspec: {hostPID: true, containers: []}\n", "kind: Pod\nmetadata: [unclosed\n"])
    report = scan_k8s([str(tmp_path)])
    assert [i.reason.split(":")[0] for i in report.issues] == ["invalid YAML"]
    assert report.results.filter((pl.col("check_id") == "5.2.3"))["status"].to_list() == ["fail"]


manifest_sets = st.lists(st.one_of(manifest_file(), manifest_file(), manifest_file(), st.sampled_from(ODD_FILES)), min_size=1, max_size=6)


def _twin(texts: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _write(Path(tmp), texts)
        _same_report(Path(tmp))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(manifest_sets)
def test_native_reader_equals_python_path(texts: list[str]) -> None:
    _twin(texts)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(manifest_sets)
def test_native_reader_equals_python_path_many(texts: list[str]) -> None:
    _twin(texts)
