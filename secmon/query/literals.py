"""Prefilter literals: byte strings of which a raw log line must contain at least one for the query to match.

The prefilter runs over raw lines before any parsing, so a literal is only usable when the raw bytes
*must* contain it. What can differ between an attribute value and its raw bytes:

* JSON escapes ``"``, ``\\``, control characters, and may escape ``/`` (``\\/``), any non-ASCII character
  (``\\uXXXX``) and, in HTML-safe encoders, ``< > & '``: none of these characters is kept in a literal.
* A value that is an object is stored as compact JSON while the raw line may have spaces around
  ``: ,`` and brackets, or another escaping of non-ASCII (``\\u00e9`` vs ``é``): structural characters
  ``{ } [ ] : ,`` break a literal, as do a ``\\`` and the escape it starts.
* A number is stored as the JSON writer prints the parsed number, which is not always the raw text
  (``1e2`` is stored ``100.0``, ``1e999`` as ``Infinity``). Only a whole attribute value that is an
  integer is taken verbatim (JSON integers have one spelling); any other fragment made only of number
  characters, or part of ``-Infinity``/``NaN``, is unusable.
* Free text is case-insensitive through Unicode lowercasing, where the Kelvin sign lowercases to ``k``
  and ``İ`` to ``i̇``: ``i`` and ``k`` (the only ASCII letters a non-ASCII character lowercases to) break
  a free-text literal.

The matcher compares literals ASCII-case-insensitively, so literals are returned lower-cased. A literal
shorter than :data:`MIN_LITERAL_BYTES` is not selective enough; such a term gives ``None``, which is
always correct (every line is a candidate).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from secmon.query.ast import And, MatchAll, Not, Or, Query, Term, pattern_parts, phrase_words

MIN_LITERAL_BYTES = 3

#: Characters that never appear in a literal (see the module docstring for why).
_BREAKS = frozenset('"\\/{}[]:,<>&\'')
#: ASCII characters that ``str.lower()`` produces from non-ASCII ones (U+212A KELVIN SIGN, U+0130).
CASE_FOLD_ASCII_FROM_NON_ASCII = frozenset("ik")
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_INTEGER = re.compile(r"-?[0-9]+")
_HEX = frozenset("0123456789abcdefABCDEF")


def prefilter_literals(query: Query, verbatim: Callable[[str], bool]) -> list[bytes] | None:
    """Literals one of which every raw line of a matching event contains, or ``None``: no prefilter.

    ``verbatim(path)`` says whether that attribute's value appears verbatim in the raw line for the
    input format in use (false for attributes a parser derives); free text asks about ``message``
    (every built-in format copies it from the raw line). ``timestamp`` and ``status`` are never taken
    as verbatim (both are normalised at ingest).
    """
    found = _literals(query, verbatim)
    if found is None:
        return None
    return sorted(lit.encode("ascii") for lit in _drop_redundant(found))


def _literals(node: Query, verbatim: Callable[[str], bool]) -> set[str] | None:
    if isinstance(node, And):
        options = [s for s in (_literals(c, verbatim) for c in node.children) if s is not None]
        if not options:
            return None
        # Any child's set is a necessary condition; the best has the fewest, then the longest literals.
        return min(options, key=lambda s: (len(s), -min(len(x) for x in s), sorted(s)))
    if isinstance(node, Or):
        union: set[str] = set()
        for child in node.children:
            found = _literals(child, verbatim)
            if found is None:
                return None
            union |= found
        return _drop_redundant(union)
    if isinstance(node, Term):
        literal = _term_literal(node, verbatim)
        return None if literal is None else {literal}
    if isinstance(node, (Not, MatchAll)):
        return None
    # Range, Compare, Exists, Cidr: the raw text of a matching value is not known.
    return None


#: Reserved attributes whose value is shared by every line of a log source.
_SOURCE_COLUMNS = frozenset({"source", "service", "host"})


def names_a_source(node: Query) -> bool:
    """A term (or an OR of terms) on the source, service or host of an event: its literals are
    in every line of that source, so they filter by source and nothing more."""
    if isinstance(node, Or):
        return all(names_a_source(child) for child in node.children)
    return isinstance(node, Term) and node.field is not None and not node.field.tag and node.field.column in _SOURCE_COLUMNS


def _term_literal(term: Term, verbatim: Callable[[str], bool]) -> str | None:
    if term.field is None:
        if not verbatim("message"):
            return None  # a format that builds its message (not a copy of raw text) cannot prefilter it
        pieces = _pieces(term)
        fragments = [f for p in pieces for f in _fragments(p.lower(), CASE_FOLD_ASCII_FROM_NON_ASCII)]
        return _longest(fragments)
    if term.field.column in ("timestamp", "status") or not verbatim(term.field.column):
        # timestamp is normalised to epoch milliseconds and status by the status remapper (and a
        # status term matches every spelling): neither is the raw text.
        return None
    if term.kind != "wildcard" and not term.field.tag and _INTEGER.fullmatch(term.value):
        # The whole value is an integer: a JSON integer has one spelling, a string is verbatim.
        return term.value.lower() if len(term.value) >= MIN_LITERAL_BYTES else None
    pieces = _pieces(term)
    if term.insensitive:
        # Compared in lower case: as free text, a non-ASCII character may lower-case to i or k.
        return _longest(f for p in pieces for f in _fragments(p.lower(), CASE_FOLD_ASCII_FROM_NON_ASCII))
    if term.field.tag:
        # The raw line holds the whole tag "key:value"; ':' breaks fragments, so the key is one more piece.
        pieces = [term.field.path, *pieces]
    return _longest(f for p in pieces for f in _fragments(p, frozenset()))


def _pieces(term: Term) -> list[str]:
    """The fixed texts a matching value contains: the value itself, or a pattern's literal runs."""
    if term.field is None and term.kind == "phrase" and phrase_words(term.value):
        return phrase_words(term.value)  # a free-text phrase matches its words with any separators
    if term.kind != "wildcard":
        return [term.value]
    return [p for p in pattern_parts(term.value) if isinstance(p, str)]


def _fragments(text: str, extra_breaks: frozenset[str]) -> list[str]:
    """Maximal runs of ``text`` that raw bytes must contain verbatim (up to ASCII case)."""
    fragments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            # A backslash and the escape it may start (\n, \uXXXX) are not verbatim.
            i += 2
            if text[i - 1 : i] == "u":
                hex_run = 0
                while hex_run < 4 and i < len(text) and text[i] in _HEX:
                    i += 1
                    hex_run += 1
            fragments.append("".join(current))
            current = []
            continue
        if not ch.isascii() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch in _BREAKS or ch in extra_breaks:
            fragments.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    fragments.append("".join(current))
    return [f for f in fragments if _usable(f)]


def _usable(fragment: str) -> bool:
    if len(fragment) < MIN_LITERAL_BYTES:
        return False
    if all(ch in _NUMBER_CHARS for ch in fragment):
        return False  # may be part of a number the raw line spells differently
    lowered = fragment.lower()
    return lowered not in "-infinity" and lowered not in "nan"


def _longest(fragments: Iterable[str]) -> str | None:
    best = max(fragments, key=lambda f: (len(f), f), default=None)
    return None if best is None else best.lower()


def _drop_redundant(literals: set[str]) -> set[str]:
    """Drop a literal that contains another: a line containing it contains the shorter one too."""
    return {a for a in literals if not any(b != a and b in a for b in literals)}
