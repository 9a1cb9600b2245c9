"""``secmon compliance``: formats, exit codes, --fail-on, input errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secmon.cli import main

POD = "kind: Pod\nmetadata: {name: p}\nspec: {hostPID: true, containers: [{name: c, image: x:1}]}\n"


def test_k8s_json_and_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(POD)
    assert main(["compliance", "k8s", str(f), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert any(d["check_id"] == "5.2.3" and d["status"] == "fail" for d in data)
    assert main(["compliance", "k8s", str(f), "--format", "json", "--fail-on", "high"]) == 1
    capsys.readouterr()
    assert main(["compliance", "k8s", str(f), "--format", "json", "--fail-on", "critical"]) == 0


def test_bad_file_exits_2_but_reports_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(POD)
    bad.write_text("kind: Pod\nmetadata: {{ .Values }}\n")
    out_file = tmp_path / "out.sarif"
    assert main(["compliance", "k8s", str(good), str(bad), "--format", "sarif", "-o", str(out_file)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:2: unrendered Helm template" in err and "Traceback" not in err
    assert json.loads(out_file.read_text())["runs"][0]["results"]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compliance", "docker"]) == 2
    assert "nothing to check" in capsys.readouterr().err
    assert main(["compliance", "docker", "--daemon-config", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_docker_junit_and_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM ubuntu\nRUN apt-get update\nRUN apt-get install curl\n")
    db = tmp_path / "s.db"
    assert main(["compliance", "docker", "--dockerfile", str(df), "--format", "junit", "--store", str(db)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("<?xml") and "opened" in captured.err


def test_checks_list_and_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compliance", "checks", "docker"]) == 0
    assert "5.5" in capsys.readouterr().out
    bad = tmp_path / "c.yaml"
    bad.write_text("checks:\n  - id: X\n    title: t\n")
    assert main(["compliance", "checks", "--validate", str(bad)]) == 2
    assert "c.yaml:2" in capsys.readouterr().err
