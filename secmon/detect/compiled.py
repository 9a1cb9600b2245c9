"""Rules compiled for execution: parsed queries, Polars expressions, prefilter literals.

Compiling happens once per rule set. The same compiled rule feeds the fast path (Polars
expressions over event tables, literals for the native prefilter) and the reference twin
(``secmon.query.evaluate`` per event), so both read one parse of each query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import polars as pl

from secmon import query as q
from secmon.rules.condition import Condition, parse_condition
from secmon.rules.model import SEVERITY_RANK, Rule


def attribute_path(field: str) -> str:
    """Event-table column for a rule field: ``@network.client.ip`` -> ``network.client.ip``."""
    return field[1:] if field.startswith("@") else field


@dataclass(frozen=True)
class CompiledQuery:
    name: str
    ast: q.Query
    aggregation: str
    group_by: tuple[str, ...]  # event-table columns
    distinct: tuple[str, ...]
    metrics: tuple[str, ...]
    optional_group_by: bool


@dataclass(frozen=True)
class CompiledCase:
    name: str
    severity: str
    condition: Condition


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    index: int  # position in the rule set; names the flag columns
    queries: tuple[CompiledQuery, ...]
    requires: tuple[q.Query, ...]
    suppresses: tuple[q.Query, ...]
    cases: tuple[CompiledCase, ...]

    @classmethod
    def compile(cls, rule: Rule, index: int) -> CompiledRule:
        queries = tuple(
            CompiledQuery(
                name=rule.query_name(i),
                ast=q.parse(rq.query),
                aggregation=rq.aggregation,
                group_by=tuple(attribute_path(f) for f in rq.group_by_fields),
                distinct=tuple(attribute_path(f) for f in rq.distinct_fields),
                metrics=tuple(attribute_path(f) for f in rq.metric_fields),
                optional_group_by=rq.has_optional_group_by_fields,
            )
            for i, rq in enumerate(rule.queries)
        )
        cases = tuple(
            CompiledCase(case.name, case.status, parse_condition(case.condition, rule.query_names)) for case in rule.cases
        )
        return cls(
            rule=rule,
            index=index,
            queries=queries,
            requires=tuple(q.parse(f.query) for f in rule.filters if f.action == "require"),
            suppresses=tuple(q.parse(f.query) for f in rule.filters if f.action == "suppress"),
            cases=cases,
        )

    def flag_column(self, query_index: int) -> str:
        """Column holding 'event matches query i of this rule, after filters'."""
        return f"__r{self.index}q{query_index}"

    @property
    def flag_columns(self) -> tuple[str, ...]:
        return tuple(self.flag_column(i) for i in range(len(self.queries)))

    @cached_property
    def attribute_paths(self) -> frozenset[str]:
        """Every event-table column this rule reads."""
        paths: set[str] = {"timestamp"}
        for cq in self.queries:
            paths |= q.attribute_paths(cq.ast)
            paths.update(cq.group_by, cq.distinct, cq.metrics)
        for ast in self.requires + self.suppresses:
            paths |= q.attribute_paths(ast)
        return frozenset(paths)

    def flag_expressions(self, schema: Mapping[str, pl.DataType]) -> list[pl.Expr]:
        """One boolean expression per query: the query matches, every require filter matches,
        no suppress filter matches."""
        gate = pl.lit(True)
        for ast in self.requires:
            gate = gate & q.compile_polars(ast, schema)
        for ast in self.suppresses:
            gate = gate & ~q.compile_polars(ast, schema)
        return [
            (q.compile_polars(cq.ast, schema) & gate).fill_null(False).alias(self.flag_column(i))
            for i, cq in enumerate(self.queries)
        ]

    def matches_event(self, event: dict, query_index: int) -> bool:
        """The obvious twin of :meth:`flag_expressions` for one event dict."""
        if not all(q.evaluate(ast, event) for ast in self.requires):
            return False
        if any(q.evaluate(ast, event) for ast in self.suppresses):
            return False
        return q.evaluate(self.queries[query_index].ast, event)

    def prefilter_literals(
        self, verbatim: Callable[[str], bool], source_spellings: Callable[[str], list[str] | None] | None = None
    ) -> list[bytes] | None:
        """Literals one of which the raw line of any event this rule can match must contain;
        None when the rule cannot be prefiltered for this input format.

        ``source_spellings(value)``, when the format knows it, lists raw strings one of which a line
        whose event gets ``source:value`` contains (``source`` is usually derived, so without it
        ``source:`` terms give no literal).
        """
        if source_spellings is not None:
            plain = verbatim

            def verbatim(path: str) -> bool:  # noqa: F811 - widened for the rewritten source terms
                return path == _RAW_SPELLING or plain(path)

        def literals_of(ast: q.Query) -> list[bytes] | None:
            if source_spellings is not None:
                ast = _rewrite_source_terms(ast, source_spellings)
            return q.prefilter_literals(ast, verbatim)

        literals: list[bytes] = []
        require_literals = [literals_of(ast) for ast in self.requires]
        best_require = min((lits for lits in require_literals if lits), key=_selectivity, default=None)
        for cq in self.queries:
            own = literals_of(cq.ast)
            candidates = [lits for lits in (own, best_require) if lits]
            if not candidates:
                return None
            literals.extend(min(candidates, key=_selectivity))
        return literals

    def severity_rank(self, case_index: int) -> int:
        return SEVERITY_RANK[self.cases[case_index].severity]


_RAW_SPELLING = "__raw_spelling__"


def _rewrite_source_terms(node: q.Query, spellings: Callable[[str], list[str] | None]) -> q.Query:
    """For literal extraction only: ``source:x`` becomes 'the line contains one of x's spellings'."""
    if isinstance(node, q.Term) and node.field is not None and node.field.path == "source" and node.kind != "wildcard":
        options = spellings(node.value)
        if not options:
            return node
        terms = [q.Term(q.Field(_RAW_SPELLING), option, "phrase") for option in options]
        return terms[0] if len(terms) == 1 else q.Or(tuple(terms))
    if isinstance(node, (q.And, q.Or)):
        return type(node)(tuple(_rewrite_source_terms(child, spellings) for child in node.children))
    return node


def _selectivity(literals: Sequence[bytes]) -> float:
    """Roughly how often a line contains one of the literals: each byte of a literal divides its
    chance by ~16, and all-digit literals ("200", "404") are common in any log line."""
    cost = 0.0
    for literal in literals:
        effective = len(literal) - (2 if literal.isdigit() else 0)
        cost += 16.0 ** -max(effective, 1)
    return cost


def compile_rules(rules: Iterable[Rule]) -> tuple[CompiledRule, ...]:
    return tuple(CompiledRule.compile(rule, index) for index, rule in enumerate(rules) if rule.is_enabled)
