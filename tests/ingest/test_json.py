"""JSON records: generic Datadog remapping, CloudTrail, Kubernetes audit, documents, bad input."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from secmon.ingest import FORMATS, IngestStats, open_sources, parse_events, parse_lines

UTC = dt.timezone.utc
T = int(dt.datetime(2023, 7, 10, 12, 0, 42, tzinfo=UTC).timestamp() * 1000)


def get(event: dict[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"@timestamp": "2023-07-10T12:00:42Z"}, {"timestamp": T}),
        ({"timestamp": 1688990442}, {"timestamp": T}),
        ({"_timestamp": "1688990442000"}, {"timestamp": T}),
        ({"Timestamp": "2023-07-10T14:00:42+02:00"}, {"timestamp": T}),
        ({"date": 1688990442000000000}, {"timestamp": T}),
        ({"published_date": "2023-07-10 12:00:42"}, {"timestamp": T}),
        ({"syslog": {"timestamp": "2023-07-10T12:00:42Z"}}, {"timestamp": T}),
        ({"syslog.timestamp": "2023-07-10T12:00:42Z"}, {"timestamp": T}),
        ({"timestamp": T, "msg": "hi", "level": "WARN"}, {"message": "hi", "status": "warning"}),
        ({"timestamp": T, "log": "x", "severity": 3}, {"message": "x", "status": "error"}),
        ({"timestamp": T, "message": "kept", "msg": "not used"}, {"message": "kept"}),
        ({"timestamp": T, "hostname": "web-1", "ddsource": "nginx", "ddtags": "env:prod, team:sec"},
         {"host": "web-1", "source": "nginx", "tags": ["env:prod", "team:sec"]}),
        ({"timestamp": T, "syslog": {"appname": "cron", "hostname": "h"}}, {"service": "cron", "host": "h"}),
    ],
)
def test_generic_json_remapping(record: dict[str, Any], expected: dict[str, Any]) -> None:
    [event] = parse_lines([json.dumps(record)], format="ndjson")
    for path, value in expected.items():
        assert get(event, path) == value, path


def test_the_first_reserved_date_attribute_wins() -> None:
    record = {"date": "2001-01-01T00:00:00Z", "eventTime": "2023-07-10T12:00:42Z"}
    assert parse_events([record])[0]["timestamp"] == T


def test_an_unreadable_date_attribute_gives_way_to_the_next() -> None:
    assert parse_events([{"timestamp": "Monday", "date": "2023-07-10T12:00:42Z"}])[0]["timestamp"] == T
    stats = IngestStats()
    assert parse_events([{"timestamp": "Monday", "date": "soon"}], stats=stats) == []
    assert stats.rejected == Counter({"bad_timestamp": 1})
    assert "timestamp: not an ISO 8601 date: 'Monday'" in stats.examples["bad_timestamp"][0]


def test_cloudtrail_mapping() -> None:
    record = {
        "eventTime": "2023-07-10T12:00:42Z", "eventSource": "cloudtrail.amazonaws.com", "eventName": "StopLogging",
        "sourceIPAddress": "192.168.10.20", "userAgent": "stratus-red-team_1e5b", "errorCode": "TrailNotFoundException",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123837392027:user/bert-jan", "userName": "bert-jan"},
        "requestParameters": {"name": "trail-1"},
    }
    [event] = parse_events([record])
    assert event["timestamp"] == T
    assert (event["source"], event["service"]) == ("cloudtrail", "cloudtrail")
    assert event["evt"] == {"name": "StopLogging", "outcome": "failure"}
    assert event["network"]["client"]["ip"] == "192.168.10.20"
    assert event["http"]["useragent"] == "stratus-red-team_1e5b"
    assert event["usr"] == {"id": "arn:aws:iam::123837392027:user/bert-jan", "name": "bert-jan"}
    assert event["requestParameters"]["name"] == "trail-1"  # raw fields stay addressable
    assert record.get("evt") is None  # parse_events copies the caller's dicts


def test_cloudtrail_service_principal_is_not_a_client_ip() -> None:
    record = {"eventTime": "2023-07-10T12:00:42Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
              "sourceIPAddress": "ec2.amazonaws.com",
              "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"userName": "role-x"}}}}
    [event] = parse_events([record])
    assert get(event, "network.client.ip") is None
    assert event["sourceIPAddress"] == "ec2.amazonaws.com"
    assert get(event, "usr.name") == "role-x"
    assert get(event, "evt.outcome") == "success"


def test_cloudtrail_stratus_matches_datadogs_own_mapping(dataset: Callable[[str], Path]) -> None:
    """cloudtrail-stratus holds records after Datadog's pipeline. Datadog *moved* sourceIPAddress
    and userAgent into network.client.ip / http.useragent (we copy, so Sigma-style rules on the raw
    names still work) and copied eventName into evt.name. Undo that, map the raw record
    ourselves, and compare."""
    path = dataset("cloudtrail-stratus/events.jsonl")
    datadog = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert not any("sourceIPAddress" in r or "userAgent" in r for r in datadog)
    raw = [
        {k: v for k, v in r.items() if k not in ("evt", "http", "network", "service")}
        | {"sourceIPAddress": r["network"]["client"]["ip"], "userAgent": r["http"]["useragent"]}
        for r in datadog
    ]
    ours = parse_events(raw)
    assert len(ours) == 15
    for mine, theirs in zip(ours, datadog):
        for attribute in ("evt.name", "network.client.ip", "http.useragent", "service"):
            assert get(mine, attribute) == get(theirs, attribute), attribute


def test_cloudtrail_invictus_counts(dataset: Callable[[str], Path]) -> None:
    stats = IngestStats()
    events = parse_events(dataset("cloudtrail-invictus/CloudTrail"), stats=stats)
    assert len(events) == 2900 and stats.rejected_total == 0
    assert Counter(get(e, "evt.outcome") for e in events) == Counter({"success": 2600, "failure": 300})
    password_reads = [e for e in events if get(e, "evt.name") == "GetPasswordData"]
    assert len(password_reads) == 29
    assert {get(e, "usr.name") for e in password_reads} == {"stratus-red-team-ec2-get-password-data-role"}
    assert max(e["timestamp"] for e in password_reads) - min(e["timestamp"] for e in password_reads) <= 4000
    jsonl = parse_events(dataset("cloudtrail-invictus/events.jsonl"))
    key = lambda e: e["eventID"]  # noqa: E731
    strip = lambda e: {k: v for k, v in e.items() if k != "_file"}  # noqa: E731
    assert sorted(map(strip, jsonl), key=key) == sorted(events, key=key)


def test_stratus_raw_documents_and_the_malformed_one(dataset: Callable[[str], Path]) -> None:
    stats = IngestStats()
    events = parse_events(dataset("cloudtrail-stratus/raw"), stats=stats)
    assert len(events) == 12  # 15 minus the 3 of the upstream file with a missing comma
    assert stats.rejected == Counter({"malformed_json": 1})
    assert "aws.execution.ec2-user-data.json" in stats.examples["malformed_json"][0]
    assert {s.format.name for s in open_sources([dataset("cloudtrail-stratus/raw")])} == {"json"}


def test_kubernetes_audit_event() -> None:
    record = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": "a1",
        "stage": "ResponseComplete", "verb": "create", "requestURI": "/api/v1/namespaces/default/pods",
        "user": {"username": "system:serviceaccount:default:sa", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7", "10.0.0.1"], "userAgent": "kubectl/v1.29",
        "objectRef": {"resource": "pods", "namespace": "default"},
        "responseStatus": {"metadata": {}, "code": 403},
        "requestReceivedTimestamp": "2023-07-10T12:00:42.123456Z", "stageTimestamp": "2023-07-10T12:00:43.000000Z",
    }
    document = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [record]}, indent=2)
    stats = IngestStats()
    [event] = parse_lines(document.splitlines(), stats=stats)
    assert event["timestamp"] == T + 123
    assert event["source"] == "kubernetes.audit"
    assert get(event, "usr.name") == "system:serviceaccount:default:sa"
    assert get(event, "network.client.ip") == "10.0.0.7"
    assert get(event, "evt.name") == "create"
    assert get(event, "evt.outcome") == "failure"
    assert get(event, "http.status_code") == 403
    assert get(event, "objectRef.resource") == "pods"


def test_bad_json_is_counted_not_fatal() -> None:
    stats = IngestStats()
    lines = [b'{"timestamp": 1}', b'{"timestamp": ', b'"a string"', b'{"timestamp": true}', b"",
             b'{"timestamp": 2, "usr": {"name": "\xff\xfe"}}']
    events = parse_lines(lines, format="ndjson", stats=stats, name="x.jsonl")
    assert [e["timestamp"] for e in events] == [1000, 2000]
    assert events[1]["usr"]["name"] == "\ufffd\ufffd"
    assert stats.rejected == Counter({"malformed_json": 1, "not_an_object": 1, "bad_timestamp": 1})
    assert stats.warnings == Counter({"invalid_utf8": 1})
    assert stats.blank_lines == 1
    assert stats.examples["malformed_json"][0].startswith("x.jsonl:2: ")
    assert stats.files["x.jsonl"].rejected == 3 and stats.files["x.jsonl"].events == 2


def test_json_verbatim_flags() -> None:
    ndjson = FORMATS["ndjson"]
    assert ndjson.verbatim("evt.name") and ndjson.verbatim("userIdentity.arn") and ndjson.verbatim("network.client.ip")
    assert not ndjson.verbatim("evt.outcome") and not ndjson.verbatim("source") and not ndjson.verbatim("timestamp")


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"published": "2023-07-10T12:00:42Z", "eventType": "user.session.start"}, T),  # Okta
        ({"time": "2023-07-10T12:00:42.0000000Z", "operationName": "x"}, T),  # Azure (7 fraction digits)
        ({"TimeCreated": "2023-07-10T12:00:42.000000Z", "EventID": 4625}, T),  # Windows, Sysmon
        ({"UtcTime": "2023-07-10 12:00:42.000"}, T),
        ({"ts": 1688990442.0, "uid": "C1"}, T),  # Zeek
        ({"@t": "2023-07-10T12:00:42Z"}, T),
        # A "time" that is a duration is not a date: the next name is read.
        ({"time": 12.5, "ts": 1688990442}, T),
        # Datadog's reserved attributes come first.
        ({"date": "2023-07-10T12:00:42Z", "published": "2001-01-01T00:00:00Z"}, T),
        # SaaS audit logs and security products.
        ({"action": "repo.create", "actor": "octocat", "created_at": 1688990442000}, T),  # GitHub audit log
        ({"id": {"time": "2023-07-10T12:00:42.000Z", "applicationName": "login"}, "events": []}, T),  # Google Workspace
        ({"date_create": 1688990442, "action": "user_login"}, T),  # Slack audit logs
        ({"createdDateTime": "2023-07-10T12:00:42Z", "userPrincipalName": "a@example.com"}, T),  # Entra ID sign-ins
        ({"metadata": {"eventCreationTime": 1688990442000}, "event": {}}, T),  # CrowdStrike event streams
        ({"creationtime": "2023-07-10 12:00:42", "operation": "New-InboxRule"}, T),  # M365, lower-cased by a data lake
        ({"Timestamp": "2023-07-10 12:00:42 (UTC)", "CanaryName": "c"}, T),  # Thinkst Canary
        ({"ts": "2023-07-10 12:00:42 +0000 UTC"}, T),  # Go's time.Time
    ],
)
def test_dates_other_pipelines_remap_are_read_when_no_reserved_one_is_there(record: dict[str, Any], expected: int) -> None:
    (event,) = parse_lines([json.dumps(record)], format="ndjson")
    assert event["timestamp"] == expected


@pytest.mark.parametrize("record", [{"time": 12.5}, {"time": True}, {"ts": "soon"}, {"published": None}, {"level": "info"}])
def test_a_record_without_a_readable_date_is_still_rejected(record: dict[str, Any]) -> None:
    stats = IngestStats()
    assert parse_lines([json.dumps(record)], format="ndjson", stats=stats) == []
    assert stats.rejected == {"missing_timestamp": 1}


# Panther's labelled events of SaaS sources, per log type the date field its API writes.
PANTHER_DATE_FIELDS = {"GitHub.Audit": "created_at", "GSuite.ActivityEvent": "id.time", "Slack.AuditLogs": "date_create",
                       "Auth0.Events": "data.date", "Asana.Audit": "created_at", "Zendesk.Audit": "created_at",
                       "Crowdstrike.EventStreams": "metadata.eventCreationTime", "Proofpoint.Event": "messageTime",
                       "OpenAI.Audit": "effective_at", "Notion.AuditLogs": "event.timestamp"}


def test_saas_audit_events_are_dated_by_their_own_date_field(dataset: Callable[[str], Path]) -> None:
    """Every panther-tests event of those sources that has its source's date field, holding a
    date, is read and dated by it (they were all rejected as missing_timestamp before)."""
    from secmon.ingest.json_events import RESERVED_DATE_ATTRIBUTES, lookup
    from secmon.ingest.timestamps import TimestampError, parse_any

    checked = 0
    for line in dataset("panther-tests/rule_tests.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        field = PANTHER_DATE_FIELDS.get((case.get("log_types") or [""])[0])
        record = case.get("log")
        if field is None or not isinstance(record, dict) or any(lookup(record, name) is not None for name in RESERVED_DATE_ATTRIBUTES):
            continue
        try:
            expected = parse_any(lookup(record, field))
        except (TimestampError, ValueError):
            continue  # absent, or a fixture's placeholder ("redacted")
        (event,) = parse_lines([json.dumps(record)], format="ndjson")
        assert event["timestamp"] == expected, (case["log_types"], case["test_name"])
        checked += 1
    assert checked >= 250


def test_sigma_regression_events_are_dated(dataset: Callable[[str], Path]) -> None:
    """Windows events flattened from EVTX carry TimeCreated only: every one reads."""
    stats = IngestStats()
    events = parse_events([dataset("sigma/regression_events_flat.jsonl")], stats=stats)
    assert len(events) == 238 and not stats.rejected
    assert all(1_500_000_000_000 < e["timestamp"] < 1_800_000_000_000 for e in events)


def test_okta_brute_force_scenario(dataset: Callable[[str], Path], tmp_path: Path) -> None:
    """panther-tests' Okta scenario: 9 failed logins of one user from 4 IPs, 5 of them from
    194.88.246.242, then a success from it. A threshold rule over Okta's own fields (>= 5 failures
    from one IP in 10 minutes) gives exactly one signal, for that IP."""
    import yaml

    from secmon import Engine
    from secmon.rules.model import Rule

    scenario = yaml.safe_load(dataset("panther-tests/test_scenarios/okta-add-administrator/brute_force_logins.yml").read_text())
    log = tmp_path / "okta.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in scenario["Logs"]))
    rule = Rule.model_validate({
        "id": "okta-bf", "name": "Okta brute force",
        "queries": [{"query": "@eventType:user.session.start @outcome.result:FAILURE", "groupByFields": ["@client.ipAddress"]}],
        "cases": [{"status": "high", "condition": "a >= 5"}],
        "options": {"evaluationWindow": 600, "keepAlive": 600, "maxSignalDuration": 3600},
    })
    # The native extractor leaves records dated by a fallback attribute to Python: with it and
    # without it (the slow twin), with the prefilter and without, the same one signal.
    for prefilter, native_json in ((True, True), (False, True), (True, False)):
        (signal,) = Engine([rule], prefilter=prefilter, native_json=native_json).detect([log]).signals
        assert signal.group_by == {"@client.ipAddress": "194.88.246.242"} and signal.event_count == 5


@pytest.mark.parametrize("variant", ["as-exported", "with-timestamp", "lower-cased-with-timestamp"])
def test_okta_events_carry_datadogs_standard_attributes(dataset: Callable[[str], Path], tmp_path: Path, variant: str) -> None:
    """Okta rules as Datadog writes them (``source:okta @evt.name:... @evt.outcome:FAILURE``,
    grouped by ``@usr.email``) fire on raw Okta System Log events, also as data lakes store them
    (top-level names lower-cased). With a reserved ``timestamp`` (a collector's), the native
    extractor would read the record itself: it must leave Okta's mapping to Python, so both give
    the same signals."""
    import yaml

    from secmon import Engine
    from secmon.rules.model import Rule

    scenario = yaml.safe_load(dataset("panther-tests/test_scenarios/okta-add-administrator/brute_force_logins.yml").read_text())
    records = scenario["Logs"]
    if variant != "as-exported":
        records = [{**record, "timestamp": record["published"]} for record in records]
    if variant.startswith("lower-cased"):
        records = [{(k.lower() if k in ("eventType", "displayMessage") else k): v for k, v in record.items()} for record in records]
    log = tmp_path / "okta.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    failures = "source:okta @evt.name:user.session.start @evt.outcome:FAILURE"
    rules = [Rule.model_validate({
        "id": rule_id, "name": rule_id, "queries": [{"query": failures, "groupByFields": [field]}],
        "cases": [{"status": "high", "condition": f"a >= {threshold}"}],
        "options": {"evaluationWindow": 900, "keepAlive": 600, "maxSignalDuration": 3600},
    }) for rule_id, field, threshold in (("by-user", "@usr.email", 9), ("by-ip", "@network.client.ip", 5))]
    for prefilter, native_json in ((True, True), (False, True), (True, False)):
        signals = Engine(rules, prefilter=prefilter, native_json=native_json).detect([log]).signals
        assert sorted((s.rule_id, s.group_by, s.event_count) for s in signals) == [
            ("by-ip", {"@network.client.ip": "194.88.246.242"}, 5),
            ("by-user", {"@usr.email": "jack.naglieri@runpanther.io"}, 9),
        ], (prefilter, native_json)
    (event,) = parse_lines([json.dumps(records[0])], format="ndjson")
    assert event["source"] == "okta" and event["evt"] == {"name": "user.session.start", "outcome": "FAILURE"}
    assert event["outcome"]["result"] == "FAILURE" and event["message"] == records[0].get("displayMessage", records[0].get("displaymessage"))
    assert event["network"]["client"]["geoip"]["country"]["name"] == event["client"]["geographicalContext"]["country"]


def test_cloudtrail_delivered_by_eventbridge_is_the_cloudtrail_event(dataset: Callable[[str], Path], tmp_path: Path) -> None:
    """EventBridge's "AWS API Call via CloudTrail" events carry the CloudTrail record in
    ``detail``: it becomes the event, and the default pack finds what it finds in the plain
    records, with the native extractor (which leaves such envelopes to Python, a reserved date in
    the envelope or not) and without it."""
    from secmon import Engine, default_rules

    plain = dataset("cloudtrail-invictus/events.jsonl")
    wrapped = tmp_path / "eventbridge.jsonl"
    with wrapped.open("w") as out:
        for k, line in enumerate(plain.read_text().splitlines()):
            record = json.loads(line)
            envelope = {"version": "0", "id": f"e-{k}", "detail-type": "AWS API Call via CloudTrail",
                        "source": f"aws.{record['eventSource'].split('.')[0]}", "account": "123456789012",
                        "time": record["eventTime"], "region": record.get("awsRegion"), "resources": [], "detail": record}
            if k % 2:
                envelope["timestamp"] = record["eventTime"]  # what a shipper may add: still unwrapped
            out.write(json.dumps(envelope) + "\n")
    assert parse_events([wrapped]) == parse_events([plain])
    rules = default_rules()
    expected = sorted(s.key() for s in Engine(rules).detect([plain]).signals)
    assert expected
    for native_json in (True, False):
        assert sorted(s.key() for s in Engine(rules, native_json=native_json).detect([wrapped]).signals) == expected


def test_github_audit_log_entries_get_datadogs_attributes() -> None:
    from secmon.ingest import parse_lines

    entry = {"@timestamp": 1714557600123, "_document_id": "xIVc2TrIHNOPBVBHf5Mzaw", "action": "repo.access",
             "actor": "mallory", "actor_ip": "203.0.113.9", "org": "acme", "repo": "acme/secret", "visibility": "public"}
    (event,) = parse_lines([json.dumps(entry)], format="ndjson")
    assert event["timestamp"] == 1714557600123 and event["source"] == "github"
    assert event["evt"] == {"name": "repo.access"} and event["usr"] == {"name": "mallory"}
    assert event["network"] == {"client": {"ip": "203.0.113.9"}} and event["action"] == "repo.access"
    # Only GitHub's entries: another log's "action" is left alone.
    (other,) = parse_lines([json.dumps({"timestamp": 1714557600123, "action": "deny", "actor": "x"})], format="ndjson")
    assert "evt" not in other and "source" not in other
