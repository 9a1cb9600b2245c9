"""Impossible-travel rules (``secmon.detect.travel``) against their plain-Python twin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.detect import travel
from secmon.detect.engine import Engine
from secmon.detect.reference import _haversine_km, reference_detect
from secmon.rules.loader import rule_from_dict, validate_rules

BASE = 1_700_000_000_000
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
# (city, country, latitude, longitude)
CITIES = {
    "paris": ("Paris", "France", 48.8566, 2.3522),
    "london": ("London", "United Kingdom", 51.5074, -0.1278),
    "tokyo": ("Tokyo", "Japan", 35.6762, 139.6503),
    "new-york": ("New York", "United States", 40.7128, -74.0060),
    "lyon": ("Lyon", "France", 45.7640, 4.8357),
    "sydney": ("Sydney", "Australia", -33.8688, 151.2093),
}


def rule(baseline: bool = False, keep_alive: int = 3600) -> Any:
    return rule_from_dict({
        "id": "travel", "name": "Impossible travel", "type": "log_detection",
        "queries": [{"query": "source:okta @evt.name:user.session.start", "groupByFields": ["@usr.email"],
                     "aggregation": "geo_data", "metric": "@network.client.geoip"}],
        "cases": [{"status": "medium", "condition": ""}],
        "options": {"detectionMethod": "impossible_travel", "impossibleTravelOptions": {"baselineUserLocations": baseline},
                    "keepAlive": keep_alive, "maxSignalDuration": 86400},
        "message": "{{@usr.email}} signed in from {{@network.client.geoip.city.name}}: "
                   "{{@impossible_travel.triggering_locations.first_location.city}}, "
                   "{{@impossible_travel.triggering_locations.first_location.country}} to "
                   "{{@impossible_travel.triggering_locations.second_location.city}}",
    })


def login(user: str, at: int, city: str | None, *, eid: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = {"timestamp": BASE + at, "source": "okta", "evt": {"name": "user.session.start"},
                             "usr": {"email": user}, "n": eid}
    if city is not None:
        name, country, lat, lon = CITIES[city]
        event["network"] = {"client": {"geoip": {"city": {"name": name}, "country": {"name": country},
                                                 "location": {"latitude": lat, "longitude": lon}}}}
    return event


def keys(signals: list[Any]) -> list[Any]:
    return sorted(s.key() for s in signals)


def test_distances_agree_with_the_twin_and_known_values() -> None:
    paris, tokyo = CITIES["paris"], CITIES["tokyo"]
    vectorized = travel.distance_km(np.array([paris[2]]), np.array([paris[3]]), np.array([tokyo[2]]), np.array([tokyo[3]]))[0]
    assert vectorized == pytest.approx(_haversine_km(paris[2], paris[3], tokyo[2], tokyo[3]), rel=1e-12)
    assert 9_700 < vectorized < 9_750  # Paris-Tokyo is about 9,710 km
    assert travel.impossible(np.array([9_700.0]), np.array([30 * MINUTE]))[0]  # 19,400 km/h
    assert not travel.impossible(np.array([400.0]), np.array([0]))[0]  # too close, however fast
    assert not travel.impossible(np.array([5_800.0]), np.array([10 * HOUR]))[0]  # 580 km/h: a flight


def test_impossible_journeys_raise_one_signal_per_user() -> None:
    events = [
        login("alice@example.com", 0, "paris"), login("alice@example.com", 30 * MINUTE, "tokyo"),
        login("alice@example.com", 40 * MINUTE, "sydney"),  # Tokyo-Sydney in 10 minutes: same signal
        login("bob@example.com", 0, "paris"), login("bob@example.com", HOUR, "london"),  # 340 km
        login("carol@example.com", 0, "paris"), login("carol@example.com", 10 * HOUR, "new-york"),  # 580 km/h
        login("dave@example.com", 0, None), login("dave@example.com", MINUTE, "tokyo"),  # no earlier location
    ]
    signals = Engine([rule()]).scan_events(events)
    assert [(s.group_by, s.event_count, s.severity) for s in signals] == [({"@usr.email": "alice@example.com"}, 2, "medium")]
    assert signals[0].message == "alice@example.com signed in from Tokyo: Paris, France to Tokyo"
    assert keys(signals) == keys(reference_detect([rule()], events))
    assert [s.message for s in reference_detect([rule()], events)] == [signals[0].message]


def test_the_baseline_learns_a_day_of_locations_and_known_transitions() -> None:
    user = "erin@example.com"
    events = [
        login(user, 0, "paris"), login(user, HOUR, "tokyo"),  # learned: within the first day
        login(user, 2 * DAY, "paris"), login(user, 2 * DAY + HOUR, "tokyo"),  # a known place
        login(user, 3 * DAY, "paris"), login(user, 3 * DAY + HOUR, "new-york"),  # new and impossible
        login(user, 4 * DAY, "paris"), login(user, 4 * DAY + HOUR, "new-york"),  # known since yesterday
    ]
    with_baseline = Engine([rule(baseline=True, keep_alive=0)]).scan_events(events)
    assert [(s.first_seen_ms - BASE, s.event_count) for s in with_baseline] == [(3 * DAY + HOUR, 1)]
    assert keys(with_baseline) == keys(reference_detect([rule(baseline=True, keep_alive=0)], events))
    without = Engine([rule(keep_alive=0)]).scan_events(events)
    assert len(without) == 4 and keys(without) == keys(reference_detect([rule(keep_alive=0)], events))


def test_misused_geo_data_is_named(tmp_path: Path) -> None:
    good = rule().to_datadog()
    threshold = {**good, "options": {"detectionMethod": "threshold"}}
    two = {**good, "queries": [good["queries"][0], {**good["queries"][0], "name": "b"}]}
    count = {**good, "queries": [{**good["queries"][0], "aggregation": "count"}]}
    for name, body in (("threshold", threshold), ("two", two), ("count", count)):
        (tmp_path / f"{name}.json").write_text(json.dumps(body))
    fields = {name: [e.field for e in validate_rules(tmp_path / f"{name}.json")] for name in ("threshold", "two", "count")}
    assert fields == {"threshold": ["queries[0].aggregation"], "two": ["queries"], "count": ["queries[0].aggregation"]}


@st.composite
def journeys(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = []
    for n in range(draw(st.integers(0, 40))):
        user = draw(st.sampled_from(["a@x", "b@x", "c@x"]))
        # Days apart by more than the 30 days a place is remembered, minutes apart within a day.
        at = draw(st.sampled_from([0, 1, 2, 33, 34, 66, 67])) * DAY + draw(st.integers(0, 300)) * MINUTE
        city = draw(st.one_of(st.none(), st.sampled_from(sorted(CITIES))))
        events.append(login(user, at, city, eid=n))
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys(), st.booleans(), st.sampled_from([0, 600, 3600]))
def test_engine_matches_the_reference_on_random_journeys(events: list[dict[str, Any]], baseline: bool, keep_alive: int) -> None:
    rules = [rule(baseline, keep_alive)]
    fast, slow = Engine(rules).scan_events(events), reference_detect(rules, events)
    assert keys(fast) == keys(slow)
    assert sorted((s.key(), s.message) for s in fast) == sorted((s.key(), s.message) for s in slow)


@pytest.mark.parametrize("seed", [5, 6])
def test_files_give_the_same_signals_with_and_without_the_prefilter_and_native_flags(tmp_path: Path, seed: int) -> None:
    import random

    rnd = random.Random(seed)
    events = []
    for n in range(300):
        at = rnd.randrange(3 * DAY // MINUTE) * MINUTE
        city = "paris" if at < DAY else rnd.choice([*CITIES, None])  # the baseline learns Paris only
        events.append(login(rnd.choice(["a@x", "b@x"]), at, city, eid=n))
    log = tmp_path / "okta.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    rules = [rule(baseline=seed % 2 == 0, keep_alive=600)]
    expected = keys(reference_detect(rules, events))
    assert expected
    for kwargs in ({}, {"prefilter": False}, {"native_flags": False}, {"chunk_bytes": 4096}):
        assert keys(Engine(rules, **kwargs).detect([log]).signals) == expected, kwargs
