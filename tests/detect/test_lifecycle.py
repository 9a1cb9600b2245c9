"""The native lifecycle walk (``signal_spans``, Rust) against its Python twin
(``signal_spans_reference``), the message template against ``render_message``, and the detector
with either walk.

Inputs are small integers so that ties and exactly-equal distances (a trigger exactly keepAlive
after the previous one, exactly maxSignalDuration after the first event) come up often.
"""

from __future__ import annotations

import os
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon import _core
from secmon.detect import detector
from secmon.detect.engine import Engine
from secmon.detect.lifecycle import (
    LifecycleOptions,
    MessageTemplate,
    SignalSpans,
    signal_spans,
    signal_spans_reference,
)
from secmon.detect.reference import reference_detect
from secmon.rules.loader import rule_from_dict
from secmon.signals.model import render_message, signal_variables

EXAMPLES = int(os.environ.get("SECMON_FUZZ", 200))
Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@st.composite
def walks(draw: st.DrawFn) -> tuple[LifecycleOptions, Columns]:
    """Options and (events, triggers) columns, both sorted by (group, time)."""
    n_cases = draw(st.integers(1, 4))
    ranks = draw(st.lists(st.integers(0, 3), min_size=n_cases, max_size=n_cases))  # equal severities too
    options = LifecycleOptions(
        window_ms=draw(st.sampled_from([0, 0, 1, 2, 5])),
        keep_alive_ms=draw(st.sampled_from([0, 1, 2, 3, 5])),
        max_duration_ms=draw(st.sampled_from([0, 1, 2, 4, 10])),
        case_rank=np.array(ranks, dtype=np.int64),
        max_samples=draw(st.integers(0, 4)),
    )
    groups = sorted(draw(st.sets(st.integers(-3, 50), min_size=1, max_size=4)))
    events: list[tuple[int, int, int]] = []
    triggers: list[tuple[int, int, int]] = []
    next_id = 0
    for group in groups:
        stamps = sorted(draw(st.lists(st.integers(0, 20), min_size=1, max_size=12)))
        for ts in stamps:
            # An event that matched two queries: the same id on two rows; or (adversarial) an id
            # reused from anywhere, even another group or time.
            repeat = draw(st.sampled_from(["new", "new", "new", "twice", "reuse"]))
            event_id = next_id if repeat != "reuse" or next_id == 0 else draw(st.integers(0, next_id - 1))
            next_id += 1
            events.append((group, ts, event_id))
            if repeat == "twice":
                events.append((group, ts, event_id))
        if draw(st.booleans()) and len(groups) > 1:
            continue  # a group without triggers
        picked = draw(st.lists(st.sampled_from(stamps), max_size=10))
        # A trigger later than its events but still covering one: t = event + up to the window.
        stamps_t = sorted(ts + draw(st.integers(0, options.window_ms)) for ts in picked)
        for t in stamps_t:
            triggers.append((group, t, draw(st.integers(0, n_cases - 1))))
    ev = np.array(events, dtype=np.int64).reshape(-1, 3)
    tr = np.array(triggers, dtype=np.int64).reshape(-1, 3)
    return options, (ev[:, 0], ev[:, 1], ev[:, 2], tr[:, 0], tr[:, 1], tr[:, 2])


def assert_same_spans(fast: SignalSpans, slow: SignalSpans) -> None:
    for name in ("group", "case", "first_seen", "last_seen", "event_count", "sample_offsets", "sample_rows"):
        assert getattr(fast, name).tolist() == getattr(slow, name).tolist(), name


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walks())
def test_native_walk_matches_python_twin(walk: tuple[LifecycleOptions, Columns]) -> None:
    options, columns = walk
    assert_same_spans(signal_spans(options, *columns), signal_spans_reference(options, *columns))


def _columns(events: list[tuple[int, int, int]], triggers: list[tuple[int, int, int]]) -> Columns:
    ev = np.array(events, dtype=np.int64).reshape(-1, 3)
    tr = np.array(triggers, dtype=np.int64).reshape(-1, 3)
    return ev[:, 0], ev[:, 1], ev[:, 2], tr[:, 0], tr[:, 1], tr[:, 2]


def _options(window: int, keep_alive: int, max_duration: int, ranks: list[int] = [1]) -> LifecycleOptions:
    return LifecycleOptions(window, keep_alive, max_duration, np.array(ranks, dtype=np.int64))


