"""compile_polars and the native flag program (the fast paths) against evaluate (the twin): tables of
cases and random differential tests."""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from query_strategies import ATTRIBUTE_PATHS, RESERVED_PATHS, TABLE_PATHS, TAG_KEYS, events, queries, to_frame

from secmon._core import FlagProgram, extract_fields
from secmon.query import native
from secmon.query import And, Cidr, Compare, Field, Not, Or, Query, Range, Term, attribute_paths, compile_polars, evaluate, parse
from secmon.query.ast import escape_pattern_literal, is_number
from secmon.query.reference import field_values

EVENT: dict[str, Any] = {
    "timestamp": 1_700_000_000_000,
    "host": "web-1",
    "service": "api",
    "source": "nginx",
    "status": "error",
    "message": "Failed password for ROOT from 10.1.2.3\nsecond line",
    "tags": ["env:prod", "team:sec", "version:42", "bare"],
    "usr": {"name": "John Doe"},
    "http": {"status_code": 404, "url": "/api/v1/users?id=7", "method": "GET"},
    "network": {"client": {"ip": "10.1.2.3"}},
    "evt": {"name": "authentication", "outcome": "failure"},
    "duration": 1.5,
    "ips": ["192.168.1.1", "2001:db8::7", "garbage"],
    "names": ["alice", "bob", None],
    "flag": True,
    "obj": {"k": 1},
    "empty": [],
    "dotted.key": "flat",
}

