"""Sequence detection on Polars (Datadog's ``sequence_detection``): ordered steps per group.

A step *holds* at an event time ``t`` of a group when its condition holds over the counts of the
rule's queries in ``[t - step window, t]``, as a threshold case does, and an event of a query its
condition reads arrives at ``t`` (a step happens when its events do: an old event still in the
window does not make it happen again later). The chain *reaches* the first step wherever it
holds, and step ``k`` at ``t`` when it holds there and the chain reached step ``k - 1`` at a moment
``t' <= t`` with ``t - t'`` within the transition's window. The same moment
counts: CloudTrail's times have whole seconds, and a tool creating a user and attaching a policy to
it does both in one (the steps' own order in such a second is not in the logs). Where the chain reaches the last step, the first case whose condition holds
is a trigger; a case reads each step as 1 where the chain reached it at that moment, else 0
(Datadog's cases name the last step: ``last_step > 0``). Triggers go through the lifecycle like
a threshold rule's, and a signal counts the events of the rule's queries over the sequence's span
before each trigger (``CompiledRule.sequence_span_ms``).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.rule_frame import TS, keyed_by
from secmon.detect.threshold import first_case, query_aggregate

CASE = "__case"


def _step(k: int) -> str:
    return f"__s{k}"


def sequence_triggers(compiled: CompiledRule, frame: pl.DataFrame, by: Sequence[str] | None = None) -> pl.DataFrame:
    """(``by`` columns..., timestamp, __case) for every moment the chain reaches the last step
    and a case holds, once per moment. ``frame`` is the rule frame, sorted by (group, time)."""
    keyed, by = keyed_by(compiled, frame, by)
    counts = [query_aggregate(compiled, i) for i in range(len(compiled.queries))]  # count queries
    moments: pl.DataFrame | None = None
    for window_ms in sorted({step.window_ms for step in compiled.steps}):
        held = [step.condition.to_polars().alias(f"__h{k}") for k, step in enumerate(compiled.steps) if step.window_ms == window_ms]
        rolled = (
            keyed.rolling(index_column=TS, period=f"{window_ms + 1}i", closed="right", group_by=by)
            .agg(counts)
            .unique(subset=[*by, TS], keep="first", maintain_order=True)  # rows of one moment see one window
            .select([*by, TS, *held])
        )
        moments = rolled if moments is None else moments.join(rolled, on=[*by, TS], how="left", maintain_order="left")
    assert moments is not None, "a sequence rule has steps"
    arrived = keyed.group_by([*by, TS], maintain_order=True).agg(pl.col(f"__q{i}").any().alias(f"__at{i}") for i in range(len(compiled.queries)))
    moments = moments.join(arrived, on=[*by, TS], how="left", maintain_order="left")
    moments = moments.sort([*by, TS], maintain_order=True).with_columns(
        (pl.col(f"__h{k}") & pl.any_horizontal(pl.col(f"__at{i}") for i in step.queries)).alias(f"__h{k}")
        for k, step in enumerate(compiled.steps)
    ).with_columns(pl.col("__h0").alias(_step(0)))
    for k in range(1, len(compiled.steps)):
        # The latest moment up to this one at which the chain reached the previous step, filled
        # forward over the group's moments.
        reached_at = pl.when(pl.col(_step(k - 1))).then(pl.col(TS)).otherwise(None)
        previous = reached_at.forward_fill().over(by)
        within = previous.is_not_null() & (pl.col(TS) - previous <= compiled.steps[k].after_previous_ms)
        moments = moments.with_columns((pl.col(f"__h{k}") & within).alias(_step(k)))
    reached = moments.filter(pl.col(_step(len(compiled.steps) - 1)))
    if reached.height == 0:
        return reached.select([*by, TS]).with_columns(pl.lit(None, dtype=pl.Int32).alias(CASE))
    # The cases read the steps by their names, apart from the frame's own columns.
    steps = reached.select(pl.col(_step(k)).cast(pl.Float64).alias(step.name) for k, step in enumerate(compiled.steps))
    cases = steps.with_columns(first_case(compiled).alias(CASE))[CASE]
    return reached.select([*by, TS]).with_columns(cases).filter(pl.col(CASE).is_not_null())
