"""Run one compiled rule over an event table: rule frame -> triggers -> signals.

Groups are contiguous runs of the sorted rule frame, so the per-group work is numpy slicing; the
only per-group Python is the lifecycle walk over that group's triggers.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.lifecycle import GroupEvents, build_signals
from secmon.detect.new_value import new_value_triggers
from secmon.detect.event_store import EventStore
from secmon.detect.rule_frame import EID, EVENT, LEN, REF, TS, build_rule_frame, group_columns
from secmon.detect.threshold import threshold_triggers
from secmon.signals.model import Signal

GROUP_ID = "__gid"


def detect_rule(compiled: CompiledRule, table: pl.DataFrame, store: EventStore) -> list[Signal]:
    """Every signal ``compiled`` raises over ``table`` (kept rows with flag columns); samples
    come from ``store``."""
    frame = build_rule_frame(compiled, table, store)
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
    # Only groups with a trigger matter; number them in (group, time, event) order.
    events = (
        events.join(triggers.select(by).unique(), on=by, how="semi", nulls_equal=True, maintain_order="left")
        .sort([*by, TS, EVENT, EID], nulls_last=True)
        .with_columns(pl.struct(by).rle_id().alias(GROUP_ID))
    )
    group_keys = events.select([*by, GROUP_ID]).unique(subset=[GROUP_ID], keep="first", maintain_order=True)
    triggers = triggers.join(group_keys, on=by, how="inner", nulls_equal=True).sort([GROUP_ID, TS])

    ev_gid = events[GROUP_ID].to_numpy()
    ev_ts = events[TS].to_numpy()
    ev_eid = events[EID].to_numpy()
    ev_ref = events[REF].to_numpy()
    ev_len = events[LEN].to_numpy()
    tr_gid = triggers[GROUP_ID].to_numpy()
    tr_ts = triggers[TS].to_numpy()
    tr_case = triggers["__case"].to_numpy()
    keys = group_keys.select(by).rows()

    signals: list[Signal] = []
    ev_bounds = np.searchsorted(ev_gid, np.arange(len(keys) + 1), side="left")
    tr_bounds = np.searchsorted(tr_gid, np.arange(len(keys) + 1), side="left")
    for gid, key in enumerate(keys):
        lo, hi = ev_bounds[gid], ev_bounds[gid + 1]
        t_lo, t_hi = tr_bounds[gid], tr_bounds[gid + 1]
        if t_lo == t_hi:
            continue
        group = GroupEvents(ts=ev_ts[lo:hi], event_ids=ev_eid[lo:hi], refs=ev_ref[lo:hi], lengths=ev_len[lo:hi],
                            store=store)
        values = tuple(key) if groups else ()
        signals.extend(build_signals(compiled, values, group, tr_ts[t_lo:t_hi], tr_case[t_lo:t_hi], window_ms))
    return signals


def sort_signals(signals: list[Signal]) -> list[Signal]:
    """A stable, input-order-independent order: by first event, rule, group."""
    return sorted(signals, key=lambda s: (s.first_seen_ms, s.rule_id, s.id))
