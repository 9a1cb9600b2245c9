"""The query AST: frozen dataclasses, and :func:`to_query`, which renders one back to canonical text.

The parser builds these nodes in a canonical shape (``And``/``Or`` are flattened and have at least two
children, a parenthesised single node is the node itself), so that
``parse(to_query(node)) == node`` for every node the parser can produce.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Union

#: Reserved top-level attributes: searched without ``@`` and never treated as tags.
RESERVED_ATTRIBUTES: frozenset[str] = frozenset({"host", "service", "source", "status", "message", "timestamp", "tags"})

#: Characters a bare (unquoted) value or field renders with a ``\`` in front. The parser accepts a ``\``
#: before any character; rendering escapes these so the text always reads back as the same value.
SPECIAL_CHARACTERS: frozenset[str] = frozenset('+-=&|><!(){}[]^"“”~*?:\\/#@,')

#: Datadog's status remapper spellings, by the status secmon's ingest normalises them to. A ``status:``
#: term with one of these values matches any spelling of its status, case-insensitively, so that
#: ``status:warn`` finds events stored as ``warning`` (ingest) as well as raw ``WARN``.
STATUS_SPELLINGS: dict[str, frozenset[str]] = {
    "emergency": frozenset({"emergency", "emerg", "fatal"}),
    "alert": frozenset({"alert"}),
    "critical": frozenset({"critical", "crit"}),
    "error": frozenset({"error", "err"}),
    "warning": frozenset({"warning", "warn"}),
    "notice": frozenset({"notice"}),
    "info": frozenset({"info", "information", "informational"}),
    "debug": frozenset({"debug", "trace", "verbose"}),
    "ok": frozenset({"ok", "success"}),
}


def status_spellings(value: str) -> frozenset[str] | None:
    """Every spelling of the status ``value`` names (lower case), or ``None`` for an unknown status."""
    lowered = value.lower()
    for spellings in STATUS_SPELLINGS.values():
        if lowered in spellings:
            return spellings
    return None


TermKind = Literal["exact", "wildcard", "phrase"]
CompareOp = Literal[">", ">=", "<", "<="]


@dataclass(frozen=True)
class Field:
    """What a term searches: an attribute column (``path``, reserved or ``@``) or a tag key (``tag=True``)."""

    path: str
    tag: bool = False

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("a field needs a non-empty path")
        if self.tag and self.path in RESERVED_ATTRIBUTES:
            raise ValueError(f"{self.path!r} is a reserved attribute, not a tag key")

    @property
    def column(self) -> str:
        """The event-table column this field reads (tags all live in the ``tags`` column)."""
        return "tags" if self.tag else self.path

    def __str__(self) -> str:
        if self.tag or self.path in RESERVED_ATTRIBUTES:
            return escape_bare(self.path)
        return "@" + escape_bare(self.path)


@dataclass(frozen=True)
class Term:
    """A value search. ``field=None`` is free text on ``message`` (case-insensitive substring).

    ``kind``: ``exact`` (bare value, no unescaped wildcard), ``phrase`` (quoted value; wildcards are
    literal) or ``wildcard`` (bare value with at least one unescaped ``*``/``?``). For ``wildcard`` the
    value is the pattern where ``*`` and ``?`` are wildcards and ``\\*``, ``\\?``, ``\\\\`` are the literal
    characters; for the other kinds the value is the plain text.
    """

    field: Field | None
    value: str
    kind: TermKind = "exact"
    # The value compared with the attribute's in lower case (Sigma's matching; the query language
    # has no syntax for it, so ``str`` does not show it). Free text always is.
    insensitive: bool = False

    def __post_init__(self) -> None:
        if self.kind == "exact" and not self.value:
            raise ValueError("an exact term needs a non-empty value (an empty value is the phrase \"\")")
        if self.kind == "wildcard":
            parts = pattern_parts(self.value)
            if all(isinstance(p, str) for p in parts):
                raise ValueError(f"wildcard term {self.value!r} has no unescaped '*' or '?'")
            if all(p == Wildcard("*") for p in parts):
                raise ValueError("a pattern of only '*' is Exists(field), or MatchAll() for free text")

    def __str__(self) -> str:
        prefix = "" if self.field is None else f"{self.field}:"
        if self.kind == "phrase":
            return prefix + quote_phrase(self.value)
        if self.kind == "wildcard":
            return prefix + "".join(escape_bare(p) if isinstance(p, str) else p.symbol for p in pattern_parts(self.value))
        text = escape_bare(self.value)
        if self.field is None and self.value in ("AND", "OR", "NOT", "CIDR"):
            text = "\\" + text  # a bare operator word would read back as the operator
        return prefix + text


@dataclass(frozen=True)
class Range:
    """``field:[low TO high]`` (``[``/``]`` inclusive, ``{``/``}`` exclusive); a bound of ``None`` is ``*``.

    Bounds keep the number as written (validated); matching is numeric: a value that is not a number
    does not match.
    """

    field: Field
    low: str | None
    high: str | None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def __post_init__(self) -> None:
        for bound in (self.low, self.high):
            if bound is not None and not is_number(bound):
                raise ValueError(f"range bound {bound!r} is not a number")

    def __str__(self) -> str:
        left = "[" if self.low_inclusive else "{"
        right = "]" if self.high_inclusive else "}"
        low = "*" if self.low is None else self.low
        high = "*" if self.high is None else self.high
        return f"{self.field}:{left}{low} TO {high}{right}"


@dataclass(frozen=True)
class Compare:
    """``field:>100`` and friends: numeric comparison; values that are not numbers do not match."""

    field: Field
    op: CompareOp
    value: str

    def __post_init__(self) -> None:
        if self.op not in (">", ">=", "<", "<="):
            raise ValueError(f"unknown comparison {self.op!r}")
        if not is_number(self.value):
            raise ValueError(f"comparison value {self.value!r} is not a number")

    def __str__(self) -> str:
        return f"{self.field}:{self.op}{self.value}"


@dataclass(frozen=True)
class Exists:
    """``field:*``: the attribute is present (not null, or an array with at least one non-null item)."""

    field: Field

    def __str__(self) -> str:
        return f"{self.field}:*"


@dataclass(frozen=True)
class Cidr:
    """``CIDR(@field, net, ...)``: the value is an IP address inside one of ``networks`` (normalised text)."""

    field: Field
    networks: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.networks:
            raise ValueError("CIDR needs at least one network")
        if self.field.tag:
            raise ValueError("CIDR applies to attributes, not tags")

    def __str__(self) -> str:
        return f"CIDR({self.field}, {', '.join(self.networks)})"


@dataclass(frozen=True)
class Regex:
    """The attribute's value matches ``pattern`` somewhere (Rust ``regex`` syntax; Sigma's ``|re``).
    The query language has no syntax for it: ``str`` writes it as Sigma would."""

    field: Field
    pattern: str
    insensitive: bool = False

    def __post_init__(self) -> None:
        if self.field.tag:
            raise ValueError("a regular expression applies to attributes, not tags")

    def __str__(self) -> str:
        return f"{self.field}|re{'|i' if self.insensitive else ''}:{self.pattern!r}"


@dataclass(frozen=True)
class FieldRef:
    """Some value of ``field`` equals some value of ``other`` (Sigma's ``|fieldref``). The query
    language has no syntax for it: ``str`` writes it as Sigma would."""

    field: Field
    other: Field

    def __post_init__(self) -> None:
        if self.field.tag or self.other.tag:
            raise ValueError("a field reference compares attributes, not tags")

    def __str__(self) -> str:
        return f"{self.field}|fieldref:{self.other}"


@dataclass(frozen=True)
class MatchAll:
    """The empty query, or ``*``: every event matches."""

    def __str__(self) -> str:
        return "*"


@dataclass(frozen=True)
class Not:
    child: Query

    def __str__(self) -> str:
        if isinstance(self.child, (And, Or)):
            return f"-({self.child})"
        return f"-{self.child}"


@dataclass(frozen=True)
class And:
    children: tuple[Query, ...]

    def __post_init__(self) -> None:
        if len(self.children) < 2:
            raise ValueError("And needs at least two children")

    def __str__(self) -> str:
        return " ".join(f"({c})" if isinstance(c, Or) else str(c) for c in self.children)


@dataclass(frozen=True)
class Or:
    children: tuple[Query, ...]

    def __post_init__(self) -> None:
        if len(self.children) < 2:
            raise ValueError("Or needs at least two children")

    def __str__(self) -> str:
        # An Or inside an Or only exists when built by hand; parenthesise it so it reads back the same.
        return " OR ".join(f"({c})" if isinstance(c, Or) else str(c) for c in self.children)


Query = Union[And, Or, Not, Term, Range, Compare, Exists, Cidr, Regex, FieldRef, MatchAll]


def to_query(node: Query) -> str:
    """Render ``node`` as canonical query text (``parse(to_query(q)) == q`` for parsed queries)."""
    return str(node)


# --- value helpers shared by the parser, the renderer and the evaluators ---------------------------


@dataclass(frozen=True)
class Wildcard:
    """One unescaped wildcard in a pattern: ``*`` (any run, possibly empty) or ``?`` (one character)."""

    symbol: Literal["*", "?"]


def pattern_parts(pattern: str) -> list[str | Wildcard]:
    """Split a wildcard pattern (``\\``-escaped literals) into literal runs and wildcards."""
    parts: list[str | Wildcard] = []
    literal: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            literal.append(pattern[i + 1])
            i += 2
            continue
        if ch in "*?":
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(Wildcard("*" if ch == "*" else "?"))
        else:
            literal.append(ch)
        i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def lowered_parts(pattern: str) -> list[str | Wildcard]:
    """``pattern_parts`` with the literal runs in lower case: the pattern free text and
    case-insensitive terms match against lower-cased values."""
    return [p.lower() if isinstance(p, str) else p for p in pattern_parts(pattern)]


def escape_pattern_literal(text: str) -> str:
    """Escape ``text`` for use as the literal part of a wildcard pattern value."""
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


#: What separates the words of a free-text phrase: any run of ASCII characters that are not letters or
#: digits (whitespace, punctuation, control). Non-ASCII characters count as word characters.
PHRASE_SEPARATOR_CLASS = r"[\x00-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]"
_PHRASE_SEPARATORS = re.compile(PHRASE_SEPARATOR_CLASS + "+")


def phrase_words(text: str) -> list[str]:
    """The words of a free-text phrase: ``"Hello, world!"`` -> ``["Hello", "world"]``."""
    return [word for word in _PHRASE_SEPARATORS.split(text) if word]


def escape_bare(text: str) -> str:
    """Escape every special character and whitespace of ``text`` with ``\\``."""
    return "".join("\\" + ch if ch in SPECIAL_CHARACTERS or ch.isspace() else ch for ch in text)


def quote_phrase(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: A number as the event table writes it (JSON numbers, stringified): what ranges and comparisons accept.
#: Anchored for Rust's regex engine, where ``$`` is the end of the text (it is not in Python's ``re``).
NUMBER_PATTERN = r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
_NUMBER_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def is_number(text: str) -> bool:
    return _NUMBER_RE.fullmatch(text) is not None
