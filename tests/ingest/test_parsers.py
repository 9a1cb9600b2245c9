"""User-defined parsers from YAML: parsing, casts, timestamps, detection and validation errors."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from secmon.errors import ParserConfigError
from secmon.ingest import FORMATS, IngestStats, Source, load_parsers, parse_lines, register_parsers, unregister_parsers
from secmon.ingest.parsers import ParserFileError, ParserFileErrors

UTC = dt.timezone.utc

GOOD = r"""
parsers:
  - name: vpn
    source: vpn
    service: openvpn
    detect: '^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d vpn\['
    patterns:
      - '(?P<ts>\S+ \S+) vpn\[\d+\]: login (?P<evt__outcome>ok|failed) user=(?P<usr__name>\S+) ip=(?P<client>\S+)(?: code=(?P<http__status_code>\S+))?'
    fields:
      client: network.client.ip
    casts:
      http.status_code: integer
    timestamp:
      field: ts
      format: '%Y-%m-%d %H:%M:%S'
      timezone: '+02:00'
    static:
      evt.name: authentication
  - name: epochlog
    patterns: ['(?P<timestamp>\d+) (?P<message>.*)']
"""


@pytest.fixture
def parser_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "parsers.yaml"
    path.write_text(GOOD)
    names = register_parsers(path)
    yield path
    unregister_parsers(names)
    assert "vpn" not in FORMATS


def test_user_parser_maps_groups_casts_and_statics(parser_file: Path) -> None:
    lines = ["2023-07-10 14:00:42 vpn[7]: login failed user=alice ip=10.1.2.3 code=401",
             "2023-07-10 14:00:43 vpn[7]: login ok user=bob ip=10.1.2.4",
             "2023-07-10 14:00:44 vpn[7]: login ok user=eve ip=10.1.2.5 code=abc",
             "something else"]
    stats = IngestStats()
    events = parse_lines(lines, stats=stats, name="vpn.log")  # detected through `detect`
    assert len(events) == 2
    first = events[0]
    assert first["timestamp"] == int(dt.datetime(2023, 7, 10, 12, 0, 42, tzinfo=UTC).timestamp() * 1000)
    assert first["evt"] == {"name": "authentication", "outcome": "failed"}
    assert first["usr"] == {"name": "alice"} and first["network"] == {"client": {"ip": "10.1.2.3"}}
    assert first["http"] == {"status_code": 401}
    assert first["source"] == "vpn" and first["service"] == "openvpn" and first["message"] == lines[0]
    assert "http" not in events[1]
    assert stats.rejected == Counter({"bad_value": 1, "unparsed_line": 1})
    assert "http.status_code: 'abc' is not a integer" in stats.examples["bad_value"][0]
    vpn = FORMATS["vpn"]
    assert vpn.verbatim("usr.name") and vpn.verbatim("network.client.ip") and vpn.verbatim("message")
    assert not vpn.verbatim("http.status_code") and not vpn.verbatim("evt.name") and not vpn.verbatim("source")
    assert vpn.implied_literals("usr.name", "alice") == ["alice"]
    assert vpn.implied_literals("evt.name", "authentication") is None  # static: every line
    assert vpn.implied_literals("evt.name", "other") == [] and vpn.implied_literals("source", "nginx") == []
    assert vpn.implied_literals("http.status_code", "401") is None  # cast: "0401" would read back as 401


def test_group_named_timestamp_reads_epochs(parser_file: Path) -> None:
    [event] = parse_lines(["1688990442 hello there"], format="epochlog")
    assert event["timestamp"] == 1688990442000 and event["message"] == "hello there"
    assert Source("x", data=b"1688990442 hi\n").format.name == "text"  # no detect pattern: never auto-picked


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ("- {name: syslog, patterns: ['(?P<timestamp>.*)']}", "name", "is a built-in format"),
        ("- {name: a, patterns: ['(?P<timestamp>']}", "patterns[0]", "invalid regular expression"),
        ("- {name: a, patterns: []}", "patterns", "required"),
        ("- {name: a, patterns: ['(?P<x>.*)']}", "timestamp", "required unless a pattern has a group named timestamp"),
        ("- {name: a, patterns: ['(?P<x>.*)'], timestamp: {field: y}}", "timestamp.field", "no pattern has a group"),
        ("- {name: a, patterns: ['(?P<timestamp>\\S+) (?P<x>.*)'], casts: {x: money}}", "casts.x", "unknown type"),
        ("- {name: a, patterns: ['(?P<timestamp>\\S+) (?P<x>.*)'], casts: {y: integer}}", "casts.y", "no group is mapped"),
        ("- {name: a, patterns: ['(?P<ts>\\S+)'], timestamp: {field: ts, format: 'YYYY'}}", "timestamp.format", "strptime"),
        ("- {name: a, patterns: ['(?P<ts>\\S+)'], timestamp: {field: ts, timezone: Mars}}", "timestamp.timezone", "offset"),
        ("- {name: a, patterns: ['(?P<timestamp>\\S+)'], colour: red}", "colour", "unknown key"),
        ("- {name: a, patterns: ['(?P<timestamp>\\S+) (?P<x>.*)'], fields: {x: 'not a path!'}}", "fields.x", "attribute path"),
        ("- {name: a, patterns: ['(?P<timestamp>\\S+)'], static: {evt.name: [1]}}", "static.evt.name", "string, number"),
    ],
)
def test_invalid_parser_files_name_file_parser_field_reason(tmp_path: Path, body: str, field: str, reason: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("parsers:\n  " + body + "\n")
    with pytest.raises(ParserFileError) as info:
        load_parsers(path)
    error = info.value
    assert isinstance(error, ParserConfigError)
    assert error.file == str(path) and error.field == field and reason in error.reason
    assert str(path) in str(error) and field in str(error)


def test_every_error_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("parsers:\n  - {name: a, patterns: []}\n  - {name: b, patterns: ['(']}\n  - 7\n")
    with pytest.raises(ParserFileErrors) as info:
        load_parsers(path)
    assert [(e.parser, e.field) for e in info.value.errors] == [("a", "patterns"), ("b", "patterns[0]"),
                                                                ("parsers[2]", "parsers[2]")]


def test_not_yaml_or_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("parsers: [unclosed")
    with pytest.raises(ParserFileError, match="not valid YAML"):
        load_parsers(path)
    path.write_text("- just a list\n")
    with pytest.raises(ParserFileError, match="a list under 'parsers'"):
        load_parsers(path)


def test_a_cast_to_nan_goes_through_the_engine(tmp_path: Path) -> None:
    """A float cast reads "nan" and "inf", which JSON cannot hold (orjson writes them as null):
    such a format says its events are not JSON-safe (``json_safe_events``), and so does a
    container's log wrapping it, so the engine keeps those values as they are and a query on the
    attribute still sees all four events."""
    from secmon import Engine
    from secmon.rules.model import Rule

    path = tmp_path / "parsers.yaml"
    path.write_text(r"""
