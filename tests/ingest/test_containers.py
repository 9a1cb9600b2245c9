"""Container runtime logs (Docker json-file, CRI): the wrapped lines read in their own format,
the lines that format turns down kept, the prefilter's promises through Docker's JSON escapes."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from secmon import Engine, default_rules
from secmon.ingest import FORMATS, IngestStats, Source, parse_events
from secmon.ingest.containers import CriFormat, DockerJsonFormat

from .conftest import promises_checked

ACCESS = '192.0.2.{n} - - [28/Nov/2026:10:00:{s:02d} +0000] "GET {url} HTTP/1.1" {code} 153 "-" "{agent}"'
SSHD = "Nov 28 10:00:{s:02d} web-1 sshd[{n}]: Failed password for root from 203.0.113.{n} port {p} ssh2"


def docker_line(text: str, stream: str = "stdout", second: int = 0, *, go_escapes: bool = False) -> str:
    line = json.dumps({"log": text + "\n", "stream": stream, "time": f"2026-11-28T10:00:{second:02d}.123456789Z"},
                      separators=(",", ":"), ensure_ascii=False)
    if go_escapes:  # what Docker's encoder writes for <, > and & (json.dumps leaves them)
        line = line.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return line


def cri_line(text: str, stream: str = "stdout", second: int = 0, tag: str = "F") -> str:
    return f"2026-11-28T10:00:{second:02d}.123456789Z {stream} {tag} {text}"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_docker_access_log_is_read_as_an_access_log(tmp_path: Path) -> None:
    lines = [docker_line(ACCESS.format(n=1, s=5, url="/a?x=<b>&y=1", code=404, agent='curl \\"x\\"'), second=7,
                         go_escapes=True),
             docker_line("/docker-entrypoint.sh: Configuration complete; ready for start up", second=8),
             docker_line("2026/11/28 10:00:09 [error] 29#29: *1 open() failed", stream="stderr", second=9)]
    path = write(tmp_path / "c-json.log", lines)
    assert Source(str(path), path=path).format.name == "docker+access_log"
    access, entrypoint, error = parse_events([path])
    assert access["timestamp"] == 1795860005000  # the line's own time, not the runtime's (second 7)
    assert access["http"]["url"] == "/a?x=<b>&y=1" and access["http"]["useragent"] == 'curl "x"'
    assert access["http"]["status_code"] == 404 and access["container"] == {"stream": "stdout"}
    # Lines the access log format cannot read are kept: the runtime's time, the status of the stream.
    assert entrypoint == {"timestamp": 1795860008123, "message": "/docker-entrypoint.sh: Configuration complete; ready for start up",
                          "status": "info", "container": {"stream": "stdout"}}
    assert error["status"] == "error" and error["timestamp"] == 1795860009123


def test_cri_sshd_lines_are_read_as_syslog_and_pieces_stay_pieces(tmp_path: Path) -> None:
    lines = [cri_line(SSHD.format(s=i, n=i % 3, p=4000 + i), second=i) for i in range(6)]
    lines += [cri_line("a long line in two", stream="stderr", second=7, tag="P"), cri_line(" pieces", stream="stderr", second=7)]
    path = write(tmp_path / "pod_ns_sshd-0123.log", lines)
    assert Source(str(path), path=path, year=2026).format.name == "cri+syslog"
    events = parse_events([path], year=2026)
    assert [e["network"]["client"]["ip"] for e in events[:6]] == [f"203.0.113.{i % 3}" for i in range(6)]
    assert all(e["source"] == "sshd" and e["evt"]["outcome"] == "failure" for e in events[:6])
    assert [e["message"] for e in events[6:]] == ["a long line in two", " pieces"]


@pytest.mark.parametrize("runtime", ["docker", "cri"])
def test_wrapped_json_gets_the_runtime_time_only_without_its_own(tmp_path: Path, runtime: str) -> None:
    wrap = docker_line if runtime == "docker" else cri_line
    own = json.dumps({"timestamp": "2026-11-28T09:00:00Z", "msg": "login failed", "usr": {"name": "bob"}})
    bare = json.dumps({"msg": "no time here", "container": "web"})
    path = write(tmp_path / "app.log", [wrap(own, second=1), wrap(bare, second=2), wrap("panic: not json", "stderr", 3)])
    assert Source(str(path), path=path).format.name == f"{runtime}+ndjson"
    own_event, bare_event, panic = parse_events([path])
    assert own_event["timestamp"] == 1795856400000 and own_event["message"] == "login failed"
    assert bare_event["timestamp"] == 1795860002123 and bare_event["container"] == "web"  # its own field kept
    assert panic["message"] == "panic: not json" and panic["status"] == "error"


def test_bad_wrapper_lines_are_counted_per_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "d.log", [docker_line("GET /", second=1), '{"log": "cut', '{"other": 1}',
                                      json.dumps({"log": "x\n", "stream": "stdout", "time": "yesterday"})])
    stats = IngestStats()
    events = parse_events([path], stats=stats, format="docker")
    assert [e["message"] for e in events] == ["GET /"]
    assert stats.rejected == {"malformed_json": 1, "unparsed_line": 1, "bad_timestamp": 1}


def test_docker_escapes_withhold_promises() -> None:
    fmt = DockerJsonFormat(FORMATS["syslog"])
    assert fmt.implied_literals("evt.outcome", "failure") == ["Failed ", "authentication failure", "COMMAND="]
    assert fmt.implied_literals("network.client.ip", "1.2.3.4") == ["1.2.3.4"]
    for value in ("a&b", "<x>", "caf\u00e9", 'q"q'):
        assert fmt.implied_literals("network.client.ip", value) is None, value
    assert CriFormat(FORMATS["syslog"]).implied_literals("network.client.ip", "a&b") == ["a&b"]  # CRI lines are verbatim
    assert DockerJsonFormat().implied_literals("source", "sshd") is None  # not bound: no promise


URL_PARTS = ["/index.html", "/../../etc/passwd", "/a?id=1%27%20OR%201%3D1", "/x?q=<script>&a=1", "/caf\u00e9/..%2f",
             "/cgi-bin/t", "/wp-login.php", '/"q"', "/%2e%2e/etc", "/search?q=union+select"]
AGENTS = ["curl/8.5", "() { :; }; /bin/cat /etc/passwd", "sqlmap/1.7", "Mozilla <5.0> & co", "Nikto"]


def random_container_log(path: Path, runtime: str, seed: int) -> Path:
    rnd = random.Random(seed)
    lines = []
    for i in range(400):
        second = i % 60
        kind = rnd.random()
        if kind < 0.75 or i < 8:  # a web server's container: its access log, and lines of its own
            text = ACCESS.format(n=rnd.randrange(1, 5), s=second, url=rnd.choice(URL_PARTS), code=rnd.choice([200, 404, 500]),
                                 agent=rnd.choice(AGENTS))
        elif kind < 0.8:
            text = SSHD.format(s=second, n=rnd.randrange(1, 4), p=rnd.randrange(1024, 65535))
        else:
            text = rnd.choice(["worker started", "GET /../x failed <&>", "caf\u00e9 \u2028 line", json.dumps({"msg": "Failed password"})])
        stream = rnd.choice(["stdout", "stderr"])
        if runtime == "docker":
            lines.append(docker_line(text, stream, second, go_escapes=rnd.random() < 0.5))
        else:
            lines.append(cri_line(text, stream, second))
    return write(path, lines)


@pytest.mark.parametrize("runtime", ["docker", "cri"])
@pytest.mark.parametrize("seed", [11, 12])
def test_default_rules_with_and_without_the_prefilter(tmp_path: Path, runtime: str, seed: int) -> None:
    path = random_container_log(tmp_path / "container.log", runtime, seed)
    rules = default_rules()
    fast = Engine(rules, chunk_bytes=4096, year=2026).detect([path])
    plain = Engine(rules, prefilter=False, chunk_bytes=4096, year=2026).detect([path])
    assert sorted(s.key() for s in fast.signals) == sorted(s.key() for s in plain.signals)
    assert {"web-path-traversal-attempt", "web-sql-injection-attempt"} <= {s.rule_id for s in plain.signals}
    assert not plain.stats.rejected


def test_promises_hold_line_by_line(tmp_path: Path) -> None:
    """Every literal the bound format promises for a value of an event occurs in the raw line."""
    for runtime in ("docker", "cri"):
        path = random_container_log(tmp_path / f"{runtime}.log", runtime, 5)
        fmt = Source(str(path), path=path).format
        checked = 0
        for line in path.read_text(encoding="utf-8").splitlines():
            for event in parse_events([write(tmp_path / "one.log", [line])], format=fmt, year=2026):
                checked += promises_checked(fmt, line, event)
        assert checked > 300, runtime


def test_kubernetes_and_docker_paths_give_datadogs_container_tags(tmp_path: Path) -> None:
    from secmon.rules.model import Rule

    cid = "ab" * 32
    cri = tmp_path / "var/log/containers" / f"web-7d9f-x2k4q_payments_nginx-{cid}.log"
    other = tmp_path / "var/log/containers" / f"web-5c8d-p9z7w_shop_nginx-{'cd' * 32}.log"
    docker = tmp_path / "containers" / cid / f"{cid}-json.log.1"
    for path in (cri, other, docker):
        path.parent.mkdir(parents=True, exist_ok=True)
    lines = [ACCESS.format(n=1, s=i, url="/../../etc/passwd", code=200, agent="curl") for i in range(3)]
    write(cri, [cri_line(line, second=i) for i, line in enumerate(lines)])
    write(other, [cri_line(line, second=i) for i, line in enumerate(lines)])
    write(docker, [docker_line(line, second=i) for i, line in enumerate(lines)])
    (event, *_) = parse_events([cri])
    assert event["tags"] == [f"container_id:{cid}", "kube_namespace:payments", "pod_name:web-7d9f-x2k4q", "kube_container_name:nginx"]
    assert parse_events([docker])[0]["tags"] == [f"container_id:{cid}"]
    pods = tmp_path / "var/log/pods/payments_web-7d9f-x2k4q_0f1e2d3c-aaaa-bbbb/nginx/0.log"
    pods.parent.mkdir(parents=True)
    write(pods, [cri_line(lines[0])])
    assert parse_events([pods])[0]["tags"] == ["kube_namespace:payments", "pod_name:web-7d9f-x2k4q", "kube_container_name:nginx"]
    rule = Rule.model_validate({"id": "ns", "name": "payments traversal", "queries": [
        {"query": "kube_namespace:payments @http.url:*etc\\/passwd*", "groupByFields": ["@network.client.ip"]}],
        "cases": [{"status": "high", "condition": "a > 0"}]})
    for prefilter in (True, False):  # the tags are not in the lines: the prefilter must not count on them
        (signal,) = Engine([rule], prefilter=prefilter).detect([cri, other, docker]).signals
        assert signal.event_count == 3
