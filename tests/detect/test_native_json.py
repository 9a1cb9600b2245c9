"""The native NDJSON path (Rust extractor + Polars) against the Python parser, line by line.

Lines are drawn to hit every reason the native path must hand a line back: aliases that ingest
remaps (msg, ddsource, hostname, level, ddtags), ISO and float timestamps, ``@timestamp``,
CloudTrail, Kubernetes, Zeek and GitHub audit records, escapes, blank, malformed, over-long and invalid UTF-8 lines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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
    rule_from_dict({
        "id": "github", "name": "github repository actions",
        "queries": [{"query": "source:github @evt.name:repo.*", "groupByFields": ["@usr.name"], "aggregation": "count"}],
        "cases": [{"status": "low", "condition": "a > 0"}],
        "options": {"evaluationWindow": 0, "keepAlive": 0, "maxSignalDuration": 0},
    }),
    rule_from_dict({
        "id": "zeek", "name": "zeek dns",
        "queries": [{"query": "source:zeek @network.destination.port:53 @dns.question.name:*", "groupByFields": ["@network.client.ip"],
                     "aggregation": "count"}],
        "cases": [{"status": "low", "condition": "a > 0"}],
        "options": {"evaluationWindow": 0, "keepAlive": 0, "maxSignalDuration": 0},
    }),
]


def _awkward(draw: st.DrawFn, value: Any) -> Any:
    """Mostly ``value``; sometimes a value of another type, null, or the key left out (MISSING)."""
    if draw(st.integers(0, 5)):
        return value
    return draw(st.sampled_from([MISSING, None, "", "x", 0, 404, 1.5, True, [], ["10.0.0.1"], {}, {"name": "n"}]))


MISSING = object()
TIMES = st.sampled_from(["2023-11-14T22:13:%02dZ", "2023-11-14 22:13:%02d.38", "2023-11-14T23:13:%02d+01:00",
                         "2023-11-14T22:13:%02d.123456Z", "2023-11-14t22:13:%02d"])


def _put(record: dict[str, Any], key: str, value: Any) -> None:
    if value is not MISSING:
        record[key] = value


def _drop_missing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_missing(v) for k, v in value.items() if v is not MISSING}
    if isinstance(value, list):
        return [_drop_missing(v) for v in value if v is not MISSING]
    return value


def _in_the_way(draw: st.DrawFn, record: dict[str, Any]) -> None:
    """Values already where normalization writes: kept, a scalar in the way, null, literal dotted."""
    if draw(st.integers(0, 3)) == 0:
        key = draw(st.sampled_from(["evt", "network", "usr", "http", "source", "evt.name", "usr.name"]))
        record[key] = draw(st.sampled_from([None, "x", [], {}, {"name": "pre"}, {"client": {"ip": "10.0.0.9"}}, {"client": "c"}]))


@st.composite
def cloudtrail_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"eventTime": draw(TIMES) % draw(st.integers(0, 59)), "eventSource": "signin.amazonaws.com"}
    _put(record, "eventName", _awkward(draw, draw(st.sampled_from(["ConsoleLogin", "GetObject"]))))
    _put(record, "errorCode", _awkward(draw, draw(st.sampled_from([MISSING, "AccessDenied", ""]))))
    _put(record, "sourceIPAddress", _awkward(draw, draw(st.sampled_from(["10.0.0.1", "10.0.0.2", "AWS Internal", "2001:db8::1"]))))
    identity: dict[str, Any] = {"type": "IAMUser"}
    _put(identity, "userName", _awkward(draw, draw(st.sampled_from(["alice", "bob", MISSING]))))
    _put(identity, "arn", _awkward(draw, "arn:aws:iam::1:user/alice"))
    _put(identity, "sessionContext", _awkward(draw, {"sessionIssuer": _awkward(draw, {"userName": "admin-role"})}))
    _put(record, "userIdentity", _awkward(draw, identity))
    _in_the_way(draw, record)
    return record


@st.composite
def k8s_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata"}
    _put(record, "requestReceivedTimestamp", _awkward(draw, draw(TIMES) % draw(st.integers(0, 59))))
    _put(record, "verb", _awkward(draw, draw(st.sampled_from(["get", "create"]))))
    _put(record, "user", _awkward(draw, {"username": _awkward(draw, draw(st.sampled_from(["bob", "system:anonymous"])))}))
    _put(record, "sourceIPs", _awkward(draw, draw(st.lists(st.sampled_from(["10.0.0.1", "10.0.0.2"]), max_size=2))))
    _put(record, "responseStatus", _awkward(draw, {"code": _awkward(draw, draw(st.sampled_from([200, 403, 500])))}))
    _in_the_way(draw, record)
    return record


@st.composite
def zeek_records(draw: st.DrawFn) -> dict[str, Any]:
    """Zeek's JSON records, its dotted names written flat (as Zeek does) or nested."""
    record: dict[str, Any] = {"ts": BASE_MS / 1000 + draw(st.integers(0, 600)) + 0.123456}
    if draw(st.booleans()):  # shipped by Filebeat or Logstash, which date it (else ts is a fallback date)
        record["@timestamp"] = draw(TIMES) % draw(st.integers(0, 59))
    _put(record, "uid", _awkward(draw, "CHhAvVGS1DHFjwGM9"))
    ip, port = _awkward(draw, draw(st.sampled_from(["10.0.0.1", "10.0.0.2"]))), _awkward(draw, 53)
    if draw(st.booleans()):
        _put(record, "id.orig_h", ip)
        _put(record, "id.resp_p", port)
    else:
        record["id"] = {}
        _put(record["id"], "orig_h", ip)
        _put(record["id"], "resp_p", port)
    _put(record, "query", _awkward(draw, "example.com"))
    _in_the_way(draw, record)
    return record


