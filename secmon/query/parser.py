"""Recursive-descent parser for Datadog's log search syntax: ``parse(text) -> Query``.

Grammar (precedence ``NOT`` > ``AND`` > ``OR``; juxtaposition is ``AND``)::

    query    := <empty> | or
    or       := and (("OR" | "||") and)*
    and      := unary (("AND" | "&&")? unary)*
    unary    := ("NOT" | "-" | "!") unary | primary        # '-' and '!' stick to what follows
    primary  := "(" or ")" | "CIDR(" field ("," network)+ ")" | field ":" value | text
    value    := '"' phrase '"' | "(" value-or ")" | "[" n "TO" n "]" | (">"|">="|"<"|"<=") n | "*" | bare
    text     := '"' phrase '"' | bare                        # free text on ``message``

Operators are upper case (``and`` is a word). ``\\`` makes the next character literal anywhere; a bare
word ends at unescaped whitespace or a parenthesis. See :mod:`secmon.query` for the semantics.
"""

from __future__ import annotations

import ipaddress

from secmon.errors import QuerySyntaxError
from secmon.query.ast import (
    RESERVED_ATTRIBUTES,
    And,
    Cidr,
    Compare,
    CompareOp,
    Exists,
    Field,
    MatchAll,
    Not,
    Or,
    Query,
    Range,
    Term,
    escape_pattern_literal,
    is_number,
)

_CURLY_QUOTES = "“”"
_OPERATOR_WORDS = {"AND": "AND", "&&": "AND", "OR": "OR", "||": "OR", "NOT": "NOT"}

# A character of a bare word with whether it was escaped (escaped wildcards and operators are literal).
_Char = tuple[str, bool]


def parse(text: str) -> Query:
    """Parse a log search query. Raises :class:`~secmon.errors.QuerySyntaxError` with the position."""
    if not isinstance(text, str):
        raise TypeError(f"query must be a str, got {type(text).__name__}")
    return _Parser(text).parse_query()


