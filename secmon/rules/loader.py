"""Load rules from files and directories, collecting every error with file, line and field.

A rule file is Datadog's rule JSON or the same in YAML: one rule object, or a list of them.
Validation has two layers: the pydantic models (shape and types) and :func:`check_rule`
(queries that parse, conditions naming real queries, fields each aggregation needs). In lint
mode every error of the whole set is collected in one pass; nothing is skipped silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from secmon.errors import QuerySyntaxError, RuleError, RuleSetError, UnknownNameError
from secmon.rules.condition import NAME as CONDITION_NAME, ConditionError, parse_condition
from secmon.rules.model import Rule
from secmon.rules.sigma import SigmaError, is_sigma, sigma_rule_dict

RULE_SUFFIXES = (".json", ".yaml", ".yml")
TEST_SUFFIX = ".test.yaml"
# Datadog's 'new value' can track a combination of up to five fields.
MAX_NEW_VALUE_FIELDS = 5


@dataclass(frozen=True)
class RuleSet:
    """Rules loaded together, in file order; ids are unique within a set."""

    rules: tuple[Rule, ...] = ()
    files: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __getitem__(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        valid = ", ".join(r.id for r in self.rules[:20])
        raise UnknownNameError(f"no rule with id {rule_id!r}; ids include: {valid}")

    @property
    def enabled(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.is_enabled)

    def __add__(self, other: RuleSet) -> RuleSet:
        merged = RuleSet(self.rules + other.rules, self.files + other.files)
        _check_unique_ids(merged.rules)
        return merged


@dataclass
class _Collector:
    errors: list[RuleError] = field(default_factory=list)

    def add(self, error: RuleError) -> None:
        self.errors.append(error)


def iter_rule_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Rule files under ``paths`` (files as given, directories recursively, sorted), tests excluded."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix in RULE_SUFFIXES and not child.name.endswith(TEST_SUFFIX):
                    yield child
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(2, "no such rule file or directory", str(path))


def load_rules(paths: str | Path | Sequence[str | Path], *, lint: bool = False) -> RuleSet:
    """Load and validate every rule under ``paths``.

    Raises :class:`RuleSetError` listing every error found (all files are read first, so one run
    shows them all). With ``lint=True`` it still raises, but only after checking every file.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    collector = _Collector()
    rules: list[Rule] = []
    files: list[str] = []
    for file in iter_rule_files(paths):
        files.append(str(file))
        rules.extend(load_rule_file(file, collector))
    try:
        _check_unique_ids(rules)
    except RuleSetError as exc:
        collector.errors.extend(exc.errors)
    if collector.errors:
        raise RuleSetError(collector.errors)
    del lint  # every error is always collected; the flag stays for API clarity
    return RuleSet(tuple(rules), tuple(files))


def validate_rules(paths: str | Path | Sequence[str | Path]) -> list[RuleError]:
    """Every error of the rule set at ``paths`` (empty when all is well)."""
    try:
        load_rules(paths, lint=True)
    except RuleSetError as exc:
        return exc.errors
    return []


def load_rule_file(file: Path, collector: _Collector | None = None) -> list[Rule]:
    collector = collector or _Collector()
    own = _Collector()
    text = _read_text(file, own)
    rules: list[Rule] = []
    if text is not None:
        documents = _parse_documents(file, text, own)
        for index, raw in enumerate(documents):
            prefix = f"[{index}]." if len(documents) > 1 else ""
            rule = rule_from_dict(raw, file=str(file), default_id=_default_id(file, index, len(documents)),
                                  collector=own, field_prefix=prefix, lines=_LazyLines(text))
            if rule is not None:
                rules.append(rule)
    collector.errors.extend(own.errors)
    if own.errors and collector is None:
        raise RuleSetError(own.errors)
    return rules


