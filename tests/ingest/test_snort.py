"""Snort and Suricata fast alerts: fields, dates with and without a year, the prefilter's promises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, Source, parse_lines
from tests.ingest.conftest import count_rule, same_signals_with_and_without_prefilter
from tests.ingest.test_verbatim import assert_prefilter_promises_hold

ALERTS = [
    "05/01-10:00:00.123456  [**] [1:2010935:3] ET SCAN Suspicious inbound to MSSQL port 1433 [**] "
    "[Classification: Potentially Bad Traffic] [Priority: 2] {TCP} 203.0.113.9:50000 -> 10.0.0.5:1433",
    "05/01/24-10:00:01.5  [**] [1:2100498:7] GPL ATTACK_RESPONSE id check returned root [**] [Priority: 1] {ICMP} 10.0.0.5 -> 203.0.113.9",
    "12/31-23:59:59.000001  [**] [1:1:1] a rule [**] {UDP} [2001:db8::1]:53 -> [2001:db8::2]:5353",
    "01/01-00:00:01.000001  [**] [1:1:1] a rule, the next year [**] {UDP} 10.0.0.1:53 -> 10.0.0.2:5353",
]


def test_alerts_are_detected_and_read() -> None:
    assert Source("fast.log", data=("\n".join(ALERTS) + "\n").encode()).format.name == "snort"
    scan, root, v6, next_year = parse_lines(ALERTS, format="snort", year=2026)
    assert scan["timestamp"] == 1777629600123 and scan["source"] == "snort" and scan["status"] == "error"
    assert scan["snort"] == {"gid": 1, "sid": 2010935, "rev": 3, "signature": "ET SCAN Suspicious inbound to MSSQL port 1433",
                             "classification": "Potentially Bad Traffic", "priority": 2}
    assert scan["network"] == {"transport": "tcp", "client": {"ip": "203.0.113.9", "port": 50000},
                               "destination": {"ip": "10.0.0.5", "port": 1433}}
    assert root["timestamp"] == 1714557601500 and root["status"] == "critical" and "port" not in root["network"]["client"]
    assert v6["network"]["client"] == {"ip": "2001:db8::1", "port": 53} and "status" not in v6
    assert next_year["timestamp"] - v6["timestamp"] == 2000  # the year rolls over as syslog's does


def test_lines_that_are_no_alert_are_counted() -> None:
    stats = IngestStats()
    assert parse_lines(["not an alert", "13/45-10:00:00.1  [**] [1:1:1] x [**] {TCP} 1.2.3.4 -> 5.6.7.8"],
                       format="snort", stats=stats, year=2026) == []
    assert stats.rejected == {"unparsed_line": 1, "bad_timestamp": 1}


def random_alerts(seed: int, lines: int = 1200) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(lines):
        sid, text = rnd.choice([(2010935, "ET SCAN Suspicious inbound to MSSQL port 1433"), (2001219, "ET SCAN Potential SSH Scan"),
                                (2100498, "GPL ATTACK_RESPONSE id check returned root")])
        out.append(f"05/01-10:{i // 60 % 60:02d}:{i % 60:02d}.{rnd.randrange(10**6):06d}  [**] [1:{sid}:{rnd.randrange(1, 9)}] {text} [**] "
                   f"[Classification: Attempted Information Leak] [Priority: {rnd.randrange(1, 4)}] {{TCP}} "
                   f"203.0.113.{rnd.randrange(1, 5)}:{rnd.randrange(1024, 65535)} -> 10.0.0.5:{rnd.choice([22, 1433])}")
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_attribute_promises_to_the_prefilter_hold(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "fast.log"
    path.write_text("\n".join(random_alerts(seed, 300)) + "\n")
    assert_prefilter_promises_hold(path, year=2026)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_rule_over_alerts_gives_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "fast.log"
    path.write_text("\n".join(random_alerts(seed)) + "\n")
    rule = count_rule("ssh-scan", "source:snort @snort.sid:2001219 @network.destination.port:22", "@network.client.ip", 3)
    fast = same_signals_with_and_without_prefilter([rule], path, year=2026)
    assert fast.signals and fast.skipped_lines > 0
