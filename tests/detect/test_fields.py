"""Rule fields over tags: ``groupByFields: ["service", "env"]`` groups by the ``env:...`` tag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmon.detect.engine import Engine
from secmon.detect.fields import event_value, number_value, source_columns, text_value, value_column
from secmon.detect.reference import _number, reference_detect, value_text
from secmon.ingest.events import to_frame
from secmon.rules.loader import load_rules, rule_from_dict

# Datadog's example rule for the terraform provider's datadog_security_monitoring_rule_json,
# as published: it groups by a reserved attribute and a tag.
DATADOG_EXAMPLE = {
    "name": "High error rate security monitoring",
    "isEnabled": True,
    "type": "log_detection",
    "message": "High error rate detected in logs",
    "tags": ["env:prod", "security"],
    "cases": [{"name": "high case", "status": "high", "condition": "errors > 100 && warnings > 1000", "notifications": ["@security-team"]}],
    "queries": [
        {"name": "errors", "query": "status:error", "aggregation": "count", "dataSource": "logs", "groupByFields": ["service", "env"]},
        {"name": "warnings", "query": "status:warning", "aggregation": "count", "dataSource": "logs", "groupByFields": ["service", "env"]},
    ],
    "options": {"evaluationWindow": 300, "keepAlive": 600, "maxSignalDuration": 900},
}


def test_value_columns_of_attributes_reserved_attributes_and_tags() -> None:
    assert value_column("@network.client.ip") == "network.client.ip"
    assert value_column("host") == "host"
    assert value_column("env") == "tags:env"
    assert source_columns("tags:env") == ("tags", "env")
    assert source_columns("network.client.ip") == ("network.client.ip",)


def _events() -> list[dict[str, Any]]:
    """Per env 600 events in two minutes: 60 errors and 540 warnings."""
    events = []
    base = 1_700_000_000_000
    for i in range(1200):
        env = ("prod", "staging")[i % 2]
        status = "error" if (i // 2) % 10 == 0 else "warning"
        events.append({"timestamp": base + i * 100, "status": status, "service": "api", "ddtags": f"env:{env},team:core",
                       "message": f"request {i} failed"})
    return events


def test_datadog_example_rule_groups_by_service_and_env_tag(tmp_path: Path) -> None:
    rule_file = tmp_path / "example.json"
    rule_file.write_text(json.dumps(DATADOG_EXAMPLE))
    (rule,) = load_rules(rule_file).rules
    events = _events()
    log = tmp_path / "app.ndjson"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    # The example's thresholds (errors > 100 && warnings > 1000) are not reached; lowered, each env fires.
    for engine_kwargs in ({}, {"prefilter": False}, {"native_flags": False}):
        signals = Engine([rule], **engine_kwargs).detect([log]).signals
        assert signals == [], engine_kwargs
    lowered = rule_from_dict({**DATADOG_EXAMPLE, "cases": [{"status": "high", "condition": "errors >= 60 && warnings >= 540"}]},
                             default_id="example")
    as_parsed = [{**{k: v for k, v in e.items() if k != "ddtags"}, "tags": e["ddtags"].split(",")} for e in events]
    expected = sorted(s.key() for s in reference_detect([lowered], as_parsed))
    assert len(expected) == 2
    for engine_kwargs in ({}, {"prefilter": False}, {"native_flags": False}):
        signals = Engine([lowered], **engine_kwargs).detect([log]).signals
        assert sorted(s.key() for s in signals) == expected, engine_kwargs
        assert sorted((s.group_by["service"], s.group_by["env"]) for s in signals) == [("api", "prod"), ("api", "staging")]


def test_a_bare_name_without_such_a_tag_reads_the_attribute() -> None:
    rule = rule_from_dict({"id": "by-team", "name": "by team", "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["team"]}],
                           "cases": [{"status": "low", "condition": "a >= 2"}],
                           "options": {"evaluationWindow": 60, "keepAlive": 0, "maxSignalDuration": 0}, "message": "{{team}}"})
    base = 1_700_000_000_000
    events = [
        {"timestamp": base, "evt": {"outcome": "failure"}, "tags": ["team:red"], "team": "ignored"},
        {"timestamp": base + 1, "evt": {"outcome": "failure"}, "tags": ["team:red"]},
        {"timestamp": base + 2, "evt": {"outcome": "failure"}, "team": "blue"},
        {"timestamp": base + 3, "evt": {"outcome": "failure"}, "team": "blue"},
        {"timestamp": base + 4, "evt": {"outcome": "failure"}},
    ]
    signals = Engine([rule]).scan_events(events)
    assert sorted((s.group_by["team"], s.event_count, s.message) for s in signals) == [("blue", 2, "blue"), ("red", 2, "red")]
    assert sorted(s.key() for s in signals) == sorted(s.key() for s in reference_detect([rule], events))


TAGS = st.one_of(st.none(), st.text("ab:,", max_size=6), st.lists(st.one_of(st.text("ab:", max_size=5), st.integers(-2, 2)), max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={"tags": TAGS, "a": st.one_of(st.text("a1", max_size=3), st.integers(0, 9)),
                                                     "b": st.text("b", max_size=2)}), min_size=1, max_size=8),
       st.sampled_from(["a", "b", "@a", "host", "ab"]))
def test_polars_values_equal_the_event_dict_values(events: list[dict[str, Any]], field: str) -> None:
    """``text_value``/``number_value`` over the event table against ``event_value`` on each dict."""
    column = value_column(field)
    table = to_frame(events, sorted(source_columns(column)))
    got = table.select(text_value(table.schema, column).alias("t"), number_value(table.schema, column).alias("n"))
    for event, text, number in zip(events, got["t"].to_list(), got["n"].to_list()):
        value = event_value(event, column)
        assert text == value_text(value), (event, column)
        assert number == _number(value) or (number != number and _number(value) != _number(value)), (event, column)


def test_tags_column_as_plain_text_is_one_tag() -> None:
    table = pl.DataFrame({"tags": ["env:prod", None]})
    assert table.select(text_value(table.schema, "tags:env")).to_series().to_list() == ["prod", None]


@pytest.mark.parametrize("native_flags", [True, False])
def test_decrease_criticality_based_on_env_lowers_non_production_signals(native_flags: bool) -> None:
    """Datadog: one level lower where the signal's env tag starts with staging, test or dev."""
    cases = [{"status": "high", "condition": "a >= 3"}, {"status": "info", "condition": "a >= 1"}]
    rule = rule_from_dict({"id": "env", "name": "env", "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@usr.name"]}],
                           "cases": cases, "options": {"evaluationWindow": 60, "keepAlive": 600, "maxSignalDuration": 3600,
                                                       "decreaseCriticalityBasedOnEnv": True}})
    base = 1_700_000_000_000
    envs = {"alice": ["env:prod"], "bob": ["env:staging-eu"], "carol": ["env:development"], "dave": ["env:test", "env:prod"],
            "erin": [], "frank": ["env:production"]}
    events = [{"timestamp": base + i, "evt": {"outcome": "failure"}, "usr": {"name": user}, "tags": tags}
              for user, tags in envs.items() for i in range(3)]
    events.append({"timestamp": base + 10_000_000, "evt": {"outcome": "failure"}, "usr": {"name": "bob"}, "tags": ["env:dev"]})
    signals = Engine([rule], native_flags=native_flags).scan_events(events)
    got = sorted((s.group_by["@usr.name"], s.severity) for s in signals)
    assert got == [("alice", "high"), ("bob", "info"), ("bob", "medium"), ("carol", "medium"), ("dave", "medium"),
                   ("erin", "high"), ("frank", "high")]
    assert sorted(s.key() for s in signals) == sorted(s.key() for s in reference_detect([rule], events))
    unchanged = rule_from_dict({**rule.to_datadog(), "options": {**rule.to_datadog()["options"], "decreaseCriticalityBasedOnEnv": False}})
    assert {s.severity for s in Engine([unchanged]).scan_events(events)} == {"high", "info"}


