"""Parser and renderer: one-line tables of queries, syntax errors with positions, round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from query_strategies import queries

from secmon.errors import QuerySyntaxError, SecmonError
from secmon.query import And, Cidr, Compare, Exists, Field, MatchAll, Not, Or, Range, Term, parse, to_query

A = Field  # attribute (or reserved) field


def T(value: str, kind: str = "exact", field: Field | None = None) -> Term:
    return Term(field, value, kind)  # type: ignore[arg-type]


PARSES = [
    ("", MatchAll()),
    ("   ", MatchAll()),
    ("*", MatchAll()),
    ("hello", T("hello")),
    ('"hello world"', T("hello world", "phrase")),
    ("hello world", And((T("hello"), T("world")))),
    ("hello AND world", And((T("hello"), T("world")))),
    ("hello && world", And((T("hello"), T("world")))),
    ("hello OR world", Or((T("hello"), T("world")))),
    ("hello || world", Or((T("hello"), T("world")))),
    ("hello and world", And((T("hello"), T("and"), T("world")))),  # operators are upper case
    ("a OR b c", Or((T("a"), And((T("b"), T("c")))))),  # AND binds tighter than OR
    ("a b OR c", Or((And((T("a"), T("b"))), T("c")))),
    ("(a OR b) c", And((Or((T("a"), T("b"))), T("c")))),
    ("NOT a b", And((Not(T("a")), T("b")))),  # NOT binds tighter than AND
    ("-a", Not(T("a"))),
    ("!a", Not(T("a"))),
    ("--a", Not(Not(T("a")))),
    ("a-b", T("a-b")),
    ("-(a OR b)", Not(Or((T("a"), T("b"))))),
    ("((a))", T("a")),
    ("(a b) (c d)", And((T("a"), T("b"), T("c"), T("d")))),
    ("source:sshd", T("sshd", field=A("source"))),
    ("@source:sshd", T("sshd", field=A("source"))),
    ("host:web-1", T("web-1", field=A("host"))),
    ("env:prod", T("prod", field=Field("env", tag=True))),
    ("@network.client.ip:1.2.3.4", T("1.2.3.4", field=A("network.client.ip"))),
    ('@usr.name:"John Doe"', T("John Doe", "phrase", A("usr.name"))),
    ("@usr.name:John\\ Doe", T("John Doe", field=A("usr.name"))),
    ("@my_attribute:hello\\:world", T("hello:world", field=A("my_attribute"))),
    ("@http.url:\\/api\\/v1*", T("/api/v1*", "wildcard", A("http.url"))),
    ("@http.url:/api/v1/*", T("/api/v1/*", "wildcard", A("http.url"))),
    ("@a:foo\\*", T("foo*", field=A("a"))),  # an escaped wildcard is literal
    ("@a:f\\*o*", T("f\\*o*", "wildcard", A("a"))),
    ("@a:hello?world", T("hello?world", "wildcard", A("a"))),
    ('@a:"x*y"', T("x*y", "phrase", A("a"))),  # inside quotes wildcards are literal
    ('@a:"say \\"hi\\""', T('say "hi"', "phrase", A("a"))),
    ('@a:""', T("", "phrase", A("a"))),
    ("@a:*", Exists(A("a"))),
    ("@a:**", Exists(A("a"))),
    ("env:*", Exists(Field("env", tag=True))),
    ("@a:x:y", T("x:y", field=A("a"))),
    ("@a:-5", T("-5", field=A("a"))),
    ("@a:AND", T("AND", field=A("a"))),
    ("@evt.name:(A OR B)", Or((T("A", field=A("evt.name")), T("B", field=A("evt.name"))))),
    ("source:(cloudtrail OR aws)", Or((T("cloudtrail", field=A("source")), T("aws", field=A("source"))))),
    ("@a:(x -y)", And((T("x", field=A("a")), Not(T("y", field=A("a")))))),
    ("@http.status_code:[400 TO 499]", Range(A("http.status_code"), "400", "499")),
    ("@n:{1 TO 5]", Range(A("n"), "1", "5", False, True)),
    ("@n:[* TO 1.5e3}", Range(A("n"), None, "1.5e3", True, False)),
    ("@n:[ -2 TO 2 ]", Range(A("n"), "-2", "2")),
    ("@duration:>100", Compare(A("duration"), ">", "100")),
    ("@duration:>=100", Compare(A("duration"), ">=", "100")),
    ("@duration:<-1.5", Compare(A("duration"), "<", "-1.5")),
    ("@duration:<=2e3", Compare(A("duration"), "<=", "2e3")),
    ("@a:\\>5", T(">5", field=A("a"))),
    ("CIDR(@network.client.ip, 10.0.0.0/8, 192.168.0.0/16)", Cidr(A("network.client.ip"), ("10.0.0.0/8", "192.168.0.0/16"))),
    ("CIDR(@network.client.ip,13.0.0.0/8)", Cidr(A("network.client.ip"), ("13.0.0.0/8",))),
    ("CIDR(@ip, 10.1.2.3/8, 2001:db8::1/32, ::1)", Cidr(A("ip"), ("10.0.0.0/8", "2001:db8::/32", "::1/128"))),
    ("-CIDR(@ip, 10.0.0.0/8)", Not(Cidr(A("ip"), ("10.0.0.0/8",)))),
    ("\\AND", T("AND")),
    ("\\-a", T("-a")),
    ("a\\ b", T("a b")),
    ("hel*o", T("hel*o", "wildcard")),
    ("\\“quoted\\”", T("“quoted”")),
]


@pytest.mark.parametrize(("text", "expected"), PARSES, ids=[t or "<empty>" for t, _ in PARSES])
def test_parse(text: str, expected: object) -> None:
    assert parse(text) == expected
    assert parse(to_query(parse(text))) == parse(text)


ERRORS = [
    # text, position, part of the expectation
    ("(a", 2, "')' to close '(' at 0"),
    ("a AND (b OR c", 13, "')' to close '(' at 6"),
    ("a)", 1, "closes nothing"),
    ("()", 1, "a term inside"),
    ("@a:", 3, "a value for @a"),
    ("@a: x", 3, "a value for @a"),
    (":x", 0, "a field name"),
    ("@:x", 1, "an attribute name"),
    ("*:foo", 0, "full-text search"),
    ("@a*:x", 0, "without wildcards"),
    ("@a:[1 TO", 8, "a number or '*'"),
    ("@a:[1 5]", 6, "'TO'"),
    ("@a:[1 TO 5", 10, "']' or '}'"),
    ("@a:[x TO 5]", 4, "a number"),
    ("@a:>x", 4, "a number after '>'"),
    ("@a:>=", 5, "a number after '>='"),
    ("a AND", 5, "a term"),
    ("a OR", 4, "a term"),
    ("OR a", 0, "a term before OR"),
    ("a AND OR b", 6, "a term before OR"),
    ("NOT", 3, "a term"),
    ("- a", 1, "right after '-'"),
    ('"abc', 4, "'\"' to close the quote at 0"),
    ('@a:"x"y', 6, "after a closing quote"),
    ('ab"c"', 2, "quoted phrase"),
    ("“hello”", 0, "straight quote"),
    ("abc\\", 3, "a character after '\\'"),
    ("CIDR(@a, 1.2.3)", 9, "IPv4 or IPv6 network"),
    ("CIDR(@a)", 7, "',' or ')'"),
    ("CIDR(@a, 10.0.0.0/8", 19, "',' or ')' to close 'CIDR(' at 0"),
    ("CIDR(env, 10.0.0.0/8)", 5, "an attribute"),
    ("@network.client.ip:CIDR(10.0.0.0/8)", 19, "CIDR(@network.client.ip, network, ...)"),
    ("(" * 65 + "a" + ")" * 65, 64, "at most 64 levels"),
    ("-" * 65 + "a", 64, "at most 64 levels"),
    ("NOT " * 65 + "a", 256, "at most 64 levels"),
]


@pytest.mark.parametrize(("text", "position", "expected"), ERRORS, ids=[t[:40] for t, _, _ in ERRORS])
def test_syntax_error(text: str, position: int, expected: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(text)
    error = info.value
    assert isinstance(error, SecmonError)
    assert error.query == text
    assert error.position == position, str(error)
    assert expected in error.expected, str(error)
    assert f"position {position}" in str(error)


def test_nesting_up_to_the_limit_parses() -> None:
    assert parse("(" * 64 + "a" + ")" * 64) == T("a")
    assert parse("-" * 64 + "a") is not None


def test_error_names_what_was_found() -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse("a AND OR b")
    assert info.value.found == "OR"


def test_rejects_non_string() -> None:
    with pytest.raises(TypeError):
        parse(None)  # type: ignore[arg-type]


RENDERS = [
    ("hello   world", "hello world"),
    ("a AND b", "a b"),
    ("a || b", "a OR b"),
    ("NOT a", "-a"),
    ("!(a b)", "-(a b)"),
    ("(a OR b) c", "(a OR b) c"),
    ("@evt.name:(A OR B)", "@evt.name:A OR @evt.name:B"),
    ("@source:x", "source:x"),
    ("@usr.name:John\\ Doe", "@usr.name:John\\ Doe"),
    ("@http.url:/api/v1/*", "@http.url:\\/api\\/v1\\/*"),
    ("CIDR(@ip,10.1.0.0/16)", "CIDR(@ip, 10.1.0.0/16)"),
    ("@n:[1 TO *}", "@n:[1 TO *}"),
    ("\\AND", "\\AND"),
]


@pytest.mark.parametrize(("text", "canonical"), RENDERS)
def test_canonical_text(text: str, canonical: str) -> None:
    assert to_query(parse(text)) == canonical
    assert str(parse(text)) == canonical


@settings(max_examples=300, deadline=None)
@given(queries)
def test_round_trip_of_generated_asts(query: object) -> None:
    text = to_query(query)  # type: ignore[arg-type]
    parsed = parse(text)
    assert parse(to_query(parsed)) == parsed
    assert to_query(parsed) == to_query(parse(to_query(parsed)))


QUERY_ALPHABET = st.sampled_from(list('ab@:.*?"\\()[]{}<>=-! TOANDRNCIDR,/01“') + ["AND", "OR", "NOT", " TO ", "CIDR(", "10.0.0.0/8"])


@settings(max_examples=500, deadline=None)
@given(st.lists(QUERY_ALPHABET, max_size=14).map("".join))
def test_random_text_parses_or_raises_syntax_error(text: str) -> None:
    try:
        parsed = parse(text)
    except QuerySyntaxError as error:
        assert 0 <= error.position <= len(text)
        return
    assert parse(to_query(parsed)) == parsed
