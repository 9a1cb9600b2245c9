"""The slow, obvious detection engine: one event dict at a time, windows by scanning lists.

It shares nothing with the fast path but the parsed rules and the lifecycle *definition*
(``lifecycle.py``'s docstring); tests run both over random and real inputs and require the same
signals. Quadratic by design: keep inputs small.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from secmon.detect.anomaly import AnomalyModel
from secmon.detect.compiled import CompiledRule, compile_rules
from secmon.detect.correlation import Correlator, correlation_rules
from secmon.detect.detector import sort_signals
from secmon.detect.event_store import tie_digest
from secmon.detect.fields import env_of, event_value
from secmon.detect import travel
from secmon.detect.new_value import DAY_MS
from secmon.detect.rule_frame import MISSING_GROUP_VALUE
from secmon.ingest.events import scalar_text
from secmon.rules.model import Rule
from secmon.signals.model import MAX_SAMPLES, Signal, render_message, signal_variables


def value_text(value: Any) -> str | None:
    """An attribute value as detection reads it: a scalar as the event table writes it
    (``secmon.ingest.events.scalar_text``), a list of values joined with ", " as
    ``fields.text_value`` joins a list column."""
    if isinstance(value, list):
        return ", ".join(t for t in (scalar_text(v) for v in value) if t is not None)
    return scalar_text(value)


def _number(value: Any) -> float | None:
    if isinstance(value, list):
        value = value[0] if value else None
    text = value_text(value)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


@dataclass
class _Row:
    eid: int
    ts: int
    canonical: str
    event: dict[str, Any]
    query: int
    group: tuple[str | None, ...]
    distinct: str | None
    metric: float | None
    value: str | None


def reference_detect(rules: Iterable[Rule | CompiledRule], events: Iterable[Mapping[str, Any]]) -> list[Signal]:
    """Signals of ``rules`` (or already compiled ones, such as the intel rule) over normalized
    events (``timestamp`` in epoch ms)."""
    ordered = sorted(
        ((int(e["timestamp"]), orjson.dumps(e, option=orjson.OPT_SORT_KEYS).decode(), dict(e)) for e in events),
        key=lambda item: (item[0], tie_digest(item[1])),
    )
    signals: list[Signal] = []
    items = list(rules)
    compiled_rules = [r for r in items if isinstance(r, CompiledRule)]
    compiled_rules += compile_rules(r for r in items if isinstance(r, Rule))
    correlations = correlation_rules(r for r in items if isinstance(r, Rule))
    for compiled in compiled_rules:
        rows = _rows(compiled, ordered)
        by_group: dict[tuple[str | None, ...], list[_Row]] = defaultdict(list)
        for row in rows:
            by_group[row.group].append(row)
        for group, group_rows in by_group.items():
            contexts: dict[int, dict[str, Any]] = {}
            if compiled.rule.options.detection_method == "new_value":
                triggers, covered_rows, window = _new_value_triggers(compiled, group_rows), None, 0
            elif compiled.rule.options.detection_method == "impossible_travel":
                (triggers, contexts), covered_rows, window = _impossible_travel_triggers(compiled, group_rows), None, 0
            elif compiled.rule.options.detection_method == "sequence_detection":
                triggers, covered_rows, window = _sequence_triggers(compiled, group_rows), group_rows, compiled.sequence_span_ms
            elif compiled.rule.options.detection_method == "anomaly_detection":
                model = AnomalyModel.of(compiled)
                triggers, covered_rows, window = _anomaly_triggers(model, group_rows), group_rows, model.bucket_ms
            else:
                triggers, covered_rows, window = _threshold_triggers(compiled, group_rows), group_rows, compiled.rule.options.evaluation_window * 1000
            if covered_rows is None:
                trigger_eids = {eid for _, _, eid in triggers}
                covered_rows = [r for r in group_rows if r.eid in trigger_eids]
            signals.extend(_lifecycle(compiled, group, [(t, c) for t, c, _ in triggers], covered_rows, window, contexts))
    if correlations:
        correlator = Correlator(correlations)
        for signal in signals:
            correlator.add(signal)
        signals += correlator.signals(reference_detect)
    return sort_signals(signals)


def _rows(compiled: CompiledRule, ordered: list[tuple[int, str, dict[str, Any]]]) -> list[_Row]:
    rows: list[_Row] = []
    for eid, (ts, canonical, event) in enumerate(ordered):
        for i, cq in enumerate(compiled.queries):
            if not compiled.matches_event(event, i):
                continue
            group = tuple(value_text(event_value(event, p)) for p in cq.group_by)
            if cq.optional_group_by:
                group = tuple(MISSING_GROUP_VALUE if g is None else g for g in group)
            elif any(g is None for g in group):
                continue
            distinct_parts = [value_text(event_value(event, p)) for p in cq.distinct]
            distinct = None if not cq.distinct or any(p is None for p in distinct_parts) else "\x1f".join(distinct_parts)  # type: ignore[arg-type]
            metric = _number(event_value(event, cq.metrics[0])) if cq.metrics else None
            value_parts = [value_text(event_value(event, p)) for p in cq.metrics]
            value = None if not cq.metrics or any(p is None for p in value_parts) else "\x1f".join(value_parts)  # type: ignore[arg-type]
            rows.append(_Row(eid, ts, canonical, event, i, group, distinct, metric, value))
    return rows


def _threshold_triggers(compiled: CompiledRule, rows: list[_Row]) -> list[tuple[int, int, int]]:
    window = compiled.rule.options.evaluation_window * 1000
    triggers: list[tuple[int, int, int]] = []
    for t in sorted({r.ts for r in rows}):
        in_window = [r for r in rows if t - window <= r.ts <= t]
        values: dict[str, float] = {}
        for i, cq in enumerate(compiled.queries):
            mine = [r for r in in_window if r.query == i]
            if cq.aggregation == "cardinality":
                values[cq.name] = float(len({r.distinct for r in mine if r.distinct is not None}))
            elif cq.aggregation == "sum":
                values[cq.name] = float(sum(r.metric for r in mine if r.metric is not None))
            elif cq.aggregation == "max":
                metrics = [r.metric for r in mine if r.metric is not None]
                values[cq.name] = max(metrics) if metrics else 0.0
            else:
                values[cq.name] = float(len(mine))
        case_index = _first_case(compiled, values)
        if case_index is not None:
            triggers.append((t, case_index, -1))
    return triggers


def _anomaly_triggers(model: AnomalyModel, rows: list[_Row]) -> list[tuple[int, int, int]]:
    """Each bucket with events, judged on the counts of the buckets before it (empty ones 0);
    an anomalous one triggers at each of its moments past the limit."""
    counts: dict[int, int] = defaultdict(int)
    for r in rows:
        counts[r.ts // model.bucket_ms] += 1
    first = min(counts, default=0)
    triggers: list[tuple[int, int, int]] = []
    for bucket in sorted(counts):
        history = min(bucket - first, model.history_buckets)
        past = [counts.get(b, 0) for b in range(bucket - history, bucket)]
        limit = model.limit(history, float(sum(past)), float(sum(c * c for c in past)))
        if limit is None or counts[bucket] <= limit:
            continue
        mine = sorted({r.ts for r in rows if r.ts // model.bucket_ms == bucket})
        triggers += [(t, 0, -1) for t in mine if sum(1 for r in rows if r.ts // model.bucket_ms == bucket and r.ts <= t) > limit]
    return triggers


def _first_case(compiled: CompiledRule, values: Mapping[str, float]) -> int | None:
    return next((index for index, case in enumerate(compiled.cases) if case.condition.evaluate(values)), None)


def _sequence_triggers(compiled: CompiledRule, rows: list[_Row]) -> list[tuple[int, int, int]]:
    """Each moment, each step counted over its own window (and happening only with one of its
    queries' events at that moment); the chain followed from moment to moment, looking back over
    every moment (this one included) the previous step was reached."""
    moments = sorted({r.ts for r in rows})
    reached: list[list[int]] = [[] for _ in compiled.steps]  # moments each step was reached at
    triggers: list[tuple[int, int, int]] = []
    for t in moments:
        now: dict[str, float] = {}
        for k, step in enumerate(compiled.steps):
            counts = {cq.name: float(sum(1 for r in rows if r.query == i and t - step.window_ms <= r.ts <= t))
                      for i, cq in enumerate(compiled.queries)}
            holds = step.condition.evaluate(counts) and any(r.ts == t and r.query in step.queries for r in rows)
            if k > 0:
                holds = holds and any(t - earlier <= step.after_previous_ms for earlier in reached[k - 1])
            if holds:
                reached[k].append(t)
            now[step.name] = 1.0 if holds else 0.0
        case_index = _first_case(compiled, now) if now[compiled.steps[-1].name] else None
        if case_index is not None:
            triggers.append((t, case_index, -1))
    return triggers


def _new_value_triggers(compiled: CompiledRule, rows: list[_Row]) -> list[tuple[int, int, int]]:
    options = compiled.rule.options.new_value_options
    learning = int((options.learning_duration if options else 0) * DAY_MS)
    forget = int((options.forget_after if options else 28) * DAY_MS)
    triggers: list[tuple[int, int, int]] = []
    for i in range(len(compiled.queries)):
        mine = [r for r in rows if r.query == i and r.value is not None]
        if not mine:
            continue
        start = min(r.ts for r in mine)
        last_seen: dict[str, int] = {}
        for r in mine:
            previous = last_seen.get(r.value)  # type: ignore[arg-type]
            is_new = previous is None or r.ts - previous > forget
            last_seen[r.value] = r.ts  # type: ignore[index]
            if is_new and r.ts > start + learning:
                triggers.append((r.ts, 0, r.eid))
    triggers.sort()
    return triggers


def _impossible_travel_triggers(
    compiled: CompiledRule, rows: list[_Row]
) -> tuple[list[tuple[int, int, int]], dict[int, dict[str, Any]]]:
    """Each located event against the previous located one, in plain Python (``travel`` holds the
    rule's numbers and its vectorized twin); with each trigger's places, by event id."""
    latitude, longitude, city, country = compiled.queries[0].metrics
    options = compiled.rule.options.impossible_travel_options
    baseline = options is not None and options.baseline_user_locations
    located = []
    for r in rows:
        lat, lon = _number(event_value(r.event, latitude)), _number(event_value(r.event, longitude))
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue
        place = f"{value_text(event_value(r.event, city)) or ''}\x1f{value_text(event_value(r.event, country)) or ''}"
        located.append((r, lat, lon, place if place != "\x1f" else f"{lat:.2f},{lon:.2f}", place))
    triggers: list[tuple[int, int, int]] = []
    contexts: dict[int, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    transitions: set[tuple[str, str]] = set()
    for k, (r, lat, lon, place, named) in enumerate(located):
        if k > 0:
            before, b_lat, b_lon, b_place, b_named = located[k - 1]
            km = _haversine_km(b_lat, b_lon, lat, lon)
            hours = (r.ts - before.ts) / 3_600_000
            fast = km > travel.MIN_DISTANCE_KM and (hours == 0 or km / hours > travel.MAX_SPEED_KMH)
            if baseline:
                learning = r.ts <= located[0][0].ts + travel.LEARNING_MS
                common = place in seen and r.ts - seen[place] <= travel.FORGET_MS
                fast = fast and not learning and not common and (b_place, place) not in transitions
                if b_place != place:
                    transitions.add((b_place, place))
            if fast:
                triggers.append((r.ts, 0, r.eid))
                contexts[r.eid] = travel.triggering_locations(b_named, named)
        seen[place] = r.ts
    return triggers, contexts


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * travel.EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


def _lifecycle(
    compiled: CompiledRule,
    group: tuple[str | None, ...],
    triggers: list[tuple[int, int]],
    rows: list[_Row],
    window: int,
    contexts: dict[int, dict[str, Any]] | None = None,
) -> list[Signal]:
    options = compiled.rule.options
    keep_alive, max_duration = options.keep_alive * 1000, options.max_signal_duration * 1000
    out: list[Signal] = []
    current: dict[str, Any] | None = None

    def covered(t: int) -> dict[int, _Row]:
        return {r.eid: r for r in rows if t - window <= r.ts <= t}

    def finish(sig: dict[str, Any]) -> Signal:
        events = sorted(sig["rows"].values(), key=lambda r: (r.ts, tie_digest(r.canonical), r.eid))
        samples = [orjson.loads(r.canonical) for r in events[:MAX_SAMPLES]]
        rule = compiled.rule
        group_by = dict(zip(rule.group_by_fields, group))
        case = compiled.cases[sig["case"]]
        first = samples[0] if samples else None
        if first is not None and contexts and events[0].eid in contexts:
            first = {**contexts[events[0].eid], **first}
        severity = rule.options.severity_in_env(case.severity, env_of(first))
        signal = signal_variables(rule.name, case.name, severity, events[0].ts, events[-1].ts, len(events))
        return Signal(rule.id, rule.name, severity, case.name, group_by, events[0].ts, events[-1].ts,
                      len(events), samples, list(rule.tags), render_message(rule.message, first, group_by, signal))

    for t, case_index in sorted(triggers):
        if current is not None and t - current["last"] <= keep_alive and (max_duration == 0 or t - current["first_seen"] <= max_duration):
            current["last"] = t
            current["rows"].update(covered(t))
            if compiled.severity_rank(case_index) > compiled.severity_rank(current["case"]):
                current["case"] = case_index
            continue
        if current is not None:
            out.append(finish(current))
        first_rows = covered(t)
        current = {"last": t, "rows": first_rows, "case": case_index, "first_seen": min(r.ts for r in first_rows.values())}
    if current is not None:
        out.append(finish(current))
    return out
