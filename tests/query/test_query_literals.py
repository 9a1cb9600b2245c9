"""prefilter_literals: one-line expectations, and the property that no matching event's raw line lacks them all."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from query_strategies import ATTRIBUTE_PATHS, RESERVED_PATHS, TAG_KEYS, events, queries

from secmon.query import And, Field, Or, Query, Term, evaluate, parse, prefilter_literals
from secmon.query.ast import escape_pattern_literal
from secmon.query.reference import field_values
from secmon.query.literals import CASE_FOLD_ASCII_FROM_NON_ASCII


def everything_verbatim(path: str) -> bool:
    return True


LITERALS = [
    # query, literals (None: no prefilter)
    ("", None),
    ("*", None),
    ("password", [b"password"]),
    ("PassWord", [b"password"]),
    ('"Accepted publickey"', [b"accepted"]),  # a phrase's words are separate; 'i' and 'k' break literals
    ('"failed password"', [b"password"]),  # the words may be separated by anything
    ("ab", None),  # too short to be selective
    ("source:sshd", [b"sshd"]),
    ("source:sshd @evt.name:authentication", [b"authentication"]),  # AND: the longest single literal
    ("source:(cloudtrail OR aws)", [b"aws", b"cloudtrail"]),
    ("source:(cloudtrail OR ab)", None),  # OR: one child without literals means no prefilter
    ("source:(cloudtrail OR cloud)", [b"cloud"]),  # "cloudtrail" contains "cloud": redundant
    ("-source:sshd", None),
    ("source:sshd -@usr.name:root", [b"sshd"]),
    ("@http.status_code:404", [b"404"]),  # an integer value is verbatim
    ("@http.status_code:[400 TO 499]", None),
    ("@duration:>100", None),
    ("@duration:1.5e3", None),  # a float may be written differently in the raw line
    ("@duration:100.0", None),
    ("@http.status_code:404*", None),  # could be part of a float spelled 4.045e2
    ("@a:*", None),
    ("CIDR(@network.client.ip, 10.0.0.0/8)", None),
    ("@http.url:\\/api\\/v1\\/users*", [b"users"]),  # '/' may be escaped as '\/'
    ("@http.url:*.png", [b".png"]),
    ("@usr.name:\"John Doe\"", [b"john doe"]),
    ('@a:"say \\"hello\\" now"', [b"hello"]),
    ("@a:Ünïcode_stuff", [b"code_stuff"]),  # non-ASCII may be \u-escaped
    ("@a:x<y&z>abc'q", [b"abc"]),  # HTML-safe encoders escape < > & '
    ("@a:arn\\:aws\\:iam\\:\\:123456789012\\:user", [b"user"]),  # ':' may gain spaces inside objects
    ("@a:C\\:\\\\Users\\\\admin", [b"sers"]),  # a backslash and what follows it are not verbatim
    ("@a:\\\\u00e9abcdef", [b"abcdef"]),
    ("@a:Infinity", None),
    ("env:production", [b"production"]),
    ("env:prod", [b"prod"]),
    ("environment:x", [b"environment"]),  # the tag key is part of the raw tag text
    ("@evt.outcome:failure", [b"failure"]),
    ("timestamp:1700000000000", None),  # normalised from whatever the raw line holds
    ("status:error", None),  # normalised by the status remapper, and matches every spelling
    ("hello OR world", [b"hello", b"world"]),
    ("(hello OR world) source:sshd", [b"sshd"]),  # fewest literals wins
]


@pytest.mark.parametrize(("text", "expected"), LITERALS, ids=[t or "<empty>" for t, _ in LITERALS])
def test_literals(text: str, expected: list[bytes] | None) -> None:
    assert prefilter_literals(parse(text), everything_verbatim) == expected


def test_derived_attributes_give_no_literal() -> None:
    derived = {"evt.outcome", "evt.name"}

    def verbatim(path: str) -> bool:
        return path not in derived

    assert prefilter_literals(parse("@evt.outcome:failure"), verbatim) is None
    assert prefilter_literals(parse("source:sshd @evt.outcome:failure"), verbatim) == [b"sshd"]
    assert prefilter_literals(parse("@evt.name:x OR source:sshd"), verbatim) is None
    # Free text searches the message, which a format may build rather than copy.
    assert prefilter_literals(parse("password"), lambda path: path == "message") == [b"password"]
    assert prefilter_literals(parse("password"), lambda path: False) is None


def test_ascii_letters_from_non_ascii_lowercasing() -> None:
    """The free-text breaks are exactly the ASCII letters some non-ASCII character lowercases to."""
    found = {
        ch
        for cp in range(0x80, 0x110000)
        if not 0xD800 <= cp < 0xE000
        for ch in chr(cp).lower()
        if ch.isascii()
    }
    assert found == set(CASE_FOLD_ASCII_FROM_NON_ASCII)


# --- the property: a matching event's raw line always contains a literal ---------------------------


def raw_lines(event: dict[str, Any]) -> list[str]:
    """Ways a JSON encoder may write the same event (all parse back to it)."""
    lines = [
        json.dumps(event, ensure_ascii=True),
        json.dumps(event, ensure_ascii=False),
        json.dumps(event, ensure_ascii=False, separators=(",", ":")),
        json.dumps(event, ensure_ascii=False, indent=1).replace("\n", " "),
    ]
    lines += [line.replace("/", "\\/") for line in lines[:2]]
    html_safe = lines[0].replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")
    lines.append(html_safe)
    lines.append(_encode_with_float_text(event))
    for line in lines:
        assert json.loads(line) == event
    return lines


def _encode_with_float_text(value: Any) -> str:
    """JSON with every float in 17-digit exponent form (1.5 -> 1.5000000000000000e+00): same value, other text."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return format(value, ".16e") if math.isfinite(value) else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_encode_with_float_text(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)}: {_encode_with_float_text(v)}" for k, v in value.items()) + "}"


