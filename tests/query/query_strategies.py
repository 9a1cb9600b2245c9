"""Hypothesis strategies for the query tests: random events, random query ASTs, adversarial values."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from hypothesis import strategies as st

from secmon.query import And, Cidr, Compare, Exists, Field, MatchAll, Not, Or, Query, Range, Term
from secmon.query.ast import escape_pattern_literal

try:  # the ingest helper's event table builder; a local equivalent until it lands
    from secmon.ingest.events import to_frame as _ingest_to_frame
except ImportError:  # pragma: no cover - depends on the ingest work being present
    _ingest_to_frame = None


# Values chosen to collide with each other and with query syntax: escapes, wildcards, unicode whose
# lower case is ASCII (Kelvin sign, dotted capital I), numbers written as text, IPs, JSON-ish text.
ADVERSARIAL_STRINGS = [
    "root",
    "admin",
    "Admin",
    "John Doe",
    "404",
    "500",
    "1.5",
    "-3",
    "1e+20",
    "007",
    "10.1.2.3",
    "192.168.0.1",
    "::1",
    "2001:db8::5",
    "::ffff:10.0.0.1",
    "not-an-ip",
    "",
    " ",
    "a*b",
    "a?b",
    "x\\y",
    'q"uote',
    "/api/v1/users",
    "ünïcödé",
    "\u212a",  # KELVIN SIGN, lowercases to ASCII k
    "\u212aelvin \u212a\u212a\u212a",
    "\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE, lowercases to i + combining dot
    "line\nbreak",
    "tab\there",
    "true",
    "AND",
    "OR",
    "NOT",
    "Failed password",
    "failed PASSWORD for root",
    "{\"k\":1}",
    "prod",
    "env:prod",
    "<script>&amp;",
    "Infinity",
    "100.0",
    "warn",
    "WARNING",
    "err",
]

# A few values both events and queries draw often, so that terms do match.
HOT_STRINGS = ["root", "Admin", "John Doe", "404", "1.5", "10.1.2.3", "::1", "prod", "a*b", "Failed password", "\u212a", "x\\y", "", "\u212aelvin"]

# Text a lenient number parser would accept but the event model's JSON number grammar does not.
NUMBER_LIKE_STRINGS = ["Infinity", "-Infinity", "NaN", "inf", "nan", " 12", "12 ", "+5", "1_000", "0x10", "1.", ".5", "-0", "1e5", "1E+2", "5e-1", "١٢"]

TEXT_ALPHABET = st.sampled_from(list("abcAB01 .-_:/*?\\\"'é\u212a\u0130\nK"))
small_text = st.text(TEXT_ALPHABET, max_size=8)
hot_strings = st.sampled_from(HOT_STRINGS)
string_values = st.one_of(hot_strings, hot_strings, st.sampled_from(ADVERSARIAL_STRINGS), small_text)
substrings = st.builds(lambda text, i, j: text[min(i, j) : max(i, j)], hot_strings, st.integers(0, 16), st.integers(0, 16))
query_strings = st.one_of(string_values, substrings)
numbers = st.one_of(
    st.integers(-10, 600),
    st.integers(-1000, 100_000),
    st.sampled_from([0.5, 1.5, 100.0, 1e20, -2.25, 1e-7, 404.0]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
scalars = st.one_of(string_values, numbers, st.booleans(), st.none())
json_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["k", "é", "a b"]), scalars, max_size=2),
)

ATTRIBUTE_PATHS = ["usr.name", "http.status_code", "network.client.ip", "evt.name", "arr", "obj", "duration"]
RESERVED_PATHS = ["message", "source", "host", "status", "service"]
TAG_KEYS = ["env", "team"]
TABLE_PATHS = [*ATTRIBUTE_PATHS, *RESERVED_PATHS, "tags", "timestamp"]

tags = st.lists(
    st.one_of(
        st.builds(lambda k, v: f"{k}:{v}", st.sampled_from(TAG_KEYS), string_values),
        st.sampled_from(["env", "envprod", "team:", "env:1e+20", "team:42", "team:404", "team:-3.5"]),
    ),
    max_size=3,
)


def _nest(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path.split(".")):
        out = {key: out}
    return out


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif key not in into:
            into[key] = value


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {}
    if draw(st.booleans()):
        event["timestamp"] = draw(st.integers(0, 2_000_000_000_000))
    for path in RESERVED_PATHS:
        if draw(st.integers(0, 3)):
            event[path] = draw(st.one_of(string_values, numbers) if path == "message" else string_values)
    if draw(st.booleans()):
        event["tags"] = draw(tags)
    for path in ATTRIBUTE_PATHS:
        choice = draw(st.integers(0, 4))
        if choice == 0:
            continue
        if path == "network.client.ip":
            value: Any = draw(st.one_of(st.sampled_from(["10.1.2.3", "192.168.0.1", "8.8.8.8", "::1", "2001:db8::5", "::ffff:10.0.0.1", "10.0.0.256", "", "010.1.2.3", "10.1.2.03", "1.2.3", "10.1.2.3.4", " 10.1.2.3", "\u0661.1.1.1", "0.0.0.0", "255.255.255.255", "fe80::1%eth0", "2001:DB8::1"]), st.lists(st.sampled_from(["10.9.9.9", "1.1.1.1", "fe80::1"]), max_size=2)))
        elif path in ("arr", "obj"):
            value = draw(json_values)
        elif path in ("http.status_code", "duration"):
            value = draw(st.one_of(numbers, string_values, st.sampled_from(NUMBER_LIKE_STRINGS)))
        else:
            value = draw(st.one_of(string_values, st.lists(string_values, max_size=3)))
        if choice == 4 and "." in path:
            event.setdefault(path, value)  # a literal dotted key, as some shippers send
        else:
            _merge(event, _nest(path, value))
    return event


# --- query ASTs ------------------------------------------------------------------------------------

attribute_fields = st.sampled_from([Field(p) for p in ATTRIBUTE_PATHS + RESERVED_PATHS + ["tags", "timestamp"]])
tag_fields = st.sampled_from([Field(k, tag=True) for k in TAG_KEYS])
fields = st.one_of(attribute_fields, attribute_fields, tag_fields)
number_texts = st.one_of(
    st.sampled_from(["-5", "0", "1.5", "400", "404", "499", "1e+20", "100", "1e3", "0.5", "42", "1e999"]),
    st.integers(-10, 600).map(str),
)


@st.composite
def wildcard_patterns(draw: st.DrawFn) -> str:
    base = draw(query_strings)
    parts: list[str] = []
    for ch in base:
        roll = draw(st.integers(0, 9))
        if roll == 0:
            parts.append("*")
        elif roll == 1:
            parts.append("?")
        if roll != 1 or draw(st.booleans()):
            parts.append(escape_pattern_literal(ch))
    if draw(st.booleans()):
        parts.insert(0, "*")
    if draw(st.booleans()) or not any(p in ("*", "?") for p in parts):
        parts.append(draw(st.sampled_from(["*", "?"])))
    if all(p == "*" for p in parts):
        parts.append("?")  # only '*' is Exists / MatchAll, not a wildcard term
    return "".join(parts)


terms = st.one_of(
    st.builds(Term, st.one_of(st.none(), fields), query_strings.filter(bool), st.just("exact")),
    st.builds(Term, st.one_of(st.none(), fields), query_strings, st.just("phrase")),
    st.builds(Term, st.one_of(st.none(), fields), wildcard_patterns(), st.just("wildcard")),
)
# Numeric and IP leaves mostly search the attributes events fill with numbers and addresses.
numeric_fields = st.one_of(
    st.sampled_from([Field("http.status_code"), Field("duration"), Field("timestamp"), Field("team", tag=True)]),
    fields,
)
ip_fields = st.one_of(st.just(Field("network.client.ip")), attribute_fields)
ranges = st.builds(
    Range,
    numeric_fields,
    st.one_of(st.none(), number_texts),
    st.one_of(st.none(), number_texts),
    st.booleans(),
    st.booleans(),
)
compares = st.builds(Compare, numeric_fields, st.sampled_from([">", ">=", "<", "<="]), number_texts)
cidrs = st.builds(
    Cidr,
    ip_fields,
    st.lists(
        st.sampled_from(["10.0.0.0/8", "192.168.0.0/16", "::1/128", "2001:db8::/32", "0.0.0.0/0", "8.8.8.8/32"]),
        min_size=1,
        max_size=2,
    ).map(tuple),
)
leaves = st.one_of(terms, terms, ranges, compares, st.builds(Exists, fields), cidrs, st.just(MatchAll()))


def _extend(children: st.SearchStrategy[Query]) -> st.SearchStrategy[Query]:
    return st.one_of(
        st.builds(Not, children),
        st.lists(children, min_size=2, max_size=3).map(lambda c: And(tuple(c))),
        st.lists(children, min_size=2, max_size=3).map(lambda c: Or(tuple(c))),
    )


queries: st.SearchStrategy[Query] = st.recursive(leaves, _extend, max_leaves=6)


# --- event table ---------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _lookup(event: dict[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if isinstance(node, dict) and node.get(part) is not None:
            node = node[part]
        else:
            return event.get(path)
    return node


def local_to_frame(rows: list[dict[str, Any]], paths: list[str]) -> pl.DataFrame:
    """The event-model contract, row by row (used when secmon.ingest is not there)."""
    columns = []
    for path in paths:
        values = [_lookup(e, path) for e in rows]
        if path == "timestamp":
            columns.append(pl.Series(path, values, dtype=pl.Int64))
        elif any(isinstance(v, list) for v in values):
            lists = [None if v is None else [_text(x) for x in (v if isinstance(v, list) else [v])] for v in values]
            columns.append(pl.Series(path, lists, dtype=pl.List(pl.String)))
        else:
            columns.append(pl.Series(path, [_text(v) for v in values], dtype=pl.String))
    return pl.DataFrame(columns)


def to_frame(rows: list[dict[str, Any]], paths: list[str]) -> pl.DataFrame:
    if _ingest_to_frame is not None:
        return _ingest_to_frame(rows, paths)
    return local_to_frame(rows, paths)
