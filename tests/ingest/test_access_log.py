"""Apache/nginx access logs (escaped quotes inside fields) and the Apache error log."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmon.ingest import FORMATS, IngestStats, parse_events, parse_lines

from .conftest import promises_checked

UTC = dt.timezone.utc


def test_combined_line() -> None:
    line = ('127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 2326 '
            '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"')
    [event] = parse_lines([line])
    assert event["timestamp"] == int(dt.datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC).timestamp() * 1000)
    assert event["network"] == {"client": {"ip": "127.0.0.1"}, "bytes_written": 2326}
    assert event["usr"] == {"name": "frank"}
    assert event["http"] == {
        "method": "GET", "url": "/apache_pb.gif?x=1", "url_details": {"path": "/apache_pb.gif", "queryString": {"x": "1"}}, "version": "1.0",
        "status_code": 200, "referer": "http://www.example.com/start.html",
        "useragent": "Mozilla/4.08 [en] (Win98; I ;Nav)",
    }
    assert event["source"] == "access_log" and event["status"] == "info" and event["message"] == line


def test_escaped_quotes_inside_fields() -> None:
    line = ('10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a\\"b HTTP/1.1" 404 - "-" '
            '"curl \\"quoted\\" agent"')
    [event] = parse_lines([line], format="nginx")
    assert event["http"]["url"] == '/a"b'
    assert event["http"]["useragent"] == 'curl "quoted" agent'
    assert event["http"]["status_code"] == 404 and event["status"] == "warn"
    assert "bytes_written" not in event["network"] and "referer" not in event["http"] and "usr" not in event
    assert event["source"] == "nginx"


def test_common_format_and_garbage_request() -> None:
    lines = ['1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 500 12',
             '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "\\x16\\x03\\x01" 400 0',
             "not an access log line"]
    stats = IngestStats()
    events = parse_lines(lines, format="apache", stats=stats)
    assert [e["http"].get("status_code") for e in events] == [500, 400]
    assert events[0]["status"] == "error" and events[0]["source"] == "apache"
    assert events[1]["http"] == {"url": "\\x16\\x03\\x01", "status_code": 400}
    assert stats.rejected == Counter({"unparsed_line": 1})


def test_apache_error_log(dataset: Callable[[str], Path]) -> None:
    stats = IngestStats()
    events = parse_events(dataset("loghub/Apache/Apache_2k.log"), stats=stats)
    assert stats.rejected_total == 0 and len(events) == 2000
    assert Counter(e["status"] for e in events) == Counter({"notice": 1405, "error": 595})
    clients = [e for e in events if "network" in e]
    assert len(clients) == 32 and len({e["network"]["client"]["ip"] for e in clients}) == 32
    assert events[0]["timestamp"] == int(dt.datetime(2005, 12, 4, 4, 47, 44, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1234:tid 5678] [client 1.2.3.4:5678] AH00124: boom",
         {"status": "error", "network": {"client": {"ip": "1.2.3.4", "port": 5678}}, "message": "AH00124: boom"}),
        ("[Sun Dec 04 07:45:45 2005] [error] [client 63.13.186.196] Directory index forbidden by rule: /var/www/html/",
         {"status": "error", "network": {"client": {"ip": "63.13.186.196"}}}),
    ],
)
def test_apache_error_lines(line: str, expected: dict[str, Any]) -> None:
    [event] = parse_lines([line], format="apache_error")
    for key, value in expected.items():
        assert event[key] == value


def test_access_log_verbatim_flags() -> None:
    fmt = FORMATS["access_log"]
    assert fmt.verbatim("http.url") and fmt.verbatim("network.client.ip") and fmt.verbatim("http.status_code")
    assert not fmt.verbatim("status") and not fmt.verbatim("source") and not fmt.verbatim("timestamp")


NGINX_ERROR_LINES = [
    '2026/11/28 10:00:01 [error] 1234#1234: *5 open() "/usr/share/nginx/html/wp-login.php" failed (2: No such file '
    'or directory), client: 192.0.2.77, server: _, request: "GET /wp-login.php?x=1 HTTP/1.1", host: "example.com", '
    'referrer: "http://example.com/"',
    '2026/11/28 10:00:02 [warn] 1234#1234: *6 an upstream response is buffered to a temporary file /var/cache/1, '
    'client: 2001:db8::7, server: api, request: "POST /api HTTP/2.0", upstream: "http://127.0.0.1:8080/api"',
    "2026/11/28 10:00:03 [notice] 1#1: signal process started",
    '2026/11/28 10:00:04 [error] 9#9: *7 access forbidden by rule, client: 198.51.100.3, server: _, request: "BADREQ"',
]


def test_nginx_error_lines() -> None:
    events = parse_lines(NGINX_ERROR_LINES, format="nginx_error")
    assert [e["timestamp"] for e in events[:2]] == [
        int(dt.datetime(2026, 11, 28, 10, 0, s, tzinfo=dt.timezone.utc).timestamp() * 1000) for s in (1, 2)
    ]
    first, second, notice, forbidden = events
    assert (first["source"], first["service"], first["status"]) == ("nginx", "nginx", "error")
    assert first["error"]["message"] == 'open() "/usr/share/nginx/html/wp-login.php" failed (2: No such file or directory)'
    assert first["network"]["client"]["ip"] == "192.0.2.77"
    assert first["http"] == {"method": "GET", "url": "/wp-login.php?x=1", "version": "1.1", "referer": "http://example.com/",
                             "url_details": {"path": "/wp-login.php", "queryString": {"x": "1"}, "host": "example.com"}}
    assert first["nginx"] == {"pid": "1234", "tid": "1234", "connection_id": 5, "server": "_"}
    assert second["network"]["client"]["ip"] == "2001:db8::7" and second["nginx"]["upstream"] == "http://127.0.0.1:8080/api"
    assert second["status"] == "warn" and second["http"]["method"] == "POST"
    assert notice["message"] == "signal process started" and "http" not in notice and "connection_id" not in notice["nginx"]
    assert forbidden["http"] == {"url": "BADREQ"}


def test_nginx_error_log_is_detected_and_its_promises_hold(tmp_path: Path) -> None:
    from secmon.ingest import Source

    path = tmp_path / "error.log"
    path.write_text("\n".join(NGINX_ERROR_LINES) + "\n")
    source = Source(str(path), path=path)
    assert source.format.name == "nginx_error"
    fmt = source.format
    events = parse_lines(NGINX_ERROR_LINES, format="nginx_error")
    promised = sum(promises_checked(fmt, line, event) for line, event in zip(NGINX_ERROR_LINES, events, strict=True))
    assert promised >= 20  # message, status, client, request and context values of the four lines


@pytest.mark.parametrize("seed", [3, 4])
def test_web_rules_over_nginx_error_logs_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    import random

    from secmon import Engine, default_rules

    rnd = random.Random(seed)
    urls = ["/index.html", "/../../etc/passwd", "/a?id=1%27%20OR%201%3D1", "/cgi-bin/x", "/wp-login.php", "/%2e%2e/x"]
    lines = []
    for i in range(300):
        level = rnd.choice(["error", "warn", "crit", "notice"])
        client = f"192.0.2.{rnd.randrange(1, 6)}"
        lines.append(f'2026/11/28 10:{i // 60:02d}:{i % 60:02d} [{level}] 7#7: *{i} open() "/srv{rnd.choice(urls)}" failed '
                     f'(2: No such file or directory), client: {client}, server: _, request: "GET {rnd.choice(urls)} HTTP/1.1"')
    path = tmp_path / "error.log"
    path.write_text("\n".join(lines) + "\n")
    rules = default_rules()
    fast = Engine(rules, chunk_bytes=2048).detect([path])
    plain = Engine(rules, prefilter=False, chunk_bytes=2048).detect([path])
    assert sorted(s.key() for s in fast.signals) == sorted(s.key() for s in plain.signals)
    assert {s.rule_id for s in fast.signals} >= {"web-path-traversal-attempt"}
    assert not plain.stats.rejected and plain.stats.events_read == 300


def test_apache_vhost_combined_lines() -> None:
    """Debian's other_vhosts_access.log: vhost_combined puts "host:port " in front."""
    lines = ['www.example.com:443 192.0.2.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a?b=1 HTTP/1.1" 200 2326 "-" "curl/8"',
             'example.org:80 2001:db8::1 - bob [10/Oct/2000:13:55:37 -0700] "POST /login HTTP/1.1" 401 12 "-" "-"',
             'fe80::1 - - [10/Oct/2000:13:55:38 -0700] "GET / HTTP/1.1" 200 1']  # an IPv6 client alone is not a vhost
    first, second, third = parse_lines(lines, format="access_log")
    assert first["http"]["url_details"] == {"path": "/a", "queryString": {"b": "1"}, "host": "www.example.com", "port": 443}
    assert first["network"]["client"]["ip"] == "192.0.2.1" and first["http"]["status_code"] == 200
    assert second["network"]["client"]["ip"] == "2001:db8::1" and second["usr"] == {"name": "bob"}
    assert third["network"]["client"]["ip"] == "fe80::1" and "host" not in third["http"]["url_details"]
    assert FORMATS["access_log"].verbatim("http.url_details.host")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/a", {"path": "/a"}),
        ("/a?", {"path": "/a"}),
        ("/item.php?id=1%27%20UNION%20SELECT%201--&q=a+b", {"path": "/item.php", "queryString": {"id": "1' UNION SELECT 1--", "q": "a b"}}),
        ("/s?x=1&x=2&x=3&flag", {"path": "/s", "queryString": {"x": ["1", "2", "3"], "flag": ""}}),
        ("/bad?p=%zz%2", {"path": "/bad", "queryString": {"p": "%zz%2"}}),  # broken escapes stay as written
    ],
)
def test_url_details_decode_the_query_string_as_datadogs_url_parser(url: str, expected: dict[str, Any]) -> None:
    from secmon.ingest.access_log import url_details

    assert url_details(url) == expected


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab=&+%2F7e9Z?é \x00"), max_size=30))
def test_url_details_decode_as_urllib_does(query: str) -> None:
    """The hand-split query string against ``urllib.parse.parse_qsl``, its slow twin."""
    from urllib.parse import parse_qsl

    from secmon.ingest.access_log import url_details

    expected: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        previous = expected.get(name)
        expected[name] = value if previous is None else [*previous, value] if isinstance(previous, list) else [previous, value]
    got = url_details("/p?" + query)
    assert got["path"] == "/p"
    assert got.get("queryString", {}) == expected


def test_rules_on_query_parameters_see_decoded_values_with_and_without_the_prefilter(tmp_path: Path) -> None:
    from secmon import Engine
    from secmon.rules.loader import rule_from_dict

    lines = [f'192.0.2.{i % 5} - - [28/Nov/2026:10:00:{i % 60:02d} +0000] "GET /item.php?id={v} HTTP/1.1" 200 10 "-" "curl"'
             for i, v in enumerate(["1", "1%27%20UNION%20SELECT%20pass", "2", "1'+union+select+1", "3"] * 20)]
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    rule = rule_from_dict({"id": "q", "name": "q", "queries": [{"query": "@http.url_details.queryString.id:(*UNION\\ SELECT* OR *union\\ select*)",
                                                                  "groupByFields": ["@network.client.ip"]}],
                           "cases": [{"status": "low", "condition": "a > 0"}]})
    fast = Engine([rule]).detect([log]).signals
    plain = Engine([rule], prefilter=False).detect([log]).signals
    assert sorted(s.key() for s in fast) == sorted(s.key() for s in plain)
    assert sum(s.event_count for s in plain) == 40
