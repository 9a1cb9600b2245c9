"""Anomaly detection on Polars: a group's count in a time bucket against its own recent past.

A rule with ``detectionMethod: anomaly_detection`` has one count query. Each group's matching
events are counted in buckets of ``bucketDuration`` seconds (aligned to the epoch). A bucket is
judged against the group's *baseline*: the counts of the buckets of the ``learningDuration`` hours
before it (a bucket without events counts 0), from the group's first bucket on. A bucket is
anomalous when its count exceeds

    mean + detectionTolerance * max(standard deviation, sqrt(max(mean, 1)))

(the square root is the spread of a count that varies by chance alone, so a steady or silent
baseline still needs a real jump: from silence, more than ``detectionTolerance`` events). A group
is judged once it has a whole learning duration of history; with ``instantaneousBaseline`` from
its second bucket on, on the history there is. Before that, ``learningPeriodBaseline`` (when set)
is the count a bucket may reach. Every moment of the bucket from the one its count passes the
limit on is a trigger (as every moment a threshold rule's case holds is); a signal counts the
events of the bucket duration before each of its triggers.

Datadog does not publish its anomaly model; this one is small, deterministic and written down
here, and :mod:`secmon.detect.reference` computes it the obvious way for the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.rule_frame import TS, keyed_by
from secmon.rules.model import AnomalyDetectionOptions

HOUR_MS = 3_600_000
_BUCKET, _COUNT, _FIRST = "__bucket", "__count", "__first_bucket"


@dataclass(frozen=True)
class AnomalyModel:
    """A rule's anomaly options in the units detection works in."""

    bucket_ms: int
    history_buckets: int  # buckets the baseline looks back over
    tolerance: float
    learning_limit: float | None
    instantaneous: bool

    @classmethod
    def of(cls, compiled: CompiledRule) -> AnomalyModel:
        options = compiled.rule.options.anomaly_detection_options or AnomalyDetectionOptions()
        bucket_ms = options.bucket_duration * 1000
        return cls(bucket_ms, max(1, math.ceil(options.learning_duration * HOUR_MS / bucket_ms)), float(options.detection_tolerance),
                   None if options.learning_period_baseline is None else float(options.learning_period_baseline),
                   options.instantaneous_baseline)

    def limit(self, history: int, total: float, squares: float) -> float | None:
        """The count a bucket may reach after ``history`` buckets of the group (counting the empty
        ones, at most the baseline's) whose counts sum to ``total`` and their squares to
        ``squares``; None where the bucket is not judged."""
        if history >= self.history_buckets or (self.instantaneous and history > 0):
            mean = total / history
            spread = max(math.sqrt(max(squares / history - mean * mean, 0.0)), math.sqrt(max(mean, 1.0)))
            return mean + self.tolerance * spread
        return self.learning_limit

    def limit_expr(self, history: pl.Expr, total: pl.Expr, squares: pl.Expr) -> pl.Expr:
        """:meth:`limit` over columns (the same arithmetic, so both give the same limits)."""
        mean = total / history
        spread = pl.max_horizontal(((squares / history - mean * mean).clip(lower_bound=0.0)).sqrt(),
                                   pl.max_horizontal(mean, pl.lit(1.0)).sqrt())
        judged = history >= self.history_buckets
        if self.instantaneous:
            judged = judged | (history > 0)
        learning = pl.lit(self.learning_limit, dtype=pl.Float64)
        return pl.when(judged).then(mean + self.tolerance * spread).otherwise(learning)


def anomaly_triggers(compiled: CompiledRule, frame: pl.DataFrame, by: Sequence[str] | None = None) -> pl.DataFrame:
    """(``by`` columns..., timestamp, __case) for each moment of an anomalous bucket from the one
    its count passes the limit on. ``frame`` is the rule frame (sorted by group and time)."""
    model = AnomalyModel.of(compiled)
    keyed, by = keyed_by(compiled, frame, by)
    rows = keyed.filter(pl.col("__q0")).select([*by, TS]).with_columns((pl.col(TS) // model.bucket_ms).alias(_BUCKET))
    none = rows.clear().select([*by, TS]).with_columns(pl.lit(0, dtype=pl.Int32).alias("__case"))  # no trigger, same columns
    if rows.height == 0:
        return none
    # Each non-empty bucket's count, and the sums over the group's buckets before it in the baseline.
    buckets = rows.group_by([*by, _BUCKET], maintain_order=True).agg(pl.len().cast(pl.Float64).alias(_COUNT))
    past = buckets.rolling(index_column=_BUCKET, period=f"{model.history_buckets}i", closed="left", group_by=by).agg(
        pl.col(_COUNT).sum().alias("__total"), (pl.col(_COUNT) * pl.col(_COUNT)).sum().alias("__squares"),
    )
    judged = buckets.join(past, on=[*by, _BUCKET], how="left", nulls_equal=True).with_columns(
        pl.col(_BUCKET).min().over(by).alias(_FIRST)
    )
    history = pl.min_horizontal(pl.col(_BUCKET) - pl.col(_FIRST), pl.lit(model.history_buckets)).cast(pl.Float64)
    limits = judged.with_columns(model.limit_expr(history, pl.col("__total").fill_null(0.0), pl.col("__squares").fill_null(0.0)).alias("__limit"))
    anomalous = limits.filter(pl.col("__limit").is_not_null() & (pl.col(_COUNT) > pl.col("__limit"))).select([*by, _BUCKET, "__limit"])
    if anomalous.height == 0:
        return none
    # The moment the running count of the bucket (all events of one millisecond at once) passes.
    moments = rows.group_by([*by, _BUCKET, TS], maintain_order=True).agg(pl.len().alias("__n"))
    moments = moments.with_columns(pl.col("__n").cum_sum().over([*by, _BUCKET]).cast(pl.Float64).alias("__running"))
    passed = moments.join(anomalous, on=[*by, _BUCKET], how="inner", nulls_equal=True).filter(pl.col("__running") > pl.col("__limit"))
    return passed.select([*by, TS]).with_columns(pl.lit(0, dtype=pl.Int32).alias("__case"))
