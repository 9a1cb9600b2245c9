"""systemd journal entries (``journalctl -o json``): mapping, bad entries, format detection, the
prefilter's promise, and the default SSH rules over a journal of a host under attack."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from secmon import Engine, default_rules
from secmon.ingest import FORMATS, IngestStats, Source, parse_events, parse_lines
from secmon.ingest.journald import field_text
from secmon.ingest.messages import PROGRAM_ALIASES

T0_US = 1_764_324_000_000_000  # 2025-11-28T10:00:00Z in microseconds


def entry(message: Any, *, us: int = T0_US, ident: str | None = "sshd-session", **fields: Any) -> dict[str, Any]:
    """An entry the way journalctl writes it: every value a string (or bytes as an array)."""
    out: dict[str, Any] = {
        "__CURSOR": f"s=0;i={us}",
        "__REALTIME_TIMESTAMP": str(us + 250),
        "__MONOTONIC_TIMESTAMP": "123456",
        "_BOOT_ID": "7b0f3c",
        "PRIORITY": "6",
        "_HOSTNAME": "deb13",
        "SYSLOG_FACILITY": "4",
        "_UID": "0",
        "_COMM": "sshd-session",
        "_PID": "4242",
        "_SYSTEMD_UNIT": "ssh.service",
        "MESSAGE": message,
        "_SOURCE_REALTIME_TIMESTAMP": str(us),
    }
    if ident is not None:
        out["SYSLOG_IDENTIFIER"] = ident
    out.update(fields)
    return out


def parse(*entries: dict[str, Any], stats: IngestStats | None = None) -> list[dict[str, Any]]:
    return parse_lines([json.dumps(e) for e in entries], format="journald", stats=stats)


def test_an_sshd_entry_maps_onto_the_standard_attributes() -> None:
    (event,) = parse(entry("Failed password for invalid user admin from 203.0.113.9 port 22221 ssh2"))
    assert event["timestamp"] == T0_US // 1000  # when sshd logged, not when the journal received it
    assert event["message"] == "Failed password for invalid user admin from 203.0.113.9 port 22221 ssh2"
    assert (event["host"], event["service"], event["source"], event["status"]) == ("deb13", "sshd-session", "sshd", "info")
    assert event["syslog"] == {"severity": 6, "facility": 4, "appname": "sshd-session", "pid": "4242"}
    assert event["evt"] == {"name": "authentication", "outcome": "failure"}
    assert event["network"]["client"] == {"ip": "203.0.113.9", "port": 22221}
    assert event["usr"] == {"name": "admin"}
    assert event["_SYSTEMD_UNIT"] == "ssh.service"  # the entry's own fields stay addressable


def test_pam_and_repeated_messages_are_parsed_as_in_syslog() -> None:
    pam = entry("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.7  user=root")
    repeated = entry("message repeated 3 times: [ Failed password for root from 198.51.100.8 port 1 ssh2]")
    events = parse(pam, repeated)
    assert events[0]["pam"]["module"] == "pam_unix" and events[0]["network"]["client"]["ip"] == "198.51.100.7"
    assert len(events) == 4 and all(e["network"]["client"]["ip"] == "198.51.100.8" for e in events[1:])


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Without SYSLOG_IDENTIFIER the unit names the program, then the command. (A null field
        # is what journalctl writes for a value over its size limit: as good as absent.)
        ({"SYSLOG_IDENTIFIER": None}, {"service": "ssh.service", "source": "ssh.service"}),
        ({"SYSLOG_IDENTIFIER": None, "_SYSTEMD_UNIT": ""}, {"service": "sshd-session", "source": "sshd"}),
        ({"SYSLOG_IDENTIFIER": "CRON", "_PID": "9", "SYSLOG_PID": "8"}, {"service": "CRON", "source": "cron", "syslog.pid": "8"}),
        ({"PRIORITY": "3"}, {"status": "error", "syslog.severity": 3}),
        ({"PRIORITY": "x"}, {"status": None, "syslog.severity": None}),
        ({"_SOURCE_REALTIME_TIMESTAMP": None}, {"timestamp": (T0_US + 250) // 1000}),
        # A field logged twice is an array of its values; bytes that are not printable UTF-8 an
        # array of numbers.
        ({"_HOSTNAME": ["a", "b"]}, {"host": "a"}),
        ({"_HOSTNAME": [[104, 255]]}, {"host": "h\ufffd"}),
    ],
)
def test_field_variants(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    (event,) = parse(entry("hello", **fields))
    for path, value in expected.items():
        node: Any = event
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        assert node == value, path


def test_message_bytes_are_decoded() -> None:
    text = "\x1b[31mFailed password for root from 192.0.2.1 port 5 ssh2\x1b[0m"
    (event,) = parse(entry(list(text.encode()) + [0xFF]))
    assert event["message"] == text + "\ufffd"
    assert field_text(None) is None and field_text([]) is None and field_text(7) is None


def test_bad_entries_are_counted_per_reason() -> None:
    stats = IngestStats()
    lines = [
        json.dumps(entry("ok")),
        json.dumps({k: v for k, v in entry("no time").items() if "TIMESTAMP" not in k}),
        json.dumps(entry("bad time", _SOURCE_REALTIME_TIMESTAMP="yesterday")),
        "[1, 2]",
        '{"MESSAGE": "cut',
    ]
    events = parse_lines(lines, format="journald", stats=stats)
    assert [e["message"] for e in events] == ["ok"]
    assert stats.rejected == {"missing_timestamp": 1, "bad_timestamp": 1, "not_an_object": 1, "malformed_json": 1}


def test_journal_output_is_detected_and_plain_ndjson_is_not() -> None:
    journal = "\n".join(json.dumps(entry(f"line {i}")) for i in range(3)).encode()
    assert Source("j", data=journal).format.name == "journald"
    assert Source("n", data=b'{"timestamp": 1, "message": "x"}\n').format.name == "ndjson"


def test_aliases_name_a_part_of_their_program() -> None:
    # The prefilter looks for ``source``'s value in the raw line, which holds the program's name.
    assert all(source in program for program, source in PROGRAM_ALIASES.items())


def audit_entry(pairs: str, *, us: int = T0_US, serial: int = 1, record_type: str = "USER_AUTH") -> dict[str, Any]:
    """An entry the kernel's audit sent (hosts without auditd): no syslog identifier."""
    record = entry(f"{record_type} pid=4242 uid=0 auid=4294967295 ses=4294967295 {pairs}", us=us, ident=None,
                   _TRANSPORT="audit", _AUDIT_TYPE=str(1100), _AUDIT_TYPE_NAME=record_type, _AUDIT_ID=str(serial))
    record.pop("PRIORITY")
    return record


