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


def test_rules_validate_checks_what_a_signal_correlation_names(tmp_path: Path, rule_file: Path) -> None:
    """The rules a correlation names must be among the files validated or the default pack."""
    def correlation(*rule_ids: str) -> Path:
        path = tmp_path / f"corr-{'-'.join(rule_ids)}.json"
        path.write_text(json.dumps({
            "id": "corr", "name": "correlation", "type": "signal_correlation",
            "queries": [{"ruleId": rule_id, "aggregation": "event_count", **({"correlatedByFields": ["@network.client.ip"]} if i == 0 else {})}
                        for i, rule_id in enumerate(rule_ids)],
            "cases": [{"status": "high", "condition": "a > 0"}],
        }))
        return path

    assert secmon("rules", "validate", str(correlation("ssh-bf")), str(rule_file)).returncode == 0
    assert secmon("rules", "validate", str(correlation("ssh-brute-force"))).returncode == 0  # in the default pack
    bad = secmon("rules", "validate", str(correlation("ssh-brute-force", "no-such-rule")))
    assert bad.returncode == 2 and "queries[1].ruleId: no rule with this id is loaded" in bad.stderr and "Traceback" not in bad.stderr


def test_demo_runs_and_finds_the_planted_attacks() -> None:
    proc = secmon("demo", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rules = {s["rule_id"] for s in json.loads(proc.stdout)}
    assert {"ssh-brute-force", "aws-console-login-without-mfa", "k8s-cluster-admin-binding", "linux-user-created",
            "linux-user-added-to-admin-group", "linux-sudo-not-in-sudoers", "okta-brute-force-then-success",
            "okta-admin-privilege-granted", "okta-mfa-factor-reset", "okta-impossible-travel",
            "okta-account-takeover-correlation"} <= rules


def _signals(n: int) -> list:
    from secmon.signals.model import SampleJSON, Signal

    return [Signal(f"rule-{i % 3}", f"Rule {i % 3}", ("high", "low", "critical")[i % 3], "case", {"@ip": f"10.0.0.{i}", "@usr.name": "x" * (i % 90)},
                   1_700_000_000_000 + i, 1_700_000_100_000 + i, i + 1, SampleJSON([b'{"n": %d, "s": "\\u00e9\\n"}' % i]))
            for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 5])
def test_json_and_ndjson_output_are_what_json_dumps_would_write(n: int) -> None:
    import io
    from unittest.mock import patch

    from secmon.commands import scan

    signals = _signals(n)
    expected = [s.to_json() for s in signals]
    with patch.object(scan, "WRITE_BATCH", 2):  # batch edges inside the output
        as_json, as_ndjson = io.StringIO(), io.StringIO()
        scan.write_signals(signals, "json", as_json)
        scan.write_signals(signals, "ndjson", as_ndjson)
    assert json.loads(as_json.getvalue()) == expected
    assert as_json.getvalue() == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert [json.loads(line) for line in as_ndjson.getvalue().splitlines()] == expected


def test_a_big_table_is_plain_text_with_every_signal() -> None:
    import io
    from unittest.mock import patch

    from secmon.commands import scan
    from secmon.signals.model import iso_ms

    signals = _signals(7)
    with patch.object(scan, "RICH_TABLE_MAX_ROWS", 3), patch.object(scan, "WRITE_BATCH", 2):
        out = io.StringIO()
        scan.print_table(signals, out, "summary here")
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["severity", "rule", "group", "by", "events", "first", "seen", "last", "seen"]
    assert set(lines[1]) == {"-", " "}
    rows = lines[2:-1]
    assert len(rows) == 7
    for signal, row in zip(signals, rows):
        assert row.startswith(signal.severity.ljust(8) + "  " + signal.rule_name)
        assert f"@ip={signal.group_by['@ip']}" in row and row.split()[-5] == str(signal.event_count)
        first, last = (iso_ms(ms)[:19].replace("T", " ") for ms in (signal.first_seen_ms, signal.last_seen_ms))
        assert row.endswith(f"{first}  {last}")
    assert lines[-1].startswith("7 signal(s): 2 critical, 3 high, 2 low.") and lines[-1].endswith("summary here")
    # The same columns as the rich table, which small outputs keep.
    rich_out = io.StringIO()
    scan.print_table(signals[:2], rich_out, "")
    assert "Rule 0" in rich_out.getvalue() and "10.0.0.1" in rich_out.getvalue()


PARSERS = r"""parsers:
  - name: vpnd
    detect: '^\d{4}-\d\d-\d\dT\S+ vpnd '
    patterns:
      - '(?P<ts>\S+) vpnd login (?P<evt__outcome>success|failure) user=(?P<usr__name>\S+) ip=(?P<network__client__ip>\S+)'
    timestamp: {field: ts, format: iso8601}
    static: {evt.name: authentication}
"""
VPN_RULE = {
    "id": "vpn-bf", "name": "VPN brute force",
    "queries": [{"query": "source:vpnd @evt.name:authentication @evt.outcome:failure",
                 "groupByFields": ["@network.client.ip"], "aggregation": "count"}],
    "cases": [{"status": "high", "condition": "a >= 5"}],
    "options": {"evaluationWindow": 300, "keepAlive": 600, "maxSignalDuration": 3600},
}
VPN_LINES = "".join(f"2026-11-28T10:00:{i:02d}Z vpnd login failure user=bob ip=198.51.100.{i % 2}\n" for i in range(20))


def test_scan_and_rules_test_read_logs_through_user_parsers(tmp_path: Path) -> None:
    parsers, rule, log = tmp_path / "parsers.yaml", tmp_path / "vpn.json", tmp_path / "vpn.log"
    parsers.write_text(PARSERS)
    rule.write_text(json.dumps(VPN_RULE))
    log.write_text(VPN_LINES)
    for extra in ([], ["--input-format", "vpnd"]):  # found by its `detect` pattern, or named
        result = secmon("scan", str(log), "--parsers", str(parsers), "--rules", str(rule), "--no-default-rules",
                        "--format", "json", *extra)
        assert result.returncode == 0, result.stderr
        assert sorted(s["group_by"]["@network.client.ip"] for s in json.loads(result.stdout)) == ["198.51.100.0", "198.51.100.1"]
    without = secmon("scan", str(log), "--rules", str(rule), "--no-default-rules", "--format", "json")
    assert json.loads(without.stdout) == [] and "0 events read" in without.stderr  # plain text: no source:vpnd
    (tmp_path / "vpn.test.yaml").write_text(
        "rule: vpn-bf\ntests:\n  - name: fires per IP\n    lines: |\n"
        + "".join(f"      {line}\n" for line in VPN_LINES.splitlines()) + "    expect:\n      - {event_count: 10}\n      - {event_count: 10}\n"
    )
    assert secmon("rules", "test", str(rule), "--parsers", str(parsers)).returncode == 0


def test_a_bad_parser_file_is_named_with_its_field_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "parsers.yaml"
    bad.write_text("parsers:\n  - name: x\n    patterns: ['(unclosed']\n    timestamp: {field: ts, format: iso8601}\n")
    log = tmp_path / "a.log"
    log.write_text("x\n")
    result = secmon("scan", str(log), "--parsers", str(bad))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{bad}: parser 'x': patterns[0]: invalid regular expression" in result.stderr