def rule_from_dict(
    raw: Any,
    *,
    file: str = "<rule>",
    default_id: str | None = None,
    collector: _Collector | None = None,
    field_prefix: str = "",
    lines: dict[tuple[str, ...], int] | None = None,
) -> Rule | None:
    """Validate one rule object. Errors go to ``collector``, or raise when there is none."""
    own = _Collector()
    lines = {} if lines is None else lines
    rule: Rule | None = None
    if not isinstance(raw, dict):
        own.add(RuleError(file, field_prefix.rstrip(".") or "(rule)", "a rule must be a mapping", type(raw).__name__))
    elif is_sigma(raw):
        rule = _sigma_rule(raw, file, default_id, own, field_prefix, lines)
    else:
        data = dict(raw)
        if not data.get("id") and default_id:
            data["id"] = default_id
        data.pop("source_file", None)
        try:
            rule = Rule.model_validate({**data, "source_file": file})
        except ValidationError as exc:
            errors = exc.errors()
            nested = {tuple(str(part) for part in err["loc"])[:-1] for err in errors if len(err["loc"]) > 1}
            for err in errors:
                loc = tuple(str(part) for part in err["loc"])
                if err["type"] == "too_short" and any(outer[:len(loc)] == loc for outer in nested):
                    continue  # "at least 1 item" only because the items themselves were refused
                own.add(RuleError(file, field_prefix + _field_path(loc), _reason(err), err.get("input") if err["type"] != "missing" else None, _line_for(lines, loc)))
        if rule is not None:
            for error in check_rule(rule):
                own.add(RuleError(file, field_prefix + error.field, error.reason, error.value, _line_for(lines, _loc_of(error.field))))
            if own.errors:
                rule = None
    if collector is not None:
        collector.errors.extend(own.errors)
    elif own.errors:
        raise RuleSetError(own.errors)
    return rule


def _sigma_rule(raw: dict[str, Any], file: str, default_id: str | None, own: _Collector, field_prefix: str,
                lines: dict[tuple[str, ...], int]) -> Rule | None:
    """A Sigma rule compiled (``secmon.rules.sigma``); what secmon cannot run is an error naming
    the field and why."""
    try:
        data, query = sigma_rule_dict(raw, default_id)
        return Rule.with_query_ast({**data, "source_file": file}, query)
    except SigmaError as exc:
        own.add(RuleError(file, field_prefix + exc.field, exc.reason, exc.value, _line_for(lines, _loc_of(exc.field))))
        return None
    except (ValidationError, ValueError) as exc:
        own.add(RuleError(file, field_prefix + "detection", f"the Sigma rule does not compile: {str(exc).splitlines()[0]}"))
        return None


