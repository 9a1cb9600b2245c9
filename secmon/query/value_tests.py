"""What a query's leaves test on one value: the vocabulary shared by the two compilers of a query,
:mod:`secmon.query.polars_expr` (Polars expressions) and :mod:`secmon.query.native` (the native
core's ``FlagProgram``).

A test is a tagged tuple:

- ``("exists",)``, ``("eq", text)``, ``("in", [text, ...])``;
- ``("prefix", text)``, ``("suffix", text)``, ``("contains", text)``,
  ``("prefix_suffix", head, tail)`` (both, not overlapping), ``("contains_any", [text, ...])``;
- ``("regex", pattern)``: Rust regex syntax (Polars and the core both run Rust's ``regex``);
- ``("number", low, low_inclusive, high, high_inclusive)``: written as a JSON number
  (:data:`NUMBER_PATTERN`) and within the float bounds (``None``: open);
- ``("lower", test)``: the test over the value in lower case;
- ``("strip_prefix", prefix, test)``: the test over what follows ``prefix``, false without it (tags).

A leaf of the query is a ``(column, test)`` pair: some item of the column passes the test (a list
column matches when any item does, a null or missing value matches nothing). Choosing the test
(which string operation a wildcard pattern needs, how an OR of values on one attribute groups)
happens here once, so both compilers make the same choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from secmon.query.ast import (
    PHRASE_SEPARATOR_CLASS,
    Compare,
    Exists,
    Field,
    Query,
    Range,
    Regex,
    Term,
    Wildcard,
    lowered_parts,
    pattern_parts,
    phrase_words,
    status_spellings,
)

ValueTest = tuple[Any, ...]
Leaf = tuple[str, ValueTest]  # (column, test)

# Rust's regex::escape set; escaping these is also valid (and means the same) for Python's re.
_REGEX_META = set("\\.+*?()|[]{}^$#&-~")


def regex_escape(text: str) -> str:
    return "".join("\\" + ch if ch in _REGEX_META else ch for ch in text)


def glob_regex(parts: Sequence[str | Wildcard], anchored: bool) -> str:
    """A Rust-regex for a wildcard pattern; ``(?s)`` so that ``*`` and ``?`` also cross newlines."""
    body = "".join(regex_escape(p) if isinstance(p, str) else (".*" if p.symbol == "*" else ".") for p in parts)
    return f"(?s)^{body}$" if anchored else f"(?s){body}"


def _collapse_stars(parts: Sequence[str | Wildcard]) -> list[str | Wildcard]:
    out: list[str | Wildcard] = []
    for part in parts:
        if isinstance(part, Wildcard) and part.symbol == "*" and out and out[-1] == part:
            continue
        out.append(part)
    return out


def _is_star(part: str | Wildcard) -> bool:
    return isinstance(part, Wildcard) and part.symbol == "*"


def _literal_shape(p: Sequence[str | Wildcard]) -> tuple[str, str] | None:
    """("contains", text) for ``*text*``, ("prefix", text) for ``text*`` (stars collapsed, no other
    wildcard, text not empty); None for any other shape. An OR of these on one attribute is one
    pass (:func:`or_groups`)."""
    if len(p) == 3 and _is_star(p[0]) and isinstance(p[1], str) and p[1] and _is_star(p[2]):
        return "contains", p[1]
    if len(p) == 2 and isinstance(p[0], str) and p[0] and _is_star(p[1]):
        return "prefix", p[0]
    return None


def glob_test(parts: Sequence[str | Wildcard]) -> ValueTest:
    """Whole-value wildcard match, as a plain string test when the pattern's shape allows one."""
    p = _collapse_stars(parts)
    if all(isinstance(x, str) for x in p):
        return ("eq", "".join(p))  # type: ignore[arg-type]
    shape = _literal_shape(p)
    if shape is not None:
        return shape
    if len(p) == 2 and _is_star(p[0]) and isinstance(p[1], str):
        return ("suffix", p[1])
    if len(p) == 3 and isinstance(p[0], str) and _is_star(p[1]) and isinstance(p[2], str):
        return ("prefix_suffix", p[0], p[2])
    if p == [Wildcard("*")]:
        return ("exists",)
    if len(p) > 3 and _is_star(p[0]) and _is_star(p[-1]):
        return ("regex", glob_regex(p[1:-1], anchored=False))  # unanchored: no need to scan the ".*" ends
    return ("regex", glob_regex(p, anchored=True))


def value_leaf(field: Field, test: ValueTest) -> Leaf:
    """``test`` over a field's values; for a tag key, over the ``value`` of its ``key:value`` tags."""
    if not field.tag:
        return field.path, test
    return "tags", ("strip_prefix", field.path + ":", test)


