"""Case conditions: the Polars form agrees with the obvious evaluator."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmon.rules.condition import ConditionError, parse_condition

CASES = [
    ("a > 5", {"a": 6}, True),
    ("a > 5", {"a": 5}, False),
    ("a >= 5", {"a": 5}, True),
    ("a > 5 && b > 0", {"a": 6, "b": 0}, False),
    ("a > 5 && b > 0", {"a": 6, "b": 1}, True),
    ("a > 5 || b > 0", {"a": 0, "b": 1}, True),
    ("a + b >= 10", {"a": 4, "b": 6}, True),
    ("(a > 1 || b > 1) && c == 0", {"a": 2, "b": 0, "c": 0}, True),
    ("a > 1 || b > 1 && c == 0", {"a": 2, "b": 0, "c": 1}, True),  # && binds tighter
    ("!(a > 1)", {"a": 0}, True),
    ("a / b > 2", {"a": 5, "b": 0}, False),  # division by zero is 0, never an error
    ("-a < 0", {"a": 1}, True),
    ("", {}, True),
    ("a != 3", {"a": 3}, False),
]


@pytest.mark.parametrize(("text", "values", "expected"), CASES)
def test_condition_table(text: str, values: dict[str, float], expected: bool) -> None:
    condition = parse_condition(text)
    assert condition.evaluate(values) is expected
    frame = pl.DataFrame({name: [float(v)] for name, v in values.items()} or {"_": [0]})
    assert frame.select(condition.to_polars()).item() is expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("a >", "ends early"), ("a > 5 )", "unexpected ')'"), ("a $ 5", "unexpected character '$'"), ("(a > 1", "')'"),
     ("a > 5 THEN b > 0", "THEN (one query's case, then another's) is not supported by secmon yet")],
)
def test_bad_conditions_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(ConditionError, match=None) as info:
        parse_condition(text)
    assert fragment in str(info.value)


def test_unknown_query_names_are_listed() -> None:
    with pytest.raises(ConditionError, match="unknown query c; the rule's queries are a, b"):
        parse_condition("a > 1 && c > 0", ("a", "b"))


_names = st.sampled_from(["a", "b", "c"])
_atoms = st.one_of(_names, st.integers(0, 20).map(str))
_comparisons = st.builds(lambda l, op, r: f"{l} {op} {r}", _atoms, st.sampled_from([">", ">=", "<", "<=", "==", "!="]), _atoms)
_conditions = st.recursive(
    _comparisons,
    lambda inner: st.builds(lambda l, op, r: f"({l}) {op} ({r})", inner, st.sampled_from(["&&", "||"]), inner)
    | inner.map(lambda c: f"!({c})"),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(_conditions, st.lists(st.fixed_dictionaries({n: st.integers(0, 20) for n in "abc"}), min_size=1, max_size=8))
def test_polars_form_matches_evaluator(text: str, rows: list[dict[str, int]]) -> None:
    condition = parse_condition(text)
    frame = pl.DataFrame(rows)
    fast = frame.with_columns(condition.to_polars().alias("x"))["x"].to_list()
    slow = [condition.evaluate(row) for row in rows]
    assert fast == slow
