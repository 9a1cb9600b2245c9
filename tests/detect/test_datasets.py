"""Detection facts computed independently from real logs (../shared/datasets, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secmon.detect.engine import Engine
from secmon.detect.reference import reference_detect
from secmon.ingest import parse_events
from secmon.rules.loader import rule_from_dict

DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
OPENSSH = DATASETS / "loghub" / "OpenSSH" / "OpenSSH_2k.log"
LINUX = DATASETS / "loghub" / "Linux" / "Linux_2k.log"
CLOUDTRAIL = DATASETS / "cloudtrail-invictus" / "events.jsonl"
CLOUDTRAIL_RAW = DATASETS / "cloudtrail-invictus" / "CloudTrail"

pytestmark = pytest.mark.skipif(not DATASETS.is_dir(), reason=f"datasets folder {DATASETS} is absent")


def threshold_rule(query: str, group_by: list[str], condition: str, window: int = 300, **query_extra) -> object:
    """A threshold rule exactly as Datadog's rule JSON spells it."""
    return rule_from_dict({
        "id": "t", "name": "test rule", "type": "log_detection", "isEnabled": True,
        "queries": [{"query": query, "groupByFields": group_by, "aggregation": "count", "name": "a",
                     "distinctFields": [], "hasOptionalGroupByFields": False, **query_extra}],
        "cases": [{"name": "", "status": "high", "condition": condition, "notifications": []}],
        "options": {"detectionMethod": "threshold", "evaluationWindow": window, "keepAlive": 3600, "maxSignalDuration": 86400},
        "message": "{{@network.client.ip}}", "tags": [],
    })


def ground_truth() -> dict:
    return json.loads((DATASETS / "loghub" / "ground_truth.json").read_text())


SSH_FAILED_PASSWORD = "source:sshd @evt.name:authentication @evt.outcome:failure @ssh.auth_method:password"


@pytest.mark.parametrize("threshold", [10, 5])
def test_openssh_brute_force_ips(threshold: int) -> None:
    rule = threshold_rule(SSH_FAILED_PASSWORD, ["@network.client.ip"], f"a >= {threshold}")
    signals = Engine([rule], year=2015).detect([OPENSSH]).signals
    ips = sorted({s.group_by["@network.client.ip"] for s in signals})
    assert ips == ground_truth()["OpenSSH_2k"][f"ips_with_ge{threshold}_fail_in_5min"]
    assert len(ips) == (6 if threshold == 10 else 11)


@pytest.mark.parametrize(("threshold", "fires"), [(147, True), (148, False)])
def test_openssh_peak_window_is_exactly_147(threshold: int, fires: bool) -> None:
    rule = threshold_rule(SSH_FAILED_PASSWORD + " @network.client.ip:183.62.140.253", ["@network.client.ip"], f"a >= {threshold}")
    assert bool(Engine([rule], year=2015).detect([OPENSSH]).signals) is fires


def test_openssh_prefilter_and_reference_agree() -> None:
    rule = threshold_rule(SSH_FAILED_PASSWORD, ["@network.client.ip"], "a >= 5")
    fast = Engine([rule], year=2015).detect([OPENSSH]).signals
    plain = Engine([rule], year=2015, prefilter=False, chunk_bytes=4096).detect([OPENSSH]).signals
    slow = reference_detect([rule], parse_events([OPENSSH], year=2015))
    assert sorted(s.key() for s in fast) == sorted(s.key() for s in plain) == sorted(s.key() for s in slow)


def test_linux_auth_failures_80_in_five_minutes() -> None:
    query = "@evt.name:authentication @evt.outcome:failure @network.client.ip:150.183.249.110"
    hits = Engine([threshold_rule(query, ["@network.client.ip"], "a >= 80")], year=2005).detect([LINUX]).signals
    misses = Engine([threshold_rule(query, ["@network.client.ip"], "a >= 81")], year=2005).detect([LINUX]).signals
    assert [s.group_by["@network.client.ip"] for s in hits] == ["150.183.249.110"]
    assert misses == []


@pytest.mark.parametrize(("threshold", "expected"), [(30, 0), (29, 1)])
def test_cloudtrail_get_password_data_off_by_one(threshold: int, expected: int) -> None:
    rule = threshold_rule("source:cloudtrail @evt.name:GetPasswordData", ["@userIdentity.arn"], f"a >= {threshold}", window=3600)
    signals = Engine([rule]).detect([CLOUDTRAIL]).signals
    assert len(signals) == expected
    if expected:
        assert "get-password-data-role" in signals[0].group_by["@userIdentity.arn"]
        assert signals[0].event_count == 29


def test_cloudtrail_raw_records_files_give_the_same_signals_as_ndjson() -> None:
    rule = threshold_rule("source:cloudtrail @evt.name:GetPasswordData", ["@userIdentity.arn"], "a >= 29", window=3600)
    from_records = Engine([rule]).detect([CLOUDTRAIL_RAW]).signals
    from_lines = Engine([rule]).detect([CLOUDTRAIL]).signals
    assert [s.key() for s in from_records] == [s.key() for s in from_lines]


def test_cloudtrail_stolen_instance_credentials_new_ip() -> None:
    rule = rule_from_dict({
        "id": "nv", "name": "instance role used from a new IP",
        "queries": [{"query": "source:cloudtrail @userIdentity.type:AssumedRole "
                              "@userIdentity.sessionContext.sessionIssuer.userName:stratus-red-team-ec2-steal-credentials-role",
                     "groupByFields": ["@userIdentity.arn"], "aggregation": "new_value", "metrics": ["@network.client.ip"]}],
        "cases": [{"status": "high"}],
        "options": {"detectionMethod": "new_value", "keepAlive": 3600, "maxSignalDuration": 86400,
                    "newValueOptions": {"learningDuration": 0, "forgetAfter": 7}},
    })
    signals = Engine([rule]).detect([CLOUDTRAIL]).signals
    assert len(signals) == 1
    signal = signals[0]
    assert signal.group_by["@userIdentity.arn"].endswith("stratus-red-team-ec2-steal-credentials-role/i-0dbc91f429e48eeed")
    assert signal.samples[0]["network"]["client"]["ip"] == "192.168.10.20"
    assert signal.to_json()["first_seen"].startswith("2023-07-10T11:57:22")
