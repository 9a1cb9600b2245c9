"""Threat-intel IP matching: the native set against ipaddress, and the real OpenSSH fact."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmon.detect.engine import Engine
from secmon.detect.reference import reference_detect
from secmon.ingest import parse_events
from secmon.intel import IndicatorSet, IntelRule, load_indicators
from secmon.rules.loader import RuleSet

DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
FIREHOL = DATASETS / "threat-intel" / "firehol_level1.netset"
OPENSSH = DATASETS / "loghub" / "OpenSSH" / "OpenSSH_2k.log"


@pytest.mark.skipif(not FIREHOL.exists(), reason="threat-intel dataset absent")
def test_firehol_flags_the_two_openssh_attackers() -> None:
    result = Engine(RuleSet(), intel=[FIREHOL], year=2015).detect([OPENSSH])
    ips = sorted({s.group_by["@network.client.ip"] for s in result.signals})
    assert ips == ["103.99.0.122", "5.188.10.180"]
    assert all(s.rule_id == "threat-intel-ip-match" for s in result.signals)


@pytest.mark.skipif(not FIREHOL.exists(), reason="threat-intel dataset absent")
def test_intel_matches_reference_on_openssh() -> None:
    indicators = load_indicators([FIREHOL])
    fast = Engine(RuleSet(), intel=indicators, year=2015).detect([OPENSSH]).signals
    slow = reference_detect([IntelRule.build(indicators, 0)], parse_events([OPENSSH], year=2015))
    assert sorted(s.key() for s in fast) == sorted(s.key() for s in slow)


def test_bad_entries_are_counted_with_their_line() -> None:
    indicators = IndicatorSet()
    indicators.add_list("list.txt", ["# header", "1.2.3.4", "not-an-ip", "", "10.0.0.0/8 ; comment", "300.1.1.1"])
    assert len(indicators.networks) == 2
    assert indicators.rejected["not an IP address or CIDR"] == 2
    assert indicators.examples[0] == "list.txt:3: 'not-an-ip'"


addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
    st.sampled_from(["", "garbage", "1.2.3", "::ffff:10.1.2.3", "10.1.2.3"]),
)
networks = st.one_of(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(lambda t: str(ipaddress.IPv4Network((t[0], t[1]), strict=False))),
    st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(lambda t: str(ipaddress.IPv6Network((t[0], t[1]), strict=False))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(networks, max_size=8), min_size=1, max_size=3), st.lists(addresses, max_size=30))
def test_native_lookup_matches_ipaddress(lists: list[list[str]], probes: list[str]) -> None:
    indicators = IndicatorSet()
    for i, entries in enumerate(lists):
        indicators.add_list(f"l{i}", entries)
    if not indicators.networks:
        return
    native = indicators.native().lookup(probes).tolist()
    slow = [indicators.lookup_slow(p) for p in probes]
    # Longest prefix wins; on an exact tie both pick the list added first (the smaller id).
    assert native == slow, list(zip(probes, native, slow))


def test_listed_destinations_raise_their_own_signal_with_and_without_the_prefilter(tmp_path: Path) -> None:
    """A connection out to a listed server (Feodo's C2 lists) is in a network log's destination."""
    lines = [
        "#separator \\x09", "#path\tconn",
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto",
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum",
        "1566864000.000000\tC1\t10.0.0.5\t50000\t198.51.100.7\t443\ttcp",
        "1566864001.000000\tC2\t10.0.0.6\t50001\t192.0.2.80\t443\ttcp",
        "1566864002.000000\tC3\t203.0.113.9\t50002\t10.0.0.5\t22\ttcp",
    ]
    log = tmp_path / "conn.log"
    log.write_text("\n".join(lines) + "\n")
    indicators = IndicatorSet()
    indicators.add_list("c2.txt", ["198.51.100.7", "203.0.113.9"])
    for prefilter in (True, False):
        result = Engine(RuleSet(), intel=indicators, prefilter=prefilter).detect([log])
        found = sorted((s.rule_id, *s.group_by.values()) for s in result.signals)
        assert found == [("threat-intel-destination-ip-match", "198.51.100.7"), ("threat-intel-ip-match", "203.0.113.9")]
        assert result.skipped_lines == (1 if prefilter else 0)
    fast = Engine(RuleSet(), intel=indicators).detect([log]).signals
    slow = reference_detect(list(IntelRule.build_all(indicators, 0)), parse_events([log]))
    assert sorted(s.key() for s in fast) == sorted(s.key() for s in slow)


def test_inputs_that_never_name_a_destination_keep_their_prefilter(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    log.write_text("Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for root from 203.0.113.9 port 38926 ssh2\n"
                   "Dec 10 06:55:49 LabSZ CRON[1]: pam_unix(cron:session): session opened for user root\n")
    indicators = IndicatorSet()
    indicators.add_list("bad.txt", ["203.0.113.9"])
    result = Engine(RuleSet(), intel=indicators, year=2015).detect([log])
    assert [s.rule_id for s in result.signals] == ["threat-intel-ip-match"] and result.skipped_lines == 1


def test_intel_rules_beside_a_disabled_rule_keep_their_own_flags(tmp_path: Path) -> None:
    """Regression: rules were numbered by their place in the rule set, disabled and correlation
    rules included, and the intel rules took the next numbers after the count of those that run:
    one of them got the number of the last rule, and two rules' flags one column."""
    from secmon.rules.loader import rule_from_dict

    def rule(rule_id: str, **extra: object) -> object:
        return rule_from_dict({"id": rule_id, "name": rule_id, "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@usr.name"]}],
                               "cases": [{"status": "low", "condition": "a > 0"}], **extra})

    rules = RuleSet((rule("first"), rule("off", isEnabled=False), rule("last")))  # type: ignore[arg-type]
    log = tmp_path / "events.ndjson"
    log.write_text('{"timestamp": 1700000000000, "evt": {"outcome": "failure"}, "usr": {"name": "u"}, "network": {"client": {"ip": "198.51.100.7"}}}\n')
    indicators = IndicatorSet()
    indicators.add_list("c2.txt", ["198.51.100.7"])
    found = sorted(s.rule_id for s in Engine(rules, intel=indicators).detect([log]).signals)
    assert found == ["first", "last", "threat-intel-ip-match"]
