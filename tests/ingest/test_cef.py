"""ArcSight CEF, as syslog messages and bare lines: header, extensions, escapes, Datadog's
attributes, dates, the prefilter's promises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, Source, parse_lines
from tests.ingest.conftest import count_rule, same_signals_with_and_without_prefilter
from tests.ingest.test_verbatim import assert_prefilter_promises_hold

SYSLOG = [
    r"<134>Sep 19 08:26:10 fw-1 CEF:0|Fortinet|FortiGate|7.2|13|traffic denied|5|src=10.0.0.5 spt=50000 dst=198.51.100.7 "
    r"dpt=443 act=deny suser=DOM\\bob msg=a \= b c outcome=Failure",
    r"<134>Sep 19 08:26:11 fw-1 CEF:0|Security|threatmanager|1.0|100|detected a \| in packet|10|src=10.0.0.1 act=blocked a \\ dst=1.1.1.1",
]


def test_cef_in_syslog_is_read_under_the_syslog_header() -> None:
    assert Source("fw.log", data=("\n".join(SYSLOG) + "\n").encode()).format.name == "syslog"
    denied, blocked = parse_lines(SYSLOG, format="syslog", year=2024)
    assert denied["source"] == "cef" and denied["host"] == "fw-1" and denied["timestamp"] == 1726734370000
    assert denied["cef"]["device"] == {"vendor": "Fortinet", "product": "FortiGate", "version": "7.2", "event_class_id": "13"}
    assert denied["cef"]["extensions"]["msg"] == "a = b c" and denied["usr"] == {"name": "DOM\\bob"}
    assert denied["network"] == {"client": {"ip": "10.0.0.5", "port": 50000}, "destination": {"ip": "198.51.100.7", "port": 443}}
    assert denied["evt"] == {"outcome": "failure"} and denied["status"] == "info"  # the syslog priority's
    assert blocked["cef"]["name"] == "detected a | in packet" and blocked["cef"]["extensions"]["act"] == "blocked a \\"


def test_bare_lines_are_dated_by_their_receipt_time() -> None:
    lines = [r"CEF:0|Imperva|WAF|14.1|1|SQL injection|9|rt=1714557600000 src=203.0.113.9 request=/search?q\=1 requestMethod=GET",
             "CEF:0|X|Y|1|2|probe|Low|rt=Sep 19 2024 08:26:10 UTC src=1.2.3.4",
             "CEF:0|X|Y|1|2|probe|7|end=2024-09-19T08:26:10Z src=1.2.3.4"]
    assert Source("waf.log", data=("\n".join(lines) + "\n").encode()).format.name == "cef"
    waf, probe, late = parse_lines(lines, format="cef")
    assert waf["timestamp"] == 1714557600000 and waf["status"] == "critical"
    assert waf["http"] == {"url": "/search?q=1", "method": "GET"} and waf["message"] == lines[0]
    assert probe["timestamp"] == 1726734370000 and probe["status"] == "info"
    assert late["timestamp"] == 1726734370000 and late["status"] == "error"


def test_lines_that_are_no_cef_are_counted() -> None:
    stats = IngestStats()
    events = parse_lines(["CEF:0|too|few|fields", "CEF:0|X|Y|1|2|n|5|src=1.2.3.4", "CEF:0|X|Y|1|2|n|5|rt=yesterday"],
                         format="cef", stats=stats)
    assert events == [] and stats.rejected == {"unparsed_line": 1, "missing_timestamp": 1, "bad_timestamp": 1}


def random_firewall(seed: int, lines: int = 1200) -> list[str]:
    rnd = random.Random(seed)
    out = []
    for i in range(lines):
        note = rnd.choice(["plain words", r"a \= b", r"pipe \| here", r"back\\slash", "x"])
        user = rnd.choice(["bob", r"DOM\\alice", "x=y"])
        out.append(f"<134>Sep 19 08:{i // 60 % 60:02d}:{i % 60:02d} fw-{rnd.randrange(1, 3)} CEF:0|Fortinet|FortiGate|7.2|13|traffic|"
                   f"{rnd.randrange(0, 11)}|src=10.0.0.{rnd.randrange(1, 5)} spt={rnd.randrange(1024, 65535)} "
                   f"dst={rnd.choice(['198.51.100.7', '8.8.8.8'])} dpt={rnd.choice([22, 443])} act={rnd.choice(['deny', 'accept'])} "
                   f"suser={user} msg={note}")
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_attribute_promises_to_the_prefilter_hold(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "fw.log"
    path.write_text("\n".join(random_firewall(seed, 300)) + "\n")
    assert_prefilter_promises_hold(path, year=2024)


@pytest.mark.parametrize("seed", [1, 2])
def test_rules_and_destination_intel_give_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    from secmon.intel import IndicatorSet
    path = tmp_path / "fw.log"
    path.write_text("\n".join(random_firewall(seed)) + "\n")
    rule = count_rule("ssh-denied", "source:cef @cef.extensions.act:deny @network.destination.port:22", "@network.client.ip", 5)
    intel = IndicatorSet()
    intel.add_list("c2.txt", ["198.51.100.7"])
    fast = same_signals_with_and_without_prefilter([rule], path, intel=intel, year=2024)
    assert {s.rule_id for s in fast.signals} == {"ssh-denied", "threat-intel-destination-ip-match"}
    assert same_signals_with_and_without_prefilter([], path, intel=intel, year=2024).skipped_lines > 0
