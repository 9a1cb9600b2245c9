"""Compile a query AST to one vectorised, never-null boolean Polars expression over an event table.

Columns are ``pl.String`` or ``pl.List(pl.String)`` (integers such as ``timestamp`` are read as their
decimal text); an array column matches when any item does. A column the schema lacks is all-null, so a
positive term on it is false and its negation true. Which string operation each leaf needs (``==``,
``starts_with``, ``contains_any``, a regex, ...) is chosen in :mod:`secmon.query.value_tests`, shared with
the native flag programs of :mod:`secmon.query.native`; here each becomes a Polars expression. CIDR tests
the distinct IPv4 values in the native IpSet; only IPv6 candidates (distinct values containing ``:``) go
through ``ipaddress`` in Python.
"""

from __future__ import annotations

import functools
import ipaddress
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from secmon.query.ast import NUMBER_PATTERN, And, Cidr, Compare, Exists, FieldRef, MatchAll, Not, Or, Query, Range, Regex, Term
from secmon.query.value_tests import (
    ValueTest,
    compare_leaf,
    exists_leaf,
    or_groups,
    range_leaf,
    regex_leaf,
    term_leaf,
)

Predicate = Callable[[pl.Expr], pl.Expr]


def compile_polars(query: Query, schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.Expr:
    """A boolean expression, true for the rows of an event table with ``schema`` that match ``query``."""
    return _Compiler(schema).compile(query)


def attribute_paths(query: Query) -> set[str]:
    """The event-table columns ``query`` reads (``message`` for free text, ``tags`` for tag searches)."""
    if isinstance(query, (And, Or)):
        return set().union(*(attribute_paths(child) for child in query.children))
    if isinstance(query, Not):
        return attribute_paths(query.child)
    if isinstance(query, Term):
        return {"message"} if query.field is None else {query.field.column}
    if isinstance(query, (Range, Compare, Exists, Cidr, Regex)):
        return {query.field.column}
    if isinstance(query, FieldRef):
        return {query.field.column, query.other.column}
    return set()


def _numeric(e: pl.Expr) -> pl.Expr:
    """The value as a float when it is written as a number, else null (so it matches no comparison)."""
    return pl.when(e.str.contains(NUMBER_PATTERN)).then(e.cast(pl.Float64, strict=False))


def _number(low: float | None, low_inclusive: bool, high: float | None, high_inclusive: bool) -> Predicate:
    def predicate(e: pl.Expr) -> pl.Expr:
        value = _numeric(e)
        conditions: list[pl.Expr] = [value.is_not_null()]
        if low is not None:
            conditions.append(value >= low if low_inclusive else value > low)
        if high is not None:
            conditions.append(value <= high if high_inclusive else value < high)
        return functools.reduce(operator.and_, conditions)

    return predicate


def _prefix_suffix(head: str, tail: str) -> Predicate:
    # The prefix and suffix must not overlap: "ab*ba" does not match "aba".
    return lambda e: e.str.starts_with(head) & e.str.ends_with(tail) & (e.str.len_chars() >= len(head) + len(tail))


def _strip_prefix(prefix: str, inner: ValueTest) -> Predicate:
    test = predicate(inner)
    return lambda e: test(pl.when(e.str.starts_with(prefix)).then(e.str.strip_prefix(prefix)))


def _lower(inner: ValueTest) -> Predicate:
    test = predicate(inner)
    return lambda e: test(e.str.to_lowercase())


def _is_in(values: list[str]) -> Predicate:
    accepted = pl.Series(values, dtype=pl.String).implode()
    return lambda e: e.is_in(accepted)


_PREDICATES: dict[str, Callable[..., Predicate]] = {
    "exists": lambda: lambda e: e.is_not_null(),
    "eq": lambda text: lambda e: e == text,
    "in": _is_in,
    "prefix": lambda text: lambda e: e.str.starts_with(text),
    "suffix": lambda text: lambda e: e.str.ends_with(text),
    "contains": lambda text: lambda e: e.str.contains(text, literal=True),
    "prefix_suffix": _prefix_suffix,
    "contains_any": lambda needles: lambda e: e.str.contains_any(needles),
    "regex": lambda pattern: lambda e: e.str.contains(pattern),
    "number": _number,
    "lower": _lower,
    "strip_prefix": _strip_prefix,
}


def predicate(test: ValueTest) -> Predicate:
    """A value test (:mod:`secmon.query.value_tests`) as a function of a String expression."""
    return _PREDICATES[test[0]](*test[1:])


def _cidr_batch(networks: Sequence[str]) -> Callable[[pl.Series], pl.Series]:
    # IPv4 networks in the native IpSet; IPv6 candidates (values with ':') are few
    # and parsed by ipaddress once per distinct value.
    parsed = [ipaddress.ip_network(text) for text in networks]
    v4_texts = [str(n) for n in parsed if n.version == 4]
    v4_networks = None
    if v4_texts:
        from secmon._core import IpSet

        v4_networks = IpSet.from_lists([v4_texts])
    v6_networks = [n for n in parsed if n.version == 6]

    def ipv6_inside(text: str) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return address.version == 6 and any(address in n for n in v6_networks)

    def mask(series: pl.Series) -> pl.Series:
        is_list = isinstance(series.dtype, pl.List)
        values = series.explode() if is_list else series
        distinct = values.drop_nulls().unique()
        inside_parts = []
        if v4_networks is not None:
            # The native IpSet holds only the IPv4 networks and sees only values without ':' (it
            # would match IPv4-mapped IPv6 text against them, which ``ipaddress`` does not);
            # it parses addresses exactly as ``ipaddress`` does (its tests compare the two).
            dotted = distinct.filter(~distinct.str.contains(":", literal=True))
            inside_parts.append(dotted.filter(pl.Series(v4_networks.lookup(dotted) >= 0)))
        if v6_networks:
            candidates = distinct.filter(distinct.str.contains(":", literal=True)).to_list()
            inside_parts.append(pl.Series([v for v in candidates if ipv6_inside(v)], dtype=pl.String))
        inside = pl.concat(inside_parts) if inside_parts else pl.Series([], dtype=pl.String)
        if is_list:
            result = series.list.eval(pl.element().is_in(inside.implode())).list.any()
        else:
            result = series.is_in(inside.implode())
        return result.fill_null(False)

    return mask


class _Compiler:
    def __init__(self, schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> None:
        self.schema = schema

    def compile(self, node: Query) -> pl.Expr:
        if isinstance(node, MatchAll):
            return pl.repeat(True, pl.len(), dtype=pl.Boolean)
        # Horizontal folds keep a rule with hundreds of terms a flat expression, not a deep tree.
        if isinstance(node, And):
            return pl.all_horizontal([self.compile(c) for c in node.children])
        if isinstance(node, Or):
            others, leaves = or_groups(node.children)
            return pl.any_horizontal([self.compile(c) for c in others] + [self.leaf(*leaf) for leaf in leaves])
        if isinstance(node, Not):
            return ~self.compile(node.child)
        if isinstance(node, Term):
            return self.leaf(*term_leaf(node))
        if isinstance(node, Exists):
            return self.leaf(*exists_leaf(node))
        if isinstance(node, Range):
            return self.leaf(*range_leaf(node))
        if isinstance(node, Compare):
            return self.leaf(*compare_leaf(node))
        if isinstance(node, Cidr):
            return self.cidr(node)
        if isinstance(node, Regex):
            return self.leaf(*regex_leaf(node))
        if isinstance(node, FieldRef):
            return self.same_value(node.field.path, node.other.path)
        raise TypeError(f"not a query node: {node!r}")

    def never(self) -> pl.Expr:
        return pl.repeat(False, pl.len(), dtype=pl.Boolean)

    def column(self, name: str) -> tuple[pl.Expr, bool] | None:
        """The column as String items, and whether it is a list; ``None`` when it is absent or all-null."""
        dtype = self.schema.get(name)
        if dtype is None or dtype == pl.Null:
            return None
        expr = pl.col(name)
        if dtype == pl.List or isinstance(dtype, pl.List):
            inner = dtype.inner if isinstance(dtype, pl.List) else pl.String
            if inner == pl.Null:
                return None
            if inner != pl.String:
                expr = expr.cast(pl.List(_checked_scalar(name, inner)))
            return expr, True
        if dtype != pl.String:
            expr = expr.cast(_checked_scalar(name, dtype))
        return expr, False

    def leaf(self, name: str, test: ValueTest) -> pl.Expr:
        """Some item of column ``name`` passes ``test`` (never null)."""
        found = self.column(name)
        if found is None:
            return self.never()
        expr, is_list = found
        check = predicate(test)
        if is_list:
            return expr.list.eval(check(pl.element()).fill_null(False)).list.any().fill_null(False)
        return check(expr).fill_null(False)

    def same_value(self, name: str, other: str) -> pl.Expr:
        """Some item of column ``name`` equals some item of column ``other`` (never null)."""
        found, found_other = self.column(name), self.column(other)
        if found is None or found_other is None:
            return self.never()
        items = [(expr if is_list else pl.concat_list([expr])).list.drop_nulls() for expr, is_list in (found, found_other)]
        return (items[0].list.set_intersection(items[1]).list.len() > 0).fill_null(False)

    def cidr(self, node: Cidr) -> pl.Expr:
        found = self.column(node.field.path)
        if found is None:
            return self.never()
        expr, _ = found
        return expr.map_batches(_cidr_batch(node.networks), return_dtype=pl.Boolean, is_elementwise=True).fill_null(
            False
        )


def _checked_scalar(column: str, dtype: Any) -> type[pl.DataType]:  # Any: dtype classes and instances
    """Integers and booleans read as their text; anything else is not an event-table column."""
    if dtype.is_integer() or dtype == pl.Boolean:
        return pl.String
    raise TypeError(
        f"column {column!r} has dtype {dtype}; an event table holds String, List(String) or integer columns"
    )
