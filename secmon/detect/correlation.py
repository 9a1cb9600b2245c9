"""Signal correlation: rules over the signals of other rules (Datadog's ``signal_correlation``).

A correlation rule's queries each name a rule (``ruleId``) and count its signals; the first
query's ``correlatedByFields`` tie them together, and its cases are thresholds over the counts in
the rule's sliding window (``a > 0 && b > 0``: a signal of each rule for the same user within
fifteen minutes). So a correlation is a threshold rule over a stream whose events are signals:

- each signal of a correlated rule becomes a *signal event* (:func:`signal_event`) at its
  ``first_seen``, with the rule's id and name under ``workflow.rule`` (the attribute names
  Datadog's signals carry), what the signal is under ``signal``, and its group-by values and
  correlated attributes at their own attribute paths (a correlated attribute the signal does not
  group by is read from its first sample event);
- the correlation rule becomes the threshold rule :func:`as_threshold_rule`: one query per
  correlated rule, ``@workflow.rule.id:"<ruleId>"``, grouped by the correlated attributes, with
  the correlation's cases, options, filters, message and tags;
- the engine's own threshold detection (or the reference twin's) runs it over the signal events.

The resulting signals are the correlation rule's: their samples are the signal events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from secmon.errors import RuleError, RuleSetError
from secmon.ingest.paths import set_default
from secmon.rules.model import Rule, RuleQuery
from secmon.signals.model import Signal, iso_ms, lookup_path, sample_events

RULE_ID_PATH = ("workflow", "rule", "id")
RULE_NAME_PATH = ("workflow", "rule", "name")

# What runs the threshold rules over the signal events: the engine, or the reference twin.
Detect = Callable[[Sequence[Rule], list[dict[str, Any]]], list[Signal]]


def correlation_rules(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    """The enabled signal correlation rules of ``rules``, each checked against the rest: every
    rule it reads must be an enabled log rule of the same set (else :class:`RuleSetError`,
    naming the rule, the query and why)."""
    rules = tuple(rules)
    log_rules = {rule.id: rule for rule in rules if rule.type == "log_detection"}
    wanted = tuple(rule for rule in rules if rule.type == "signal_correlation" and rule.is_enabled)
    errors: list[RuleError] = []
    for rule in wanted:
        for index, query in enumerate(rule.queries):
            target = log_rules.get(query.rule_id or "")
            reason = None
            if target is None:
                other = any(r.id == query.rule_id for r in rules)
                reason = ("names a signal correlation rule: a correlation reads the signals of log rules" if other
                          else "no rule with this id is loaded (load the rule it correlates with the same scan)")
            elif not target.is_enabled:
                reason = "names a disabled rule, which raises no signal to correlate"
            if reason is not None:
                errors.append(RuleError(rule.source_file or "<rule>", f"queries[{index}].ruleId", reason, query.rule_id))
    if errors:
        raise RuleSetError(errors)
    return wanted


def as_threshold_rule(rule: Rule) -> Rule:
    """The threshold rule over signal events that ``rule`` (a signal correlation) amounts to."""
    fields = rule.queries[0].correlated_by_fields
    queries = tuple(
        RuleQuery(
            query=f'@{".".join(RULE_ID_PATH)}:"{_quoted(query.rule_id or "")}"',
            group_by_fields=fields,
            aggregation="count",
            name=rule.query_name(index),
        )
        for index, query in enumerate(rule.queries)
    )
    return rule.model_copy(update={"type": "log_detection", "queries": queries})


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def signal_event(signal: Signal, fields: Sequence[str]) -> dict[str, Any]:
    """``signal`` as an event of the correlation stream; ``fields`` are the attributes some
    correlation reads of it."""
    event: dict[str, Any] = {
        "timestamp": signal.first_seen_ms,
        "workflow": {"rule": {"id": signal.rule_id, "name": signal.rule_name}},
        "signal": {
            "id": signal.id,
            "severity": signal.severity,
            "case": signal.case,
            "event_count": signal.event_count,
            "first_seen": iso_ms(signal.first_seen_ms),
            "last_seen": iso_ms(signal.last_seen_ms),
        },
    }
    for key, value in signal.group_by.items():
        _put(event, key, value)
    grouped = {_attribute(key) for key in signal.group_by}
    first: dict[str, Any] | None = None
    for field in fields:
        if _attribute(field) in grouped:
            continue
        if first is None:
            samples = sample_events(signal)  # not kept parsed in the signal
            first = samples[0] if samples else {}
        value = lookup_path(first, field)
        if value is not None:
            _put(event, field, value)
    return event


def _attribute(field: str) -> str:
    return field.lstrip("@")


def _put(event: dict[str, Any], field: str, value: Any) -> None:
    """Set ``value`` at the attribute path of ``field`` unless something is there already (a
    scalar in the way of a nested path leaves the event as it is)."""
    set_default(event, tuple(_attribute(field).split(".")), value)


class Correlator:
    """The signal correlation rules of a scan: fed every signal the scan raises (:meth:`add`),
    it keeps the events of the signals some correlation reads, then raises the correlations'
    signals (:meth:`signals`)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._threshold_rules = [as_threshold_rule(rule) for rule in self.rules]
        self._fields: dict[str, set[str]] = {}  # correlated rule id -> the attributes read of its signals
        for rule in self.rules:
            for rule_id in rule.correlated_rule_ids:
                self._fields.setdefault(rule_id, set()).update(rule.group_by_fields)
        self._events: list[dict[str, Any]] = []

    def add(self, signal: Signal) -> None:
        fields = self._fields.get(signal.rule_id)
        if fields is not None:
            self._events.append(signal_event(signal, sorted(fields)))

    def signals(self, detect: Detect) -> list[Signal]:
        events, self._events = self._events, []
        return detect(self._threshold_rules, events) if events else []
