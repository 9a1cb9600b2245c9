"""Run one compiled rule over an event table: rule frame -> triggers -> signals."""

from __future__ import annotations

import numpy as np
import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.lifecycle import GroupEvents, build_signals
from secmon.detect.new_value import new_value_triggers
from secmon.detect.rule_frame import EID, EVENT, TS, build_rule_frame, group_columns
from secmon.detect.threshold import threshold_triggers
from secmon.signals.model import Signal


def detect_rule(compiled: CompiledRule, table: pl.DataFrame) -> list[Signal]:
    """Every signal ``compiled`` raises over ``table`` (an event table with flag columns)."""
    frame = build_rule_frame(compiled, table)
    if frame.height == 0:
        return []
    groups = group_columns(compiled)
    by = groups or ["__all"]
    if not groups:
        frame = frame.with_columns(pl.lit(0, dtype=pl.Int8).alias("__all"))
    if compiled.rule.options.detection_method == "new_value":
        triggers = new_value_triggers(compiled, frame)
        events = triggers  # a new-value signal counts the events that carried new values
        window_ms = 0
    else:
        triggers = threshold_triggers(compiled, frame)
        events = frame
        window_ms = compiled.rule.options.evaluation_window * 1000
    if triggers.height == 0:
        return []
    events = events.join(triggers.select(by).unique(), on=by, how="semi", nulls_equal=True)
    trigger_parts = triggers.partition_by(by, as_dict=True, maintain_order=True)
    signals: list[Signal] = []
    for key, group_events in events.partition_by(by, as_dict=True, maintain_order=True).items():
        group_triggers = trigger_parts[key].sort(TS)
        group_events = group_events.unique(subset=[EID], keep="first", maintain_order=True) if window_ms == 0 else group_events
        group = GroupEvents(
            ts=group_events[TS].to_numpy(),
            event_ids=group_events[EID].to_numpy(),
            events=[e.encode() for e in group_events[EVENT].to_list()],
        )
        values = tuple(key) if groups else ()
        signals.extend(
            build_signals(compiled, values, group, group_triggers[TS].to_numpy(), group_triggers["__case"].to_numpy(), window_ms)
        )
    return signals


def sort_signals(signals: list[Signal]) -> list[Signal]:
    """A stable, input-order-independent order: by first event, rule, group."""
    return sorted(signals, key=lambda s: (s.first_seen_ms, s.rule_id, s.id))


__all__ = ["detect_rule", "sort_signals", "np"]