def _check(query: Query, rows: list[dict[str, Any]], verbatim: Callable[[str], bool]) -> None:
    literals = prefilter_literals(query, verbatim)
    if literals is None:
        return
    assert literals, "an empty literal list would reject every line"
    for literal in literals:
        assert literal == literal.lower() and literal.isascii() and len(literal) >= 3
    for row in rows:
        if not evaluate(query, row):
            continue
        for line in raw_lines(row):
            raw = line.encode("utf-8").lower()  # bytes.lower() is ASCII-only, like the matcher
            assert any(literal in raw for literal in literals), f"{query} matches {line!r}, which has none of {literals}"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(queries, st.lists(events(), min_size=1, max_size=6))
def test_matching_events_contain_a_literal(query: Query, rows: list[dict[str, Any]]) -> None:
    _check(query, rows, everything_verbatim)


@st.composite
def event_and_matching_term(draw: st.DrawFn) -> tuple[dict[str, Any], Query]:
    """An event and a term built from one of its own values, so that the term matches it."""
    event = draw(events())
    candidates: list[tuple[Field | None, str]] = []
    for path in [*ATTRIBUTE_PATHS, *RESERVED_PATHS]:
        candidates += [(Field(path), v) for v in field_values(event, Field(path))]
    for key in TAG_KEYS:
        candidates += [(Field(key, tag=True), v) for v in field_values(event, Field(key, tag=True))]
    candidates += [(None, m) for m in field_values(event, Field("message"))]
    if not candidates:
        return event, parse("*")
    messages = [c for c in candidates if c[0] is None]
    field, value = draw(st.sampled_from(messages if messages and draw(st.booleans()) else candidates))
    if field is None:  # free text: a substring, in another case
        i = draw(st.integers(0, len(value)))
        j = draw(st.integers(i, len(value)))
        value = value[i:j]
        value = draw(st.sampled_from([value, value.upper(), value.lower(), value.swapcase()]))
        if value.lower() not in field_values(event, Field("message"))[0].lower():
            return event, parse("*")  # case mapping changed the text (e.g. 'ß' -> 'SS')
    kind = draw(st.sampled_from(["exact", "phrase", "wildcard"]))
    if kind == "wildcard":
        pieces = [draw(st.sampled_from([escape_pattern_literal(ch), "?", "*" + escape_pattern_literal(ch)])) for ch in value]
        if not any(piece in ("?", "*") or piece.startswith("*") for piece in pieces):
            pieces = ["*", *pieces, "*"]
        pattern = "".join(pieces)
        if all(ch == "*" for ch in pattern):
            pattern += "?*"
        term: Query = Term(field, pattern, "wildcard")
    else:
        term = Term(field, value, "phrase" if kind == "phrase" or not value else "exact")
    combine = draw(st.integers(0, 3))
    if combine == 1:
        term = Or((term, draw(queries)))
    elif combine == 2:
        term = And((term, draw(queries)))
    return event, term


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(event_and_matching_term())
@example(({"message": "\u212aelvin"}, Term(None, "kelv")))  # KELVIN SIGN lowercases to 'k'
@example(({"message": "\u0130stanbul"}, Term(None, "i\u0307stanbul")))
@example(({"obj": {"k": 404, "j": "x"}}, Term(Field("obj"), '{"k":404,"j":"x"}', "phrase")))  # spaces after ':'
@example(({"obj": {"k": "\u00e9t\u00e9"}}, Term(Field("obj"), '{"k":"\u00e9t\u00e9"}', "phrase")))
@example(({"usr": {"name": "<script>&amp;"}}, Term(Field("usr.name"), "<script>&amp;")))  # HTML-safe escapes
@example(({"http": {"url": "/api/v1/users"}}, Term(Field("http.url"), "/api/v1/users")))  # '\/'
@example(({"duration": 100.0}, Term(Field("duration"), "100.0")))  # raw 1.0000000000000000e+02
@example(({"duration": 1e20}, Term(Field("duration"), "1e+*", "wildcard")))
@example(({"tags": ["env:a/b/c"]}, Term(Field("env", tag=True), "a/b/c")))
def test_literals_of_terms_built_from_the_event(pair: tuple[dict[str, Any], Query]) -> None:
    event, query = pair
    _check(query, [event], everything_verbatim)


