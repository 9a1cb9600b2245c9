"""The native NDJSON path (Rust extractor + Polars) against the Python parser, line by line.

Lines are drawn to hit every reason the native path must hand a line back: aliases that ingest
remaps (msg, ddsource, hostname, level, ddtags), ISO and float timestamps, ``@timestamp``,
CloudTrail and Kubernetes records, escapes, blank, malformed, over-long and invalid UTF-8 lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.detect.engine import Engine
from secmon.rules.loader import rule_from_dict

BASE_MS = 1_700_000_000_000

RULES = [
    rule_from_dict({
        "id": "by-ip", "name": "failures by ip",
        "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@network.client.ip"], "aggregation": "count"}],
        "cases": [{"status": "high", "condition": "a >= 2"}],
        "options": {"evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600},
    }),
    rule_from_dict({
        "id": "by-source", "name": "status and source",
        "queries": [{"query": "status:(error OR warning) OR source:app* OR host:web*", "groupByFields": ["source"],
                     "aggregation": "cardinality", "distinctFields": ["@usr.name"]}],
        "cases": [{"status": "low", "condition": "a >= 1"}],
        "options": {"evaluationWindow": 300, "keepAlive": 0, "maxSignalDuration": 0},
    }),
    rule_from_dict({
        "id": "ct", "name": "cloudtrail",
        "queries": [{"query": "source:cloudtrail @evt.name:ConsoleLogin", "groupByFields": ["@usr.name"], "aggregation": "count"}],
        "cases": [{"status": "medium", "condition": "a > 0"}],
        "options": {"evaluationWindow": 0, "keepAlive": 0, "maxSignalDuration": 0},
    }),
]


@st.composite
def lines(draw: st.DrawFn) -> str:
    ts = BASE_MS + draw(st.integers(0, 600)) * 1000
    kind = draw(st.sampled_from(["plain"] * 6 + ["alias", "iso", "float", "at", "cloudtrail", "k8s", "escape", "blank", "bad", "long", "crlf", "array"]))
    event = {
        "timestamp": ts,
        "source": draw(st.sampled_from(["app", "sshd", "nginx"])),
        "host": draw(st.sampled_from(["web-1", "db-1"])),
        "status": draw(st.sampled_from(["info", "error", "warning", "INFO", 3, None])),
        "evt": {"outcome": draw(st.sampled_from(["failure", "success"]))},
        "usr": {"name": draw(st.sampled_from(["alice", "bob", "é"]))},
        "network": {"client": {"ip": draw(st.sampled_from(["10.0.0.1", "10.0.0.2"]))}},
    }
    if event["status"] is None:
        del event["status"]
    if kind == "alias":
        key = draw(st.sampled_from(["msg", "ddsource", "hostname", "level", "ddtags", "log"]))
        for dropped in ("source", "host", "status"):
            if draw(st.booleans()):
                event.pop(dropped, None)
        event[key] = draw(st.sampled_from(["warn", "app2", "host-9", "k:v,x:y"]))
    elif kind == "iso":
        event["timestamp"] = "2023-11-14T22:13:%02dZ" % draw(st.integers(0, 59))
    elif kind == "float":
        event["timestamp"] = ts / 1000
    elif kind == "at":
        event["@timestamp"] = ts + 5000
    elif kind == "cloudtrail":
        return json.dumps({"eventTime": "2023-11-14T22:13:21Z", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
                           "sourceIPAddress": "10.0.0.1", "userIdentity": {"type": "IAMUser", "userName": "alice"}})
    elif kind == "k8s":
        return json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get", "user": {"username": "bob"},
                           "sourceIPs": ["10.0.0.2"], "requestReceivedTimestamp": "2023-11-14T22:13:21Z", "responseStatus": {"code": 403}})
    elif kind == "escape":
        return json.dumps(event, ensure_ascii=True).replace('"source"', '"\\u0073ource"')
    elif kind == "blank":
        return draw(st.sampled_from(["", "   ", "\t"]))
    elif kind == "bad":
        return draw(st.sampled_from(["{not json", "[1, 2]", "42", '{"timestamp": 1}'.replace("}", ""), '{"a": 1}']))
    elif kind == "long":
        event["message"] = "x" * 3000
    elif kind == "crlf":
        return json.dumps(event) + "\r"
    elif kind == "array":
        event["network"] = [{"client": {"ip": "10.0.0.1"}}, {"client": {"ip": "10.0.0.9"}}]
    return json.dumps(event, ensure_ascii=draw(st.booleans()))


def outcome(engine: Engine, path: Path):
    result = engine.detect([path])
    signals = sorted(result.signals, key=lambda s: s.key())
    return [s.key() for s in signals], [s.samples for s in signals], result.stats.summary(), result.stats.lines_read


@settings(max_examples=int(os.environ.get("SECMON_FUZZ", 60)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(lines(), min_size=1, max_size=60), st.sampled_from([200, 4096, 1 << 20]), st.booleans())
def test_native_path_equals_python_path(tmp_path: Path, raw_lines: list[str], chunk_bytes: int, prefilter: bool) -> None:
    log = tmp_path / "events.ndjson"
    with open(log, "w", encoding="utf-8", newline="") as fh:
        fh.write("\n".join(raw_lines) + "\n")
    from secmon.ingest import open_sources

    source = next(iter(open_sources([log])))
    if source.format.name != "ndjson":  # a mostly-blank or broken sample may sniff as text
        return
    kwargs = {"prefilter": prefilter, "chunk_bytes": chunk_bytes}
    native = outcome(Engine(RULES, native_json=True, **kwargs), log)
    python = outcome(Engine(RULES, native_json=False, **kwargs), log)
    assert native == python


def test_long_lines_are_rejected_the_same_way(tmp_path: Path) -> None:
    log = tmp_path / "long.ndjson"
    event = {"timestamp": BASE_MS, "evt": {"outcome": "failure"}, "network": {"client": {"ip": "10.0.0.1"}}}
    huge = dict(event, message="y" * (1 << 21))
    log.write_text("\n".join(json.dumps(e) for e in (event, huge, event)) + "\n")
    native = outcome(Engine(RULES, native_json=True), log)
    python = outcome(Engine(RULES, native_json=False), log)
    assert native == python
    assert "line_too_long=1" in native[2]


DATASETS = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


def test_text_formats_and_cloudtrail_documents_build_the_same_table_natively() -> None:
    """Parsed syslog, access-log and CloudTrail ``Records`` events go through ``extract_fields``
    after a JSON round trip; the signals and samples must equal the ``to_frame`` path."""
    import pytest

    from secmon import default_rules

    inputs = [DATASETS / "loghub" / "OpenSSH" / "OpenSSH_2k.log", DATASETS / "loghub" / "Linux" / "Linux_2k.log",
              DATASETS / "cloudtrail-invictus" / "CloudTrail"]
    if not all(p.exists() for p in inputs):
        pytest.skip("datasets absent")
    samples = Path(__file__).resolve().parents[2] / "secmon" / "samples"
    for source in [*inputs, samples / "access.log.gz", samples / "auth.log"]:
        native = outcome(Engine(default_rules(), native_json=True, year=2015), source)
        python = outcome(Engine(default_rules(), native_json=False, year=2015), source)
        assert native == python, source
        assert native[0], f"{source}: no signal at all, the comparison would be empty"
