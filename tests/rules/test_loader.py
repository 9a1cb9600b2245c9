"""Loading Datadog-format rules: exports load as they are; every error names file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secmon.errors import RuleSetError
from secmon.rules import load_rules, validate_rules

# The shape Datadog's API returns for a rule (GET /api/v2/security_monitoring/rules/{id}).
DATADOG_EXPORT = {
    "id": "abc-123-xyz",
    "name": "Brute force attack on SSH",
    "createdAt": 1700000000000,
    "creationAuthorId": 1234,
    "isDefault": False,
    "isEnabled": True,
    "isDeleted": False,
    "hasExtendedTitle": True,
    "message": "IP {{@network.client.ip}} failed {{@usr.name}} logins",
    "options": {
        "evaluationWindow": 300,
        "keepAlive": 3600,
        "maxSignalDuration": 86400,
        "detectionMethod": "threshold",
        "decreaseCriticalityBasedOnEnv": False,
    },
    "queries": [
        {
            "query": "source:sshd @evt.name:authentication @evt.outcome:failure",
            "groupByFields": ["@network.client.ip"],
            "hasOptionalGroupByFields": False,
            "distinctFields": [],
            "aggregation": "count",
            "name": "failed",
            "dataSource": "logs",
        }
    ],
    "cases": [{"name": "many", "status": "high", "notifications": [], "condition": "failed >= 10"}],
    "filters": [{"action": "suppress", "query": "@network.client.ip:10.0.0.1"}],
    "tags": ["source:ssh", "tactic:TA0006-credential-access"],
    "type": "log_detection",
    "version": 3,
    "updateAuthorId": 1234,
    "defaultTags": [],
}


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2) if name.endswith(".json") else str(data))
    return path


def test_datadog_export_loads_as_is(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, "r.json", DATADOG_EXPORT))
    rule = rules["abc-123-xyz"]
    assert rule.queries[0].group_by_fields == ("@network.client.ip",)
    assert rule.options.evaluation_window == 300
    assert rule.cases[0].condition == "failed >= 10"
    # Round trip: what we export is what Datadog gave us (metadata included).
    assert rule.to_datadog()["queries"][0]["groupByFields"] == ["@network.client.ip"]
    assert load_rules(write(tmp_path, "again.json", rule.to_datadog()))["abc-123-xyz"] == rule.model_copy(
        update={"source_file": str(tmp_path / "again.json")}
    )


def test_datadog_list_rules_answer_loads_as_is(tmp_path: Path) -> None:
    """What GET /api/v2/security_monitoring/rules returns, saved to a file: every rule of ``data``."""
    second = {**DATADOG_EXPORT, "id": "def-456", "name": "Second"}
    answer = {"data": [DATADOG_EXPORT, second], "meta": {"page": {"total_count": 2, "total_filtered_count": 2}}}
    assert sorted(rule.id for rule in load_rules(write(tmp_path, "all.json", answer))) == ["abc-123-xyz", "def-456"]
    broken = {"data": [DATADOG_EXPORT, {**second, "cases": []}], "meta": {}}
    errors = validate_rules(write(tmp_path, "broken.json", broken))
    assert [e.field for e in errors] == ["[1].cases"]


def test_a_refused_query_is_reported_once_not_also_as_an_empty_list(tmp_path: Path) -> None:
    rule = {**DATADOG_EXPORT, "queries": [{**DATADOG_EXPORT["queries"][0], "aggregation": "geo_data"}]}  # type: ignore[dict-item]
    errors = validate_rules(write(tmp_path, "r.json", rule))
    assert [e.field for e in errors] == ["queries[0].aggregation"]
    assert [e.field for e in validate_rules(write(tmp_path, "none.json", {**DATADOG_EXPORT, "queries": []}))] == ["queries"]


def test_datadog_rules_secmon_cannot_run_yet_are_named_as_such(tmp_path: Path) -> None:
    """An export of Datadog rules holds third-party and workload security rules: their errors say
    what secmon does not support, never that Datadog's own fields are unknown."""
    third_party = {**DATADOG_EXPORT, "options": {**DATADOG_EXPORT["options"], "detectionMethod": "third_party",  # type: ignore[dict-item]
                                                 "thirdPartyRuleOptions": {"rootQueries": []}}}
    errors = {e.field: e.reason for e in validate_rules(write(tmp_path, "third.json", third_party))}
    assert errors == {
        "options.detectionMethod": "Datadog's 'third_party' is not supported by secmon yet; supported: 'threshold', "
                                   "'new_value', 'impossible_travel', 'sequence_detection' or 'anomaly_detection'",
        "options.thirdPartyRuleOptions": "a Datadog field that secmon does not support yet",
    }
    workload = {**DATADOG_EXPORT, "type": "workload_security"}
    reasons = [e.reason for e in validate_rules(write(tmp_path, "workload.json", workload))]
    assert reasons and all("not supported by secmon yet" in r for r in reasons), reasons
    assert validate_rules(write(tmp_path, "typo.json", {**DATADOG_EXPORT, "optionz": {}}))[0].reason.startswith("unknown field")
    # A value of the wrong shape where such a name is expected is an ordinary error, not a crash.
    assert [e.field for e in validate_rules(write(tmp_path, "shape.json", {**DATADOG_EXPORT, "type": ["signal_correlation"]}))] == ["type"]


