"""Sequence rules (Datadog's ``sequence_detection``; ``secmon.detect.sequence``) against their
plain-Python twin, the rule checks, and Datadog's documented example over the real Stratus run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.detect.engine import Engine
from secmon.detect.reference import reference_detect
from secmon.rules.loader import load_rules, rule_from_dict, validate_rules

BASE = 1_700_000_000_000
STEPS = ("recon", "access", "impact")


def rule(windows: tuple[int, int, int] = (300, 300, 300), transitions: tuple[int, int] = (600, 600),
         conditions: tuple[str, str, str] = ("recon_q > 2", "access_q > 0", "impact_q > 0"),
         cases: tuple[tuple[str, str], ...] = (("high", "impact > 0"),), keep_alive: int = 3600) -> Any:
    return rule_from_dict({
        "id": "seq", "name": "recon, access, impact",
        "queries": [{"name": f"{step}_q", "query": f"@evt.name:{step}", "groupByFields": ["@usr.name"], "aggregation": "count"}
                    for step in STEPS],
        "cases": [{"status": status, "condition": condition} for status, condition in cases],
        "options": {"detectionMethod": "sequence_detection", "keepAlive": keep_alive, "maxSignalDuration": 86400,
                    "sequenceDetectionOptions": {
                        "steps": [{"name": step, "condition": condition, "evaluationWindow": window}
                                  for step, condition, window in zip(STEPS, conditions, windows)],
                        "stepTransitions": [{"parent": a, "child": b, "evaluationWindow": w}
                                            for (a, b), w in zip(zip(STEPS, STEPS[1:]), transitions)]}},
        "message": "{{@usr.name}}: {{rule_name}} ({{events_matched}} events)",
    })


def event(user: str, seconds: int, step: str, n: int = 0) -> dict[str, Any]:
    return {"timestamp": BASE + seconds * 1000, "usr": {"name": user}, "evt": {"name": step}, "n": n}


def keys(signals: list[Any]) -> list[Any]:
    return sorted(s.key() for s in signals)


def test_the_steps_must_come_in_order_within_their_windows() -> None:
    recon = [event("eve", s, "recon", s) for s in (0, 10, 20)]
    in_order = recon + [event("eve", 100, "access"), event("eve", 200, "impact")]
    (signal,) = Engine([rule()]).scan_events(in_order)
    assert signal.group_by == {"@usr.name": "eve"} and signal.severity == "high" and signal.event_count == 5
    assert signal.message == "eve: recon, access, impact (5 events)"
    assert Engine([rule()]).scan_events(recon + [event("eve", 100, "impact"), event("eve", 200, "access")]) == []  # out of order
    assert Engine([rule()]).scan_events(recon + [event("eve", 100, "access"), event("eve", 900, "impact")]) == []  # too late
    assert Engine([rule()]).scan_events(recon[:2] + [event("eve", 100, "access"), event("eve", 200, "impact")]) == []  # too few
    # Steps in the same second (CloudTrail's resolution) are in order: the logs cannot say otherwise.
    assert len(Engine([rule()]).scan_events(recon + [event("eve", 20, "access"), event("eve", 20, "impact")])) == 1
    assert Engine([rule()]).scan_events(recon + [event("bob", 100, "access"), event("eve", 200, "impact")]) == []  # another user


def test_rules_that_are_no_sequence_are_named(tmp_path: Path) -> None:
    good = rule().to_datadog()
    options = good["options"]
    bodies = {
        "no-options": {**good, "options": {k: v for k, v in options.items() if k != "sequenceDetectionOptions"}},
        "skipping": {**good, "options": {**options, "sequenceDetectionOptions": {
            **options["sequenceDetectionOptions"], "stepTransitions": [{"parent": "recon", "child": "impact", "evaluationWindow": 60}]}}},
        "unknown-query": {**good, "options": {**options, "sequenceDetectionOptions": {
            **options["sequenceDetectionOptions"], "steps": [{**options["sequenceDetectionOptions"]["steps"][0], "condition": "nope > 0"},
                                                            *options["sequenceDetectionOptions"]["steps"][1:]]}}},
        "case-on-query": {**good, "cases": [{"status": "high", "condition": "impact_q > 0"}]},
        "grouped-apart": {**good, "queries": [*good["queries"][:2], {**good["queries"][2], "groupByFields": ["@host"]}]},
        "distinct": {**good, "queries": [*good["queries"][:2], {**good["queries"][2], "aggregation": "cardinality", "distinctFields": ["@x"]}]},
    }
    for name, body in bodies.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(body))
    fields = {name: [e.field for e in validate_rules(tmp_path / f"{name}.json")] for name in bodies}
    assert fields == {
        "no-options": ["options.sequenceDetectionOptions"],
        "skipping": ["options.sequenceDetectionOptions.stepTransitions"],
        "unknown-query": ["options.sequenceDetectionOptions.steps[0].condition"],
        "case-on-query": ["cases[0].condition"],
        "grouped-apart": ["queries[2].groupByFields"],
        "distinct": ["queries[2].aggregation"],
    }


@st.composite
def attacks(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [event(draw(st.sampled_from(["a", "b"])), draw(st.integers(0, 1800)), draw(st.sampled_from(STEPS)), n)
            for n in range(draw(st.integers(0, 40)))]


@settings(max_examples=int(os.environ.get("SECMON_FUZZ", 300)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attacks(), st.tuples(*[st.sampled_from([0, 60, 300]) for _ in range(3)]), st.tuples(*[st.sampled_from([0, 30, 120, 600])] * 2),
       st.tuples(st.sampled_from(["recon_q > 0", "recon_q > 2", "recon_q >= 1 && access_q == 0"]),
                 st.sampled_from(["access_q > 0", "access_q + recon_q > 3"]), st.sampled_from(["impact_q > 0", "impact_q > 1"])),
       st.sampled_from([(("high", "impact > 0"),), (("critical", "impact > 0 && recon > 0"), ("medium", "")), (("low", ""),)]),
       st.sampled_from([0, 300, 3600]))
def test_engine_matches_the_reference(events: list[dict[str, Any]], windows: Any, transitions: Any, conditions: Any,
                                      cases: Any, keep_alive: int) -> None:
    rules = [rule(windows, transitions, conditions, cases, keep_alive)]
    fast, slow = Engine(rules).scan_events(events), reference_detect(rules, events)
    assert sorted((s.key(), s.message) for s in fast) == sorted((s.key(), s.message) for s in slow)


DATADOG_EXAMPLE = Path(__file__).with_name("sequence_rule.json")
STRATUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "cloudtrail-invictus" / "events.jsonl"


@pytest.mark.skipif(not STRATUS.exists(), reason=f"dataset {STRATUS} is absent")
def test_datadogs_documented_example_over_the_stratus_run() -> None:
    """Datadog's example rule (user created, admin policy attached, impact, from one IP) finds the
    Stratus run's persistence chain from 192.168.10.20, whichever way the events are read."""
    log = STRATUS
    rules = load_rules(DATADOG_EXAMPLE)
    results = [Engine(rules, **kwargs).detect([log]).signals for kwargs in ({}, {"prefilter": False}, {"native_flags": False})]
    assert [keys(r) for r in results[1:]] == [keys(results[0])] * 2
    (signal,) = results[0]
    assert signal.group_by == {"@network.client.ip": "192.168.10.20"} and signal.severity == "info"
    from secmon.ingest import parse_events

    assert keys(reference_detect(rules, parse_events([log]))) == keys(results[0])