# query -> whether EVENT matches; each one line, each run on the twin and on the compiled expression.
CASES = [
    ("", True),
    ("*", True),
    ("password", True),
    ("PASSWORD", True),
    ("pass", True),  # free text is a substring (a superset of Datadog's word match)
    ('"failed password"', True),
    ('"password failed"', False),
    ('"password   for root"', True),
    ('"root from 10"', True),
    ('"root from 10.1"', True),
    ('"for root from 10.1.2.3 second"', True),  # the newline is a separator too
    ('"passwordfor"', False),
    ('"ed pass"', True),  # words need not be whole words of the message (substring semantics)
    ('"(failed)"', True),  # separators around the words do not count
    ("fail*root", True),
    ("fai?ed", True),
    ("root*second", True),  # wildcards cross the newline
    ("nothere", False),
    ("-nothere", True),
    ("source:nginx", True),
    ("source:NGINX", False),  # attribute search is case-sensitive
    ("source:ngi*", True),
    ("source:*inx", True),
    ("source:*gin*", True),
    ("source:n?inx", True),
    ("source:n*x", True),
    ("source:ng*ng", False),
    ("host:web-1", True),
    ("status:error", True),
    ("status:err", True),  # a status alias matches every spelling of its status
    ("status:ERROR", True),
    ("status:warn", False),
    ("status:erro*", True),
    ("status:Err*", False),  # wildcards compare the stored value as written
    ("service:api", True),
    ("env:prod", True),
    ("env:pro*", True),
    ("env:staging", False),
    ("env:*", True),
    ("owner:*", False),
    ("bare:*", False),
    ("team:sec env:prod", True),
    ("version:>40", True),
    ("version:[1 TO 41]", False),
    ("@usr.name:\"John Doe\"", True),
    ("@usr.name:John\\ Doe", True),
    ("@usr.name:John*", True),
    ("@usr.name:john*", False),
    ("@usr.name:John", False),
    ("@http.status_code:404", True),
    ("@http.status_code:[400 TO 499]", True),
    ("@http.status_code:{404 TO 499]", False),
    ("@http.status_code:[400 TO 404}", False),
    ("@http.status_code:>=404", True),
    ("@http.status_code:>404", False),
    ("@http.status_code:<1e3", True),
    ("@http.status_code:[* TO *]", True),
    ("@http.url:\\/api\\/v1*", True),
    ("@http.url:/api/v1/*", True),
    ("@http.url:*.png", False),
    ("-@http.url:*.png", True),
    ("@http.url:*id=7", True),
    ("@duration:>1", True),
    ("@duration:1.5", True),
    ("@duration:<=1.5", True),
    ("@duration:<1.5", False),
    ("@evt.name:(authentication OR login)", True),
    ("@evt.name:(login OR logout)", False),
    ("@evt.outcome:failure @evt.name:authentication", True),
    ("@missing:x", False),
    ("-@missing:x", True),
    ("@missing:*", False),
    ("-@missing:*", True),
    ("@missing:>1", False),
    ("-@missing:>1", True),
    ("@usr.name:>1", False),  # not a number: never matches a comparison
    ("-@usr.name:>1", True),
    ("@names:bob", True),
    ("@names:carol", False),
    ("-@names:bob", False),  # an array matches when any item does, so its negation is false
    ("@names:*", True),
    ("@empty:*", False),
    ("@flag:true", True),
    ("@obj:*", True),
    ('@obj:"{\\"k\\":1}"', True),
    ("@dotted.key:flat", True),
    ("CIDR(@network.client.ip, 10.0.0.0/8)", True),
    ("CIDR(@network.client.ip, 192.168.0.0/16, 172.16.0.0/12)", False),
    ("CIDR(@ips, 2001:db8::/32)", True),
    ("CIDR(@ips, 192.168.1.0/24)", True),
    ("CIDR(@ips, 10.0.0.0/8)", False),
    ("CIDR(@usr.name, 0.0.0.0/0)", False),
    ("CIDR(@missing, 0.0.0.0/0)", False),
    ("-CIDR(@missing, 0.0.0.0/0)", True),
    ("timestamp:>1600000000000", True),
    ("timestamp:[0 TO 1600000000000]", False),
    ("timestamp:1700000000000", True),
    ("a OR source:nginx", True),
    ("source:nginx -env:prod", False),
    ("NOT (source:apache OR host:db-*)", True),
    ("source:nginx AND (status:warn OR status:error)", True),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_case_table(text: str, expected: bool) -> None:
    query = parse(text)
    assert evaluate(query, EVENT) is expected
    paths = sorted(attribute_paths(query) | {"message"})
    frame = to_frame([EVENT, {}], paths)
    matched = frame.select(compile_polars(query, frame.schema).alias("m"))["m"].to_list()
    # The second, empty event matches exactly the queries that hold for an event with nothing in it.
    assert matched == [expected, evaluate(query, {})]
    _compare_native(query, [EVENT, {}], paths)


@pytest.mark.parametrize(
    ("stored", "query", "expected"),
    [
        ("warning", "status:warn", True),
        ("WARN", "status:warning", True),
        ("warning", "status:warning", True),
        ("error", "status:warn", False),
        ("emergency", "status:(emerg OR fatal)", True),
        ("info", "status:informational", True),
        ("ok", "status:success", True),
        ("custom", "status:custom", True),
        ("Custom", "status:custom", False),  # unknown statuses compare as written
    ],
)
def test_status_aliases(stored: str, query: str, expected: bool) -> None:
    parsed = parse(query)
    assert evaluate(parsed, {"status": stored}) is expected
    frame = to_frame([{"status": stored}], ["status"])
    assert frame.select(compile_polars(parsed, frame.schema).alias("m"))["m"].to_list() == [expected]
    _compare_native(parsed, [{"status": stored}], ["status"])


def test_status_spellings_agree_with_ingest_normalisation() -> None:
    json_events = pytest.importorskip("secmon.ingest.json_events", reason="the ingest status remapper is not there")
    from secmon.query.ast import STATUS_SPELLINGS

    for status, spellings in STATUS_SPELLINGS.items():
        for spelling in spellings:
            assert json_events.normalize_status(spelling) == status, spelling


def test_a_rule_with_many_terms_compiles_flat() -> None:
    text = " OR ".join(f"@usr.name:user{i}" for i in range(2_000))
    frame = pl.DataFrame({"usr.name": ["user1999", "nobody"]})
    assert frame.select(compile_polars(parse(text), frame.schema).alias("m"))["m"].to_list() == [True, False]


def test_value_lists_agree_with_evaluate() -> None:
    names = [f"Name{i}" for i in range(300)]
    text = "@evt.name:(" + " OR ".join(names) + ') OR @evt.name:"x y" OR @arr:(a OR b) OR status:(warn OR custom)'
    rows: list[dict[str, Any]] = [
        {"evt": {"name": "Name7"}},
        {"evt": {"name": "name7"}},
        {"evt": {"name": "x y"}},
        {"arr": ["c", "b"]},
        {"arr": ["c"]},
        {"status": "warning"},
        {"status": "custom"},
        {},
    ]
    query = parse(text)
    frame = to_frame(rows, sorted(attribute_paths(query)))
    fast = frame.select(compile_polars(query, frame.schema).alias("m"))["m"].to_list()
    assert fast == [evaluate(query, r) for r in rows] == [True, False, True, True, False, True, True, False]


def test_missing_column_is_all_null() -> None:
    frame = pl.DataFrame({"message": ["x", None]})
    for text, expected in [("@usr.name:x", [False, False]), ("-@usr.name:x", [True, True]), ("-@usr.name:*", [True, True])]:
        result = frame.select(compile_polars(parse(text), frame.schema).alias("m"))["m"].to_list()
        assert result == expected, text


def test_expression_is_never_null() -> None:
    frame = pl.DataFrame({"message": [None, "a"], "a": pl.Series([None, ["1", None]], dtype=pl.List(pl.String))})
    for text in ["x", "-x", "@a:1", "-@a:1", "@a:>0", "-@a:>0", "@a:*", "CIDR(@a, 0.0.0.0/0)", "-CIDR(@a, ::/0)"]:
        result = frame.select(compile_polars(parse(text), frame.schema).alias("m"))["m"]
        assert result.null_count() == 0, text


def test_schema_dtype_classes_and_null_columns() -> None:
    frame = pl.DataFrame({"a": ["x", None], "n": pl.Series([None, None], dtype=pl.Null)})
    schema = {"a": pl.String, "n": pl.Null}
    assert frame.select(compile_polars(parse("@a:x"), schema))["a"].to_list() == [True, False]
    assert frame.select(compile_polars(parse("-@n:*"), schema).alias("m"))["m"].to_list() == [True, True]


def test_rejects_a_column_that_is_not_an_event_table_column() -> None:
    with pytest.raises(TypeError, match="column 'a' has dtype"):
        compile_polars(parse("@a:1"), {"a": pl.Float64})


def test_match_all_keeps_the_table_length() -> None:
    frame = pl.DataFrame({"message": ["a", "b", "c"]})
    assert frame.select(compile_polars(parse(""), frame.schema).alias("m")).height == 3
    assert frame.filter(compile_polars(parse("-*"), frame.schema)).height == 0


def test_cidr_on_a_large_column_parses_each_distinct_value_once() -> None:
    ips = [f"10.0.{i % 7}.{i % 5}" for i in range(20_000)] + ["8.8.8.8", "bad", None]
    frame = pl.DataFrame({"ip": ips})
    mask = frame.select(compile_polars(parse("CIDR(@ip, 10.0.0.0/8)"), frame.schema).alias("m"))["m"]
    assert mask.sum() == 20_000


def _compare(query: Query, rows: list[dict[str, Any]], drop: list[str]) -> None:
    paths = [p for p in TABLE_PATHS if p not in drop]
    frame = to_frame(rows, paths)
    fast = frame.select(compile_polars(query, frame.schema).alias("m"))["m"]
    assert fast.null_count() == 0
    slow = [evaluate(query, {k: v for k, v in row.items() if k not in drop}) for row in rows]
    assert fast.to_list() == slow, f"query {query} rows {rows}"
    _compare_native(query, [{k: v for k, v in row.items() if k not in drop} for row in rows], paths)


def _compare_native(query: Query, rows: list[dict[str, Any]], paths: list[str]) -> None:
    """The native flag program over the extractor's table of the rows as NDJSON, against the
    twin on the same rows read back from JSON (the extractor's contract)."""
    try:
        predicate = native.lower(query)
        lines = [orjson.dumps(row) for row in rows]
    except (native.NotNative, TypeError):  # IPv6 CIDR; an integer JSON cannot hold
        return
    batch = extract_fields(b"\n".join(lines), paths, flags=FlagProgram([("m", predicate)]))
    got = pl.Series(batch["m"]).to_list()
    expected = [evaluate(query, orjson.loads(line)) for line in lines]
    assert got == expected, f"native: query {query} predicate {predicate} rows {rows}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(queries, st.lists(events(), min_size=1, max_size=8), st.lists(st.sampled_from(["duration", "tags", "message"]), max_size=1))
def test_compiled_expression_agrees_with_evaluate(query: Query, rows: list[dict[str, Any]], drop: list[str]) -> None:
    _compare(query, rows, drop)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=6), st.data())