TOP_LEVEL_PATHS = ["source", "host", "status", "tags", "duration", "arr", "obj", "message"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queries, st.lists(events(), min_size=1, max_size=6), st.sets(st.sampled_from(TOP_LEVEL_PATHS), min_size=1))
def test_non_verbatim_attributes_are_never_relied_on(query: Query, rows: list[dict[str, Any]], derived: set[str]) -> None:
    """A parser derives ``derived`` from the text: they are absent from the raw line, yet matching holds."""
    literals = prefilter_literals(query, lambda path: path not in derived)
    if literals is None:
        return
    for row in rows:
        if evaluate(query, row):
            line = json.dumps({k: v for k, v in row.items() if k not in derived}, ensure_ascii=False)
            assert any(lit in line.encode().lower() for lit in literals), f"{query}: {line!r} lacks {literals}"


@pytest.mark.parametrize(("query", "expected"), [
    ("source:kubernetes.audit @objectRef.resource:pods", [b"pods"]),
    ("source:(nginx OR apache) @http.status_code:404", [b"404"]),
    ("service:web host:web-01 @evt.name:ConsoleLogin", [b"consolelogin"]),
    ("source:cloudtrail @evt.outcome:*", [b"cloudtrail", b"eventsource"]),  # nothing better: the source
])
def test_a_rule_prefilters_on_its_selective_term_before_its_source(query: str, expected: list[bytes]) -> None:
    from secmon.detect.compiled import CompiledRule
    from secmon.ingest.formats import get_format
    from secmon.rules.loader import rule_from_dict

    rule = rule_from_dict({"id": "r", "name": "r", "queries": [{"query": query}],
                           "cases": [{"status": "low", "condition": "a > 0"}]}, file="<t>")
    ndjson = get_format("ndjson")
    assert CompiledRule.compile(rule, 0).prefilter_literals(ndjson.verbatim, ndjson.implied_literals) == expected
