"""Zeek's TSV logs: the header, typed values, the same events as Zeek's JSON logs, the prefilter."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, Source, parse_lines
from tests.ingest.conftest import same_signals_with_and_without_prefilter
from tests.ingest.test_verbatim import assert_prefilter_promises_hold

DNS_HEADER = [
    "#separator \\x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\tdns",
    "#open\t2019-08-27-00-00-00",
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tquery\tanswers\tTTLs\trejected",
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tvector[string]\tvector[interval]\tbool",
]


def test_the_header_declares_the_format() -> None:
    assert Source("dns.log", data=("\n".join(DNS_HEADER) + "\n").encode()).format.name == "zeek"


def test_values_are_typed_by_the_header_and_mapped_onto_datadog_attributes() -> None:
    lines = [*DNS_HEADER,
             "1566864000.123456\tCHhAvVGS1DHFjwGM9\t10.0.0.1\t52345\t8.8.8.8\t53\tudp\tevil\\x09.example.com\t1.2.3.4,5.6.7.8\t60.000000,60.000000\tF",
             "1566864001.000000\tCHhAvVGS1DHFjwGM0\t10.0.0.2\t52346\t8.8.8.8\t53\tudp\t-\t(empty)\t(empty)\tT",
             "#close\t2019-08-27-01-00-00"]
    first, second = parse_lines(lines, format="zeek")
    assert first["timestamp"] == 1566864000123 and first["source"] == "zeek" and first["_path"] == "dns"
    assert first["id.orig_h"] == "10.0.0.1" and first["id.orig_p"] == 52345 and first["rejected"] is False
    assert first["query"] == "evil\t.example.com" and first["answers"] == ["1.2.3.4", "5.6.7.8"] and first["TTLs"] == [60.0, 60.0]
    assert first["network"] == {"client": {"ip": "10.0.0.1", "port": 52345}, "destination": {"ip": "8.8.8.8", "port": 53}}
    assert first["dns"] == {"question": {"name": "evil\t.example.com"}}
    assert "query" not in second and second["answers"] == [] and second["rejected"] is True and "dns" not in second


def test_a_tsv_line_gives_the_event_of_the_same_record_in_zeek_json() -> None:
    """Zeek's JSON writer (LogAscii::use_json) writes the same record: both read alike."""
    tsv_line = "1566864000.123456\tCHhAvVGS1DHFjwGM9\t10.0.0.1\t52345\t8.8.8.8\t53\tudp\texample.com\t1.2.3.4\t60.000000\tF"
    (from_tsv,) = parse_lines([*DNS_HEADER, tsv_line], format="zeek")
    record = {"ts": 1566864000.123456, "uid": "CHhAvVGS1DHFjwGM9", "id.orig_h": "10.0.0.1", "id.orig_p": 52345,
              "id.resp_h": "8.8.8.8", "id.resp_p": 53, "proto": "udp", "query": "example.com", "answers": ["1.2.3.4"],
              "TTLs": [60.0], "rejected": False}
    (from_json,) = parse_lines([json.dumps(record)], format="ndjson")
    assert {k: v for k, v in from_tsv.items() if k != "_path"} == from_json


def test_bad_lines_are_counted_with_their_reason() -> None:
    stats = IngestStats()
    events = parse_lines([
        "1566864000.1\tbefore the header",
        *DNS_HEADER,
        "1566864000.1\ttoo few",
        "-\tC1\t10.0.0.1\t1\t8.8.8.8\t53\tudp\tx\t(empty)\t(empty)\tF",
        "soon\tC1\t10.0.0.1\t1\t8.8.8.8\t53\tudp\tx\t(empty)\t(empty)\tF",
        "1566864000.1\tC1\t10.0.0.1\t1\t8.8.8.8\t53\tudp\tx\t(empty)\t(empty)\tF",
    ], format="zeek", stats=stats)
    assert len(events) == 1
    assert stats.rejected == {"unparsed_line": 2, "missing_timestamp": 2}
    assert stats.header_lines == len(DNS_HEADER) and stats.lines_read == len(DNS_HEADER) + 5


def random_conn_logs(seed: int, lines: int = 600) -> list[str]:
    """conn.log and http.log concatenated (`cat`), as a day's rotated logs are read together."""
    rnd = random.Random(seed)
    conn = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tconn",
            "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\tlocal_orig\ttunnel_parents",
            "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tbool\tset[string]"]
    http = ["#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\thttp",
            "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tmethod\thost\turi\tuser_agent\tstatus_code",
            "#types\ttime\tstring\taddr\tport\taddr\tport\tstring\tstring\tstring\tstring\tcount"]
    out = list(conn)
    t = 1566864000.0
    for i in range(lines):
        if i == lines // 2:
            out += ["#close\t2019-08-27-01-00-00", *http]
        t += rnd.random() * 3
        ip = f"10.0.0.{rnd.randrange(1, 4)}"
        if i < lines // 2:
            out.append("\t".join([f"{t:.6f}", f"C{i}", ip, str(rnd.randrange(1024, 65535)), rnd.choice(["8.8.8.8", "198.51.100.7"]),
                                  rnd.choice(["53", "22", "443"]), "tcp", rnd.choice(["ssh", "dns", "-", "(empty)"]),
                                  rnd.choice(["0.100000", "-", "1e-05"]), rnd.choice(["T", "F"]), rnd.choice(["(empty)", "Cx,Cy"])]))
        else:
            out.append("\t".join([f"{t:.6f}", f"C{i}", ip, str(rnd.randrange(1024, 65535)), "198.51.100.7", "80",
                                  rnd.choice(["GET", "POST"]), "example.com", rnd.choice(["/", "/a\\x09b", "/../etc/passwd"]),
                                  rnd.choice(["curl/8.0", "sqlmap/1.7", "-"]), rnd.choice(["200", "404"])]))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_attribute_promises_to_the_prefilter_hold(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "zeek.log"
    path.write_text("\n".join(random_conn_logs(seed)) + "\n")
    assert_prefilter_promises_hold(path)


@pytest.mark.parametrize("seed", [1, 2])
def test_rules_give_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    from secmon.rules.loader import rule_from_dict

    path = tmp_path / "zeek.log"
    path.write_text("\n".join(random_conn_logs(seed, 3000)) + "\n")
    options = {"evaluationWindow": 60, "keepAlive": 300, "maxSignalDuration": 3600}
    rules = [
        rule_from_dict({"id": "ssh-conns", "name": "ssh connections", "options": options,
                        "queries": [{"query": "source:zeek @network.destination.port:22 @service:ssh", "groupByFields": ["@network.client.ip"]}],
                        "cases": [{"status": "low", "condition": "a >= 5"}]}),
        rule_from_dict({"id": "sqlmap", "name": "sqlmap", "options": options,
                        "queries": [{"query": "@http.useragent:sqlmap* @http.status_code:200", "groupByFields": ["@id.orig_h"]}],
                        "cases": [{"status": "medium", "condition": "a >= 1"}]}),
    ]
    fast = same_signals_with_and_without_prefilter(rules, path)
    assert {s.rule_id for s in fast.signals} == {"ssh-conns", "sqlmap"} and fast.skipped_lines > 0
