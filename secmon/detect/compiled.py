"""Rules compiled for execution: parsed queries, Polars expressions, prefilter literals.

Compiling happens once per rule set. The same compiled rule feeds the fast paths (predicates of
the native flag program and Polars expressions over event tables, literals for the native
prefilter) and the reference twin (``secmon.query.evaluate`` per event), so all read one parse of
each query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import polars as pl

from secmon import query as q
from secmon.detect.fields import geo_columns, source_columns, value_column
from secmon.query.literals import names_a_source as names_a_source
from secmon.query.native import lower
from secmon.rules.condition import Condition, parse_condition
from secmon.rules.model import Rule
from secmon.severity import SEVERITY_RANK


def _metric_columns(aggregation: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """A query's metric value columns; a geo_data query's location attribute reads as its parts."""
    columns = tuple(value_column(f) for f in fields)
    if aggregation == "geo_data":
        return tuple(c for column in columns for c in geo_columns(column))
    return columns


def _steps(rule: Rule) -> tuple[CompiledStep, ...]:
    options = rule.options.sequence_detection_options
    if rule.options.detection_method != "sequence_detection" or options is None:
        return ()
    after = {t.child: t.evaluation_window * 1000 for t in options.step_transitions}
    names = rule.query_names
    steps = []
    for step in options.steps:
        condition = parse_condition(step.condition, names)
        read = tuple(i for i, name in enumerate(names) if name in condition.names) or tuple(range(len(names)))
        steps.append(CompiledStep(step.name, condition, step.evaluation_window * 1000, after.get(step.name, 0), read))
    return tuple(steps)


@dataclass(frozen=True)
class CompiledQuery:
    name: str
    ast: q.Query
    aggregation: str
    group_by: tuple[str, ...]  # value columns (secmon.detect.fields)
    distinct: tuple[str, ...]
    metrics: tuple[str, ...]
    optional_group_by: bool


@dataclass(frozen=True)
class CompiledCase:
    name: str
    severity: str
    condition: Condition


@dataclass(frozen=True)
class CompiledStep:
    """A sequence step: its condition over the queries' counts in its window, and how long after
    the previous step it may come (0 for the first)."""

    name: str
    condition: Condition
    window_ms: int
    after_previous_ms: int
    queries: tuple[int, ...]  # the queries its condition reads: one of theirs must arrive for it to be reached


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    index: int  # position among the compiled rules; names the flag columns
    queries: tuple[CompiledQuery, ...]
    requires: tuple[q.Query, ...]
    suppresses: tuple[q.Query, ...]
    cases: tuple[CompiledCase, ...]
    steps: tuple[CompiledStep, ...] = ()  # a sequence rule's, in order

    @classmethod
    def compile(cls, rule: Rule, index: int) -> CompiledRule:
        queries = tuple(
            CompiledQuery(
                name=rule.query_name(i),
                ast=rule.query_ast(i),
                aggregation=rq.aggregation,
                group_by=tuple(value_column(f) for f in rq.group_by_fields),
                distinct=tuple(value_column(f) for f in rq.distinct_fields),
                metrics=_metric_columns(rq.aggregation, rq.metric_fields),
                optional_group_by=rq.has_optional_group_by_fields,
            )
            for i, rq in enumerate(rule.queries)
        )
        cases = tuple(
            CompiledCase(case.name, case.status, parse_condition(case.condition, rule.case_names)) for case in rule.cases
        )
        return cls(
            rule=rule,
            index=index,
            queries=queries,
            requires=tuple(q.parse(f.query) for f in rule.filters if f.action == "require"),
            suppresses=tuple(q.parse(f.query) for f in rule.filters if f.action == "suppress"),
            cases=cases,
            steps=_steps(rule),
        )

    @property
    def sequence_span_ms(self) -> int:
        """How far before a sequence's last step its events may lie: the first step's window and
        every transition's (what a sequence signal counts events over)."""
        return self.steps[0].window_ms + sum(step.after_previous_ms for step in self.steps) if self.steps else 0

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
            paths.update(c for value in (*cq.group_by, *cq.distinct, *cq.metrics) for c in source_columns(value))
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

    def native_flags(self) -> list[tuple[str, tuple[Any, ...]]]:
        """:meth:`flag_expressions` as predicates of the native ``FlagProgram`` (named as the
        flag columns); ``NotNative`` when a query has no exact native form."""
        gate = [lower(ast) for ast in self.requires] + [("not", lower(ast)) for ast in self.suppresses]
        return [
            (self.flag_column(i), ("and", [lower(cq.ast), *gate]) if gate else lower(cq.ast))
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
        self, verbatim: Callable[[str], bool], implied: Callable[[str, str], list[str] | None] | None = None
    ) -> list[bytes] | None:
        """Literals one of which the raw line of any event this rule can match must contain; None
        when the rule cannot be prefiltered for this input format, [] when it can never match it.

        ``verbatim(path)`` and ``implied(path, value)`` are the input format's promises
        (``LogFormat.verbatim`` / ``LogFormat.implied_literals``): the latter also covers derived
        attributes (``source:sshd``, ``evt.outcome:failure``) and values no line of the format yields.
        """
        require_sets = [_literal_set(ast, verbatim, implied) for ast in self.requires]
        if any(found is _IMPOSSIBLE for found in require_sets):
            return []
        best_require = min((found for found in require_sets if found), key=_selectivity, default=None)
        literals: set[bytes] = set()
        for cq in self.queries:
            own = _literal_set(cq.ast, verbatim, implied)
            if own is _IMPOSSIBLE:
                continue
            candidates = [found for found in (own, best_require) if found]
            if not candidates:
                return None
            literals |= min(candidates, key=_selectivity)
        return sorted(literals)

    def severity_rank(self, case_index: int) -> int:
        return SEVERITY_RANK[self.cases[case_index].severity]


