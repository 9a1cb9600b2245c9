"""Timestamp parsers against datetime (the obvious twin) and a table of real formats."""

from __future__ import annotations

from typing import Any

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secmon.ingest.timestamps import (
    TimestampError,
    epoch_to_ms,
    parse_access_log_time,
    parse_any,
    parse_iso8601,
)

UTC = dt.timezone.utc


def naive_ms(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-07-10T12:00:42Z", dt.datetime(2023, 7, 10, 12, 0, 42, tzinfo=UTC)),
        ("2023-07-10T12:00:42.123Z", dt.datetime(2023, 7, 10, 12, 0, 42, 123000, tzinfo=UTC)),
        ("2023-07-10T12:00:42.123456789Z", dt.datetime(2023, 7, 10, 12, 0, 42, 123000, tzinfo=UTC)),
        ("2023-07-10T14:00:42+02:00", dt.datetime(2023, 7, 10, 12, 0, 42, tzinfo=UTC)),
        ("2023-07-10T07:00:42-0500", dt.datetime(2023, 7, 10, 12, 0, 42, tzinfo=UTC)),
        ("2023-07-10 12:00:42", dt.datetime(2023, 7, 10, 12, 0, 42, tzinfo=UTC)),
        ("2023-07-10", dt.datetime(2023, 7, 10, tzinfo=UTC)),
        ("1969-12-31T23:59:59Z", dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_iso8601_table(text: str, expected: dt.datetime) -> None:
    assert parse_iso8601(text) == naive_ms(expected)


@pytest.mark.parametrize("text", ["2023-13-01T00:00:00Z", "2023-02-30", "yesterday", "2023-07-10T25:00:00Z", ""])
def test_iso8601_rejects_impossible_dates(text: str) -> None:
    with pytest.raises(TimestampError):
        parse_iso8601(text)


@given(
    st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.integers(-14 * 60, 14 * 60),
    st.sampled_from(["T", " "]),
)
def test_iso8601_matches_datetime(moment: dt.datetime, offset_min: int, sep: str) -> None:
    zone = dt.timezone(dt.timedelta(minutes=offset_min))
    aware = moment.replace(tzinfo=zone)
    text = aware.isoformat(sep=sep, timespec="microseconds")
    assert parse_iso8601(text) == naive_ms(aware.astimezone(UTC))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1688990442, 1688990442000),
        (1688990442.5, 1688990442500),
        (1688990442123, 1688990442123),
        (1688990442123456, 1688990442123),
        (1688990442123456789, 1688990442123),
        ("1688990442", 1688990442000),
        ("1688990442123", 1688990442123),
        ("2023-07-10T12:00:42Z", 1688990442000),
    ],
)
def test_epoch_magnitudes_and_numeric_strings(value: object, expected: int) -> None:
    assert parse_any(value) == expected


@pytest.mark.parametrize("value", [True, None, {"a": 1}, float("nan"), "soon"])
def test_parse_any_rejects_non_timestamps(value: object) -> None:
    with pytest.raises(TimestampError):
        parse_any(value)


@given(st.integers(0, 2**41))
def test_epoch_ms_roundtrip(ms: int) -> None:
    if ms >= 1e11:  # below that a number reads as seconds
        assert epoch_to_ms(ms) == ms
        assert epoch_to_ms(ms * 1000) == ms
        assert epoch_to_ms(ms * 1_000_000) == ms


def test_access_log_time_with_zone() -> None:
    expected = naive_ms(dt.datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC))
    assert parse_access_log_time("10/Oct/2000:13:55:36 -0700") == expected
    with pytest.raises(TimestampError):
        parse_access_log_time("10/Foo/2000:13:55:36 -0700")


