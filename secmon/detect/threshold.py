"""Threshold detection on Polars: sliding event-time windows per group-by value.

At every event time ``t`` of a group, each query's aggregate over ``[t - window, t]`` is computed
with one ``rolling`` pass; the first case whose condition holds there is a trigger. Triggers then
go through :mod:`secmon.detect.lifecycle`. ``none`` aggregation is a count over the same window,
so every matching event triggers.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.rule_frame import TS, keyed_by


def query_aggregate(compiled: CompiledRule, i: int) -> pl.Expr:
    """Query ``i``'s aggregate over a window's rows, named after the query (what cases read)."""
    cq = compiled.queries[i]
    matched = pl.col(f"__q{i}")
    if cq.aggregation == "cardinality":
        expr = pl.col(f"__d{i}").filter(matched).drop_nulls().n_unique()
    elif cq.aggregation == "sum":
        expr = pl.col(f"__m{i}").filter(matched).sum()
    elif cq.aggregation == "max":
        expr = pl.col(f"__m{i}").filter(matched).max()
    else:  # count, none
        expr = matched.cast(pl.Int64).sum()
    return expr.cast(pl.Float64).alias(cq.name)


def threshold_triggers(compiled: CompiledRule, frame: pl.DataFrame, by: Sequence[str] | None = None) -> pl.DataFrame:
    """(``by`` columns..., timestamp, __case) for every moment a case holds, once per moment.

    ``by`` defaults to the group-by columns; the detector passes its one integer group id
    instead, which makes the rolling group-by hash one int rather than several strings."""
    window_ms = compiled.rule.options.evaluation_window * 1000
    keyed, by = keyed_by(compiled, frame, by)
    rolled = keyed.rolling(
        index_column=TS, period=f"{window_ms + 1}i", closed="right", group_by=by
    ).agg([query_aggregate(compiled, i) for i in range(len(compiled.queries))])
    triggers = rolled.with_columns(first_case(compiled).alias("__case")).filter(pl.col("__case").is_not_null())
    return triggers.select([*by, TS, "__case"]).unique(maintain_order=True)


def first_case(compiled: CompiledRule) -> pl.Expr:
    """The index of the first case whose condition holds over the columns its names read, null
    where none does (Int32)."""
    case_expr = pl.lit(None, dtype=pl.Int32)
    for index in reversed(range(len(compiled.cases))):
        case_expr = pl.when(compiled.cases[index].condition.to_polars()).then(pl.lit(index, dtype=pl.Int32)).otherwise(case_expr)
    return case_expr