# (name, options, events (group, ts, id), triggers (group, ts, case), expected (first, last, count) per signal)
CASES = [
    ("keep_alive_exactly_equal_joins", _options(0, 10, 0), [(0, 0, 1), (0, 10, 2)], [(0, 0, 0), (0, 10, 0)],
     [(0, 10, 2)]),
    ("keep_alive_exceeded_by_one_splits", _options(0, 10, 0), [(0, 0, 1), (0, 11, 2)], [(0, 0, 0), (0, 11, 0)],
     [(0, 0, 1), (11, 11, 1)]),
    ("max_duration_from_first_event_exactly_equal_joins", _options(5, 100, 10), [(0, 5, 1), (0, 10, 2), (0, 15, 3)],
     [(0, 10, 0), (0, 15, 0)], [(5, 15, 3)]),
    ("max_duration_exceeded_restarts_with_its_own_window", _options(5, 100, 10), [(0, 5, 1), (0, 10, 2), (0, 16, 3)],
     [(0, 10, 0), (0, 16, 0)], [(5, 10, 2), (16, 16, 1)]),
    ("window_zero_counts_only_events_at_the_trigger", _options(0, 100, 0), [(0, 1, 1), (0, 2, 2), (0, 2, 3)],
     [(0, 2, 0)], [(2, 2, 2)]),
    ("event_matching_two_queries_counts_once", _options(10, 0, 0), [(0, 3, 7), (0, 3, 7), (0, 4, 8)], [(0, 4, 0)],
     [(3, 4, 2)]),
    ("new_signal_recounts_events_of_the_previous_one", _options(10, 0, 0), [(0, 0, 1), (0, 5, 2)],
     [(0, 0, 0), (0, 5, 0)], [(0, 0, 1), (0, 5, 2)]),
]


@pytest.mark.parametrize("name, options, events, triggers, expected", CASES, ids=[c[0] for c in CASES])
def test_lifecycle_table(name: str, options: LifecycleOptions, events: list, triggers: list, expected: list) -> None:
    for walk in (signal_spans, signal_spans_reference):
        spans = walk(options, *_columns(events, triggers))
        got = list(zip(spans.first_seen.tolist(), spans.last_seen.tolist(), spans.event_count.tolist()))
        assert got == expected, walk.__name__


def test_most_severe_case_wins_and_the_earlier_one_on_equal_severity() -> None:
    options = _options(0, 10, 0, ranks=[1, 3, 3])
    for walk in (signal_spans, signal_spans_reference):
        spans = walk(options, *_columns([(0, 0, 1), (0, 1, 2), (0, 2, 3)], [(0, 0, 0), (0, 1, 2), (0, 2, 1)]))
        assert spans.case.tolist() == [2], walk.__name__


@pytest.mark.parametrize("events, triggers, message", [
    ([(0, 5, 1), (0, 1, 2)], [(0, 5, 0)], "events are not sorted by (group, time): row 1 is (group 0, t 1) after (group 0, t 5)"),
    ([(1, 5, 1), (0, 6, 2)], [(1, 5, 0)], "events are not sorted by (group, time): row 1 is (group 0, t 6) after (group 1, t 5)"),
    ([(0, 5, 1)], [(0, 5, 0), (0, 4, 0)], "triggers are not sorted by (group, time): row 1 is (group 0, t 4) after (group 0, t 5)"),
    ([(0, 5, 1)], [(0, 5, 1)], "trigger 0 has case 1; the rule has 1 case(s)"),
    ([(0, 5, 1)], [(0, 7, 0)], "trigger 0 (group 0, t 7) covers no event in [7, 7]"),
    ([(0, 5, 1)], [(1, 5, 0)], "trigger 0 (group 1, t 5) covers no event in [5, 5]"),
])
def test_bad_input_is_the_same_clear_error_from_both_walks(events: list, triggers: list, message: str) -> None:
    for walk in (signal_spans, signal_spans_reference):
        with pytest.raises(ValueError) as raised:
            walk(_options(0, 0, 0), *_columns(events, triggers))
        assert str(raised.value) == message, walk.__name__


