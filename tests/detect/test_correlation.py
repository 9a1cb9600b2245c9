"""Signal correlation rules: loaded and checked as Datadog defines them, run over the signals of the
rules they name, the same in the engine and the reference twin."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.detect.engine import Engine
from secmon.detect.reference import reference_detect
from secmon.errors import RuleSetError
from secmon.rules.loader import RuleSet, rule_from_dict, validate_rules

BASE_MS = 1_700_000_000_000
USERS = ["alice", "bob", "carol"]


def log_rule(rule_id: str, outcome: str, threshold: int = 2, window: int = 300, group_by: tuple[str, ...] = ("@usr.name",)) -> dict[str, Any]:
    return {
        "id": rule_id, "name": f"{rule_id} rule",
        "queries": [{"query": f"@evt.outcome:{outcome}", "groupByFields": list(group_by), "aggregation": "count", "name": "a"}],
        "cases": [{"status": "medium", "condition": f"a >= {threshold}"}],
        "options": {"evaluationWindow": window, "keepAlive": window, "maxSignalDuration": 4 * window},
    }


def correlation(queries: list[dict[str, Any]], condition: str = "a > 0 && b > 0", window: int = 900, **extra: Any) -> dict[str, Any]:
    return {
        "id": "corr", "name": "correlated failures and successes", "type": "signal_correlation",
        "queries": queries,
        "cases": [{"name": "both", "status": "high", "condition": condition}],
        "options": {"detectionMethod": "threshold", "evaluationWindow": window, "keepAlive": window, "maxSignalDuration": 4 * window},
        "message": "{{@usr.name}} failed and succeeded",
        **extra,
    }


def two_rule_correlation(**extra: Any) -> dict[str, Any]:
    return correlation([
        {"ruleId": "failures", "aggregation": "event_count", "correlatedByFields": ["@usr.name"], "correlatedQueryIndex": 0},
        {"ruleId": "successes", "aggregation": "event_count"},
    ], **extra)


def rules_of(*raw: dict[str, Any]) -> RuleSet:
    return RuleSet(tuple(rule_from_dict(r) for r in raw))  # type: ignore[misc]


def event(seconds: int, user: str, outcome: str, ip: str = "10.0.0.1") -> dict[str, Any]:
    return {"timestamp": BASE_MS + seconds * 1000, "source": "sshd", "usr": {"name": user},
            "evt": {"outcome": outcome}, "network": {"client": {"ip": ip}}}


def keys(signals: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(s.key() for s in signals)


def test_a_correlation_fires_when_both_rules_signal_for_one_user_within_its_window() -> None:
    rules = rules_of(log_rule("failures", "failure"), log_rule("successes", "success"), two_rule_correlation())
    events = [event(0, "alice", "failure"), event(10, "alice", "failure"),    # failures for alice at 0
              event(600, "alice", "success"), event(610, "alice", "success"),  # successes for alice at 600
              event(0, "bob", "failure"), event(5, "bob", "failure"),          # bob: failures only
              event(0, "carol", "failure"), event(1, "carol", "failure"),      # carol: successes too late
              event(2000, "carol", "success"), event(2001, "carol", "success")]
    signals = Engine(rules).scan_events(events)
    correlated = [s for s in signals if s.rule_id == "corr"]
    assert [(s.group_by, s.severity, s.case, s.event_count, s.first_seen_ms) for s in correlated] == [
        ({"@usr.name": "alice"}, "high", "both", 2, BASE_MS)
    ]
    assert correlated[0].message == "alice failed and succeeded"
    # Its samples are the correlated signals, as Datadog's signals name their rule.
    assert sorted(s["workflow"]["rule"]["id"] for s in correlated[0].samples) == ["failures", "successes"]
    assert {s["signal"]["severity"] for s in correlated[0].samples} == {"medium"}
    assert len([s for s in signals if s.rule_id != "corr"]) == 5  # the log rules' own signals still come
    assert keys(signals) == keys(reference_detect(list(rules), events))


def test_a_correlated_attribute_the_rules_do_not_group_by_is_read_from_their_first_event() -> None:
    rules = rules_of(
        log_rule("failures", "failure", group_by=("@usr.name",)),
        log_rule("successes", "success", group_by=("host",)),
        correlation([{"ruleId": "failures", "aggregation": "event_count", "correlatedByFields": ["@network.client.ip"]},
                     {"ruleId": "successes", "aggregation": "event_count"}]),
    )
    events = [event(0, "alice", "failure", "203.0.113.9"), event(1, "alice", "failure", "203.0.113.9"),
              {**event(60, "bob", "success", "203.0.113.9"), "host": "db-1"}, {**event(61, "bob", "success", "203.0.113.9"), "host": "db-1"}]
    correlated = [s for s in Engine(rules).scan_events(events) if s.rule_id == "corr"]
    assert [s.group_by for s in correlated] == [{"@network.client.ip": "203.0.113.9"}]


def test_a_correlation_over_a_file_scan_with_the_default_rules_and_the_cli(tmp_path: Path) -> None:
    """``secmon scan --rules correlation.json`` beside the default pack: a user's correlation of
    two default rules, from the sample logs of the demo."""
    import subprocess
    import sys

    rule = correlation([
        {"ruleId": "ssh-brute-force", "aggregation": "event_count", "correlatedByFields": ["@network.client.ip"]},
        {"ruleId": "ssh-root-login-from-public-ip", "aggregation": "event_count"},
    ], message="{{@network.client.ip}} guessed passwords, then logged in as root")
    path = tmp_path / "corr.json"
    path.write_text(json.dumps(rule))
    samples = Path(__file__).resolve().parents[2] / "secmon" / "samples" / "auth.log"
    run = subprocess.run([sys.executable, "-m", "secmon.cli", "scan", "--format", "json", "--rules", str(path), "--year", "2026", str(samples)],
                         capture_output=True, text=True, check=True)
    found = [s for s in json.loads(run.stdout) if s["rule_id"] == "corr"]
    assert [(s["group_by"], s["message"]) for s in found] == [
        ({"@network.client.ip": "203.0.113.66"}, "203.0.113.66 guessed passwords, then logged in as root")
    ]


def test_correlations_load_as_datadog_exports_them_and_bad_ones_are_named(tmp_path: Path) -> None:
    def errors(raw: dict[str, Any]) -> dict[str, str]:
        path = tmp_path / "rule.json"
        path.write_text(json.dumps(raw))
        return {e.field: e.reason for e in validate_rules(path)}

    assert errors(two_rule_correlation()) == {}
    bad = correlation([
        {"ruleId": "", "aggregation": "cardinality", "distinctFields": ["@x"], "correlatedByFields": ["@a", "@b", "@c", "@d"]},
        {"ruleId": "successes", "query": "source:sshd", "correlatedByFields": ["@usr.id"]},
    ])
    bad["options"]["detectionMethod"] = "new_value"
    found = errors(bad)
    assert set(found) == {
        "options.detectionMethod", "queries[0].correlatedByFields", "queries[0].ruleId", "queries[0].aggregation",
        "queries[0].distinctFields", "queries[1].query", "queries[1].correlatedByFields",
    }, found
    assert "1 to 3 attributes" in found["queries[0].correlatedByFields"]
    # A log rule's query naming a rule is a mistake, not a silent no-op.
    wrong = {**log_rule("x", "failure")}
    wrong["queries"][0]["ruleId"] = "y"
    assert "signal_correlation" in errors(wrong)["queries[0].ruleId"]


def test_a_correlation_of_rules_the_scan_does_not_run_is_refused_by_name() -> None:
    missing = two_rule_correlation()
    with pytest.raises(RuleSetError) as info:
        Engine(rules_of(log_rule("failures", "failure"), missing))
    assert [(e.field, e.value) for e in info.value.errors] == [("queries[1].ruleId", "successes")]
    assert "no rule with this id is loaded" in info.value.errors[0].reason
    disabled = {**log_rule("successes", "success"), "isEnabled": False}
    with pytest.raises(RuleSetError, match="disabled"):
        Engine(rules_of(log_rule("failures", "failure"), disabled, two_rule_correlation()))
    over_correlation = correlation([{"ruleId": "corr", "aggregation": "event_count", "correlatedByFields": ["@usr.name"]}],
                                   condition="a > 0", id="corr2")
    with pytest.raises(RuleSetError, match="signal correlation rule"):
        Engine(rules_of(log_rule("failures", "failure"), log_rule("successes", "success"), two_rule_correlation(), over_correlation))


def test_a_disabled_correlation_and_rule_sets_without_one_change_nothing() -> None:
    events = [event(0, "alice", "failure"), event(1, "alice", "failure"), event(2, "alice", "success"), event(3, "alice", "success")]
    plain = rules_of(log_rule("failures", "failure"), log_rule("successes", "success"))
    off = rules_of(log_rule("failures", "failure"), log_rule("successes", "success"), {**two_rule_correlation(), "isEnabled": False})
    assert keys(Engine(off).scan_events(events)) == keys(Engine(plain).scan_events(events))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3600), st.sampled_from(USERS), st.sampled_from(["failure", "success"])), min_size=1, max_size=60),
       st.integers(1, 3), st.sampled_from([60, 300, 900]), st.sampled_from(["a > 0 && b > 0", "a >= 2", "a > 0 || b > 1"]),
       st.randoms(use_true_random=False))
def test_engine_and_reference_agree_on_random_correlations(rows: list[tuple[int, str, str]], threshold: int, window: int,
                                                           condition: str, rnd: random.Random) -> None:
    rules = rules_of(log_rule("failures", "failure", threshold, window=120), log_rule("successes", "success", threshold, window=120),
                     two_rule_correlation(condition=condition, window=window))
    events = [event(t, user, outcome) for t, user, outcome in rows]
    expected = keys(reference_detect(list(rules), events))
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert keys(Engine(rules).scan_events(shuffled)) == expected
    assert keys(Engine(rules, native_flags=False, prefilter=False).scan_events(events)) == expected