# A query no line of the input format can satisfy (``source:cloudtrail`` over sshd text).
_IMPOSSIBLE: frozenset[bytes] = frozenset({b"\x00impossible"})
MIN_LITERAL_BYTES = 3
# Fields whose query values are not compared as written (aliases, parsing): no implied promise.
_NO_IMPLIED = frozenset({"status", "timestamp"})


def _literal_set(
    node: q.Query, verbatim: Callable[[str], bool], implied: Callable[[str, str], list[str] | None] | None
) -> frozenset[bytes] | None:
    """Prefilter literals of a query for one input format: the query module's analysis, refined by
    the format's value-level promises for exact terms (``_IMPOSSIBLE`` when it can never match)."""
    if isinstance(node, q.And):
        found = [_literal_set(child, verbatim, implied) for child in node.children]
        if any(f is _IMPOSSIBLE for f in found):
            return _IMPOSSIBLE
        # Any child's set will do; a source/service/host term's literals are in every line of that
        # source (measured on the default pack: picking "kubernetes.audit" over "pods" let every
        # Kubernetes line through), so they are the last resort whatever their length.
        options = [(names_a_source(child), f) for child, f in zip(node.children, found) if f]
        return min(options, key=lambda o: (o[0], _selectivity(o[1])))[1] if options else None
    if isinstance(node, q.Or):
        found = [_literal_set(child, verbatim, implied) for child in node.children]
        possible = [f for f in found if f is not _IMPOSSIBLE]
        if not possible:
            return _IMPOSSIBLE
        if any(f is None for f in possible):
            return None
        return frozenset().union(*possible)  # type: ignore[arg-type]
    if (
        implied is not None
        and isinstance(node, q.Term)
        and node.field is not None
        and not node.field.tag
        and node.kind in ("exact", "phrase")
        and node.field.path not in _NO_IMPLIED
    ):
        promised = implied(node.field.path, node.value)
        if promised is not None:
            if not promised:
                return _IMPOSSIBLE
            if all(lit.isascii() and len(lit) >= MIN_LITERAL_BYTES for lit in promised):
                return frozenset(lit.lower().encode("ascii") for lit in promised)
    literals = q.prefilter_literals(node, verbatim)
    return frozenset(literals) if literals is not None else None


def _selectivity(literals: Iterable[bytes]) -> float:
    """Roughly how often a line contains one of the literals: each byte of a literal divides its
    chance by ~16, and all-digit literals ("200", "404") are common in any log line."""
    cost = 0.0
    for literal in literals:
        effective = len(literal) - (2 if literal.isdigit() else 0)
        cost += 16.0 ** -max(effective, 1)
    return cost


def compile_rules(rules: Iterable[Rule]) -> tuple[CompiledRule, ...]:
    """The enabled log rules, compiled (signal correlation rules read signals, not logs:
    :mod:`secmon.detect.correlation`)."""
    runs = (rule for rule in rules if rule.is_enabled and rule.type == "log_detection")
    # Numbered in order with no gap, so rules compiled after these (the intel rules) take the
    # next numbers: a disabled rule's number was given twice (two rules' flags in one column).
    return tuple(CompiledRule.compile(rule, index) for index, rule in enumerate(runs))