def test_native_walk_names_a_wrong_argument() -> None:
    ints = np.zeros(1, dtype=np.int64)
    with pytest.raises(TypeError, match="event_ts must be a 1-d numpy int64 array, not an array of int32"):
        _core.signal_spans(ints, ints.astype(np.int32), ints, ints, ints, ints, ints,
                           window_ms=0, keep_alive_ms=0, max_duration_ms=0, max_samples=1)
    with pytest.raises(ValueError, match="event columns differ in length: group 1, ts 1, id 2"):
        _core.signal_spans(ints, ints, np.zeros(2, dtype=np.int64), ints, ints, ints, ints,
                           window_ms=0, keep_alive_ms=0, max_duration_ms=0, max_samples=1)
    with pytest.raises(ValueError, match="keep_alive_ms is -1; it must be >= 0"):
        _core.signal_spans(ints, ints, ints, ints, ints, ints, ints,
                           window_ms=0, keep_alive_ms=-1, max_duration_ms=0, max_samples=1)
    with pytest.raises(ValueError, match="max_samples is -1"):
        _core.signal_spans(ints, ints, ints, ints, ints, ints, ints,
                           window_ms=0, keep_alive_ms=0, max_duration_ms=0, max_samples=-1)


# --- message templates ----------------------------------------------------------------------------

GROUP_KEYS = ["@usr.name", "usr.name", "@network.client.ip", "host"]
VARIABLES = ["@usr.name", "usr.name", " @usr.name ", "network.client.ip", "@network.client.ip", "host", "tags",
             "evt", "missing.path", "@@usr.name", "#is_match", "a b", "rule_name", "@rule_name", "first_seen",
             "severity", "events_matched", "events_matched_per_query.a"]


BLOCKS = ['{{#is_match "@usr.name" "a" "b"}}', "{{/is_match}}", "{{else}}", '{{^is_exact_match "host" "a"}}',
          "{{/is_exact_match}}", '{{#is_exact_match "severity" "3"}}', '{{#is_match "missing.path" ""}}']


def _containers_of(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4), _containers_of,
                           max_leaves=6)


@st.composite
def templates(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.one_of(
        st.text(alphabet="ab {}#/^\n", max_size=6),
        st.sampled_from(BLOCKS),
        st.sampled_from(VARIABLES).map(lambda v: "{{" + v + "}}"),
        st.sampled_from(VARIABLES).map(lambda v: "{{ " + v + "  }}"),
    ), max_size=6))
    return "".join(pieces)


@settings(max_examples=EXAMPLES, deadline=None)
@given(templates(),
       st.none() | st.fixed_dictionaries({}, optional={
           "usr": st.fixed_dictionaries({}, optional={"name": json_values}),
           "network": st.just({"client": {"ip": "10.0.0.1"}}),
           "host": json_values, "tags": st.lists(st.text(max_size=3), max_size=2), "evt": json_values}),
       st.dictionaries(st.sampled_from(GROUP_KEYS), st.none() | st.text(max_size=3) | st.integers(0, 3), max_size=3),
       st.none() | st.just(signal_variables("r", "c", "high", 0, 1_700_000_000_123, 7)))
def test_message_template_renders_like_render_message(template: str, event: dict[str, Any] | None,
                                                      group_by: dict[str, Any], signal: dict[str, str] | None) -> None:
    expected = render_message(template, event, group_by, signal)
    assert MessageTemplate.parse(template).render(event, group_by, signal) == expected
    assert MessageTemplate.parse(template).render(event, group_by, lambda: signal) == expected  # type: ignore[arg-type,return-value]
    if signal is not None or MessageTemplate.parse(template).conditional is not None:
        return  # conditional blocks read the event whatever they ask
    # Given as a function, the event is asked for only when a variable is not a group-by value.
    asked: list[int] = []
    assert MessageTemplate.parse(template).render(lambda: asked.append(1) or event, group_by) == expected  # type: ignore[func-returns-value]
    needed = any(not any(group_by.get(key) is not None for key in keys) for _, keys in MessageTemplate.parse(template).variables)
    assert len(asked) == (1 if needed else 0)


def test_conditional_blocks_keep_the_branch_that_holds() -> None:
    template = ('{{#is_match "@usr.name" "adm" "root"}}privileged {{@usr.name}}{{else}}user{{/is_match}}; '
                '{{^is_exact_match "host" "bastion"}}not the bastion{{/is_exact_match}}; '
                '{{#is_exact_match "severity" "3"}}high{{/is_exact_match}}{{#is_match "@missing" ""}}never{{/is_match}}')
    signal = signal_variables("r", "c", "high", 0, 0, 1)
    assert render_message(template, {"host": "web-1"}, {"@usr.name": "sysadmin"}, signal) == \
        "privileged sysadmin; not the bastion; high"
    assert render_message(template, {"host": "bastion"}, {"@usr.name": "bob"}, None) == "user; ; "
    assert MessageTemplate.parse(template).render({"host": "bastion"}, {"@usr.name": "bob"}, signal) == "user; ; high"