def test_rendered_query_means_the_same(rows: list[dict[str, Any]], data: st.DataObject) -> None:
    from secmon.query import to_query

    query = data.draw(queries)
    reparsed = parse(to_query(query))
    assert [evaluate(query, r) for r in rows] == [evaluate(reparsed, r) for r in rows]


@st.composite
def events_and_derived_query(draw: st.DrawFn) -> tuple[list[dict[str, Any]], Query]:
    """Events, and a query built from one of their values: near misses are where fast paths go wrong."""
    rows = draw(st.lists(events(), min_size=1, max_size=6))
    row = draw(st.sampled_from(rows))
    candidates: list[tuple[Field | None, str]] = []
    for path in [*ATTRIBUTE_PATHS, *RESERVED_PATHS, "timestamp"]:
        candidates += [(Field(path), v) for v in field_values(row, Field(path))]
    for key in TAG_KEYS:
        candidates += [(Field(key, tag=True), v) for v in field_values(row, Field(key, tag=True))]
    candidates += [(None, m) for m in field_values(row, Field("message"))]
    if not candidates:
        return rows, draw(queries)
    field, value = draw(st.sampled_from(candidates))
    shape = draw(st.sampled_from(["exact", "wildcard", "wildcard", "number", "cidr"]))
    query: Query
    if shape == "exact" or (shape == "cidr" and field is None):
        kind = "exact" if value else "phrase"
        if field is None:
            i = draw(st.integers(0, len(value)))
            value = value[i : draw(st.integers(i, len(value)))]
            if draw(st.booleans()):  # a phrase whose separators differ from the message's
                value = "".join(draw(st.sampled_from([" ", "-", ", ", "/", "  "])) if ch.isascii() and not ch.isalnum() else ch for ch in value)
                kind = "phrase"
        query = Term(field, value, kind if value else "phrase")
    elif shape == "wildcard":
        pieces: list[str] = []
        for ch in value:
            edit = draw(st.sampled_from(["keep", "keep", "any", "star", "drop", "double"]))
            literal = escape_pattern_literal(ch)
            pieces.append({"keep": literal, "any": "?", "star": "*" + literal, "drop": "", "double": literal * 2}[edit])
            if draw(st.integers(0, 5)) == 0:
                pieces.append("*")
        pieces.insert(draw(st.integers(0, len(pieces))), draw(st.sampled_from(["*", "?"])))
        pattern = "".join(pieces)
        query = Term(field, pattern + "?" if set(pattern) == {"*"} else pattern, "wildcard")
    elif shape == "number":
        if field is None:
            return rows, draw(queries)
        try:
            center = float(value)
        except ValueError:
            center = 0.0
        if center != center:  # NaN
            center = 0.0
        bounds = [repr(center + d) for d in (-1.0, 0.0, 1.0)] if abs(center) < 1e300 else ["1e300"]
        bounds = [b.replace("inf", "1e999") for b in bounds if is_number(b.replace("inf", "1e999"))] or ["0"]
        if draw(st.booleans()):
            query = Compare(field, draw(st.sampled_from([">", ">=", "<", "<="])), draw(st.sampled_from(bounds)))
        else:
            low, high = sorted(draw(st.lists(st.sampled_from(bounds), min_size=2, max_size=2)), key=float)
            query = Range(field, low, high, draw(st.booleans()), draw(st.booleans()))
    else:
        try:
            address = ipaddress.ip_address(value)
            prefix = draw(st.integers(0, address.max_prefixlen))
            network = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
        except ValueError:
            network = draw(st.sampled_from(["10.0.0.0/8", "::/0"]))
        assert field is not None
        query = Cidr(Field(field.path) if field.tag else field, (network,))
    combine = draw(st.integers(0, 4))
    if combine == 1:
        query = Not(query)
    elif combine == 2:
        query = Or((query, draw(queries)))
    elif combine == 3:
        query = And((query, draw(queries)))
    return rows, query


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events_and_derived_query())
@example(([{"usr": {"name": "aba"}}], Term(Field("usr.name"), "ab*ba", "wildcard")))  # prefix and suffix overlap
@example(([{"message": "line\nbreak"}], Term(None, "line?break", "wildcard")))  # wildcards cross newlines
@example(([{"message": "Hello, world"}, {"message": "hello world"}, {"message": "helloworld"}], Term(None, "hello-world", "phrase")))
@example(([{"duration": "Infinity"}, {"duration": "+5"}, {"duration": "1."}], Compare(Field("duration"), ">", "0")))
def test_queries_built_from_event_values_agree(pair: tuple[list[dict[str, Any]], Query]) -> None:
    rows, query = pair
    _compare(query, rows, [])