def term_leaf(node: Term) -> Leaf:
    if node.field is None:
        return "message", ("lower", _free_text_test(node))
    if node.insensitive and not node.field.tag:
        if node.kind == "wildcard":
            return node.field.path, ("lower", glob_test(lowered_parts(node.value)))
        return node.field.path, ("lower", ("eq", node.value.lower()))
    if node.kind == "wildcard":
        return value_leaf(node.field, glob_test(pattern_parts(node.value)))
    if node.field.tag:
        return "tags", ("eq", f"{node.field.path}:{node.value}")
    if node.field.path == "status" and (spellings := status_spellings(node.value)) is not None:
        return "status", ("lower", ("in", sorted(spellings)))
    return node.field.path, ("eq", node.value)


def _free_text_test(node: Term) -> ValueTest:
    """Free text on the lower-cased message: a substring, a wildcard search, or a word sequence."""
    if node.kind == "wildcard":
        return glob_test([Wildcard("*"), *lowered_parts(node.value), Wildcard("*")])  # leading and trailing '*' implied
    words = phrase_words(node.value.lower()) if node.kind == "phrase" else []
    if len(words) > 1:
        # A sequence of words with any separators between them ("hello world" ~ "Hello, world").
        return ("regex", (PHRASE_SEPARATOR_CLASS + "+").join(regex_escape(w) for w in words))
    return ("contains", words[0] if words else node.value.lower())


def regex_leaf(node: Regex) -> Leaf:
    return node.field.path, ("regex", ("(?i)" if node.insensitive else "") + node.pattern)


def exists_leaf(node: Exists) -> Leaf:
    return value_leaf(node.field, ("exists",))


def range_leaf(node: Range) -> Leaf:
    low = None if node.low is None else float(node.low)
    high = None if node.high is None else float(node.high)
    return value_leaf(node.field, ("number", low, node.low_inclusive, high, node.high_inclusive))


def compare_leaf(node: Compare) -> Leaf:
    bound = float(node.value)
    test: ValueTest = {
        ">": ("number", bound, False, None, False),
        ">=": ("number", bound, True, None, False),
        "<": ("number", None, False, bound, False),
        "<=": ("number", None, False, bound, True),
    }[node.op]
    return value_leaf(node.field, test)


def or_groups(children: Sequence[Query]) -> tuple[list[Query], list[Leaf]]:
    """Value lists OR-ed on one attribute (``@evt.name:(A OR B ...)``, ``@http.url:(*../* OR
    *%2e%2e* ...)``, Sigma's ``|contains`` lists) as one leaf each: exact values one ``in``,
    ``*text*`` patterns one ``contains_any`` (Aho-Corasick), ``text*`` patterns one prefix regex.
    One comparison per value was most of the flag cost of the web rules (measured: 7.6 ms of a
    16 MiB chunk's 57 ms for the path-traversal rule alone). Returns the children left as they
    are, and the grouped leaves."""
    # Keyed by (path, insensitive): case-insensitive values group apart, lower-cased, and their
    # leaf tests the lower-cased attribute.
    values_by_path: dict[tuple[str, bool], list[str]] = {}
    infixes_by_path: dict[tuple[str, bool], list[str]] = {}
    prefixes_by_path: dict[tuple[str, bool], list[str]] = {}
    others: list[Query] = []
    for child in children:
        if not isinstance(child, Term) or child.field is None or child.field.tag:
            others.append(child)
            continue
        key = (child.field.path, child.insensitive)
        fold = str.lower if child.insensitive else str
        if child.kind != "wildcard":
            if child.field.path == "status" and status_spellings(child.value) is not None and not child.insensitive:
                others.append(child)
            else:
                values_by_path.setdefault(key, []).append(fold(child.value))
        elif (shape := _literal_shape(_collapse_stars(pattern_parts(child.value)))) is not None:
            kind, text = shape
            (infixes_by_path if kind == "contains" else prefixes_by_path).setdefault(key, []).append(fold(text))
        else:
            others.append(child)

    def leaf(key: tuple[str, bool], test: ValueTest) -> Leaf:
        path, insensitive = key
        return path, ("lower", test) if insensitive else test

    leaves: list[Leaf] = []
    for key, values in values_by_path.items():
        distinct = sorted(set(values))
        leaves.append(leaf(key, ("eq", distinct[0]) if len(distinct) == 1 else ("in", distinct)))
    for key, texts in infixes_by_path.items():
        leaves.append(leaf(key, ("contains_any", sorted(set(texts)))))
    for key, texts in prefixes_by_path.items():
        leaves.append(leaf(key, ("regex", "^(?:" + "|".join(regex_escape(t) for t in sorted(set(texts))) + ")")))
    return others, leaves