def check_rule(rule: Rule) -> list[RuleError]:
    """Semantic checks the models cannot express: every query parses, every condition is sound."""
    from secmon.query import parse as parse_query

    file = rule.source_file or "<rule>"
    errors: list[RuleError] = []
    method = rule.options.detection_method
    names = rule.query_names
    if len(set(names)) != len(names):
        errors.append(RuleError(file, "queries", "query names must be unique", list(names)))
    if rule.type == "signal_correlation":
        return errors + _check_correlation(rule, file)
    for index, query in enumerate(rule.queries):
        where = f"queries[{index}]"
        if query.rule_id is not None or query.correlated_by_fields:
            errors.append(RuleError(file, f"{where}.{'ruleId' if query.rule_id is not None else 'correlatedByFields'}",
                                    "only a signal_correlation rule's queries read the signals of a rule; this rule's type is log_detection"))
        if query.aggregation == "event_count":
            errors.append(RuleError(file, f"{where}.aggregation", "event_count counts the signals of a signal_correlation rule's query",
                                    query.aggregation))
        try:
            parse_query(query.query)
        except QuerySyntaxError as exc:
            errors.append(RuleError(file, f"{where}.query", str(exc).splitlines()[0], query.query))
        if len(query.group_by_fields) != len(rule.queries[0].group_by_fields):
            errors.append(RuleError(file, f"{where}.groupByFields",
                                    "every query must group by as many fields as the first one (they are joined by position)",
                                    list(query.group_by_fields)))
        aggregation = query.aggregation
        if aggregation == "cardinality" and not query.distinct_fields:
            errors.append(RuleError(file, f"{where}.distinctFields", "a cardinality query needs the field to count distinct values of"))
        if aggregation in ("sum", "max") and len(query.metric_fields) != 1:
            errors.append(RuleError(file, f"{where}.metrics", f"a {aggregation} query needs exactly one metric field", list(query.metric_fields)))
        if aggregation == "new_value":
            if method != "new_value":
                errors.append(RuleError(file, f"{where}.aggregation", "new_value aggregation needs options.detectionMethod: new_value", aggregation))
            if not 1 <= len(query.metric_fields) <= MAX_NEW_VALUE_FIELDS:
                errors.append(RuleError(file, f"{where}.metrics", f"a new_value query tracks 1 to {MAX_NEW_VALUE_FIELDS} fields", list(query.metric_fields)))
        elif method == "new_value":
            errors.append(RuleError(file, f"{where}.aggregation", "a new_value rule's queries use aggregation new_value", aggregation))
        if (aggregation == "geo_data") != (method == "impossible_travel"):
            errors.append(RuleError(file, f"{where}.aggregation",
                                    "an impossible_travel rule's query uses aggregation geo_data, and only such a query does", aggregation))
        elif aggregation == "geo_data" and len(query.metric_fields) != 1:
            errors.append(RuleError(file, f"{where}.metrics", "a geo_data query names the one attribute holding the location "
                                    "(Datadog's is @network.client.geoip)", list(query.metric_fields)))
        for fld_name, fields in (("groupByFields", query.group_by_fields), ("distinctFields", query.distinct_fields), ("metrics", query.metric_fields)):
            for position, value in enumerate(fields):
                if not value or not value.strip() or " " in value.strip():
                    errors.append(RuleError(file, f"{where}.{fld_name}[{position}]", "not an attribute name", value))
    if method == "impossible_travel" and len(rule.queries) != 1:
        errors.append(RuleError(file, "queries", "an impossible_travel rule has exactly one query", len(rule.queries)))
    if method == "anomaly_detection":
        if len(rule.queries) != 1 or rule.queries[0].aggregation != "count":
            errors.append(RuleError(file, "queries", "an anomaly_detection rule has exactly one query, and it counts events",
                                    [q.aggregation for q in rule.queries]))
        for index, case in enumerate(rule.cases):
            if case.condition.strip():
                errors.append(RuleError(file, f"cases[{index}].condition",
                                        "an anomaly_detection rule's case has no condition: the anomaly is what triggers it", case.condition))
    if method == "sequence_detection":
        errors += _check_sequence(rule, file)
        if rule.options.sequence_detection_options is None:
            return errors + _check_filters_and_signals(rule, file)  # the cases name steps there are none of
    return errors + _check_filters_and_signals(rule, file) + _check_cases(rule, file)


def _check_filters_and_signals(rule: Rule, file: str) -> list[RuleError]:
    from secmon.query import parse as parse_query

    errors: list[RuleError] = []
    if rule.group_signals_by and set(rule.group_signals_by) != set(rule.group_by_fields):
        # Fewer signals, one per value of a subset of the group-by fields: not run yet. Datadog's
        # exports often carry the whole group-by list here, which changes nothing.
        errors.append(RuleError(file, "groupSignalsBy", "grouping signals by a subset of the group-by fields is not supported by secmon yet",
                                list(rule.group_signals_by)))
    for index, rule_filter in enumerate(rule.filters):
        try:
            parse_query(rule_filter.query)
        except QuerySyntaxError as exc:
            errors.append(RuleError(file, f"filters[{index}].query", str(exc).splitlines()[0], rule_filter.query))
    return errors


def _check_cases(rule: Rule, file: str) -> list[RuleError]:
    errors: list[RuleError] = []
    for index, case in enumerate(rule.cases):
        try:
            parse_condition(case.condition, rule.case_names)
        except ConditionError as exc:
            errors.append(RuleError(file, f"cases[{index}].condition", str(exc), case.condition))
    return errors


# Datadog lets a signal correlation rule correlate by up to three attributes.
MAX_CORRELATED_FIELDS = 3


