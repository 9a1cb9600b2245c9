"""The per-rule frame detectors work on: one row per (event, query it matched).

Queries of one rule are joined by position of their group-by fields (Datadog's semantics), so
each query contributes its own rows with its own group-by values in the shared columns
``__g0, __g1, ...``. An event that matches two queries appears twice, under one ``__eid``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.event_store import EventStore

TS = "timestamp"
EID = "__eid"  # unique per event across the whole scan
REF = "__ref"  # the event's place in the scan's EventStore
LEN = "__len"  # its stored length
# Canonical JSON of the event (sorted keys), filled in only where two rows of one group share a
# millisecond: the tie-breaker that makes order and chunking irrelevant. Null elsewhere.
EVENT = "__event"


@dataclass(frozen=True)
class GroupSlice:
    """The groups of a rule whose group-by values hash to ``index`` of ``count`` slices.

    Groups never interact (windows, new-value learning and signals are all per group), so a rule
    can be detected one slice of its groups at a time: the rows and signals in memory are then a
    slice's, not the whole rule's, however long the input (measured on a 5 GB input: 1.2 GB peak
    with the rule whose query matched most events detected in one piece)."""

    index: int
    count: int

    def holds(self, group_values: list[pl.Expr]) -> pl.Expr:
        """Whether a row with these group-by values (as text) is in this slice."""
        return slice_of(group_values, self.count) == self.index


def slice_of(group_values: list[pl.Expr], count: int) -> pl.Expr:
    """The slice of ``count`` a row with these group-by values (as text) is in. The kept rows and
    the rule frame both call this on the same texts, so they agree on every row."""
    key = pl.struct([value.alias(f"__g{k}") for k, value in enumerate(group_values)])
    return key.hash(seed=0x5EC) % count


def group_columns(compiled: CompiledRule) -> list[str]:
    return [f"__g{k}" for k in range(len(compiled.queries[0].group_by))]


def query_columns(compiled: CompiledRule) -> list[str]:
    return [f"__q{i}" for i in range(len(compiled.queries))]


def as_text(table: pl.DataFrame, path: str) -> pl.Expr:
    """A group-by value as text; lists join with ', '; a column the table lacks is all null."""
    if path not in table.columns:
        return pl.lit(None, dtype=pl.String)
    dtype = table.schema[path]
    if isinstance(dtype, pl.List):
        return pl.col(path).list.join(", ")
    return pl.col(path).cast(pl.String)


def as_number(table: pl.DataFrame, path: str) -> pl.Expr:
    if path not in table.columns:
        return pl.lit(None, dtype=pl.Float64)
    dtype = table.schema[path]
    if isinstance(dtype, pl.List):
        return pl.col(path).list.first().cast(pl.Float64, strict=False)
    return pl.col(path).cast(pl.Float64, strict=False)


def build_rule_frame(
    compiled: CompiledRule, table: pl.DataFrame, store: EventStore, groups_slice: GroupSlice | None = None
) -> pl.DataFrame:
    """Rows of ``table`` (kept rows with flag columns) this rule's queries matched, sorted by
    group, time and (for ties only) the event itself; only the groups of ``groups_slice``."""
    groups = group_columns(compiled)
    flags = query_columns(compiled)
    parts: list[pl.DataFrame] = []
    for i, cq in enumerate(compiled.queries):
        flag = compiled.flag_column(i)
        if flag not in table.columns:
            continue
        rows = table.filter(pl.col(flag))
        if rows.height == 0:
            continue
        columns: list[pl.Expr] = [pl.col(TS), pl.col(EID), pl.col(REF), pl.col(LEN)]
        columns += [as_text(rows, path).alias(name) for name, path in zip(groups, cq.group_by)]
        columns += [pl.lit(j == i).alias(name) for j, name in enumerate(flags)]
        if cq.distinct:
            distinct = pl.concat_str([as_text(rows, p) for p in cq.distinct], separator="\x1f")
        else:
            distinct = pl.lit(None, dtype=pl.String)
        columns.append(distinct.alias(f"__d{i}"))
        metric = as_number(rows, cq.metrics[0]) if cq.metrics else pl.lit(None, dtype=pl.Float64)
        columns.append(metric.alias(f"__m{i}"))
        if cq.aggregation == "new_value":
            values = [as_text(rows, p) for p in cq.metrics]
            columns.append(pl.concat_str(values, separator="\x1f").alias(f"__v{i}"))
        part = rows.select(columns)
        if groups and not cq.optional_group_by:
            part = part.drop_nulls(groups)
        if groups_slice is not None:
            # A row another query brought in may belong to another slice under this query.
            part = part.filter(groups_slice.holds([pl.col(g) for g in groups]))
        parts.append(part)
    if not parts:
        return pl.DataFrame()
    frame = pl.concat(parts, how="diagonal_relaxed")
    # Queries that matched nothing still need their columns (as "no match") for the aggregations.
    missing: list[pl.Expr] = []
    for i, cq in enumerate(compiled.queries):
        if f"__d{i}" not in frame.columns:
            missing += [pl.lit(None, dtype=pl.String).alias(f"__d{i}"), pl.lit(None, dtype=pl.Float64).alias(f"__m{i}")]
        if cq.aggregation == "new_value" and f"__v{i}" not in frame.columns:
            missing.append(pl.lit(None, dtype=pl.String).alias(f"__v{i}"))
    if missing:
        frame = frame.with_columns(missing)
    return with_tie_events(frame, [*groups, TS], store).sort([*groups, TS, EVENT, EID], nulls_last=True)


def with_tie_events(frame: pl.DataFrame, key: list[str], store: EventStore) -> pl.DataFrame:
    """``frame`` with the ``EVENT`` column: the canonical JSON of rows that share ``key`` with
    another row, null for the others (nothing to break there, and fetching every event's JSON
    is what made kept rows expensive)."""
    tied = frame.select(pl.len().over(key) > 1).to_series().to_numpy()  # null group values tie too
    rows = np.flatnonzero(tied)
    events: list[str | None] = [None] * frame.height
    if rows.size:
        texts = store.canonical(frame[REF].to_numpy()[rows], frame[LEN].to_numpy()[rows])
        for row, text in zip(rows.tolist(), texts):
            events[row] = text
    return frame.with_columns(pl.Series(EVENT, events, dtype=pl.String))
