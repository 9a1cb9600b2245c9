"""Lower a query AST to a predicate of the native core's ``FlagProgram``: the fast twin of
:func:`secmon.query.compile_polars` for tables the native extractor builds.

The predicate is nested tuples (the grammar is in ``secmon/_core.pyi``): ``("and", [...])``,
``("or", [...])``, ``("not", p)``, ``("const", bool)`` and leaves ``("any", column, test)``
with the value tests of :mod:`secmon.query.value_tests`, which the Polars compiler reads too, so
both compilers make the same choice of string operation for every leaf.

Why a second compiler: over the default rule pack, the Polars flag query (about 70 expressions,
each over every row) was most of a scan's main-thread time, while a row of one log source can
only match that source's rules. The core evaluates a row's predicates in one pass, stops an
``and`` at its first false child (cheap equality tests are put first), and splits rows over threads.

A CIDR term with an IPv6 network is not lowered (:class:`NotNative`): its Polars twin parses IPv6
candidates with ``ipaddress``, whose accepted spellings the core does not reproduce.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from secmon.query.ast import And, Cidr, Compare, Exists, FieldRef, MatchAll, Not, Or, Query, Range, Regex, Term
from secmon.query.value_tests import Leaf, compare_leaf, exists_leaf, or_groups, range_leaf, regex_leaf, term_leaf

Predicate = tuple[Any, ...]

# Cheapest first within an ``and``: a row of another source fails on its first child.
_COST = {"const": 0, "eq": 1, "in": 1, "exists": 1, "prefix": 2, "suffix": 2, "prefix_suffix": 2, "contains": 3}


class NotNative(ValueError):
    """A query the native flag program does not evaluate exactly like its Polars twin."""


def lower(node: Query) -> Predicate:
    """The native predicate of ``node`` (:class:`NotNative` when there is none)."""
    if isinstance(node, MatchAll):
        return ("const", True)
    if isinstance(node, And):
        return _joined("and", sorted((lower(c) for c in node.children), key=_cost))
    if isinstance(node, Or):
        others, leaves = or_groups(node.children)
        return _joined("or", [lower(c) for c in others] + [_any(leaf) for leaf in leaves])
    if isinstance(node, Not):
        return ("not", lower(node.child))
    if isinstance(node, Term):
        return _any(term_leaf(node))
    if isinstance(node, Exists):
        return _any(exists_leaf(node))
    if isinstance(node, Range):
        return _any(range_leaf(node))
    if isinstance(node, Compare):
        return _any(compare_leaf(node))
    if isinstance(node, Cidr):
        return _cidr(node)
    if isinstance(node, Regex):
        return _any(regex_leaf(node))
    if isinstance(node, FieldRef):
        raise NotNative(f"a comparison of two fields: {node}")  # the program tests one column at a time
    raise TypeError(f"not a query node: {node!r}")


def _joined(op: str, children: list[Predicate]) -> Predicate:
    # ``source:(a OR b)`` groups into one leaf: the leaf itself, so the core sees the gate.
    return children[0] if len(children) == 1 else (op, children)


def _any(leaf: Leaf) -> Predicate:
    column, test = leaf
    return ("any", column, test)


def _cost(predicate: Predicate) -> int:
    if predicate[0] == "any":
        return _COST.get(predicate[2][0], 4)
    return _COST.get(predicate[0], 5)


def _cidr(node: Cidr) -> Predicate:
    networks = [ipaddress.ip_network(text) for text in node.networks]
    if any(n.version == 6 for n in networks):
        raise NotNative(f"CIDR with an IPv6 network: {node}")
    from secmon._core import IpSet

    # As the Polars twin: values holding ':' are never in an IPv4 network.
    return ("any", node.field.path, ("in_ipset", IpSet.from_lists([[str(n) for n in networks]]), True))