def _check_correlation(rule: Rule, file: str) -> list[RuleError]:
    """A signal correlation rule as Datadog defines one: threshold cases over queries that each
    count the signals of one rule, tied together by the first query's correlated attributes."""
    errors: list[RuleError] = []
    if rule.options.detection_method != "threshold":
        errors.append(RuleError(file, "options.detectionMethod", "a signal_correlation rule's cases are thresholds over its queries",
                                rule.options.detection_method))
    fields = rule.queries[0].correlated_by_fields
    if not 1 <= len(fields) <= MAX_CORRELATED_FIELDS:
        errors.append(RuleError(file, "queries[0].correlatedByFields",
                                f"a signal correlation correlates by 1 to {MAX_CORRELATED_FIELDS} attributes", list(fields)))
    for index, query in enumerate(rule.queries):
        where = f"queries[{index}]"
        if not (query.rule_id or "").strip():
            errors.append(RuleError(file, f"{where}.ruleId", "a signal correlation query names the rule whose signals it counts", query.rule_id))
        if query.query.strip():
            errors.append(RuleError(file, f"{where}.query", "a signal correlation query reads the signals of its ruleId, not logs", query.query))
        if query.aggregation not in ("count", "event_count"):
            errors.append(RuleError(file, f"{where}.aggregation", "a signal correlation query counts signals (event_count or count)",
                                    query.aggregation))
        for name, value in (("distinctFields", query.distinct_fields), ("metrics", query.metric_fields)):
            if value:
                errors.append(RuleError(file, f"{where}.{name}", "a signal correlation query counts signals and reads no field", list(value)))
        for name, value in (("correlatedByFields", query.correlated_by_fields), ("groupByFields", query.group_by_fields)):
            if value and value != fields:
                errors.append(RuleError(file, f"{where}.{name}", "every query correlates by the first query's correlatedByFields "
                                        f"({', '.join(fields)})", list(value)))
        for position, value in enumerate(query.correlated_by_fields):
            if not value.strip() or " " in value.strip():
                errors.append(RuleError(file, f"{where}.correlatedByFields[{position}]", "not an attribute name", value))
    return errors + _check_filters_and_signals(rule, file) + _check_cases(rule, file)


_STEP_NAME = re.compile(CONDITION_NAME)


def _check_sequence(rule: Rule, file: str) -> list[RuleError]:
    """A sequence rule as Datadog defines one: count queries that group by the same fields, steps
    over them, and transitions that chain the steps in their order (a linear sequence)."""
    options = rule.options.sequence_detection_options
    if options is None:
        return [RuleError(file, "options.sequenceDetectionOptions", "a sequence_detection rule needs its steps and step transitions")]
    errors: list[RuleError] = []
    for index, query in enumerate(rule.queries):
        if query.aggregation not in ("count", "none"):
            errors.append(RuleError(file, f"queries[{index}].aggregation", "a sequence_detection rule's queries count events", query.aggregation))
        if query.group_by_fields != rule.queries[0].group_by_fields:
            errors.append(RuleError(file, f"queries[{index}].groupByFields",
                                    "every step's query groups by the same fields (they link the steps' entity)", list(query.group_by_fields)))
    names = [step.name for step in options.steps]
    for index, name in enumerate(names):
        if not _STEP_NAME.fullmatch(name):
            errors.append(RuleError(file, f"options.sequenceDetectionOptions.steps[{index}].name",
                                    "a step name is a word of letters, digits and _ (cases name the steps)", name))
    if len(set(names)) != len(names):
        errors.append(RuleError(file, "options.sequenceDetectionOptions.steps", "step names must be unique", names))
    for index, step in enumerate(options.steps):
        try:
            parse_condition(step.condition, rule.query_names)
        except ConditionError as exc:
            errors.append(RuleError(file, f"options.sequenceDetectionOptions.steps[{index}].condition", str(exc), step.condition))
    chain = {(t.parent, t.child) for t in options.step_transitions}
    wanted = set(zip(names, names[1:]))
    if chain != wanted or len(options.step_transitions) != len(wanted):
        errors.append(RuleError(file, "options.sequenceDetectionOptions.stepTransitions",
                                "the transitions must chain the steps in their order, each step to the next one "
                                f"({', '.join(f'{a} -> {b}' for a, b in zip(names, names[1:])) or 'none for one step'})",
                                [f"{t.parent} -> {t.child}" for t in options.step_transitions]))
    return errors