parsers:
  - name: meter
    detect: '^\d+ meter '
    patterns: ['(?P<timestamp>\d+) meter value=(?P<value>\S+) host=(?P<network__client__ip>\S+)']
    casts: {value: float}
""")
    names = register_parsers(path)
    try:
        assert not FORMATS["meter"].json_safe_events
        lines = [f"{1700000000 + i} meter value={v} host=192.0.2.1" for i, v in enumerate(["1.5", "nan", "inf", "2"])]
        plain = tmp_path / "meter.log"
        plain.write_text("\n".join(lines) + "\n")
        docker = tmp_path / "meter-json.log"
        docker.write_text("".join(json.dumps({"log": line + "\n", "stream": "stdout", "time": "2026-11-28T10:00:00Z"}) + "\n"
                                  for line in lines))
        rule = Rule.model_validate({"id": "m", "name": "meter", "queries": [{"query": "@network.client.ip:192.0.2.1 @value:*",
                                    "groupByFields": ["@network.client.ip"]}], "cases": [{"status": "low", "condition": "a >= 4"}]})
        for log in (plain, docker):
            assert Source(str(log), path=log).format.json_safe_events is False
            (signal,) = Engine([rule]).detect([log]).signals
            assert signal.event_count == 4
            assert [e["value"] for e in signal.samples][:1] == [1.5]
    finally:
        unregister_parsers(names)