@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)), st.integers(-720, 840))
def test_access_log_time_matches_strptime(moment: dt.datetime, offset_min: int) -> None:
    offset_min -= offset_min % 15
    aware = moment.replace(microsecond=0, tzinfo=dt.timezone(dt.timedelta(minutes=offset_min)))
    text = aware.strftime("%d/%b/%Y:%H:%M:%S %z")
    assert parse_access_log_time(text) == naive_ms(dt.datetime.strptime(text, "%d/%b/%Y:%H:%M:%S %z"))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2016-09-28 04:30:30, Info  CBS  Loaded Servicing Stack", dt.datetime(2016, 9, 28, 4, 30, 30, tzinfo=UTC)),
        ("[2016-09-28T04:30:30Z] worker started", dt.datetime(2016, 9, 28, 4, 30, 30, tzinfo=UTC)),
        ("2016-09-28 04:30:30,123 INFO app: ready", dt.datetime(2016, 9, 28, 4, 30, 30, 123000, tzinfo=UTC)),
        ("2016-09-28T06:30:30+02:00 up", dt.datetime(2016, 9, 28, 4, 30, 30, tzinfo=UTC)),
        ("2016-09-28 04:30:30", dt.datetime(2016, 9, 28, 4, 30, 30, tzinfo=UTC)),
    ],
)
def test_text_lines_take_a_leading_time_however_it_is_delimited(line: str, expected: dt.datetime) -> None:
    from secmon.ingest.text import TextFormat

    assert TextFormat().parse_text(line, None) == {"timestamp": naive_ms(expected), "message": line}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2024/05/01 10:00:00 http: TLS handshake error from 192.0.2.7:5555: EOF",  # Go's log package
         dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)),
        ("2024/05/01 10:00:00.123456 [WARN] plugin exited", dt.datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("01-May-2024 10:00:00.250 INFO [main] org.apache.catalina.startup.Catalina.start",  # Tomcat
         dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        ("May  1 10:00:00 not a syslog record", dt.datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)),
        ("[05.01 10:00:00] chrome.exe - proxy.example:5070 open through proxy", dt.datetime(2026, 5, 1, 10, 0, 0, tzinfo=UTC)),
        ("1714557600.123    120 192.0.2.7 TCP_MISS/200 1024 GET http://example.com/ - HIER_DIRECT/93.184.216.34 text/html",
         dt.datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),  # Squid
        ("17/06/09 20:10:40 INFO executor.CoarseGrainedExecutorBackend: Registered signal handlers",  # Spark (log4j)
         dt.datetime(2017, 6, 9, 20, 10, 40, tzinfo=UTC)),
        ("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating",  # HDFS
         dt.datetime(2008, 11, 9, 20, 36, 15, tzinfo=UTC)),
        ("20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579", dt.datetime(2017, 12, 23, 22, 15, 29, 606000, tzinfo=UTC)),
        ("03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs",  # Android's logcat
         dt.datetime(2026, 3, 17, 16, 13, 38, 811000, tzinfo=UTC)),
        ("nova-api.log.1.2017-05-16_13:53:08 2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server",  # OpenStack
         dt.datetime(2017, 5, 16, 0, 0, 0, 8000, tzinfo=UTC)),
        ("INFO [2024-05-01T10:00:00Z] app started", dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)),
    ],
)
def test_text_lines_take_other_common_leading_dates(line: str, expected: dt.datetime) -> None:
    from secmon.ingest.sources import Source
    from secmon.ingest.text import TextFormat

    source = Source("app.log", data=b"", year=2026)
    assert TextFormat().parse_text(line, source) == {"timestamp": naive_ms(expected), "message": line}


def test_text_dates_without_a_year_roll_over_like_syslogs(dataset: Any) -> None:
    """loghub's Proxifier log ([MM.DD HH:MM:SS], no year) is read whole; a December-January
    rollover moves to the next year."""
    from secmon.ingest import IngestStats, parse_events
    from secmon.ingest.sources import Source
    from secmon.ingest.text import TextFormat

    stats = IngestStats()
    events = parse_events([dataset("loghub/Proxifier/Proxifier_2k.log")], year=2026, stats=stats)
    assert len(events) == 2000 and not stats.rejected
    assert naive_ms(dt.datetime(2026, 10, 30, tzinfo=UTC)) <= events[0]["timestamp"] < naive_ms(dt.datetime(2026, 11, 1, tzinfo=UTC))
    source = Source("p.log", data=b"", year=2025)
    fmt = TextFormat()
    stamps = [fmt.parse_text(line, source)["timestamp"] for line in ("[12.31 23:59:59] a", "[01.01 00:00:01] b")]
    assert stamps == [naive_ms(dt.datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)), naive_ms(dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))]