ODD_ADDRESSES = [
    "10.0.0.1", "010.0.0.1", " 10.0.0.1", "10.0.0.1 ", "10.0.0.256", "10.0.0", "10.0.0.1/8", "1e1.0.0.1",
    "\uff11\uff10.0.0.1", "::ffff:10.0.0.1", "::ffff:a00:1", "2001:db8::1", "2001:DB8::1", "fe80::1%eth0", "",
    "192.168.1.255", "192.168.2.0", "0.0.0.0", "255.255.255.255", "10.0.0.1.", ".10.0.0.1", "10..0.1",
]


@pytest.mark.parametrize("networks", [
    ["10.0.0.0/8"], ["192.168.1.0/24", "2001:db8::/32"], ["0.0.0.0/0"], ["::/0"], ["::ffff:0:0/96"],
])
def test_cidr_agrees_with_ipaddress_on_odd_addresses(networks: list[str]) -> None:
    """CIDR goes through the native IpSet for IPv4 text: it must read addresses exactly as
    ``ipaddress`` does (the reference), including IPv4-mapped IPv6 text, which is not IPv4."""
    ast = parse(f"CIDR(@ip, {', '.join(networks)})")
    events = [{"ip": value} for value in ODD_ADDRESSES] + [{"ip": ODD_ADDRESSES[:3]}, {"ip": ODD_ADDRESSES[13:15]}]
    frame = to_frame(events, ["ip"])
    got = frame.select(compile_polars(ast, frame.schema)).to_series().to_list()
    assert got == [evaluate(ast, event) for event in events]
    _compare_native(ast, events, ["ip"])
