"""Real Datadog queries (from Datadog's search-syntax docs and detection-rule style queries) and real CloudTrail data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from query_strategies import to_frame

from secmon.query import attribute_paths, compile_polars, evaluate, parse, prefilter_literals, to_query

CONSOLE_LOGIN_NO_MFA = {
    "source": "cloudtrail",
    "evt": {"name": "ConsoleLogin"},
    "additionalEventData": {"MFAUsed": "No"},
    "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
    "responseElements": {"ConsoleLogin": "Success"},
    "network": {"client": {"ip": "198.51.100.7"}},
}
ROOT_LOGIN = {
    "source": "cloudtrail",
    "evt": {"name": "ConsoleLogin", "outcome": "success"},
    "additionalEventData": {"MFAUsed": "Yes"},
    "userIdentity": {"type": "Root"},
    "network": {"client": {"ip": "10.0.3.4"}},
}
WEB_404 = {
    "source": "nginx",
    "service": "web-store",
    "status": "warn",
    "http": {"status_code": 404, "url": "/static/logo.png", "method": "GET", "url_details": {"path": "/static/logo.png"}},
    "network": {"client": {"ip": "13.37.0.1"}},
    "message": "GET /static/logo.png HTTP/1.1 404",
}
API_500 = {
    "source": "nginx",
    "service": "web-api",
    "status": "error",
    "http": {"status_code": 500, "url": "/api/v1/test", "url_details": {"path": "/api/v1/test"}},
    "duration": 1_250_000_000,
    "message": "upstream timed out (110: Connection timed out) while reading response header",
}
SSHD_FAILURE = {
    "source": "sshd",
    "host": "bastion-1",
    "evt": {"name": "authentication", "outcome": "failure"},
    "usr": {"name": "root"},
    "network": {"client": {"ip": "183.62.140.253"}},
    "message": "Failed password for root from 183.62.140.253 port 40110 ssh2",
    "tags": ["env:prod", "team:platform"],
}
SYSMON = {
    "source": "windows.sysmon",
    "EventID": 1,
    "ParentImage": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
    "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
}
SYSMON_LOWER = {**SYSMON, "ParentImage": "C:\\Office\\winword.exe"}
K8S_SECRET_READ = {
    "source": "kubernetes.audit",
    "http": {"method": "get"},
    "objectRef": {"resource": "secrets"},
    "userAgent": "Python-urllib/3.11",
}
ATTRS = {"my_attribute": "hello:world", "users": ["Al", "Bo"], "message": "hello beautiful world"}

EXAMPLES = [
    ("source:cloudtrail @evt.name:ConsoleLogin @additionalEventData.MFAUsed:No", CONSOLE_LOGIN_NO_MFA, True),
    ("source:cloudtrail @evt.name:ConsoleLogin @additionalEventData.MFAUsed:No", ROOT_LOGIN, False),
    ("source:(cloudtrail OR aws) -@userIdentity.type:Root", CONSOLE_LOGIN_NO_MFA, True),
    ("source:(cloudtrail OR aws) -@userIdentity.type:Root", ROOT_LOGIN, False),
    ("source:cloudtrail @evt.name:ConsoleLogin @userIdentity.type:Root @evt.outcome:success", ROOT_LOGIN, True),
    ("source:cloudtrail @evt.name:ConsoleLogin @responseElements.ConsoleLogin:Failure", CONSOLE_LOGIN_NO_MFA, False),
    ("source:cloudtrail AND ((@evt.name:ConsoleLogin @userIdentity.arn:*assumed-role/*) OR @userIdentity.arn:*federated-user/*)", CONSOLE_LOGIN_NO_MFA, False),
    ("source:cloudtrail @evt.name:ConsoleLogin @userIdentity.arn:*\\:user\\/*", CONSOLE_LOGIN_NO_MFA, True),
    ("@http.status_code:[400 TO 499] -@http.url:*.png", WEB_404, False),
    ("@http.status_code:[400 TO 499] -@http.url:*.png", {**WEB_404, "http": {"status_code": 403, "url": "/admin"}}, True),
    ("@http.status_code:[400 TO 499]", API_500, False),
    ("@http.status_code:>400", API_500, True),
    ("@http.status_code:>=500 service:web-*", API_500, True),
    ("@duration:>1000000000", API_500, True),
    ("@http.url:\\/api\\/v1\\/*", API_500, True),
    ("@http.url_details.path:\"/api/v1/test\"", API_500, True),
    ("service:(web-store OR web-api) status:error", API_500, True),
    ("status:error OR status:warn", WEB_404, True),
    ("-status:error", WEB_404, True),
    ("CIDR(@network.client.ip,13.0.0.0/8)", WEB_404, True),
    ("CIDR(@network.client.ip, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)", ROOT_LOGIN, True),
    ("-CIDR(@network.client.ip, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)", CONSOLE_LOGIN_NO_MFA, True),
    ('"timed out"', API_500, True),
    ("upstream timed", API_500, True),
    ("Timed AND Out", API_500, True),
    ("\\(110\\: Connection", API_500, True),  # escaped parenthesis and colon are literal
    ("110\\:", API_500, True),
    ("@evt.name:authentication @evt.outcome:failure", SSHD_FAILURE, True),
    ("source:sshd @usr.name:root env:prod", SSHD_FAILURE, True),
    ("source:sshd -env:prod", SSHD_FAILURE, False),
    ("team:plat*", SSHD_FAILURE, True),
    ("host:bastion-? \"failed password\"", SSHD_FAILURE, True),
    ("NOT @network.client.ip:10.* NOT @network.client.ip:192.168.*", SSHD_FAILURE, True),
    ("source:windows.sysmon @EventID:1 @ParentImage:*\\\\winword.exe @Image:(*\\\\powershell.exe OR *\\\\mshta.exe)", SYSMON, False),
    ("source:windows.sysmon @EventID:1 @ParentImage:*\\\\winword.exe @Image:(*\\\\powershell.exe OR *\\\\mshta.exe)", SYSMON_LOWER, True),
    ("source:kubernetes.audit @http.method:(get OR list) @objectRef.resource:secrets @userAgent:Python-urllib*", K8S_SECRET_READ, True),
    ("@my_attribute:hello\\:world", ATTRS, True),
    ('@my_attribute:"hello:world"', ATTRS, True),
    ("@my_attribute:hello?world", ATTRS, True),
    ("@users:Al*", ATTRS, True),
    ("@users:Carl", ATTRS, False),
    ("hello world", ATTRS, True),
    ('"hello world"', ATTRS, False),
    ('"hello world"', {"message": "Hello, world"}, True),  # Datadog's sequence examples
    ('"hello world"', {"message": "hello-world"}, True),
    ('"hello world"', {"message": "hello world"}, True),
    ('"hello world"', {"message": "hello_world"}, True),
    ('"hello world"', {"message": "helloworld"}, False),
    ("authentication OR password", ATTRS, False),
    ("hello AND -password", ATTRS, True),
]


@pytest.mark.parametrize(("text", "event", "expected"), EXAMPLES, ids=[f"{i}:{e[0]}" for i, e in enumerate(EXAMPLES)])
def test_datadog_example(text: str, event: dict[str, Any], expected: bool) -> None:
    query = parse(text)
    assert parse(to_query(query)) == query
    assert evaluate(query, event) is expected
    frame = to_frame([event], sorted(attribute_paths(query)))
    assert frame.select(compile_polars(query, frame.schema).alias("m"))["m"].to_list() == [expected]
    literals = prefilter_literals(query, lambda path: True)
    if expected and literals is not None:
        raw = json.dumps(event).encode().lower()
        assert any(literal in raw for literal in literals)


# --- real CloudTrail events ---------------------------------------------------------------------------

DATASETS = Path(__file__).parents[2] / ".." / "shared" / "datasets"


def _load(relative: str) -> tuple[list[bytes], list[dict[str, Any]]]:
    path = DATASETS / relative
    if not path.exists():
        pytest.skip(f"dataset {relative} not found under {DATASETS} (the shared datasets folder is absent)")
    lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    return lines, [json.loads(line) for line in lines]


# query, number of events (counted from the data independently, see datasets/*/SOURCE.md)
INVICTUS = [
    ("@eventName:GetPasswordData", 29),
    ("@eventName:(DeleteTrail OR StopLogging)", 6),
    ("@eventName:ConsoleLogin", 2),
    ("@userIdentity.type:AssumedRole", 76),
    ("@errorCode:*", 300),
    ("@errorCode:ThrottlingException", 102),
    ("@sourceIPAddress:192.168.10.20", 2154),
    ("CIDR(@sourceIPAddress, 192.168.10.20/32)", 2154),
    ("-@userIdentity.type:IAMUser", 2900 - 2748),
]


@pytest.mark.parametrize(("text", "count"), INVICTUS)
def test_cloudtrail_invictus(text: str, count: int) -> None:
    lines, events = _load("cloudtrail-invictus/events.jsonl")
    query = parse(text)
    frame = to_frame(events, sorted(attribute_paths(query)))
    fast = frame.select(compile_polars(query, frame.schema).alias("m"))["m"].to_list()
    slow = [evaluate(query, e) for e in events]
    assert fast == slow
    assert sum(fast) == count
    literals = prefilter_literals(query, lambda path: True)
    if literals is not None:
        candidates = [any(lit in line.lower() for lit in literals) for line in lines]
        assert all(c for c, m in zip(candidates, fast) if m), "the prefilter dropped a matching line"


def test_cloudtrail_invictus_prefilter_is_selective() -> None:
    lines, _ = _load("cloudtrail-invictus/events.jsonl")
    literals = prefilter_literals(parse("@eventName:GetPasswordData"), lambda path: True)
    assert literals == [b"getpassworddata"]
    assert 29 <= sum(1 for line in lines if literals[0] in line.lower()) < 100


STRATUS = [
    ("@evt.name:GetSecretValue", 10),
    ("@evt.name:DeleteTrail", 1),
    ("@evt.name:(StopInstances OR ModifyInstanceAttribute OR StartInstances)", 3),
    ("CIDR(@network.client.ip, 62.167.0.0/16)", 15),
    ("CIDR(@network.ip.list, 62.167.105.104/32)", 15),
    ("@http.useragent:stratus-red-team_*", 15),
    ("service:cloudtrail -@evt.name:GetSecretValue", 5),
]


@pytest.mark.parametrize(("text", "count"), STRATUS)
def test_cloudtrail_stratus_datadog_attributes(text: str, count: int) -> None:
    lines, events = _load("cloudtrail-stratus/events.jsonl")
    query = parse(text)
    frame = to_frame(events, sorted(attribute_paths(query)))
    fast = frame.select(compile_polars(query, frame.schema).alias("m"))["m"].to_list()
    assert fast == [evaluate(query, e) for e in events]
    assert sum(fast) == count
    literals = prefilter_literals(query, lambda path: True)
    if literals is not None:
        assert all(any(lit in line.lower() for lit in literals) for line, m in zip(lines, fast) if m)
