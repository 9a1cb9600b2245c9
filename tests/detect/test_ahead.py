"""computed_ahead: results in order, at most a budget (plus one result) computed ahead, errors
raised after the results before them, an early close stopping the worker."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmon.detect.ahead import computed_ahead


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=40), st.integers(0, 30))
def test_results_come_in_order_and_the_worker_stays_within_the_budget(weights: list[int], budget: int) -> None:
    held = 0
    most = 0
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal held, most
        with lock:
            held += weights[i]
            most = max(most, held)
        return i

    out = []
    for i in computed_ahead(map(work, range(len(weights))), lambda i: weights[i], budget, "test-ahead"):
        time.sleep(0.0005)  # a slow consumer: the worker runs as far ahead as it may
        out.append(i)
        with lock:
            held -= weights[i]
    assert out == list(range(len(weights)))
    # What the consumer holds, what waits, and the one the worker has just made.
    assert most <= budget + 2 * max(weights, default=0)


def test_an_error_comes_after_the_results_before_it() -> None:
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("item 3")
        return i

    got = []
    with pytest.raises(ValueError, match="item 3"):
        for i in computed_ahead(map(work, range(10)), lambda _: 1, 100, "test-ahead"):
            got.append(i)
    assert got == [0, 1, 2]


def test_closing_early_stops_the_worker() -> None:
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    results = computed_ahead(items(), lambda _: 1, 5, "test-ahead")
    assert next(results) == 0
    results.close()
    assert not any(t.name == "test-ahead" for t in threading.enumerate())
    assert len(made) <= 8  # the budget, the one in hand, the one being made
