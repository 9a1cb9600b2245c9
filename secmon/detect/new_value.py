"""New-value detection on Polars.

A value (or combination of up to five values) is *new* for a group-by value when it was never
seen for that group, or was last seen more than ``forgetAfter`` days before. Values that appear
during the learning period, ``learningDuration`` days from the group's first event (inclusive),
are learned silently; with a learning duration of 0 only the first moment's values are learned.
"""

from __future__ import annotations

import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.rule_frame import EID, EVENT, LEN, REF, TS, group_columns

DAY_MS = 86_400_000


def new_value_triggers(compiled: CompiledRule, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``frame`` that carry a new value: (group columns..., timestamp, __eid, __case)."""
    groups = group_columns(compiled)
    options = compiled.rule.options.new_value_options
    learning_ms = int((options.learning_duration if options else 0) * DAY_MS)
    forget_ms = int((options.forget_after if options else 28) * DAY_MS)
    by = groups or ["__all"]
    keyed = frame.with_columns(pl.lit(0, dtype=pl.Int8).alias("__all")) if not groups else frame
    parts = []
    for i in range(len(compiled.queries)):
        value = f"__v{i}"
        if value not in keyed.columns:
            continue
        rows = keyed.filter(pl.col(f"__q{i}") & pl.col(value).is_not_null())
        group_start = pl.col(TS).min().over(by)
        previous_seen = pl.col(TS).shift(1).over([*by, value], order_by=[TS, EVENT, EID])
        is_new = previous_seen.is_null() | ((pl.col(TS) - previous_seen) > forget_ms)
        learned = pl.col(TS) <= group_start + learning_ms
        parts.append(rows.filter(is_new & ~learned).select([*by, TS, EID, REF, LEN, EVENT]))
    if not parts:
        return pl.DataFrame()
    triggers = pl.concat(parts).with_columns(pl.lit(0, dtype=pl.Int32).alias("__case"))
    return triggers.sort([*by, TS, EVENT, EID], nulls_last=True)
