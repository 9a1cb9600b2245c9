"""Anomaly detection: a group's count in a bucket against its own recent past, in the engine
(Polars) and in the reference twin, and the rules that ask for it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.detect.engine import Engine
from secmon.detect.reference import reference_detect
from secmon.rules.loader import rule_from_dict, validate_rules

BUCKET_MS = 300_000
BASE = 1_700_000_000_000 - 1_700_000_000_000 % BUCKET_MS  # a bucket's start


def anomaly_rule(**options: Any) -> Any:
    return rule_from_dict({
        "id": "anomalous-failures", "name": "anomalous failures",
        "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@usr.name"], "aggregation": "count"}],
        "cases": [{"status": "medium", "condition": ""}],
        "options": {"detectionMethod": "anomaly_detection", "keepAlive": 3600, "maxSignalDuration": 86400,
                    "anomalyDetectionOptions": {"bucketDuration": 300, "learningDuration": 24, "detectionTolerance": 3, **options}},
        "message": "{{@usr.name}} failed far more than usual",
    })


def failures(user: str, bucket: int, count: int, rnd: random.Random) -> list[dict[str, Any]]:
    return [{"timestamp": BASE + bucket * BUCKET_MS + rnd.randrange(BUCKET_MS), "usr": {"name": user}, "evt": {"outcome": "failure"}}
            for _ in range(count)]


def steady_day(user: str, rnd: random.Random, buckets: int = 300) -> list[dict[str, Any]]:
    """One to three failures in each five minutes: a busy account's background."""
    return [e for b in range(buckets) for e in failures(user, b, rnd.randrange(1, 4), rnd)]


def keys(signals: list[Any]) -> list[tuple[Any, ...]]:
    return sorted(s.key() for s in signals)


def test_a_burst_after_a_steady_day_is_one_signal_and_the_steady_day_none() -> None:
    rnd = random.Random(1)
    events = steady_day("alice", rnd) + steady_day("bob", rnd) + failures("alice", 295, 40, rnd)
    rule = anomaly_rule()
    found = Engine([rule]).scan_events(events)
    assert [(s.group_by, s.severity) for s in found] == [({"@usr.name": "alice"}, "medium")]
    burst = [e["timestamp"] for e in events if e["usr"]["name"] == "alice" and BASE + 295 * BUCKET_MS <= e["timestamp"] < BASE + 296 * BUCKET_MS]
    assert found[0].event_count >= 40 and found[0].last_seen_ms == max(burst)
    assert found[0].message == "alice failed far more than usual"
    assert keys(found) == keys(reference_detect([rule], events))


def test_nothing_is_judged_while_learning_unless_a_learning_baseline_or_an_instant_baseline_says_so() -> None:
    rnd = random.Random(2)
    events = steady_day("alice", rnd, buckets=20) + failures("alice", 10, 30, rnd)  # a burst in the first hours
    assert Engine([anomaly_rule()]).scan_events(events) == []
    assert len(Engine([anomaly_rule(learningPeriodBaseline=10)]).scan_events(events)) == 1
    assert len(Engine([anomaly_rule(instantaneousBaseline=True)]).scan_events(events)) == 1
    # A higher tolerance asks for a bigger jump: 3 standard deviations pass where 5 would not.
    modest = steady_day("carol", rnd) + failures("carol", 295, 5, rnd)  # 6 to 8 where 1 to 3 is usual
    assert len(Engine([anomaly_rule(detectionTolerance=1)]).scan_events(modest)) == 1
    assert Engine([anomaly_rule(detectionTolerance=5)]).scan_events(modest) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 299_999), st.sampled_from(["alice", "bob"]), st.integers(1, 12)), max_size=40),
       st.sampled_from([60, 300]), st.sampled_from([0.5, 1, 2]), st.integers(1, 5), st.sampled_from([None, 0, 4]), st.booleans(),
       st.randoms(use_true_random=False))
def test_engine_and_reference_agree_on_random_anomalies(bursts: list[tuple[int, int, str, int]], bucket: int, learning: float,
                                                        tolerance: int, learning_baseline: int | None, instantaneous: bool,
                                                        rnd: random.Random) -> None:
    options: dict[str, Any] = {"bucketDuration": bucket, "learningDuration": learning, "detectionTolerance": tolerance,
                               "instantaneousBaseline": instantaneous}
    if learning_baseline is not None:
        options["learningPeriodBaseline"] = learning_baseline
    rule = anomaly_rule(**options)
    events = [{"timestamp": BASE + b * BUCKET_MS + offset, "usr": {"name": user}, "evt": {"outcome": "failure"}}
              for b, offset, user, count in bursts for _ in range(count)]
    expected = keys(reference_detect([rule], events))
    rnd.shuffle(events)
    assert keys(Engine([rule]).scan_events(events)) == expected
    assert keys(Engine([rule], native_flags=False, prefilter=False).scan_events(events)) == expected


def test_anomaly_rules_load_as_datadog_writes_them_and_bad_ones_are_named(tmp_path: Path) -> None:
    def errors(raw: dict[str, Any]) -> dict[str, str]:
        path = tmp_path / "rule.json"
        path.write_text(json.dumps(raw))
        return {e.field: e.reason for e in validate_rules(path)}

    good = anomaly_rule().to_datadog()
    assert errors(good) == {}
    bad = json.loads(json.dumps(good))
    bad["queries"][0]["aggregation"] = "cardinality"
    bad["queries"][0]["distinctFields"] = ["@network.client.ip"]
    bad["cases"][0]["condition"] = "a > 3"
    found = errors(bad)
    assert set(found) == {"queries", "cases[0].condition"}, found
    assert "no condition" in found["cases[0].condition"]
    good["options"]["anomalyDetectionOptions"]["detectionTolerance"] = 9  # Datadog's tolerance is 1 to 5
    assert set(errors(good)) == {"options.anomalyDetectionOptions.detectionTolerance"}