def test_optional_group_by_fields_group_missing_values_as_n_a() -> None:
    """Datadog: with hasOptionalGroupByFields, events missing a group-by field are processed with
    N/A in its place; without it they are ignored by the query."""
    base = 1_700_000_000_000
    events = [{"timestamp": base + i, "evt": {"outcome": "failure"}, **({"usr": {"name": "alice"}} if i % 2 else {})}
              for i in range(6)]
    for optional, expected in ((True, [("N/A", 3), ("alice", 3)]), (False, [("alice", 3)])):
        rule = rule_from_dict({"id": "opt", "name": "opt", "message": "user {{@usr.name}}",
                               "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@usr.name"],
                                            "hasOptionalGroupByFields": optional}],
                               "cases": [{"status": "low", "condition": "a >= 3"}],
                               "options": {"evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600}})
        signals = Engine([rule]).scan_events(events)
        assert sorted((s.group_by["@usr.name"], s.event_count) for s in signals) == expected
        assert sorted(s.key() for s in signals) == sorted(s.key() for s in reference_detect([rule], events))
        assert all(s.message == f"user {s.group_by['@usr.name']}" for s in signals)


def test_n_a_groups_stay_whole_when_a_rule_is_detected_in_slices() -> None:
    """The kept rows are sliced by a hash of the group-by values: a missing value must hash as
    the N/A it is grouped under, or its rows land in a slice that filters them out."""
    base = 1_700_000_000_000
    events = [{"timestamp": base + i * 1000, "evt": {"outcome": "failure"}, **({"usr": {"name": f"u{i % 50}"}} if i % 4 else {})}
              for i in range(400)]
    rule = rule_from_dict({"id": "opt", "name": "opt",
                           "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@usr.name"], "hasOptionalGroupByFields": True}],
                           "cases": [{"status": "low", "condition": "a >= 2"}],
                           "options": {"evaluationWindow": 600, "keepAlive": 600, "maxSignalDuration": 3600}})
    whole = sorted(s.key() for s in Engine([rule]).scan_events(events))
    assert any('"N/A"' in str(key) for key in whole)
    for slice_rows in (3, 7, 50):
        assert sorted(s.key() for s in Engine([rule], slice_rows=slice_rows).scan_events(events)) == whole, slice_rows
