"""Check files: the bundled sets load, cover the benchmarks, and bad files report every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmon.compliance.checks import RESOURCE_KINDS, bundled_checks, load_checks
from secmon.errors import RuleSetError


def test_bundled_k8s_coverage() -> None:
    checks = bundled_checks("k8s")
    cis = [c for c in checks if not c.id.startswith("SM-")]
    assert len({c.id for c in checks}) == len(checks)
    assert sum(not c.manual for c in cis) >= 80
    resources = {c.resource for c in checks}
    assert {"workload", "role", "rolebinding", "apiserver", "etcd", "kubelet", "node-file", "namespace"} <= resources


def test_bundled_docker_coverage() -> None:
    checks = bundled_checks("docker")
    cis = [c for c in checks if not c.id.startswith("SM-")]
    assert sum(not c.manual for c in cis) >= 60
    assert {"daemon", "container", "image", "dockerfile", "host-file", "audit"} <= {c.resource for c in checks}


def test_every_check_has_own_title_and_remediation() -> None:
    for bench in ("k8s", "docker"):
        for c in bundled_checks(bench):
            assert c.title and c.remediation and c.resource in RESOURCE_KINDS
            assert "Ensure that" not in c.title  # our words, not the CIS prose


BAD_FILE = """\
benchmark: test
checks:
  - id: A1
    title: good one
    section: "1"
    severity: high
    resource: workload
    condition: {fact: spec.hostPID, op: ne, value: true}
    remediation: do it
  - id: A2
    title: bad operator
    section: "1"
    severity: high
    resource: workload
    condition: {fact: spec.hostPID, op: nearly, value: true}
    remediation: do it
  - id: A3
    title: unknown resource
    section: "1"
    severity: high
    resource: toaster
    condition: {fact: x, op: exists}
    remediation: do it
  - id: A4
    title: bad severity
    section: "1"
    severity: catastrophic
    resource: workload
    condition: {fact: x, op: exists}
    remediation: do it
  - id: A1
    title: duplicate id
    section: "1"
    severity: low
    resource: workload
    condition: {fact: x, op: exists}
    remediation: do it
  - id: A6
    title: regex python-only
    section: "1"
    severity: low
    resource: workload
    condition: {fact: x, op: matches, value: "(?=lookahead)"}
    remediation: do it
  - id: A7
    title: extra key
    section: "1"
    severity: low
    resource: workload
    condition: {fact: x, op: exists}
    remediation: do it
    colour: red
"""


def test_lint_collects_every_error_with_file_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(BAD_FILE)
    with pytest.raises(RuleSetError) as info:
        load_checks(f)
    errors = info.value.errors
    text = str(info.value)
    assert len(errors) == 6, text
    assert "checks[1] (id A2).condition.op" in text and "nearly" in text
    assert "unknown resource kind" in text and "toaster" in text
    assert "severity" in text and "catastrophic" in text
    assert "duplicate check id" in text
    assert "not supported by the Polars engine" in text
    assert "colour" in text
    assert all(e.line is not None for e in errors)
    assert f"{f}:10: checks[1] (id A2)" in text  # A2 starts on line 10


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("checks:\n  - id: [unclosed\n")
    with pytest.raises(RuleSetError, match=r"broken.yaml:\d+: <document>: invalid YAML"):
        load_checks(f)
