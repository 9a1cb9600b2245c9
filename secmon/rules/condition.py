"""Case conditions: ``a > 5 && b > 0``, ``(a + b) >= 10 || c == 0``.

A tiny Pratt parser over query names, numbers, arithmetic (``+ - * /``), comparisons
(``> >= < <= == !=``), ``&&``, ``||``, ``!`` and parentheses. A condition compiles two ways that
must agree: :meth:`Condition.evaluate` over a dict of aggregates (the obvious twin) and
:meth:`Condition.to_polars` over columns named after the queries (the fast path).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

# What a condition names a query (or a sequence's step) by.
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<name>" + NAME + r")|(?P<op>&&|\|\||>=|<=|==|!=|[-+*/()<>!]))")

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": lambda a, b: a / b if b else 0.0,
}
# Binding power of binary operators: || < && < comparisons < + - < * /
_BINDING = {"||": 1, "&&": 2, **{op: 3 for op in _COMPARE}, "+": 4, "-": 4, "*": 5, "/": 5}


class ConditionError(ValueError):
    """A condition that does not parse or names an unknown query."""


@dataclass(frozen=True)
class Node:
    op: str  # "num", "name", "!", "neg", or a binary operator
    value: float | str | None = None
    left: Node | None = None
    right: Node | None = None


@dataclass(frozen=True)
class Condition:
    text: str
    root: Node | None  # None: the empty condition, true whenever the case's queries match

    @property
    def names(self) -> set[str]:
        found: set[str] = set()

        def walk(node: Node | None) -> None:
            if node is None:
                return
            if node.op == "name":
                found.add(str(node.value))
            walk(node.left)
            walk(node.right)

        walk(self.root)
        return found

    def evaluate(self, values: Mapping[str, float]) -> bool:
        if self.root is None:
            return True
        return bool(_eval(self.root, values))

    def to_polars(self) -> pl.Expr:
        if self.root is None:
            return pl.lit(True)
        return _to_expr(self.root).cast(pl.Boolean)


def _eval(node: Node, values: Mapping[str, float]) -> float | bool:
    if node.op == "num":
        return float(node.value)  # type: ignore[arg-type]
    if node.op == "name":
        return float(values.get(str(node.value), 0.0))
    if node.op == "!":
        return not _eval(node.left, values)  # type: ignore[arg-type]
    if node.op == "neg":
        return -float(_eval(node.left, values))  # type: ignore[arg-type]
    left = _eval(node.left, values)  # type: ignore[arg-type]
    right = _eval(node.right, values)  # type: ignore[arg-type]
    if node.op == "&&":
        return bool(left) and bool(right)
    if node.op == "||":
        return bool(left) or bool(right)
    if node.op in _COMPARE:
        return _COMPARE[node.op](float(left), float(right))
    return _ARITH[node.op](float(left), float(right))


def _to_expr(node: Node) -> pl.Expr:
    if node.op == "num":
        return pl.lit(float(node.value))  # type: ignore[arg-type]
    if node.op == "name":
        return pl.col(str(node.value)).cast(pl.Float64).fill_null(0.0)
    if node.op == "!":
        return ~_to_expr(node.left).cast(pl.Boolean)  # type: ignore[arg-type]
    if node.op == "neg":
        return -_to_expr(node.left)  # type: ignore[arg-type]
    left = _to_expr(node.left)  # type: ignore[arg-type]
    right = _to_expr(node.right)  # type: ignore[arg-type]
    if node.op == "&&":
        return left.cast(pl.Boolean) & right.cast(pl.Boolean)
    if node.op == "||":
        return left.cast(pl.Boolean) | right.cast(pl.Boolean)
    if node.op == "/":
        return pl.when(right == 0).then(0.0).otherwise(left / right)
    return {
        ">": left > right,
        ">=": left >= right,
        "<": left < right,
        "<=": left <= right,
        "==": left == right,
        "!=": left != right,
        "+": left + right,
        "-": left - right,
        "*": left * right,
    }[node.op]


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ConditionError(f"unexpected character {text[start]!r} at position {start} in condition {text!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), match.start(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self, expected: str) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise ConditionError(f"condition {self.text!r} ends early: expected {expected}")
        self.pos += 1
        return token

    def expression(self, min_binding: int = 0) -> Node:
        left = self.prefix()
        while True:
            token = self.peek()
            if token is None or token[0] != "op" or token[1] not in _BINDING:
                break
            binding = _BINDING[token[1]]
            if binding <= min_binding:
                break
            self.pos += 1
            right = self.expression(binding)
            left = Node(token[1], left=left, right=right)
        return left

    def prefix(self) -> Node:
        kind, value, position = self.next("a query name, a number, '!' or '('")
        if kind == "num":
            return Node("num", float(value))
        if kind == "name":
            return Node("name", value)
        if value == "(":
            inner = self.expression()
            closing = self.next("')'")
            if closing[1] != ")":
                raise ConditionError(f"expected ')' at position {closing[2]} in condition {self.text!r}")
            return inner
        if value == "!":
            return Node("!", left=self.expression(_BINDING["&&"] + 1))
        if value == "-":
            return Node("neg", left=self.expression(_BINDING["*"]))
        raise ConditionError(f"unexpected {value!r} at position {position} in condition {self.text!r}")


def parse_condition(text: str, query_names: tuple[str, ...] | None = None) -> Condition:
    """Parse a case condition; with ``query_names``, every name used must be one of them."""
    if not text or not text.strip():
        return Condition(text or "", None)
    parser = _Parser(text)
    root = parser.expression()
    leftover = parser.peek()
    if leftover is not None and str(leftover[1]).upper() == "THEN":
        raise ConditionError(f"Datadog's THEN (one query's case, then another's) is not supported by secmon yet; "
                             f"a sequence_detection rule with one step per side says the same (condition {text!r})")
    if leftover is not None:
        raise ConditionError(f"unexpected {leftover[1]!r} at position {leftover[2]} in condition {text!r}")
    condition = Condition(text, root)
    if query_names is not None:
        unknown = sorted(condition.names - set(query_names))
        if unknown:
            raise ConditionError(
                f"condition {text!r} names unknown quer{'y' if len(unknown) == 1 else 'ies'} "
                f"{', '.join(unknown)}; the rule's queries are {', '.join(query_names)}"
            )
    return condition
