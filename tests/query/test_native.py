"""The native flag program: its errors, the intel rule's predicate, and the rule set's flags
against the Polars flag expressions (their twin) on the extractor's table.

Random queries are compared in ``test_query_compile.py``; random rules and events end to end in
``tests/detect``."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import polars as pl
import pytest

from secmon import default_rules
from secmon._core import FlagProgram, extract_fields
from secmon.detect.compiled import compile_rules
from secmon.ingest import normalize_events
from secmon.intel import IndicatorSet, IntelRule
from secmon.query import native, parse
from secmon.rules.testing import load_test_cases

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "secmon" / "rules" / "default"


@pytest.mark.parametrize(("spec", "reason"), [
    ("x", "expected a (tag, ...) tuple"),
    (("bogus",), 'unknown predicate "bogus"'),
    (("any", "a", ("bogus",)), 'unknown test "bogus"'),
    (("any", "a", ("eq",)), '"eq" takes 1 arguments, got 0'),
    (("any", "a", ("regex", "(")), "bad regex"),
    (("and", "not a list"), '"and" takes a list of predicates'),
    (("any", "a", ("in_ipset", "not a set", True)), "expected an IpSet"),
    (("any", "a", ("number", "x", True, None, False)), "expected a float bound"),
])
def test_bad_programs_name_the_flag_and_the_reason(spec: object, reason: str) -> None:
    with pytest.raises(ValueError, match='flag "f": .*' + re.escape(reason)):
        FlagProgram([("f", spec)])


def test_or_of_one_leaf_is_the_leaf_and_cheap_tests_go_first() -> None:
    lowered = native.lower(parse('"needle" source:(nginx OR apache) @http.url:*x*y*'))
    assert lowered[0] == "and"
    first, *rest = lowered[1]
    assert first == ("any", "source", ("in", ["apache", "nginx"]))
    assert [child[2][0] for child in rest] == ["lower", "regex"] or [child[2][0] for child in rest] == ["regex", "lower"]


def test_ipv6_cidr_is_not_native() -> None:
    with pytest.raises(native.NotNative):
        native.lower(parse("CIDR(@ip, 10.0.0.0/8, ::1/128)"))


def _flags(rows: list[dict], paths: list[str], flags: list[tuple[str, tuple]]) -> dict[str, list[bool]]:
    batch = extract_fields(b"\n".join(orjson.dumps(r) for r in rows), paths, flags=FlagProgram(flags))
    return {name: pl.Series(batch[name]).to_list() for name, _ in flags}


def test_intel_rule_native_flag_equals_its_polars_flag() -> None:
    indicators = IndicatorSet()
    indicators.add_list("test", ["203.0.113.0/24", "2001:db8::/32"])
    rule = IntelRule.build(indicators, 0)
    rows = [
        {"network": {"client": {"ip": ip}}}
        for ip in ["203.0.113.9", "198.51.100.1", "2001:db8::7", "garbage", "", "::ffff:203.0.113.9"]
    ] + [{}, {"network": {"client": {"ip": ["198.51.100.1", "203.0.113.9"]}}},
         {"network": {"client": {"ip": ["203.0.113.9", "x"]}}}, {"network": {"client": {"ip": []}}}]
    paths = ["network.client.ip"]
    table = pl.DataFrame(extract_fields(b"\n".join(orjson.dumps(r) for r in rows), paths))
    polars = table.select(rule.flag_expressions(table.schema)).to_series().to_list()
    assert _flags(rows, paths, rule.native_flags())[rule.flag_column(0)] == polars
    assert polars[:3] == [True, False, True] and polars[7:9] == [False, True]


def test_default_rule_flags_equal_their_polars_twin_on_the_rule_test_events() -> None:
    compiled = compile_rules(default_rules())
    paths = sorted(set().union(*(c.attribute_paths for c in compiled)))
    rows = normalize_events([dict(event) for case in load_test_cases([DEFAULT_RULES]) for event in case.events])
    assert len(rows) > 100
    flags = [flag for c in compiled for flag in c.native_flags()]
    batch = pl.DataFrame(extract_fields(b"\n".join(orjson.dumps(r) for r in rows), paths, flags=FlagProgram(flags)))
    table = batch.select(paths)
    polars = table.select([e for c in compiled for e in c.flag_expressions(table.schema)])
    assert batch.select(polars.columns).equals(polars)
    # Not a comparison of all-false columns: most rules' positive test events are JSON events
    # (the rest are text lines).
    assert sum(polars[name].any() for name in polars.columns) > 0.6 * polars.width