def test_options_that_would_change_the_signals_are_named_not_ignored(tmp_path: Path) -> None:
    """A new-value rule learning by threshold, and signals grouped by a subset of the group-by
    fields, would give other signals than Datadog's: refused by name. Their no-op spellings (the
    default learning method, groupSignalsBy holding every group-by field) load."""
    query = {"query": "source:sshd", "groupByFields": ["@usr.name", "host"], "aggregation": "new_value", "metrics": ["@network.client.ip"]}
    rule = {**DATADOG_EXPORT, "queries": [query], "cases": [{"status": "low"}], "options": {"detectionMethod": "new_value",
            "newValueOptions": {"learningMethod": "threshold", "learningThreshold": 1, "forgetAfter": 7}}}
    errors = {e.field: e.reason for e in validate_rules(write(tmp_path, "nv.json", rule))}
    assert errors == {"options.newValueOptions.learningMethod": "Datadog's 'threshold' is not supported by secmon yet; supported: 'duration'"}
    fine = {**rule, "options": {"detectionMethod": "new_value", "newValueOptions": {"learningMethod": "duration", "learningThreshold": 0}}}
    errors = {e.field: e.reason for e in validate_rules(write(tmp_path, "subset.json", {**fine, "groupSignalsBy": ["host"]}))}
    assert errors == {"groupSignalsBy": "grouping signals by a subset of the group-by fields is not supported by secmon yet"}
    fine["groupSignalsBy"] = ["host", "@usr.name"]
    assert validate_rules(write(tmp_path, "fine.json", fine)) == []


def test_yaml_rule_without_id_gets_its_file_stem(tmp_path: Path) -> None:
    text = """
name: Root login
queries:
  - query: "source:sshd @usr.name:root @evt.outcome:success"
cases:
  - status: medium
options:
  detectionMethod: threshold
  evaluationWindow: 0
"""
    rules = load_rules(write(tmp_path, "root-login.yaml", text))
    assert [r.id for r in rules] == ["root-login"]
    assert rules["root-login"].query_names == ("a",)


def test_every_error_of_a_rule_set_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    bad_yaml = """id: bad-one
name: Bad
queries:
  - query: "@a:(b"
    aggregation: cardinality
cases:
  - status: severe
    condition: "a > 1 && z > 0"
options:
  evaluationWindow: -5
  keepAlivee: 10
"""
    write(tmp_path, "bad.yaml", bad_yaml)
    write(tmp_path, "other.json", {**DATADOG_EXPORT, "cases": [{"status": "high", "condition": "missing > 1"}]})
    errors = validate_rules(tmp_path)
    text = "\n".join(str(e) for e in errors)
    assert "bad.yaml:7: cases[0].status" in text  # bad severity, with its line
    assert "options.evaluationWindow" in text
    assert "options.keepAlivee: unknown field" in text
    assert "other.json" in text and "names unknown query missing" in text
    with pytest.raises(RuleSetError) as info:
        load_rules(tmp_path)
    assert len(info.value.errors) == len(errors) >= 4


def test_semantic_errors_point_at_the_field(tmp_path: Path) -> None:
    rule = {**DATADOG_EXPORT, "queries": [{**DATADOG_EXPORT["queries"][0], "query": "@a:(b", "aggregation": "cardinality"}]}
    errors = validate_rules(write(tmp_path, "r.json", rule))
    fields = {e.field for e in errors}
    assert "queries[0].query" in fields
    assert "queries[0].distinctFields" in fields
    assert all(e.file.endswith("r.json") for e in errors)


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.json", DATADOG_EXPORT)
    write(tmp_path, "b.json", DATADOG_EXPORT)
    errors = validate_rules(tmp_path)
    assert any("duplicate rule id" in str(e) for e in errors)


def test_a_sigma_rule_loads_beside_datadog_rules_and_a_bad_one_names_its_field(tmp_path: Path) -> None:
    sigma = "title: x\nid: sigma-x\nlogsource: {product: aws}\ndetection: {sel: {a: b}, condition: sel}\n"
    write(tmp_path, "s.yml", sigma)
    write(tmp_path, "d.json", DATADOG_EXPORT)
    assert sorted(r.id for r in load_rules(tmp_path)) == sorted(["sigma-x", DATADOG_EXPORT["id"]])
    errors = validate_rules(write(tmp_path, "bad.yml", sigma.replace("condition: sel", "condition: sel and other")))
    assert [(e.file.endswith("bad.yml"), e.field) for e in errors] == [(True, "detection.condition")]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    errors = validate_rules(write(tmp_path, "broken.yaml", "name: x\nqueries: [\n"))
    assert errors and errors[0].line is not None and "invalid YAML" in str(errors[0])


def test_missing_path_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_rules(tmp_path / "nope")