def _check_unique_ids(rules: Sequence[Rule]) -> None:
    seen: dict[str, str] = {}
    errors: list[RuleError] = []
    for rule in rules:
        where = rule.source_file or "<rule>"
        if rule.id in seen:
            errors.append(RuleError(where, "id", f"duplicate rule id, first defined in {seen[rule.id]}", rule.id))
        else:
            seen[rule.id] = where
    if errors:
        raise RuleSetError(errors)


def _read_text(file: Path, collector: _Collector) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        collector.add(RuleError(str(file), "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}"))
    return None


def _parse_documents(file: Path, text: str, collector: _Collector) -> list[Any]:
    try:
        if file.suffix == ".json":
            data = json.loads(text)
        else:
            docs = [doc for doc in yaml.load_all(text, Loader=_YAML_LOADER) if doc is not None]
            data = docs[0] if len(docs) == 1 else docs
    except json.JSONDecodeError as exc:
        collector.add(RuleError(str(file), "(file)", f"invalid JSON: {exc.msg}", line=exc.lineno))
        return []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        collector.add(RuleError(str(file), "(file)", f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
                                line=mark.line + 1 if mark else None))
        return []
    if data is None:
        collector.add(RuleError(str(file), "(file)", "the file holds no rule"))
        return []
    if isinstance(data, dict) and isinstance(data.get("data"), list) and not {"name", "queries"} & data.keys():
        # Datadog's answer to "list rules" (GET /api/v2/security_monitoring/rules), saved as it
        # came: {"data": [rule, ...], "meta": {"page": ...}}.
        return list(data["data"])
    return data if isinstance(data, list) else [data]


def _default_id(file: Path, index: int, count: int) -> str:
    stem = file.name
    for suffix in RULE_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return stem if count == 1 else f"{stem}-{index}"


def _field_path(loc: tuple[str, ...]) -> str:
    out = ""
    for part in loc:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(rule)"


# Parts of Datadog's rule format that secmon does not run yet: named as such, not as unknown
# fields or bad values (a user's export of Datadog rules holds them).
_DATADOG_FIELDS_NOT_YET = frozenset({
    "thirdPartyRuleOptions",
    "complianceRuleOptions",
})
_DATADOG_VALUES_NOT_YET: dict[str, frozenset[str]] = {  # field -> its values secmon does not run yet
    "detectionMethod": frozenset({"anomaly_threshold", "third_party", "hardcoded"}),
    "learningMethod": frozenset({"threshold"}),
    "type": frozenset({"workload_security", "application_security", "cloud_configuration",
                       "infrastructure_configuration", "api_security"}),
}


def _reason(err: Mapping[str, Any]) -> str:
    where = str(err["loc"][-1]) if err["loc"] else ""
    if err["type"] == "extra_forbidden":
        if where in _DATADOG_FIELDS_NOT_YET:
            return "a Datadog field that secmon does not support yet"
        return "unknown field (not part of Datadog's rule format)"
    value = err.get("input")
    if err["type"] == "literal_error" and isinstance(value, str) and value in _DATADOG_VALUES_NOT_YET.get(where, ()):
        return f"Datadog's {err['input']!r} is not supported by secmon yet; supported: {str(err['msg']).removeprefix('Input should be ')}"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"]).removeprefix("Value error, ")


# libyaml's loader when PyYAML has it: ten times faster on the rule pack.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LazyLines(dict):  # type: ignore[type-arg]
    """Field path -> line number, computed only when an error needs it (composing is slow)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text: str | None = text

    def _load(self) -> None:
        if self._text is not None:
            self.update(_line_index(self._text))
            self._text = None

    def __contains__(self, key: object) -> bool:
        self._load()
        return super().__contains__(key)

    def __getitem__(self, key: tuple[str, ...]) -> int:
        self._load()
        return super().__getitem__(key)


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map field paths to 1-based line numbers, so errors point into the file."""
    index: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return index

    def walk(node: Any, path: tuple[str, ...]) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = path + (str(key.value),)
                index[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for position, item in enumerate(node.value):
                walk(item, path + (str(position),))

    if root is not None:
        walk(root, ())
    return index


def _loc_of(field: str) -> tuple[str, ...]:
    """A field path as written in errors (``queries[0].query``) as the line index's keys."""
    return tuple(re.split(r"[.\[\]]+", field.strip("]")))


def _line_for(lines: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    loc = tuple(part for part in loc if part)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None
