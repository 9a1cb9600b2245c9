"""From trigger points to signals: keepAlive, maxSignalDuration, event counts and samples.

A *trigger* is a moment ``t`` at which a rule's case matched for one group-by value; it covers
the events of its evaluation window ``[t - window, t]``. Triggers of one group join the open
signal while each comes within ``keepAlive`` of the previous one and within
``maxSignalDuration`` of the signal's first event; otherwise the open signal closes and a new
one starts. A signal counts each distinct event covered by any of its triggers once, and takes
the most severe case any of its triggers matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from secmon.detect.compiled import CompiledRule
from secmon.detect.event_store import EventStore
from secmon.signals.model import MAX_SAMPLES, Signal, render_message


@dataclass
class GroupEvents:
    """The events of one group-by value, sorted by (timestamp, canonical JSON)."""

    ts: np.ndarray  # int64 epoch ms, ascending
    event_ids: np.ndarray  # int64: the same event may appear once per query it matched
    refs: np.ndarray  # int64: each row's event in the store
    lengths: np.ndarray  # int32
    store: EventStore


@dataclass
class _OpenSignal:
    first_trigger: int
    last_trigger: int
    first_seen: int
    case_index: int
    intervals: list[tuple[int, int]] = field(default_factory=list)


def build_signals(
    compiled: CompiledRule,
    group_values: tuple,
    events: GroupEvents,
    trigger_ts: np.ndarray,
    trigger_case: np.ndarray,
    window_ms: int,
) -> list[Signal]:
    """Signals of one group from its triggers (ascending ``trigger_ts``)."""
    options = compiled.rule.options
    keep_alive = options.keep_alive * 1000
    max_duration = options.max_signal_duration * 1000
    out: list[Signal] = []
    current: _OpenSignal | None = None
    for t, case_index in zip(trigger_ts.tolist(), trigger_case.tolist()):
        start = t - window_ms
        if current is not None and t - current.last_trigger <= keep_alive and (
            max_duration == 0 or t - current.first_seen <= max_duration
        ):
            current.last_trigger = t
            current.intervals.append((start, t))
            if compiled.severity_rank(case_index) > compiled.severity_rank(current.case_index):
                current.case_index = case_index
            continue
        if current is not None:
            out.append(_finish(compiled, group_values, events, current))
        first = int(np.searchsorted(events.ts, start, side="left"))
        current = _OpenSignal(t, t, int(events.ts[first]), case_index, [(start, t)])
    if current is not None:
        out.append(_finish(compiled, group_values, events, current))
    return out


def _finish(compiled: CompiledRule, group_values: tuple, events: GroupEvents, sig: _OpenSignal) -> Signal:
    rows: list[np.ndarray] = []
    merged_start, merged_end = sig.intervals[0]
    for start, end in sig.intervals[1:] + [(None, None)]:
        if start is not None and start <= merged_end:
            merged_end = max(merged_end, end)
            continue
        lo = np.searchsorted(events.ts, merged_start, side="left")
        hi = np.searchsorted(events.ts, merged_end, side="right")
        rows.append(np.arange(lo, hi))
        if start is not None:
            merged_start, merged_end = start, end
    covered = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    _, first_of_each = np.unique(events.event_ids[covered], return_index=True)
    distinct_rows = np.sort(covered[first_of_each])
    sample_rows = distinct_rows[:MAX_SAMPLES].tolist()
    samples = events.store.events(events.refs[sample_rows], events.lengths[sample_rows])
    rule = compiled.rule
    group_by = dict(zip(rule.group_by_fields, group_values))
    case = compiled.cases[sig.case_index]
    return Signal(
        rule_id=rule.id,
        rule_name=rule.name,
        severity=case.severity,
        case=case.name,
        group_by=group_by,
        first_seen_ms=int(events.ts[distinct_rows[0]]),
        last_seen_ms=int(events.ts[distinct_rows[-1]]),
        event_count=int(len(distinct_rows)),
        samples=samples,
        tags=list(rule.tags),
        message=render_message(rule.message, samples[0] if samples else None, group_by),
    )
