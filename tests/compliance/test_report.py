"""Output formats: JSON shape, SARIF 2.1.0 structure, JUnit XML parsed back, section scores."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from secmon.compliance import scan_k8s
from secmon.compliance.report import render, scores

MANIFEST = """\
kind: Pod
metadata: {name: p, namespace: prod}
spec:
  hostPID: true
  containers:
  - name: c
    image: nginx:latest
    securityContext: {privileged: true, allowPrivilegeEscalation: false, runAsNonRoot: true, readOnlyRootFilesystem: true}
"""


@pytest.fixture()
def report(tmp_path: Path):
    f = tmp_path / "pod.yaml"
    f.write_text(MANIFEST)
    return scan_k8s([str(f)])


def test_json_is_one_array_of_findings(report) -> None:
    data = json.loads(render(report, "json"))
    assert isinstance(data, list) and len(data) == report.results.height
    keys = {"check_id", "title", "status", "severity", "resource", "evidence", "source"}
    assert all(set(d) == keys for d in data)
    priv = next(d for d in data if d["check_id"] == "5.2.2")
    assert priv["status"] == "fail" and priv["resource"] == "Pod/prod/p"
    assert priv["evidence"] == "spec.containers[0]: securityContext.privileged=true"
    assert priv["source"]["file"].endswith("pod.yaml") and priv["source"]["line"] == 1


def test_sarif_structure(report) -> None:
    sarif = json.loads(render(report, "sarif"))
    assert sarif["$schema"].endswith("sarif-2.1.0.json") and sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    rules = run["tool"]["driver"]["rules"]
    rule_ids = [r["id"] for r in rules]
    assert len(rule_ids) == len(set(rule_ids)) and run["tool"]["driver"]["name"]
    fails = report.results.filter(report.results["status"] == "fail").height
    assert len(run["results"]) == fails > 0
    for result in run["results"]:
        assert result["ruleId"] in rule_ids and rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        loc = result["locations"][0]
        assert loc["physicalLocation"]["artifactLocation"]["uri"]
        assert loc["physicalLocation"]["region"]["startLine"] == 1
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["help"]["text"]
        float(rule["properties"]["security-severity"])


def test_junit_parses_back(report) -> None:
    root = ET.fromstring(render(report, "junit"))
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == report.results.height == int(root.get("tests"))
    failures = root.findall("./testsuite/testcase/failure")
    assert len(failures) == int(root.get("failures")) == report.results.filter(report.results["status"] == "fail").height
    assert any(c.get("classname") == "5.2.2" and c.find("failure") is not None for c in cases)
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert suite.find("properties/property[@name='score']") is not None


def test_scores_per_section(report) -> None:
    rows = {s["section"]: s for s in scores(report)}
    s52 = rows["5.2"]
    assert s52["score"] == round(100 * s52["pass"] / (s52["pass"] + s52["fail"]), 1)
    assert rows["total"]["pass"] == report.results.filter(report.results["status"] == "pass").height
    table = render(report, "table")
    assert "[FAIL] 5.2.2" in table and "total" in table
