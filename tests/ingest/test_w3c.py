"""W3C extended logs (IIS): directives, fields, Datadog's attributes, the prefilter's promises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, Source, parse_lines
from tests.ingest.conftest import count_rule, same_signals_with_and_without_prefilter
from tests.ingest.test_verbatim import assert_prefilter_promises_hold

HEADER = [
    "#Software: Microsoft Internet Information Services 10.0",
    "#Version: 1.0",
    "#Date: 2024-05-01 10:00:00",
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) "
    "sc-status sc-substatus sc-win32-status time-taken",
]


def test_the_header_declares_the_format() -> None:
    lines = [*HEADER, "2024-05-01 10:00:00 10.0.0.5 GET / - 443 - 203.0.113.7 curl/8.0 - 200 0 0 15"]
    assert Source("u_ex240501.log", data=("\n".join(lines) + "\n").encode()).format.name == "w3c"
    # A first line that is no directive, or a head without #Fields, is not W3C.
    assert Source("x.log", data=b"hello\n#Fields: a b\n").format.name != "w3c"
    assert Source("x.log", data=b"#Version: 1.0\n#Date: 2024-05-01 10:00:00\n").format.name != "w3c"


def test_iis_fields_map_onto_datadog_attributes_and_stay_addressable() -> None:
    lines = [*HEADER, "2024-05-01 10:00:02 10.0.0.5 GET /search q=1%27%20OR%201%3D1&x=a+b 443 bob 203.0.113.9 "
                      "Mozilla/5.0+(Windows+NT+10.0) https://example.com/ 500 0 0 3"]
    (event,) = parse_lines(lines, format="w3c")
    assert event["timestamp"] == 1714557602000 and event["source"] == "iis" and event["status"] == "error"
    assert event["network"] == {"client": {"ip": "203.0.113.9"}, "destination": {"ip": "10.0.0.5", "port": 443}}
    assert event["http"] == {
        "method": "GET", "useragent": "Mozilla/5.0+(Windows+NT+10.0)", "referer": "https://example.com/", "status_code": 500,
        "url": "/search?q=1%27%20OR%201%3D1&x=a+b",
        "url_details": {"path": "/search", "queryString": {"q": "1' OR 1=1", "x": "a b"}},
    }
    assert event["usr"] == {"name": "bob"} and event["duration"] == 3_000_000
    assert event["c-ip"] == "203.0.113.9" and event["sc-status"] == 500 and event["cs(User-Agent)"].startswith("Mozilla")
    assert event["message"] == lines[-1]


def test_no_value_no_date_field_quoted_values_and_new_fields_mid_file() -> None:
    lines = [
        "#Version: 1.0",
        "#Date: 2024-05-01 00:00:00",
        "#Fields: time c-ip cs-method cs-uri-stem sc-status cs-host",
        '10:00:00 203.0.113.1 GET "/a b" 404 -',
        "#Date: 2024-05-02 00:00:00",
        "#Fields: date time c-ip cs-uri-stem cs-version",
        "2024-05-03 11:00:00.250 203.0.113.2 /x HTTP/1.1",
    ]
    first, second = parse_lines(lines, format="w3c")
    assert first["timestamp"] == 1714557600000 and first["http"]["url"] == "/a b" and "cs-host" not in first
    assert first["http"]["status_code"] == 404 and first["status"] == "warn"
    assert second["timestamp"] == 1714734000250 and second["http"]["version"] == "1.1" and "cs-method" not in second


def test_bad_lines_are_counted_with_their_reason() -> None:
    stats = IngestStats()
    events = parse_lines([
        "2024-05-01 10:00:00 before any fields",
        "#Fields: date time c-ip",
        "2024-05-01 10:00:00 203.0.113.1 one-too-many",
        "2024-05-01 - 203.0.113.1",
        "2024-02-30 10:00:00 203.0.113.1",
        "#Bogus: directive",
        "2024-05-01 10:00:00 203.0.113.1",
    ], format="w3c", stats=stats)
    assert len(events) == 1
    assert stats.rejected == {"unparsed_line": 3, "missing_timestamp": 1, "bad_timestamp": 1}
    assert stats.header_lines == 1 and stats.lines_read == 7


def random_iis_log(seed: int, lines: int = 500) -> list[str]:
    """An IIS log whose field list changes twice (a site restart with other logging fields)."""
    rnd = random.Random(seed)
    out = list(HEADER)
    fields = HEADER[-1].removeprefix("#Fields: ").split()
    t = 0
    for i in range(lines):
        if i in (lines // 3, 2 * lines // 3):
            rnd.shuffle(fields)
            out += ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
                    "#Date: 2024-05-01 11:00:00", "#Fields: " + " ".join(fields)]
        t += rnd.randrange(0, 4)
        stem = rnd.choice(["/", "/login.aspx", "/scripts/..%5c..%5cwin.ini", "/search", "/wp-login.php", "/.env"])
        values = {
            "date": "2024-05-01", "time": f"{10 + t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}", "s-ip": "10.0.0.5",
            "cs-method": rnd.choice(["GET", "POST"]), "cs-uri-stem": stem,
            "cs-uri-query": rnd.choice(["-", "id=1", "q=1%27%20OR%201%3D1", "q=union+select"]),
            "s-port": "443", "cs-username": rnd.choice(["-", "bob"]), "c-ip": f"203.0.113.{rnd.randrange(1, 5)}",
            "cs(User-Agent)": rnd.choice(["Mozilla/5.0+(Windows+NT+10.0)", "sqlmap/1.7", "curl/8.0"]),
            "cs(Referer)": "-", "sc-status": rnd.choice(["200", "404", "404", "500"]), "sc-substatus": "0",
            "sc-win32-status": "0", "time-taken": str(rnd.randrange(1, 100)),
        }
        out.append(" ".join(values[f] for f in fields))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_attribute_promises_to_the_prefilter_hold(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "u_ex.log"
    path.write_text("\n".join(random_iis_log(seed)) + "\n")
    assert_prefilter_promises_hold(path)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_default_web_rules_and_a_field_rule_give_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    """The prefilter must let every #Fields line through: without them the lines after a change of
    fields would be read with the wrong names."""
    from secmon import default_rules

    path = tmp_path / "u_ex.log"
    path.write_text("\n".join(random_iis_log(seed, 3000)) + "\n")
    rules = [*default_rules(), count_rule("iis-bob", "@cs-username:bob @sc-status:500", "@c-ip", 3, status="low")]
    fast = same_signals_with_and_without_prefilter(rules, path)
    assert {s.rule_id for s in fast.signals} >= {"iis-bob", "web-path-traversal-attempt", "web-sql-injection-attempt"}
    only_bob = same_signals_with_and_without_prefilter(rules[-1:], path)
    assert only_bob.skipped_lines > 0
    assert sorted(s.key() for s in only_bob.signals) == sorted(s.key() for s in fast.signals if s.rule_id == "iis-bob")
