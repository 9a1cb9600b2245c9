"""The per-rule frame detectors work on: one row per (event, query it matched).

Queries of one rule are joined by position of their group-by fields (Datadog's semantics), so
each query contributes its own rows with its own group-by values in the shared columns
``__g0, __g1, ...``. An event that matches two queries appears twice, under one ``__eid``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from secmon.detect.compiled import CompiledQuery, CompiledRule
from secmon.detect.event_store import EventStore
from secmon.detect.fields import number_value, text_value

TS = "timestamp"
EID = "__eid"  # unique per event across the whole scan
REF = "__ref"  # the event's place in the scan's EventStore
LEN = "__len"  # its stored length


@dataclass(frozen=True)
class GroupSlice:
    """The groups of a rule whose group-by values hash to one of ``buckets`` (of ``count``).

    Groups never interact (windows, new-value learning and signals are all per group), so a rule
    can be detected one slice of its groups at a time: the rows and signals in memory are then a
    slice's, not the whole rule's, however long the input (measured on a 5 GB input: 1.2 GB peak
    with the rule whose query matched most events detected in one piece). A slice is a set of
    hash buckets so that :func:`secmon.detect.kept.pack_buckets` can balance slices by rows."""

    buckets: tuple[int, ...]
    count: int

    def holds(self, group_values: list[pl.Expr]) -> pl.Expr:
        """Whether a row with these group-by values (as text) is in this slice."""
        return bucket_of(group_values, self.count).is_in(self.buckets)


def bucket_of(group_values: list[pl.Expr], count: int) -> pl.Expr:
    """The hash bucket of ``count`` a row with these group-by values (as text) is in. The kept
    rows and the rule frame both call this on the same texts, so they agree on every row."""
    key = pl.struct([value.alias(f"__g{k}") for k, value in enumerate(group_values)])
    return key.hash(seed=0x5EC) % count


# Datadog's value for a missing group-by field of a query with hasOptionalGroupByFields.
MISSING_GROUP_VALUE = "N/A"


def group_values(schema: Mapping[str, pl.DataType], cq: CompiledQuery) -> list[pl.Expr]:
    """A query's group-by values as detection groups on them, as text: with optional group-by
    fields a missing one is "N/A" (Datadog's), so such events group together rather than being
    dropped. The rule frame and the kept rows' slicing both group on these."""
    values = [text_value(schema, path) for path in cq.group_by]
    return [value.fill_null(MISSING_GROUP_VALUE) for value in values] if cq.optional_group_by else values


def group_columns(compiled: CompiledRule) -> list[str]:
    return [f"__g{k}" for k in range(len(compiled.queries[0].group_by))]


def keyed_by(compiled: CompiledRule, frame: pl.DataFrame, by: Sequence[str] | None) -> tuple[pl.DataFrame, list[str]]:
    """``frame`` and the columns its groups are told apart by: ``by`` (the detector passes its one
    integer group id), by default the rule's group-by columns, and a constant column for a rule
    that groups by nothing (window functions and rolling passes need some key)."""
    by = group_columns(compiled) if by is None else list(by)
    if not by:
        return frame.with_columns(pl.lit(0, dtype=pl.Int8).alias("__all")), ["__all"]
    return frame, by


def query_columns(compiled: CompiledRule) -> list[str]:
    return [f"__q{i}" for i in range(len(compiled.queries))]


def build_rule_frame(
    compiled: CompiledRule, table: pl.LazyFrame | pl.DataFrame, store: EventStore, groups_slice: GroupSlice | None = None
) -> pl.DataFrame:
    """Rows of ``table`` (kept rows with flag columns) this rule's queries matched, sorted by
    group, time and (for ties only) the event itself; only the groups of ``groups_slice``.

    One lazy query from the kept rows to the unsorted frame: the kept rows, each query's
    filtered and projected part and their concatenation are never all in memory at once (they
    were, eagerly: on a 5 GB input the largest slice's frame took four copies of its rows)."""
    table = table.lazy()
    schema = table.collect_schema()
    groups = group_columns(compiled)
    flags = query_columns(compiled)
    parts: list[pl.LazyFrame] = []
    for i, cq in enumerate(compiled.queries):
        flag = compiled.flag_column(i)
        if flag not in schema:
            continue
        columns: list[pl.Expr] = [pl.col(TS), pl.col(EID), pl.col(REF), pl.col(LEN)]
        columns += [value.alias(name) for name, value in zip(groups, group_values(schema, cq))]
        columns += [pl.lit(j == i).alias(name) for j, name in enumerate(flags)]
        if cq.distinct:
            distinct = pl.concat_str([text_value(schema, p) for p in cq.distinct], separator="\x1f")
        else:
            distinct = pl.lit(None, dtype=pl.String)
        columns.append(distinct.alias(f"__d{i}"))
        # The number sum and max read; new_value and geo_data read their metrics their own way.
        metric = number_value(schema, cq.metrics[0]) if cq.aggregation in ("sum", "max") else pl.lit(None, dtype=pl.Float64)
        columns.append(metric.alias(f"__m{i}"))
        if cq.aggregation == "new_value":
            values = [text_value(schema, p) for p in cq.metrics]
            columns.append(pl.concat_str(values, separator="\x1f").alias(f"__v{i}"))
        elif cq.aggregation == "geo_data":
            latitude, longitude, city, country = cq.metrics
            place = pl.concat_str([text_value(schema, city).fill_null(""), text_value(schema, country).fill_null("")], separator="\x1f")
            columns += [number_value(schema, latitude).alias(f"__lat{i}"), number_value(schema, longitude).alias(f"__lon{i}"),
                        place.alias(f"__place{i}")]
        part = table.filter(pl.col(flag)).select(columns)
        if groups and not cq.optional_group_by:
            part = part.drop_nulls(groups)
        if groups_slice is not None:
            # A row another query brought in may belong to another slice under this query.
            part = part.filter(groups_slice.holds([pl.col(g) for g in groups]))
        parts.append(part)
    if not parts:
        return pl.DataFrame()
    frame = pl.concat(parts, how="diagonal_relaxed").collect()
    if frame.height == 0:
        return pl.DataFrame()
    # Queries that matched nothing still need their columns (as "no match") for the aggregations.
    missing: list[pl.Expr] = []
    for i, cq in enumerate(compiled.queries):
        if f"__d{i}" not in frame.columns:
            missing += [pl.lit(None, dtype=pl.String).alias(f"__d{i}"), pl.lit(None, dtype=pl.Float64).alias(f"__m{i}")]
        if cq.aggregation == "new_value" and f"__v{i}" not in frame.columns:
            missing.append(pl.lit(None, dtype=pl.String).alias(f"__v{i}"))
    if missing:
        frame = frame.with_columns(missing)
    return with_ties_broken(sorted_by_group(frame, groups), store)


_HASH = "__group_hash"
GROUP_ID = "__gid"  # the number of a row's group in the sorted frame (its run of equal group-by values)


def group_hash(key: pl.Expr) -> pl.Expr:
    """The 64-bit hash groups are sorted on (a function of its own: tests make hashes collide)."""
    return key.hash(seed=0)


def sorted_by_group(frame: pl.DataFrame, groups: list[str]) -> pl.DataFrame:
    """``frame`` with each group's rows together, in time and then event order, and numbered in
    ``__gid`` (0, 1, ... in that order; nulls are one value). The groups come in the order of a
    64-bit hash of their values: a sort on integers (sorting on the group text took 0.17-0.20 s of
    the 1M-event scan's detection, the hash 0.07 s). Should two groups share a hash (a run of one
    hash then holds more than one run of group values), by the values. Every later step tells
    groups apart by the one integer column."""
    if not groups:
        return frame.sort([TS, EID], nulls_last=True).with_columns(pl.lit(0, dtype=pl.Int64).alias(GROUP_ID))
    key = pl.struct(groups) if len(groups) > 1 else pl.col(groups[0])
    group_ids = key.rle_id().cast(pl.Int64).alias(GROUP_ID)
    by_hash = frame.with_columns(group_hash(key).alias(_HASH)).sort([_HASH, TS, EID]).with_columns(group_ids)
    group_runs, hash_runs = by_hash.select(pl.col(GROUP_ID).max(), pl.col(_HASH).rle_id().max()).row(0)
    if group_runs != hash_runs:
        return frame.sort([*groups, TS, EID], nulls_last=True).with_columns(group_ids)
    return by_hash.drop(_HASH)


def with_ties_broken(frame: pl.DataFrame, store: EventStore) -> pl.DataFrame:
    """``frame`` (sorted by group, time and event id, groups numbered) with each run of rows that
    tie on group and time (one millisecond) put in the order of their events' tie digests, then
    event ids: the order that makes input order and chunking irrelevant. Rows that tie are
    adjacent, so finding them takes a comparison of two integer columns with the row before, and
    only their events are read from the store (fetching every event's JSON is what made kept rows
    expensive; a hash of the key over every row cost 50 MB on a 300k-row slice)."""
    same = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in (GROUP_ID, TS)])
    flags = frame.select(same.alias("same"), (same | same.shift(-1, fill_value=False)).alias("tied"))
    rows = np.flatnonzero(flags["tied"].to_numpy())
    if rows.size == 0:
        return frame
    high, low = store.tie_keys(frame[REF].to_numpy()[rows], frame[LEN].to_numpy()[rows])
    run = np.cumsum(~flags["same"].to_numpy()[rows])  # ascending with position: runs stay in place
    order = np.lexsort((frame[EID].to_numpy()[rows], low, high, run))
    positions = np.arange(frame.height)
    positions[rows] = rows[order]
    return frame[positions]
