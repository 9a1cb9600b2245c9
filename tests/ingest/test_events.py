"""to_frame (the event table) against the row-by-row standard-library twin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from secmon.ingest import parse_events, to_frame
from secmon.ingest.events import to_frame_naive

KEYS = ["a", "b", "evt", "name", "ip", "a.b"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.sampled_from(KEYS), children, max_size=3)),
    max_leaves=8,
)
events = st.lists(
    st.dictionaries(st.sampled_from(KEYS), values, max_size=4).map(
        lambda d: d | {"timestamp": abs(hash(str(d))) % 10**12}
    ),
    max_size=12,
)
PATHS = ["timestamp", "a", "a.b", "evt.name", "b", "ip", "a.b.a", "@name", "missing.path"]


@settings(max_examples=100, deadline=None)
@given(events)
def test_to_frame_matches_naive(batch: list[dict[str, Any]]) -> None:
    assert_frame_equal(to_frame(batch, PATHS), to_frame_naive(batch, PATHS))


def test_contract_dtypes_and_stringification() -> None:
    batch = [
        {"timestamp": 1, "http": {"status_code": 404}, "x": 1.5, "flag": True, "obj": {"k": [1, "a"]}, "tags": ["a:b"]},
        {"timestamp": 2, "http": {"status_code": "500"}, "x": None, "tags": "c:d", "network.client.ip": "1.2.3.4"},
    ]
    frame = to_frame(batch, ["timestamp", "@http.status_code", "x", "flag", "obj", "tags", "network.client.ip", "nope"])
    assert frame.schema == pl.Schema(
        {"timestamp": pl.Int64, "http.status_code": pl.String, "x": pl.String, "flag": pl.String, "obj": pl.String,
         "tags": pl.List(pl.String), "network.client.ip": pl.String, "nope": pl.String}
    )
    assert frame.to_dicts() == [
        {"timestamp": 1, "http.status_code": "404", "x": "1.5", "flag": "true", "obj": '{"k":[1,"a"]}',
         "tags": ["a:b"], "network.client.ip": None, "nope": None},
        {"timestamp": 2, "http.status_code": "500", "x": None, "flag": None, "obj": None, "tags": ["c:d"],
         "network.client.ip": "1.2.3.4", "nope": None},
    ]


def test_empty_inputs() -> None:
    assert to_frame([], ["timestamp", "a"]).schema == pl.Schema({"timestamp": pl.Int64, "a": pl.String})
    assert to_frame([{"timestamp": 1}], []).shape == (0, 0)


def test_real_events_agree(dataset: Callable[[str], Path]) -> None:
    batch = parse_events(dataset("cloudtrail-invictus/events.jsonl"))
    paths = ["timestamp", "evt.name", "evt.outcome", "network.client.ip", "usr.name", "userIdentity.arn",
             "requestParameters", "responseElements.credentials", "tlsDetails.tlsVersion", "resources"]
    fast = to_frame(batch, paths)
    assert_frame_equal(fast, to_frame_naive(batch, paths))
    assert fast.height == 2900
    assert fast["resources"].dtype == pl.List(pl.String)


@settings(max_examples=100, deadline=None)
@given(events)
def test_to_frame_through_arrays_matches_naive(batch: list[dict[str, Any]]) -> None:
    assert_frame_equal(to_frame(batch, PATHS), to_frame_naive(batch, PATHS))


def test_arrays_of_objects_are_traversed() -> None:
    batch = [
        {"timestamp": 1, "requestParameters": {"items": [{"userId": "012345678912"}, {"userId": "1"}, {"x": 2}]}},
        {"timestamp": 2, "requestParameters": {"items": {"userId": "solo"}}},
        {"timestamp": 3, "requestParameters": {"items": [{"group": "all"}]}},
    ]
    frame = to_frame(batch, ["requestParameters.items.userId"])
    assert frame.schema["requestParameters.items.userId"] == pl.List(pl.String)
    # An array whose objects lack the key gives an empty list: present, but no value matches.
    assert frame["requestParameters.items.userId"].to_list() == [["012345678912", "1"], ["solo"], []]
