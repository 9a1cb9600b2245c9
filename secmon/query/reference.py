"""The slow, obvious twin of :func:`secmon.query.compile_polars` (in :mod:`secmon.query.polars_expr`): one query against one event dict.

It reads attributes straight from the nested event (no event table), matches wildcards with a plain
dynamic-programming matcher (no regex) and CIDR with ``ipaddress`` membership, so the property tests
compare two independent implementations of the same semantics (see :mod:`secmon.query`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from secmon.ingest.paths import resolve_all
from secmon.query.ast import (
    And,
    Cidr,
    Compare,
    Exists,
    Field,
    FieldRef,
    MatchAll,
    Not,
    Or,
    Query,
    Range,
    Regex,
    Term,
    Wildcard,
    is_number,
    lowered_parts,
    pattern_parts,
    phrase_words,
    status_spellings,
)


def evaluate(query: Query, event: Mapping[str, Any]) -> bool:
    """Whether ``event`` (a nested JSON-like dict in Datadog's standard form) matches ``query``."""
    if isinstance(query, MatchAll):
        return True
    if isinstance(query, And):
        return all(evaluate(child, event) for child in query.children)
    if isinstance(query, Or):
        return any(evaluate(child, event) for child in query.children)
    if isinstance(query, Not):
        return not evaluate(query.child, event)
    if isinstance(query, Term):
        return _term_matches(query, event)
    if isinstance(query, Exists):
        return bool(field_values(event, query.field))
    if isinstance(query, Range):
        return any(_in_range(query, float(v)) for v in field_values(event, query.field) if is_number(v))
    if isinstance(query, Compare):
        bound = float(query.value)
        return any(_compares(query.op, float(v), bound) for v in field_values(event, query.field) if is_number(v))
    if isinstance(query, Cidr):
        networks = [ipaddress.ip_network(n) for n in query.networks]
        return any(_ip_in(v, networks) for v in field_values(event, query.field))
    if isinstance(query, FieldRef):
        others = set(field_values(event, query.other))
        return any(v in others for v in field_values(event, query.field))
    if isinstance(query, Regex):
        pattern = re.compile(query.pattern, re.IGNORECASE if query.insensitive else 0)
        return any(pattern.search(v) for v in field_values(event, query.field))
    raise TypeError(f"not a query node: {query!r}")


def stringify(value: Any) -> str:
    """An attribute value as the event table stores it: JSON text for numbers, booleans and objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def attribute_values(event: Mapping[str, Any], path: str) -> list[str]:
    """The values at a dotted attribute path: [] when missing/null, every non-null item of an array,
    and through arrays of objects every element's value (``secmon.ingest.paths`` defines the walk,
    as the event table does)."""
    return [stringify(value) for value in resolve_all(dict(event), path)]


def field_values(event: Mapping[str, Any], field: Field) -> list[str]:
    """What a field's terms test: attribute values, or for a tag key the values of ``key:value`` tags."""
    if not field.tag:
        return attribute_values(event, field.path)
    prefix = field.path + ":"
    return [tag[len(prefix) :] for tag in attribute_values(event, "tags") if tag.startswith(prefix)]


def glob_matches(parts: Sequence[str | Wildcard], text: str) -> bool:
    """Whole-string wildcard match: ``*`` any run (possibly empty), ``?`` exactly one character."""
    tokens: list[str | Wildcard] = []
    for part in parts:
        tokens.extend(part if isinstance(part, str) else [part])
    # matched[j]: the tokens seen so far can match text[:j]
    matched = [True] + [False] * len(text)
    for token in tokens:
        following = [False] * (len(text) + 1)
        for j in range(len(text) + 1):
            if isinstance(token, Wildcard) and token.symbol == "*":
                following[j] = matched[j] or (j > 0 and following[j - 1])
            elif j > 0 and matched[j - 1]:
                following[j] = isinstance(token, Wildcard) or token == text[j - 1]
        matched = following
    return matched[len(text)]


def _term_matches(term: Term, event: Mapping[str, Any]) -> bool:
    if term.field is None:
        # Free text: case-insensitive substring of the message.
        messages = [m.lower() for m in attribute_values(event, "message")]
        if term.kind == "wildcard":
            parts = [Wildcard("*"), *lowered_parts(term.value), Wildcard("*")]
            return any(glob_matches(parts, m) for m in messages)
        if term.kind == "phrase":
            words = phrase_words(term.value.lower())
            if words:
                return any(_has_word_sequence(m, words) for m in messages)
        needle = term.value.lower()
        return any(needle in m for m in messages)
    values = field_values(event, term.field)
    if term.insensitive and not term.field.tag:
        lowered = [v.lower() for v in values]
        if term.kind == "wildcard":
            return any(glob_matches(lowered_parts(term.value), v) for v in lowered)
        return term.value.lower() in lowered
    if term.kind == "wildcard":
        pattern = pattern_parts(term.value)
        return any(glob_matches(pattern, v) for v in values)
    if not term.field.tag and term.field.path == "status":
        spellings = status_spellings(term.value)
        if spellings is not None:
            return any(v.lower() in spellings for v in values)
    return term.value in values


def _has_word_sequence(text: str, words: list[str]) -> bool:
    """``words`` occur in order in ``text``, each pair separated by at least one separator character
    (an ASCII character that is not a letter or digit) and nothing else."""
    start = text.find(words[0])
    while start != -1:
        position = start + len(words[0])
        for word in words[1:]:
            gap = position
            while gap < len(text) and _is_separator(text[gap]):
                gap += 1
            if gap == position or not text.startswith(word, gap):
                break
            position = gap + len(word)
        else:
            return True
        start = text.find(words[0], start + 1)
    return False


def _is_separator(ch: str) -> bool:
    return ch.isascii() and not ch.isalnum()


def _in_range(node: Range, value: float) -> bool:
    if node.low is not None:
        low = float(node.low)
        if value < low or (value == low and not node.low_inclusive):
            return False
    if node.high is not None:
        high = float(node.high)
        if value > high or (value == high and not node.high_inclusive):
            return False
    return True


def _compares(op: str, value: float, bound: float) -> bool:
    if op == ">":
        return value > bound
    if op == ">=":
        return value >= bound
    if op == "<":
        return value < bound
    return value <= bound


def _ip_in(text: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in networks)
