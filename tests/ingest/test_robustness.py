"""Bad input never stops a run and is never dropped silently: arbitrary bytes through every format
either become events or are counted (rejected, blank, header), line for line. SECMON_FUZZ sets the
number of examples per format (100 in the suite)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.ingest import FORMATS, IngestStats, Source, line_count

FRAGMENTS = [
    b"\n", b"\r\n", b"{", b"}", b"[", b"]", b'"', b"\\", b":", b" ", b"\xff", b"\xc3", b"\xa9", b"\x00",
    b"Dec 10 06:55:46 h sshd[1]: ", b"Failed password for ", b" from ", b"1.2.3.4", b" port 22 ssh2",
    b"message repeated 3 times: [ ", b"pam_unix(sshd:auth): authentication failure; rhost=", b"<13>1 ",
    b'{"timestamp": ', b'"2023-07-10T12:00:42Z"', b"1688990442", b'"eventTime": ', b'{"Records": [',
    b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /', b' HTTP/1.1" 200 1', b"[Sun Dec 04 04:47:44 2005] [error] ",
    b"2023-07-10T12:00:42Z ", b"x" * 40,
    b'{"__REALTIME_TIMESTAMP": "1688990442000000", "MESSAGE": ', b'"SYSLOG_IDENTIFIER": "sshd-session"', b"[70, 255]",
    b'{"log": "', b'\\n", "stream": "stderr", "time": "2023-07-10T12:00:42.123456789Z"}', b"\\u003c",
    b"2023-07-10T12:00:42.123456789Z stdout F ", b" stderr P ",
    b"2023/07/10 12:00:42 [error] 7#7: *3 ", b', client: 1.2.3.4, request: "GET / HTTP/1.1"',
    b"- 1131566461 2005.11.09 dn228 ", b"134681 node-246 unix.hw state_change.unavailable 1077804742 1 ", b"Nov 9 12:01:01 dn228/dn228 sshd[1]: ", b"2005-06-03-15.42.50.363779 R02 RAS KERNEL INFO ",
    b"#Fields: date time c-ip cs-uri-stem sc-status\n", b"#Date: 2024-05-01 00:00:00\n", b"2024-05-01 10:00:00 1.2.3.4 /a 200",
    b"05/01-10:00:00.123456  [**] [1:2010935:3] ", b" [**] [Priority: 2] {TCP} 1.2.3.4:5 -> ", b"CEF:0|Fortinet|FortiGate|7.2|13|", b"|5|src=10.0.0.5 dst=1.1.1.1 ", b"rt=1714557600000 ", b"fw-1 CEF:0|a\\|b|", b"time,user,ip\n", b'<189>date=2024-05-01 time=10:00:02 devname="FG100" ', b'level=warn msg="a \\"b\\"" ', b'2024-05-01T10:00:00Z,"a, ""b""",1.2.3.4\n',
]
blobs = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=8), max_size=40).map(b"".join)
LINE_FORMATS = ["ndjson", "syslog", "access_log", "apache_error", "nginx_error", "journald", "docker", "cri", "auditd", "cfdr", "hpc", "w3c", "zeek", "logfmt", "cef", "snort", "csv", "text"]


@pytest.mark.parametrize("fmt", [*LINE_FORMATS, "json"])
@settings(max_examples=int(os.environ.get("SECMON_FUZZ", 100)), suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=blobs, year=st.one_of(st.none(), st.integers(1970, 2100)))
def test_any_bytes_are_parsed_or_counted(fmt: str, data: bytes, year: int | None) -> None:
    source = Source("fuzz", data=data, format=fmt, year=year, max_line_bytes=64)
    stats = IngestStats()
    events = [e for chunk in source.chunks(17) for e in source.format.parse(chunk, None, stats)]
    if compressed(data):  # gzip or xz magic: lines are counted after decompression
        assert stats.rejected["corrupt_input"] == 1
        return
    assert stats.lines_read == line_count(data.removeprefix(b"\xef\xbb\xbf"))  # a leading BOM is dropped
    assert stats.events_read == len(events)
    for event in events:
        assert type(event["timestamp"]) is int
    if fmt in LINE_FORMATS and fmt != "ndjson":
        # one line gives at most its events (message repeated N) or one count somewhere
        lines_accounted = stats.rejected_total + stats.blank_lines + stats.header_lines
        assert lines_accounted <= stats.lines_read
        assert stats.lines_read == 0 or events or lines_accounted == stats.lines_read


def compressed(data: bytes) -> bool:
    from secmon.ingest.sources import MAGIC_BYTES, _decompressing

    return _decompressing(data[:MAGIC_BYTES]) is not None


@given(data=blobs.filter(lambda b: not compressed(b)))  # compressed streams are covered above
@settings(max_examples=50, deadline=None)
def test_empty_selection_parses_nothing_but_counts_the_chunk(data: bytes) -> None:
    source = Source("fuzz", data=data, format="syslog", year=2015)
    stats = IngestStats()
    for chunk in source.chunks(32):
        assert FORMATS["syslog"].parse(chunk, np.array([], dtype=np.uint32), stats) == []
    assert stats.lines_read == line_count(data.removeprefix(b"\xef\xbb\xbf")) and stats.rejected_total == 0