def _make_and(children: list[Query]) -> Query:
    flat: list[Query] = []
    for child in children:
        flat.extend(child.children if isinstance(child, And) else (child,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def _make_or(children: list[Query]) -> Query:
    flat: list[Query] = []
    for child in children:
        flat.extend(child.children if isinstance(child, Or) else (child,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


#: Parentheses and prefix operators nest at most this deep (the parser and evaluators recurse).
MAX_NESTING = 64


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def nest(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"at most {MAX_NESTING} levels of nested parentheses and negations", position)

    # --- low-level scanning -------------------------------------------------------------------------

    def error(self, expected: str, position: int | None = None) -> QuerySyntaxError:
        at = self.pos if position is None else position
        end = at
        while end < len(self.text) and not self.text[end].isspace() and self.text[end] not in "()":
            end += 1
        found = (self.text[at:end] or self.text[at]) if at < len(self.text) else None
        return QuerySyntaxError(self.text, at, expected, found)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_whitespace(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def raw_word(self) -> str:
        """The raw text from here to the next whitespace or parenthesis (for operator lookahead)."""
        end = self.pos
        while end < len(self.text) and not self.text[end].isspace() and self.text[end] not in "()":
            end += 1
        return self.text[self.pos : end]

    def peek_operator(self) -> str | None:
        return _OPERATOR_WORDS.get(self.raw_word())

    def read_bare(self, stop_at_colon: bool) -> tuple[list[_Char], bool]:
        """Read a bare word; returns its characters and whether it stopped at an unescaped ':'."""
        chars: list[_Char] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\":
                if self.pos + 1 >= len(text):
                    raise self.error("a character after '\\' (write '\\\\' for a backslash)")
                chars.append((text[self.pos + 1], True))
                self.pos += 2
                continue
            if ch.isspace() or ch in "()":
                return chars, False
            if ch == ":" and stop_at_colon:
                return chars, True
            if ch == '"':
                raise self.error("whitespace before a quoted phrase, or '\\\"' for a literal quote")
            if ch in _CURLY_QUOTES:
                raise self.error(f"a straight quote '\"' for a phrase, or '\\{ch}' for a literal {ch}")
            chars.append((ch, False))
            self.pos += 1
        return chars, False

    def expect_term_end(self, what: str) -> None:
        if not self.at_end() and not self.peek().isspace() and self.peek() not in "()":
            raise self.error(f"whitespace or a parenthesis after {what}")

    # --- grammar -----------------------------------------------------------------------------------

    def parse_query(self) -> Query:
        self.skip_whitespace()
        if self.at_end():
            return MatchAll()
        node = self.parse_or(None)
        self.skip_whitespace()
        if not self.at_end():
            if self.peek() == ")":
                raise self.error("end of query (this ')' closes nothing)")
            raise self.error("end of query")
        return node

    def parse_or(self, field: Field | None) -> Query:
        children = [self.parse_and(field)]
        while True:
            self.skip_whitespace()
            if self.peek_operator() != "OR":
                return _make_or(children)
            self.pos += len(self.raw_word())
            children.append(self.parse_and(field))

    def parse_and(self, field: Field | None) -> Query:
        children = [self.parse_unary(field)]
        while True:
            self.skip_whitespace()
            if self.at_end() or self.peek() == ")" or self.peek_operator() == "OR":
                return _make_and(children)
            if self.peek_operator() == "AND":
                self.pos += len(self.raw_word())
            children.append(self.parse_unary(field))

    def parse_unary(self, field: Field | None) -> Query:
        self.skip_whitespace()
        if self.at_end():
            raise self.error("a term")
        operator = self.peek_operator()
        if operator == "NOT":
            self.nest(self.pos)
            self.pos += 3
            node = Not(self.parse_unary(field))
            self.depth -= 1
            return node
        if operator is not None:
            raise self.error(f"a term before {self.raw_word()}")
        if self.peek() in "-!":
            sign = self.pos
            self.pos += 1
            if self.at_end() or self.peek().isspace():
                raise self.error(f"a term right after '{self.text[sign]}' (no space)")
            self.nest(sign)
            node = Not(self.parse_unary(field))
            self.depth -= 1
            return node
        return self.parse_primary(field)

    def parse_group(self, field: Field | None) -> Query:
        opened = self.pos
        self.nest(opened)
        self.pos += 1
        self.skip_whitespace()
        if self.peek() == ")":
            raise self.error("a term inside '(' ')'")
        node = self.parse_or(field)
        self.skip_whitespace()
        if self.peek() != ")":
            raise self.error(f"')' to close '(' at {opened}")
        self.pos += 1
        self.depth -= 1
        return node

    def parse_primary(self, field: Field | None) -> Query:
        ch = self.peek()
        if ch == "(":
            return self.parse_group(field)
        if ch == ")":
            raise self.error("a term")
        if field is not None:
            return self.parse_value(field)
        if ch == '"':
            return Term(None, self.read_phrase(), "phrase")
        if self.text.startswith("CIDR(", self.pos):
            return self.parse_cidr()
        start = self.pos
        chars, at_colon = self.read_bare(stop_at_colon=True)
        if not at_colon:
            return self.value_term(None, chars)
        named = self.resolve_field(chars, start)
        self.pos += 1  # the ':'
        return self.parse_value(named)

    def resolve_field(self, chars: list[_Char], start: int) -> Field:
        if not chars:
            raise self.error("a field name before ':'", start)
        if any(c in "*?" and not escaped for c, escaped in chars):
            if chars == [("*", False)]:
                raise self.error("a field name (full-text search '*:term' is not supported)", start)
            raise self.error("a field name without wildcards", start)
        name = "".join(c for c, _ in chars)
        if chars[0] == ("@", False):
            if len(name) == 1:
                raise self.error("an attribute name after '@'", start + 1)
            return Field(name[1:])
        if name in RESERVED_ATTRIBUTES:
            return Field(name)
        return Field(name, tag=True)

    def parse_value(self, field: Field) -> Query:
        ch = self.peek()
        if ch == "" or ch.isspace() or ch == ")":
            raise self.error(f"a value for {field}")
        if ch == "(":
            return self.parse_group(field)
        if ch == '"':
            return Term(field, self.read_phrase(), "phrase")
        if ch in "[{":
            return self.parse_range(field)
        start = self.pos
        chars, _ = self.read_bare(stop_at_colon=False)
        if chars == [(c, False) for c in "CIDR"] and self.peek() == "(":
            raise self.error(f"CIDR({field}, network, ...) (CIDR takes the attribute as first argument)", start)
        if chars and chars[0][0] in "<>" and not chars[0][1]:
            op = chars[0][0]
            rest = chars[1:]
            if rest and rest[0] == ("=", False):
                op += "="
                rest = rest[1:]
            number = "".join(c for c, _ in rest)
            if not is_number(number):
                raise self.error(f"a number after '{op}' (like 100, -1.5 or 2e3)", start + len(op))
            return Compare(field, _compare_op(op), number)
        return self.value_term(field, chars)

    def value_term(self, field: Field | None, chars: list[_Char]) -> Query:
        if all(c == "*" and not escaped for c, escaped in chars):
            return MatchAll() if field is None else Exists(field)
        if not any(c in "*?" and not escaped for c, escaped in chars):
            return Term(field, "".join(c for c, _ in chars), "exact")
        pattern = "".join(c if c in "*?" and not escaped else escape_pattern_literal(c) for c, escaped in chars)
        return Term(field, pattern, "wildcard")

    def read_phrase(self) -> str:
        opened = self.pos
        self.pos += 1
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\":
                if self.pos + 1 >= len(text):
                    break
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            if ch == '"':
                self.pos += 1
                self.expect_term_end("a closing quote")
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise self.error(f"'\"' to close the quote at {opened}")

    def read_range_bound(self) -> str | None:
        start = self.pos
        while not self.at_end() and not self.peek().isspace() and self.peek() not in "]}":
            self.pos += 1
        bound = self.text[start : self.pos]
        if bound == "*":
            return None
        if not is_number(bound):
            raise self.error("a number or '*' as range bound", start)
        return bound

    def parse_range(self, field: Field) -> Query:
        opened = self.pos
        low_inclusive = self.peek() == "["
        self.pos += 1
        self.skip_whitespace()
        low = self.read_range_bound()
        self.skip_whitespace()
        if self.text.startswith("TO", self.pos) and self.pos + 2 == len(self.text):
            raise self.error("a number or '*' after 'TO'", len(self.text))
        if not self.text.startswith("TO", self.pos) or not self.text[self.pos + 2 : self.pos + 3].isspace():
            raise self.error("'TO' (followed by whitespace) between the range bounds")
        self.pos += 2
        self.skip_whitespace()
        high = self.read_range_bound()
        self.skip_whitespace()
        if self.peek() not in ("]", "}") or self.at_end():
            raise self.error(f"']' or '}}' to close the range at {opened}")
        high_inclusive = self.peek() == "]"
        self.pos += 1
        self.expect_term_end("a range")
        return Range(field, low, high, low_inclusive, high_inclusive)

    def parse_cidr(self) -> Query:
        opened = self.pos
        self.pos += len("CIDR(")
        self.skip_whitespace()
        start = self.pos
        chars: list[_Char] = []
        while not self.at_end() and self.peek() not in ",)" and not self.peek().isspace():
            if self.peek() == "\\" and self.pos + 1 < len(self.text):
                chars.append((self.text[self.pos + 1], True))
                self.pos += 2
            else:
                chars.append((self.peek(), False))
                self.pos += 1
        name = "".join(c for c, _ in chars)
        if chars[:1] == [("@", False)] and len(name) > 1:
            field = Field(name[1:])
        elif name in RESERVED_ATTRIBUTES:
            field = Field(name)
        else:
            raise self.error("an attribute like @network.client.ip as the first CIDR argument", start)
        networks: list[str] = []
        while True:
            self.skip_whitespace()
            if self.peek() == ")" and networks:
                self.pos += 1
                self.expect_term_end("CIDR(...)")
                return Cidr(field, tuple(networks))
            if self.peek() != ",":
                raise self.error(f"',' or ')' to close 'CIDR(' at {opened}")
            self.pos += 1
            self.skip_whitespace()
            start = self.pos
            while not self.at_end() and self.peek() not in ",)" and not self.peek().isspace():
                self.pos += 1
            token = self.text[start : self.pos]
            try:
                networks.append(str(ipaddress.ip_network(token, strict=False)))
            except ValueError:
                raise self.error("an IPv4 or IPv6 network like 10.0.0.0/8 or 2001:db8::/32", start) from None


def _compare_op(op: str) -> CompareOp:
    if op == ">":
        return ">"
    if op == ">=":
        return ">="
    if op == "<":
        return "<"
    return "<="