def test_signal_variables_render_as_datadog_writes_them() -> None:
    signal = signal_variables("SSH brute force", "many failures", "high", 1_700_000_000_123, 1_700_000_060_000, 12)
    template = ("{{rule_name}} ({{case_name}}, severity {{severity}}): {{events_matched}} events from {{first_seen}} "
                "({{first_seen_epoch}}) to {{last_seen}}; {{@rule_name}} is an attribute")
    assert render_message(template, {"rule_name": "attr"}, {}, signal) == (
        "SSH brute force (many failures, severity 3): 12 events from Tue Nov 14 22:13:20 UTC 2023 (1700000000123) "
        "to Tue Nov 14 22:14:20 UTC 2023; attr is an attribute")


# --- the detector with either walk ------------------------------------------------------------------

BASE_MS = 1_700_000_000_000


def _event(ts: int, user: str, ip: str | None, outcome: str) -> dict[str, Any]:
    event: dict[str, Any] = {"timestamp": BASE_MS + ts * 1000, "source": "sshd",
                             "evt": {"name": "authentication", "outcome": outcome}, "usr": {"name": user}}
    if ip is not None:
        event["network"] = {"client": {"ip": ip}}
    return event


@st.composite
def detector_rules(draw: st.DrawFn) -> dict[str, Any]:
    group = draw(st.sampled_from([[], ["@network.client.ip"], ["@usr.name", "@network.client.ip"]]))
    optional = draw(st.booleans())
    keep_alive = draw(st.sampled_from([0, 5, 60]))
    max_duration = draw(st.sampled_from([0, keep_alive, 10 + keep_alive, 900]))
    if draw(st.booleans()):
        return {"id": "nv", "name": "new value", "message": "new {{@usr.name}} for {{@network.client.ip}}",
                "queries": [{"query": "source:sshd", "groupByFields": group, "aggregation": "new_value",
                             "metrics": ["@usr.name"], "hasOptionalGroupByFields": optional},
                            {"query": "@evt.outcome:success", "groupByFields": group, "aggregation": "new_value",
                             "metrics": ["@evt.outcome"]}],
                "cases": [{"status": "medium"}],
                "options": {"detectionMethod": "new_value", "keepAlive": keep_alive, "maxSignalDuration": max_duration,
                            "newValueOptions": {"learningDuration": 0, "forgetAfter": 0.0001}}}
    return {"id": "th", "name": "threshold", "message": "{{@usr.name}} from {{@network.client.ip}}",
            "queries": [{"query": "@evt.outcome:failure", "groupByFields": group, "aggregation": "count",
                         "hasOptionalGroupByFields": optional},
                        {"query": "source:sshd", "groupByFields": group, "aggregation": "cardinality",
                         "distinctFields": ["@usr.name"]}],
            "cases": [{"status": "high", "condition": "a >= 3"}, {"status": "low", "condition": "a > 0 || b > 1"}],
            "options": {"evaluationWindow": draw(st.sampled_from([0, 5, 60])),
                        "keepAlive": keep_alive, "maxSignalDuration": max_duration}}


@settings(max_examples=max(EXAMPLES // 4, 10), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.builds(_event, st.integers(0, 120), st.sampled_from(["root", "alice", "bob"]),
                          st.sampled_from(["10.0.0.1", "10.0.0.2", None]), st.sampled_from(["success", "failure"])),
                max_size=40),
       detector_rules())
def test_detector_gives_the_same_signals_with_either_walk_and_as_the_reference_engine(events: list[dict[str, Any]], raw_rule: dict[str, Any]) -> None:
    rule = rule_from_dict(raw_rule, file="<random>")
    assert rule is not None
    fast = Engine([rule]).scan_events(events)
    with patch.object(detector, "signal_spans", signal_spans_reference):
        slow = Engine([rule]).scan_events(events)
    assert [s.to_json() for s in fast] == [s.to_json() for s in slow]
    # Optional group-by values (missing IPs) are one group of their own in the slow engine too.
    assert sorted(s.key() for s in fast) == sorted(s.key() for s in reference_detect([rule], events))