@st.composite
def github_records(draw: st.DrawFn) -> dict[str, Any]:
    """GitHub's audit log entries, dated by @timestamp (epoch ms, a reserved date) or created_at."""
    ms = BASE_MS + draw(st.integers(0, 600)) * 1000
    record: dict[str, Any] = {"@timestamp": ms} if draw(st.booleans()) else {"created_at": ms}
    _put(record, "_document_id", _awkward(draw, "xIVc2TrIHNOPBVBHf5Mzaw"))
    _put(record, "action", _awkward(draw, draw(st.sampled_from(["repo.access", "repo.destroy", "org.add_member"]))))
    _put(record, "actor", _awkward(draw, draw(st.sampled_from(["octocat", "mallory"]))))
    _put(record, "actor_ip", _awkward(draw, "10.0.0.1"))
    _in_the_way(draw, record)
    return record


@st.composite
def lines(draw: st.DrawFn) -> str:
    ts = BASE_MS + draw(st.integers(0, 600)) * 1000
    kind = draw(st.sampled_from(["plain"] * 6 + ["alias", "iso", "float", "at", "escape", "blank", "bad", "long", "crlf", "array"]
                                + ["cloudtrail", "k8s", "zeek", "github"] * 3))
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
        return json.dumps(_drop_missing(draw(cloudtrail_records())), ensure_ascii=draw(st.booleans()))
    elif kind == "k8s":
        return json.dumps(_drop_missing(draw(k8s_records())), ensure_ascii=draw(st.booleans()))
    elif kind == "zeek":
        return json.dumps(_drop_missing(draw(zeek_records())), ensure_ascii=draw(st.booleans()))
    elif kind == "github":
        return json.dumps(_drop_missing(draw(github_records())), ensure_ascii=draw(st.booleans()))
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


def _ndjson_of(path: Path, tmp_path: Path, field: str | None = None, marker: str | None = None) -> Path:
    import pytest

    if not path.exists():
        pytest.skip(f"dataset {path} is absent (see ../shared/datasets/README.md)")
    out = tmp_path / f"{path.stem}-{marker or 'all'}.ndjson"
    with open(out, "w", encoding="utf-8") as fh:
        for raw in path.read_text(encoding="utf-8").splitlines():
            doc = json.loads(raw)
            doc = doc.get(field) if field else doc
            if isinstance(doc, dict) and (marker is None or marker in json.dumps(doc)):
                fh.write(json.dumps(doc) + "\n")
    return out


def test_real_cloudtrail_and_k8s_ndjson_give_the_same_tables_and_signals(tmp_path: Path) -> None:
    """Real CloudTrail (invictus) and Kubernetes audit (panther) records as NDJSON: the native
    table equals the Python parser's (normalize_record + to_frame), and the default rules give
    the same signals and samples on both paths."""
    import numpy as np
    from polars.testing import assert_frame_equal

    from secmon import default_rules
    from secmon._core import count_lines
    from secmon.detect.native_json import split_native
    from secmon.ingest.events import to_frame
    from secmon.ingest.json_events import normalize_record

    inputs = [
        _ndjson_of(DATASETS / "cloudtrail-invictus" / "events.jsonl", tmp_path),
        _ndjson_of(DATASETS / "panther-tests" / "rule_tests.jsonl", tmp_path, "log", "audit.k8s.io"),
        _ndjson_of(DATASETS / "panther-tests" / "rule_tests.jsonl", tmp_path, "log", "eventSource"),
    ]
    engine = Engine(default_rules())
    paths = engine.attribute_paths
    signals = 0
    for path in inputs:
        data = path.read_bytes()
        line_idx = np.arange(count_lines(data), dtype=np.uint32)
        batch = split_native(data, line_idx, paths, 1 << 20)
        lines = data.splitlines()
        readable = 0  # records ingest normalizes (some panther events have no timestamp at all)
        for raw in lines:
            try:
                normalize_record(json.loads(raw))
                readable += 1
            except ValueError:
                pass
        assert batch.table.height >= 0.8 * readable, f"{path.name}: {batch.table.height} of {readable} native"
        events = [normalize_record(json.loads(lines[i])) for i in batch.table["__line"].to_list()]
        want = to_frame(events, paths)
        assert_frame_equal(batch.table.drop("__line"), want.select(batch.table.drop("__line").columns))
        native = outcome(Engine(default_rules(), native_json=True), path)
        python = outcome(Engine(default_rules(), native_json=False), path)
        assert native == python, path.name
        polars_flags = outcome(Engine(default_rules(), native_json=True, native_flags=False), path)
        assert native == polars_flags, path.name
        signals += len(native[0])
    assert signals, "no signal at all: the comparison would be empty"
