"""key=value lines (logfmt, FortiGate): pairs, typing, dates, detection, the prefilter's promises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, Source, parse_lines
from tests.ingest.conftest import count_rule, same_signals_with_and_without_prefilter
from tests.ingest.test_verbatim import assert_prefilter_promises_hold

LINES = [
    'time=2024-05-01T10:00:00Z level=warn msg="login failed for \\"alice\\"" user=alice src=203.0.113.7 attempt=3 note=',
    '<189>date=2024-05-01 time=10:00:02 devname="FG100" logid="0000000013" type="traffic" level="notice" '
    'srcip=10.0.0.5 srcport=50000 dstip=198.51.100.7 dstport=443 action="accept" tz="-0500"',
    '<185>date=2024-05-01 time=10:00:03 devname="FG100" type="event" srcip=10.0.0.6 action="deny"',
]


def test_the_format_is_detected_and_audit_logs_stay_audit_logs() -> None:
    assert Source("app.log", data=("\n".join(LINES) + "\n").encode()).format.name == "logfmt"
    audit = b'type=USER_AUTH msg=audit(1732788020.000:480): pid=1 uid=0 auid=0 ses=1 msg=\'op=PAM:authentication acct="root" res=failed\'\n'
    assert Source("audit.log", data=audit * 3).format.name == "auditd"


def test_pairs_become_a_record_read_as_json_records_are() -> None:
    app, traffic, event = parse_lines(LINES, format="logfmt")
    assert app["timestamp"] == 1714557600000 and app["status"] == "warning" and app["message"] == 'login failed for "alice"'
    assert app["attempt"] == 3 and app["src"] == "203.0.113.7" and "note" not in app
    assert traffic["timestamp"] == 1714575602000 and traffic["status"] == "notice"  # the day and time, in its zone
    assert traffic["logid"] == "0000000013" and traffic["dstport"] == 443 and traffic["syslog"] == {"severity": 5, "facility": 23}
    assert event["timestamp"] == 1714557603000 and event["status"] == "alert"  # no level: the priority's


def test_lines_that_are_not_pairs_are_counted() -> None:
    stats = IngestStats()
    events = parse_lines(["just words here", 'a=1 b="unclosed c=3', "time=yesterday a=1 b=2"], format="logfmt", stats=stats)
    assert events == [] and stats.rejected == {"unparsed_line": 2, "missing_timestamp": 1}


def random_fortigate(seed: int, lines: int = 1500) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(lines):
        action = rnd.choice(["accept", "deny", "deny"])
        quoted = rnd.choice(['"a b"', '"say \\"x\\""', "plain", ""])
        out.append(f'<189>date=2024-05-01 time=10:{i // 60 % 60:02d}:{i % 60:02d} devname="FG100" type="traffic" '
                   f'srcip=10.0.0.{rnd.randrange(1, 5)} srcport={rnd.randrange(1024, 65535)} dstip={rnd.choice(["198.51.100.7", "8.8.8.8"])} '
                   f'dstport={rnd.choice([22, 443, 3389])} action="{action}" note={quoted}')
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_attribute_promises_to_the_prefilter_hold(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "fortigate.log"
    path.write_text("\n".join(random_fortigate(seed, 300)) + "\n")
    assert_prefilter_promises_hold(path)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_rule_over_pairs_gives_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "fortigate.log"
    path.write_text("\n".join(random_fortigate(seed)) + "\n")
    rule = count_rule("rdp-denied", "@action:deny @dstport:3389", "@srcip", 5)
    fast = same_signals_with_and_without_prefilter([rule], path)
    assert fast.signals and fast.skipped_lines > 0
