"""The signal model: samples kept as JSON until read, timestamps in ISO 8601."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from secmon.signals.model import SampleJSON, Signal, iso_ms, iso_ms_many, signals_json, signals_to_frame


def _containers_of(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4), _containers_of,
                           max_leaves=6)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=3), json_values, max_size=3), max_size=4))
def test_samples_given_as_json_read_as_the_same_dicts(samples: list[dict[str, Any]]) -> None:
    texts = SampleJSON(orjson.dumps(sample) for sample in samples)
    lazy = Signal("r", "rule", "high", "c", {"@ip": "1.2.3.4"}, 1, 2, 3, texts)
    eager = Signal("r", "rule", "high", "c", {"@ip": "1.2.3.4"}, 1, 2, 3, samples)
    assert pickle.loads(pickle.dumps(lazy)) == eager  # pickled before it was read: still JSON inside
    assert lazy.to_json() == eager.to_json() and lazy == eager
    assert lazy.samples == samples and lazy.samples is lazy.samples  # parsed once
    assert dataclasses.replace(lazy, status="archived").samples == samples
    assert signals_to_frame([lazy]).equals(signals_to_frame([eager]))
    assert Signal("r", "rule", "high", "c", {}, 1, 2, 3).samples == []  # the default: none, a list of its own
    lazy.samples = ({"a": 1},)  # type: ignore[assignment]
    assert lazy.samples == [{"a": 1}]



def test_to_json_parses_samples_without_keeping_them_parsed() -> None:
    signal = Signal("r", "rule", "high", "c", {}, 1, 2, 3, SampleJSON([b'{"a": 1}']))
    assert signal.to_json()["samples"] == [{"a": 1}]
    assert type(signal.__dict__["_samples"]) is SampleJSON  # still JSON: output reads each signal once
    signal.samples.append({"b": 2})  # read through the attribute, they are parsed once and kept
    assert signal.to_json()["samples"] == [{"a": 1}, {"b": 2}]


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@settings(max_examples=2000)
@given(st.integers(int((datetime(1, 1, 1, tzinfo=timezone.utc) - EPOCH).total_seconds() * 1000),
                   int((datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc) - EPOCH).total_seconds() * 1000)))
def test_iso_ms_is_datetime_isoformat(epoch_ms: int) -> None:
    expected = (EPOCH + timedelta(milliseconds=epoch_ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso_ms(epoch_ms) == expected
    assert iso_ms_many([epoch_ms, 0]) == [expected, "1970-01-01T00:00:00.000Z"]


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(-62135596800000, 253402300799999), st.integers(-62135596800000, 253402300799999)),
                max_size=5))
def test_signals_json_is_to_json_of_each(stamps: list[tuple[int, int]]) -> None:
    signals = [Signal("r", "rule", "low", "c", {"k": i}, first, last, 1, SampleJSON([b'{"i": %d}' % i]))
               for i, (first, last) in enumerate(stamps)]
    assert signals_json(signals) == [s.to_json() for s in signals]
