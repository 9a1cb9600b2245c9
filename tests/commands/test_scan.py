"""`secmon scan` and `secmon demo` as a user runs them: output contracts, exit codes, errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

RULE = {
    "id": "ssh-bf", "name": "SSH brute force",
    "queries": [{"query": "source:sshd @evt.outcome:failure", "groupByFields": ["@network.client.ip"], "aggregation": "count"}],
    "cases": [{"name": "many", "status": "high", "condition": "a >= 3"}],
    "options": {"evaluationWindow": 300, "keepAlive": 600, "maxSignalDuration": 3600},
    "message": "{{@network.client.ip}} failed {{@usr.name}}", "tags": ["tactic:TA0006-credential-access"],
}
LINES = "".join(
    f"Mar  1 10:00:0{i} host sshd[{100 + i}]: Failed password for root from 203.0.113.9 port {4000 + i} ssh2\n" for i in range(4)
) + "Mar  1 10:01:00 host sshd[200]: Accepted publickey for alice from 198.51.100.1 port 5000 ssh2\n"
SIGNAL_KEYS = {"id", "rule_id", "rule_name", "severity", "case", "group_by", "first_seen", "last_seen", "event_count",
               "samples", "tags", "status", "message"}


def secmon(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "secmon.cli", *args], capture_output=True, text=True, input=stdin, timeout=300)


@pytest.fixture
def rule_file(tmp_path: Path) -> Path:
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(RULE))
    return path


def test_json_output_is_one_array_with_the_signal_contract(tmp_path: Path, rule_file: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(LINES)
    proc = secmon("scan", str(log), "--no-default-rules", "--rules", str(rule_file), "--year", "2024", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    signals = json.loads(proc.stdout)
    assert len(signals) == 1
    signal = signals[0]
    assert set(signal) == SIGNAL_KEYS
    assert signal["group_by"] == {"@network.client.ip": "203.0.113.9"}
    assert signal["event_count"] == 4
    assert signal["first_seen"] == "2024-03-01T10:00:00.000Z"
    assert signal["message"] == "203.0.113.9 failed root"
    assert signal["severity"] == "high" and signal["status"] == "open"
    assert "lines read" in proc.stderr  # the summary goes to stderr, never into the JSON


def test_stdin_gzip_and_fail_on(tmp_path: Path, rule_file: Path) -> None:
    gz = tmp_path / "auth.log.gz"
    gz.write_bytes(gzip.compress(LINES.encode()))
    from_gz = secmon("scan", str(gz), "--no-default-rules", "--rules", str(rule_file), "--year", "2024", "--format", "ndjson")
    from_stdin = secmon("scan", "-", "--no-default-rules", "--rules", str(rule_file), "--year", "2024", "--format", "ndjson", stdin=LINES)
    assert from_gz.returncode == from_stdin.returncode == 0
    assert from_gz.stdout == from_stdin.stdout and from_gz.stdout.count("\n") == 1
    failing = secmon("scan", str(gz), "--no-default-rules", "--rules", str(rule_file), "--year", "2024", "--fail-on", "high", "--quiet")
    assert failing.returncode == 1
    passing = secmon("scan", str(gz), "--no-default-rules", "--rules", str(rule_file), "--year", "2024", "--fail-on", "critical", "--quiet")
    assert passing.returncode == 0


def test_store_keeps_signals_and_triage(tmp_path: Path, rule_file: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text(LINES)
    db = tmp_path / "signals.db"
    for _ in range(2):  # the same scan twice updates, never duplicates
        assert secmon("scan", str(log), "--no-default-rules", "--rules", str(rule_file), "--year", "2024", "--store", str(db), "--quiet").returncode == 0
    listed = json.loads(secmon("signals", "list", "--store", str(db), "--format", "json").stdout)
    assert len(listed) == 1
    signal_id = listed[0]["id"]
    assert secmon("signals", "triage", signal_id, "under_review", "--store", str(db)).returncode == 0
    assert secmon("scan", str(log), "--no-default-rules", "--rules", str(rule_file), "--year", "2024", "--store", str(db), "--quiet").returncode == 0
    shown = json.loads(secmon("signals", "show", signal_id, "--store", str(db)).stdout)
    assert shown["status"] == "under_review"
    high = json.loads(secmon("signals", "list", "--store", str(db), "--query", "@severity:high", "--format", "json").stdout)
    assert [s["id"] for s in high] == [signal_id]
    missing = secmon("signals", "show", "nope", "--store", str(db))
    assert missing.returncode == 2 and "no signal with id 'nope'" in missing.stderr


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = secmon("scan", str(tmp_path / "nope.log"))
    assert missing.returncode == 2
    assert "nope.log" in missing.stderr and "Traceback" not in missing.stderr
    bad_rule = tmp_path / "bad.json"
    bad_rule.write_text(json.dumps({**RULE, "cases": [{"status": "severe"}]}))
    invalid = secmon("scan", str(tmp_path), "--no-default-rules", "--rules", str(bad_rule))
    assert invalid.returncode == 2
    assert "bad.json" in invalid.stderr and "cases[0].status" in invalid.stderr and "Traceback" not in invalid.stderr


def test_rules_validate_and_test_commands(tmp_path: Path, rule_file: Path) -> None:
    ok = secmon("rules", "validate", str(rule_file))
    assert ok.returncode == 0 and "1 rule file(s) valid" in ok.stdout
    exported = json.loads(secmon("rules", "export", "--no-default-rules", "--rules", str(rule_file)).stdout)
    assert exported[0]["queries"][0]["groupByFields"] == ["@network.client.ip"]
    (tmp_path / "rule.test.yaml").write_text(
        "rule: ssh-bf\ntests:\n  - name: fires\n    year: 2024\n    lines: |\n"
        + "".join(f"      {line}\n" for line in LINES.splitlines())
        + "    expect:\n      - {severity: high, event_count: 4}\n  - name: wrong expectation\n    lines: |\n"
        + "".join(f"      {line}\n" for line in LINES.splitlines())
        + "    year: 2024\n    expect: []\n"
    )
    result = secmon("rules", "test", str(rule_file))
    assert result.returncode == 1
    assert "1 passed, 1 failed" in result.stdout
    assert "FAIL ssh-bf: wrong expectation" in result.stdout


def test_demo_runs_and_finds_the_planted_attacks() -> None:
    proc = secmon("demo", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rules = {s["rule_id"] for s in json.loads(proc.stdout)}
    assert {"ssh-brute-force", "aws-console-login-without-mfa", "k8s-cluster-admin-binding"} <= rules