def test_audit_entries_are_audit_records() -> None:
    line = json.dumps(audit_entry("msg='op=PAM:authentication acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.9 "
                                  "addr=203.0.113.9 terminal=ssh res=failed'", serial=77))
    (event,) = parse_lines([line], format="journald")
    assert event["source"] == "auditd" and event["host"] == "deb13" and event["usr"] == {"name": "root"}
    assert event["network"]["client"]["ip"] == "203.0.113.9" and event["evt"] == {"outcome": "failure"}
    assert event["auditd"]["type"] == "USER_AUTH" and event["auditd"]["serial"] == 77 and event["auditd"]["exe"] == "/usr/sbin/sshd"
    assert FORMATS["journald"].implied_literals("source", "auditd") == ["audit"]


def journal_of_an_attack(path: Path, seed: int) -> Path:
    """A host's journal: an SSH brute force (sshd-session, then PAM lines), a success, noise from
    other units, byte-array messages, and lines journalctl would not write."""
    rnd = random.Random(seed)
    lines = []
    us = T0_US
    for i in range(400):
        us += rnd.randrange(50_000, 2_000_000)
        kind = rnd.random()
        attacker = f"203.0.113.{rnd.randrange(1, 4)}"
        if kind < 0.4:
            record = entry(f"Failed password for root from {attacker} port {1000 + i} ssh2", us=us)
        elif kind < 0.5:
            record = entry(f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={attacker}",
                           us=us, ident="sshd-auth")
        elif kind < 0.55:
            record = entry(f"Accepted publickey for deploy from {attacker} port {2000 + i} ssh2", us=us)
        elif kind < 0.65:
            record = entry(list(f"Failed password for root from {attacker} port 3 ssh2\x07".encode()), us=us)
        elif kind < 0.85:
            record = entry(f"Started session {i} of user deploy.", us=us, ident="systemd", _COMM="systemd")
        elif kind < 0.9:
            record = audit_entry(f"msg='op=PAM:authentication grantors=? acct=\"root\" exe=\"/usr/sbin/sshd\" "
                                 f"hostname={attacker} addr={attacker} terminal=ssh res=failed'", us=us, serial=i)
        else:
            record = entry("(root) CMD (run-parts /etc/cron.hourly)", us=us, ident="CRON", _COMM="cron")
        lines.append(json.dumps(record, separators=(",", ":")))
    lines.insert(rnd.randrange(len(lines)), '{"MESSAGE": "truncated')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("seed", [1, 2])
def test_default_rules_over_a_journal_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    path = journal_of_an_attack(tmp_path / "journal.json", seed)
    rules = default_rules()
    fast = Engine(rules, chunk_bytes=4096).detect([path])
    plain = Engine(rules, prefilter=False, chunk_bytes=4096).detect([path])
    assert sorted(s.key() for s in fast.signals) == sorted(s.key() for s in plain.signals)
    fired = {s.rule_id for s in fast.signals}
    assert "ssh-brute-force" in fired
    # Unparsed, a line no rule can match is not seen to be malformed either.
    assert plain.stats.rejected == {"malformed_json": 1}


def test_source_promise_holds_on_every_entry(tmp_path: Path) -> None:
    fmt = FORMATS["journald"]
    path = journal_of_an_attack(tmp_path / "journal.json", 3)
    for line in path.read_text().splitlines():
        for event in parse_lines([line], format="journald"):
            literals = fmt.implied_literals("source", event["source"])
            assert literals is not None and any(lit.lower() in line.lower() for lit in literals)


def test_a_binary_journal_file_is_reported_with_how_to_read_it(tmp_path: Path) -> None:
    journal = tmp_path / "system.journal"
    journal.write_bytes(b"LPKSHHRH" + bytes(range(256)) * 4 + b"\nnot\xfftext\n")
    stats = IngestStats()
    assert parse_events([journal], stats=stats) == []
    assert stats.rejected == {"unreadable_file": 1}
    (example,) = stats.examples["unreadable_file"]
    assert "journalctl --file" in example and "-o json" in example
