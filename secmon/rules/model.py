"""Rules as validated, frozen data: Datadog's security-monitoring rule format.

Field names and meaning are Datadog's (``log_detection`` and ``signal_correlation`` rules of the
v2 API), so a rule exported
from Datadog loads as it is. Models forbid unknown fields, which catches typos; fields Datadog
exports but that do not change detection (``createdAt``, ``isDefault``, ``version``, ...) are
accepted and kept as they are. Windows are any number of seconds, not only Datadog's enum.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator
from pydantic.alias_generators import to_camel

from secmon.severity import SEVERITIES, SEVERITY_RANK, Severity

# decreaseCriticalityBasedOnEnv lowers signals whose env tag starts with one of these.
NON_PRODUCTION_ENVS = ("staging", "test", "dev")
# ``event_count`` is a signal correlation query's: the signals of its rule (secmon.detect.correlation).
Aggregation = Literal["count", "cardinality", "sum", "max", "new_value", "none", "geo_data", "event_count"]
RuleType = Literal["log_detection", "signal_correlation"]
DetectionMethod = Literal["threshold", "new_value", "impossible_travel", "sequence_detection", "anomaly_detection"]

# Datadog names unnamed queries a, b, c, ... in order; case conditions refer to them by name.
QUERY_NAMES = "abcdefghijklmnopqrstuvwxyz"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )


class RuleQuery(_Model):
    query: str = ""
    group_by_fields: tuple[str, ...] = ()
    distinct_fields: tuple[str, ...] = ()
    aggregation: Aggregation = "count"
    metrics: tuple[str, ...] = ()
    metric: str | None = None  # Datadog's older single-metric spelling
    name: str | None = None
    has_optional_group_by_fields: bool = False
    # A signal correlation rule's query: the rule whose signals it counts, and the attributes
    # that tie the signals of its queries together (set on the first query; the others share them).
    rule_id: str | None = None
    default_rule_id: str | None = None
    correlated_by_fields: tuple[str, ...] = ()
    correlated_query_index: int | None = Field(default=None, ge=0)
    # Accepted from Datadog exports; secmon reads logs only.
    data_source: Literal["logs"] | None = None
    index: str | None = None
    indexes: tuple[str, ...] | None = None
    custom_query_extension: str | None = None

    @property
    def metric_fields(self) -> tuple[str, ...]:
        if self.metrics:
            return self.metrics
        return (self.metric,) if self.metric else ()


class RuleCase(_Model):
    name: str = ""
    status: Severity
    condition: str = ""
    notifications: tuple[str, ...] = ()
    actions: tuple[dict[str, Any], ...] | None = None
    custom_status: str | None = None


class RuleFilter(_Model):
    action: Literal["require", "suppress"]
    query: str


class NewValueOptions(_Model):
    # Days, as in Datadog (0, 1, 7 / 1, 2, 7, 14, 21, 28); any non-negative number is accepted.
    learning_duration: int | float = Field(default=0, ge=0)
    forget_after: int | float = Field(default=28, gt=0)
    learning_method: Literal["duration"] = "duration"  # Datadog's "threshold" is named as not supported yet
    learning_threshold: int = Field(default=0, ge=0)
    instantaneous_baseline: bool | None = None


class AnomalyDetectionOptions(_Model):
    """How an anomaly rule counts and judges (secmon.detect.anomaly): buckets of
    ``bucketDuration`` seconds, a baseline of the ``learningDuration`` hours before each bucket."""

    bucket_duration: int = Field(default=300, ge=1)  # Datadog's minimum is 300; any number of seconds runs
    learning_duration: int | float = Field(default=24, gt=0)  # hours
    detection_tolerance: int | float = Field(default=3, ge=1, le=5)  # standard deviations above the baseline
    learning_period_baseline: int | float | None = Field(default=None, ge=0)  # the count allowed while learning
    instantaneous_baseline: bool = False  # judge from the second bucket on, on the history there is


class ImpossibleTravelOptions(_Model):
    # Learn each user's usual locations for a day before raising signals (secmon.detect.travel).
    baseline_user_locations: bool = False


class SequenceStep(_Model):
    """One stage of a sequence: its condition over the rule's queries, counted over its window."""

    name: str = Field(min_length=1)
    condition: str
    evaluation_window: int = Field(default=0, ge=0)


class SequenceTransition(_Model):
    """The ``child`` step must hold within ``evaluationWindow`` seconds after the ``parent``."""

    parent: str
    child: str
    evaluation_window: int = Field(default=0, ge=0)


class SequenceDetectionOptions(_Model):
    steps: tuple[SequenceStep, ...] = Field(min_length=1)
    step_transitions: tuple[SequenceTransition, ...] = ()