@pytest.mark.parametrize("line", ["2024/02/30 10:00:00 no such day", "31-Feb-2024 10:00:00 no such day",
                                  "0000000001.000 too early for an epoch time", "[13.01 10:00:00] no such month",
                                  "24/13/01 10:00:00 no month 13", "081132 203615 no such day", "13-01 10:00:00.000 no month 13",
                                  "20240230-10:00:00:000 no such day"])
def test_text_lines_with_a_broken_leading_date(line: str) -> None:
    from secmon.ingest.base import LineRejected
    from secmon.ingest.sources import Source
    from secmon.ingest.text import TextFormat

    with pytest.raises(LineRejected) as rejected:
        TextFormat().parse_text(line, Source("x", data=b"", year=2026))
    assert rejected.value.reason == "bad_timestamp"


@pytest.mark.parametrize("line", ["no time here", "Job 12 10:00:00 is no month", "31-Foo-2024 10:00:00 neither",
                                  "2016-09-28 04:30:301 run-on digits", "2016-09-28 04:30:30.5.6 not a time",
                                  "10.30 16:49:06 chrome.exe - proxy", "2016-09-28 04:30",
                                  "12 2016-09-28 04:30:30 a number first", "one two 2016-09-28 04:30:30 third word",
                                  "17/06/09 20:10 no seconds", "081109 2036 short"])
def test_text_lines_without_a_whole_leading_time_are_rejected(line: str) -> None:
    from secmon.ingest.base import LineRejected
    from secmon.ingest.text import TextFormat

    with pytest.raises(LineRejected):
        TextFormat().parse_text(line, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/Date(1700000000000)/", dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),  # PowerShell 5's ConvertTo-Json
        ("/Date(1700000000000+0100)/", dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),  # the offset is the writer's
        ("Tue, 28 Nov 2026 10:00:00 +0000", dt.datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)),  # RFC 2822
        ("Tue, 28 Nov 2026 12:00:00 +0200", dt.datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)),
        ("28 Nov 2026 10:00:00 GMT", dt.datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)),
    ],
)
def test_json_dates_in_other_writers_forms(tmp_path: Path, value: str, expected: dt.datetime) -> None:
    from secmon import Engine
    from secmon.rules.loader import rule_from_dict

    assert parse_any(value) == naive_ms(expected)
    # A reserved date attribute in such a form, read with the native extractor and without it.
    log = tmp_path / "app.jsonl"
    log.write_text(f'{{"timestamp": "{value}", "message": "x", "status": "error"}}\n')
    rule = rule_from_dict({"id": "r", "name": "r", "queries": [{"query": "status:error"}], "cases": [{"status": "low", "condition": "a > 0"}]})
    for native_json in (True, False):
        (signal,) = Engine([rule], native_json=native_json).detect([log]).signals
        assert signal.first_seen_ms == naive_ms(expected), native_json


@pytest.mark.parametrize("value", ["Tue, 28 Foo 2026 10:00:00 +0000", "Tue, 31 Feb 2026 10:00:00 +0000", "/Date(abc)/"])
def test_broken_dates_in_those_forms_are_errors(value: str) -> None:
    with pytest.raises(TimestampError):
        parse_any(value)


def test_a_line_with_no_such_month_leaves_the_year_tracker_as_it_was() -> None:
    """Every format reading yearless dates (syslog, text, Snort) asks the tracker; a bad month
    must fail there, before it counts as the last month seen and turns a later line's year."""
    from secmon.ingest.base import LineRejected
    from secmon.ingest.sources import Source
    from secmon.ingest.timestamps import YearTracker

    tracker = YearTracker(2026)
    assert tracker.year_for(8, 1) == 2026
    with pytest.raises(TimestampError):
        tracker.year_for(13, 1)
    assert tracker.year_for(6, 1) == 2026  # June after August: the same year, not the next
    from secmon.ingest.snort import SnortFormat

    fmt, source = SnortFormat(), Source("fast.log", data=b"", year=2026)
    alert = "{}-10:00:00.000001  [**] [1:1:1] x [**] {{TCP}} 1.2.3.4:5 -> 6.7.8.9:10"
    assert fmt.parse_text(alert.format("08/01"), source)["timestamp"] < fmt.parse_text(alert.format("08/02"), source)["timestamp"]
    with pytest.raises(LineRejected):
        fmt.parse_text(alert.format("13/01"), source)
    assert fmt.parse_text(alert.format("06/01"), source)["timestamp"] == naive_ms(dt.datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC))
