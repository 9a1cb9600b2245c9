"""CSV with a header row: detection, typed cells, dating, bad rows, the prefilter's promises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, Source, parse_events
from tests.ingest.conftest import count_rule, same_signals_with_and_without_prefilter
from tests.ingest.test_verbatim import assert_prefilter_promises_hold

SIGNINS = "\n".join([
    "Date (UTC),User,Username,IP address,Status,Application,bytes,id",
    '2024-05-01T10:00:00Z,Alice,alice@example.com,203.0.113.5,Failure,"Office 365, Exchange",0012,7',
    '2024-05-01T10:00:05Z,Alice,alice@example.com,203.0.113.5,Failure,"Say ""hi""",12,-3',
    "2024-05-01T10:00:09Z,Alice,alice@example.com,203.0.113.5,Success,,1.5,1e5",
]) + "\n"


def read(tmp_path: Path, text: str, **kwargs) -> tuple[list[dict], IngestStats]:
    path = tmp_path / "export.csv"
    path.write_text(text)
    stats = IngestStats()
    return parse_events([path], stats=stats, **kwargs), stats


def test_a_header_row_names_the_cells_of_every_row(tmp_path: Path) -> None:
    (first, second, third), stats = read(tmp_path, SIGNINS)
    assert Source("x", data=SIGNINS.encode()).format.name == "csv" and stats.header_lines == 1
    assert first["timestamp"] == 1714557600000 and first["IP address"] == "203.0.113.5"
    assert first["Application"] == "Office 365, Exchange" and second["Application"] == 'Say "hi"'
    assert first["bytes"] == "0012" and second["bytes"] == 12 and third["bytes"] == 1.5  # an id keeps its zeros
    assert second["id"] == -3 and third["id"] == "1e5" and "Application" not in third


def test_other_formats_are_not_taken_for_csv() -> None:
    for text in ("2016-09-28 04:30:30, Info                  CBS    Loaded Servicing Stack\n"
                 "2016-09-28 04:30:31, Info                  CSI    00000001@2016/9/27:20:30:31.455 WcpInitialize\n",
                 "a,b\n1,2,3\n4\n", "just, some prose, with commas\nand another line\n", "x\ny\n"):
        assert Source("x", data=text.encode()).format.name != "csv", text


def test_records_are_read_as_json_records_are(tmp_path: Path) -> None:
    """Known date attributes date a row before the date-like column; CloudTrail columns are mapped."""
    text = ("eventTime,eventSource,eventName,sourceIPAddress,errorCode,Date\n"
            "2024-05-01T10:00:00Z,iam.amazonaws.com,CreateUser,203.0.113.9,AccessDenied,1999-01-01\n")
    (event,), _ = read(tmp_path, text)
    assert event["source"] == "cloudtrail" and event["evt"] == {"name": "CreateUser", "outcome": "failure"}
    assert event["network"]["client"]["ip"] == "203.0.113.9" and event["timestamp"] == 1714557600000


def test_bad_rows_are_counted_with_their_reason(tmp_path: Path) -> None:
    text = SIGNINS.splitlines()[0] + "\n" + "\n".join([
        "2024-05-01T10:00:00Z,too,few",
        '2024-05-01T10:00:00Z,Alice,a,1.2.3.4,Failure,"a quoted line',
        'break",1,2',
        "not a date,Alice,a,1.2.3.4,Failure,x,1,2",
        ",Alice,a,1.2.3.4,Failure,x,1,2",
        SIGNINS.splitlines()[0],
        "2024-05-01T10:00:00Z,Alice,a,1.2.3.4,Failure,x,1,2",
    ]) + "\n"
    events, stats = read(tmp_path, text)
    assert len(events) == 1 and stats.header_lines == 2
    assert stats.rejected == {"unparsed_line": 3, "bad_timestamp": 1, "missing_timestamp": 1}


def random_flows(seed: int, rows: int = 2000) -> str:
    rnd = random.Random(seed)
    out = ["Timestamp,SrcIP,Dst IP,Dst Port,Protocol,Flow Bytes,Label,Note"]
    for i in range(rows):
        note = rnd.choice(["", "plain", '"with, comma"', '"say ""x"""'])
        out.append(f"2017-07-07T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z,192.168.10.{rnd.randrange(1, 6)},"
                   f"{rnd.choice(['205.174.165.73', '8.8.8.8'])},{rnd.choice([22, 80, 443])},6,{rnd.randrange(0, 5000)},"
                   f"{rnd.choice(['BENIGN', 'SSH-Patator', 'DoS Hulk'])},{note}")
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("seed", [1, 2])
def test_attribute_promises_to_the_prefilter_hold(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(random_flows(seed, 400))
    assert_prefilter_promises_hold(path)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_rule_over_csv_gives_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "flows.csv"
    path.write_text(random_flows(seed))
    rule = count_rule("patator", "@Label:SSH-Patator @Dst\\ Port:22 @Flow\\ Bytes:>100", "@SrcIP", 10, window=600)
    fast = same_signals_with_and_without_prefilter([rule], path)
    assert fast.signals and fast.skipped_lines > 0