class RuleOptions(_Model):
    detection_method: DetectionMethod = "threshold"
    evaluation_window: int = Field(default=300, ge=0)
    keep_alive: int = Field(default=3600, ge=0)
    max_signal_duration: int = Field(default=86400, ge=0)
    new_value_options: NewValueOptions | None = None
    impossible_travel_options: ImpossibleTravelOptions | None = None
    anomaly_detection_options: AnomalyDetectionOptions | None = None
    sequence_detection_options: SequenceDetectionOptions | None = None
    decrease_criticality_based_on_env: bool | None = None
    hardcoded_evaluator_type: str | None = None

    def severity_in_env(self, severity: Severity, env: str | None) -> Severity:
        """``severity`` for a signal whose ``env`` tag is ``env``: with
        ``decreaseCriticalityBasedOnEnv``, one level lower where the env starts with ``staging``,
        ``test`` or ``dev`` (Datadog's rule; ``info`` stays ``info``)."""
        if not self.decrease_criticality_based_on_env or env is None or not env.startswith(NON_PRODUCTION_ENVS):
            return severity
        return SEVERITIES[max(SEVERITY_RANK[severity] - 1, 0)]

    @model_validator(mode="after")
    def _durations_consistent(self) -> RuleOptions:
        if self.max_signal_duration and self.keep_alive > self.max_signal_duration:
            raise ValueError(
                f"keepAlive ({self.keep_alive}s) must not exceed maxSignalDuration ({self.max_signal_duration}s)"
            )
        return self


class Rule(_Model):
    """One detection rule. ``id`` is stable: given, or derived from the file name by the loader."""

    id: str
    name: str
    type: RuleType = "log_detection"
    is_enabled: bool = True
    queries: tuple[RuleQuery, ...] = Field(min_length=1)
    cases: tuple[RuleCase, ...] = Field(min_length=1)
    options: RuleOptions = RuleOptions()
    filters: tuple[RuleFilter, ...] = ()
    message: str = ""
    tags: tuple[str, ...] = ()
    has_extended_title: bool | None = None
    group_signals_by: tuple[str, ...] | None = None
    # Datadog export metadata: kept, never interpreted.
    created_at: int | None = None
    creation_author_id: int | None = None
    update_author_id: int | None = None
    updated_at: int | None = None
    is_default: bool | None = None
    is_deleted: bool | None = None
    is_beta: bool | None = None
    version: int | None = None
    default_tags: tuple[str, ...] | None = None
    deprecation_date: int | None = None
    reference_tables: tuple[dict[str, Any], ...] | None = None
    third_party_cases: tuple[dict[str, Any], ...] | None = None
    compliance_signal_options: dict[str, Any] | None = None
    custom_message: str | None = None
    custom_name: str | None = None
    scheduling_options: dict[str, Any] | None = None
    calculated_fields: tuple[dict[str, Any], ...] | None = None

    # Where the rule came from, for error messages; not part of the Datadog format.
    source_file: str | None = Field(default=None, exclude=True)
    # A rule compiled from Sigma (secmon.rules.sigma) carries its query as an AST: Sigma matches
    # in any case, which the query language cannot write, so its query text is for reading only.
    _query_ast: Any = PrivateAttr(default=None)

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("id must not be empty")
        return value

    @classmethod
    def with_query_ast(cls, data: dict[str, Any], query: Any) -> Rule:
        """A rule whose one query is ``query`` (a query AST) rather than its text: a Sigma rule's."""
        rule = cls.model_validate(data)
        rule._query_ast = query
        return rule

    @property
    def from_sigma(self) -> bool:
        return self._query_ast is not None

    def query_ast(self, index: int) -> Any:
        """Query ``index`` as the query AST (secmon.query): parsed from its text, or a Sigma rule's own."""
        if self._query_ast is not None:
            return self._query_ast
        from secmon.query import parse

        return parse(self.queries[index].query)

    def query_name(self, index: int) -> str:
        query = self.queries[index]
        return query.name or QUERY_NAMES[index]

    @property
    def query_names(self) -> tuple[str, ...]:
        return tuple(self.query_name(i) for i in range(len(self.queries)))

    @property
    def case_names(self) -> tuple[str, ...]:
        """The names a case condition reads: a sequence rule's steps, any other rule's queries."""
        sequence = self.options.sequence_detection_options
        if self.options.detection_method == "sequence_detection" and sequence is not None:
            return tuple(step.name for step in sequence.steps)
        return self.query_names

    @property
    def group_by_fields(self) -> tuple[str, ...]:
        """The signal's group-by keys, as written in the rule's first query (a signal
        correlation's: the attributes it correlates by)."""
        if self.type == "signal_correlation":
            return self.queries[0].correlated_by_fields
        return self.queries[0].group_by_fields

    @property
    def correlated_rule_ids(self) -> tuple[str, ...]:
        """The rules whose signals a signal correlation rule reads (none for a log rule)."""
        return tuple(q.rule_id for q in self.queries if q.rule_id) if self.type == "signal_correlation" else ()

    @property
    def severity_order(self) -> tuple[Severity, ...]:
        return tuple(case.status for case in self.cases)

    def to_datadog(self) -> dict[str, Any]:
        """The rule as Datadog's JSON (camelCase, unset optional fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True, exclude={"source_file"})
