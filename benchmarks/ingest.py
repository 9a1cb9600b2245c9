"""Ingestion throughput: secmon.ingest (chunks -> parse every line -> event table) beside naive
baselines and, for NDJSON, Polars' own reader.

Inputs are generated from a seed (sshd syslog with brute-force bursts, CloudTrail NDJSON with
errors), so the expected answers are known and every contender must agree on them:
syslog -> (events, authentication failures); NDJSON -> (records, records with an errorCode).
"""

from __future__ import annotations

import json
import os
import random
import re
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.harness import Table, measure_python
from secmon.ingest import IngestStats, open_sources, to_frame

SEED = 1337
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def make_syslog(path: Path, target_bytes: int) -> None:
    rng = random.Random(SEED)
    users = ["root", "admin", "oracle", "test", "git", "ubuntu"]
    out: list[str] = []
    size = 0
    second = 0
    while size < target_bytes:
        second += rng.randint(0, 3)
        day, rest = divmod(second, 86400)
        stamp = f"{MONTHS[(day // 28) % 12]} {day % 28 + 1:2d} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
        ip = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        pid = rng.randint(1000, 30000)
        kind = rng.random()
        user = rng.choice(users)
        if kind < 0.35:
            msg = f"Failed password for {user} from {ip} port {rng.randint(1024, 65535)} ssh2"
        elif kind < 0.40:
            msg = f"Failed password for invalid user {user}{rng.randint(0, 99)} from {ip} port {rng.randint(1024, 65535)} ssh2"
        elif kind < 0.42:
            msg = f"message repeated 3 times: [ Failed password for {user} from {ip} port {rng.randint(1024, 65535)} ssh2]"
        elif kind < 0.45:
            msg = f"Accepted publickey for {user} from {ip} port {rng.randint(1024, 65535)} ssh2: RSA SHA256:abc"
        elif kind < 0.65:
            msg = f"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  user={user}"
        elif kind < 0.85:
            msg = f"Received disconnect from {ip}: 11: Bye Bye [preauth]"
        else:
            msg = f"Invalid user {user} from {ip}"
        line = f"{stamp} bench-host sshd[{pid}]: {msg}\n"
        out.append(line)
        size += len(line)
    path.write_text("".join(out))


def make_ndjson(path: Path, target_bytes: int) -> None:
    rng = random.Random(SEED)
    names = ["GetObject", "DescribeInstances", "AssumeRole", "GetPasswordData", "StopLogging", "CreateUser"]
    out: list[str] = []
    size = 0
    for i in range(10**9):
        if size >= target_bytes:
            break
        record: dict[str, object] = {
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::1234:assumed-role/r{rng.randint(0, 9)}/s",
                             "accountId": "1234", "sessionContext": {"sessionIssuer": {"userName": f"r{i % 7}"}}},
            "eventTime": f"2023-07-10T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": rng.choice(names),
            "awsRegion": "us-east-1",
            "sourceIPAddress": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "userAgent": "aws-cli/2.0",
            "requestParameters": {"instancesSet": {"items": [{"instanceId": f"i-{rng.getrandbits(40):x}"}]}},
            "eventID": f"{rng.getrandbits(64):016x}",
        }
        if rng.random() < 0.1:
            record["errorCode"] = "AccessDenied"
        line = json.dumps(record) + "\n"
        out.append(line)
        size += len(line)
    path.write_text("".join(out))


# --- contenders (run in fresh processes) -------------------------------------------------------


def secmon_ingest(path: str, paths: list[str]) -> tuple[int, int]:
    """The engine's ingestion without a prefilter: every line parsed, then the event table."""
    stats = IngestStats()
    events = failures = 0
    for source in open_sources([path], year=2023):
        for chunk in source.chunks(4 * 1024 * 1024):
            batch = source.format.parse(chunk, None, stats)
            frame = to_frame(batch, paths)
            events += frame.height
            failures += frame.filter(pl.col("evt.outcome") == "failure").height
    assert stats.rejected_total == 0, stats.summary()
    return events, failures


def secmon_selected(path: str, every: int, rust_select: bool) -> tuple[int, int]:
    """The engine's path behind the prefilter: only 1 line in ``every`` is parsed."""
    import secmon.ingest.base as formats
    from secmon.ingest.lines import select_lines

    if not rust_select:
        formats.fast_select_lines = select_lines  # the pure-Python twin
    stats = IngestStats()
    events = failures = 0
    for source in open_sources([path], year=2023):
        for chunk in source.chunks(4 * 1024 * 1024):
            picked = np.arange(0, chunk.line_count, every, dtype=np.uint32)
            for event in source.format.parse(chunk, picked, stats):
                events += 1
                failures += event.get("evt", {}).get("outcome") == "failure"
    return events, failures


_NAIVE_SSHD = re.compile(
    r"(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) sshd\[(\d+)\]: (?:message repeated (\d+) times: \[ )?"
    r"(?:(Failed|Accepted) (\S+) for (?:invalid user )?(\S+) from (\S+) port (\d+)|"
    r"pam_unix\(sshd:auth\): authentication (failure))?"
)


def naive_syslog(path: str) -> tuple[int, int]:
    """One regex per line, counts only: what a quick script would do."""
    events = failures = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            m = _NAIVE_SSHD.match(line)
            if m is None:
                continue
            copies = int(m.group(8)) if m.group(8) else 1
            events += copies
            if m.group(9) == "Failed" or m.group(14):
                failures += copies
    return events, failures


def naive_ndjson(path: str) -> tuple[int, int]:
    """json.loads per line, counting records and errors."""
    records = errors = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            records += 1
            errors += "errorCode" in record
    return records, errors


def polars_ndjson(path: str) -> tuple[int, int]:
    """Polars' Rust NDJSON reader (schema inferred; no event mapping)."""
    frame = pl.read_ndjson(path, infer_schema_length=None)
    return frame.height, int(frame["errorCode"].is_not_null().sum())


def run(smoke: bool) -> list[Table]:
    size = 200_000 if smoke else 20_000_000
    tables: list[Table] = []
    with tempfile.TemporaryDirectory(prefix="secmon-bench-ingest-") as tmp:
        syslog = Path(tmp) / "auth.log"
        make_syslog(syslog, size)
        ndjson = Path(tmp) / "cloudtrail.jsonl"
        make_ndjson(ndjson, size)
        paths = ["timestamp", "evt.outcome", "network.client.ip", "usr.name", "source"]

        table = Table(f"ingest syslog/sshd: parse every line + event table ({os.path.getsize(syslog) / 1e6:.1f} MB)",
                      bytes_processed=os.path.getsize(syslog))
        table.add(measure_python("secmon", "benchmarks.ingest:secmon_ingest", str(syslog), paths))
        table.add(measure_python("naive regex (counts only)", "benchmarks.ingest:naive_syslog", str(syslog)))
        table.assert_agree()
        table.items_processed = table.rows[0].answer[0]
        table.item_unit = "events"
        tables.append(table)

        table = Table(f"ingest syslog/sshd behind a prefilter: 1 line in 10 parsed ({os.path.getsize(syslog) / 1e6:.1f} MB)",
                      bytes_processed=os.path.getsize(syslog))
        table.add(measure_python("secmon", "benchmarks.ingest:secmon_selected", str(syslog), 10, True))
        table.add(measure_python("secmon, Python select_lines", "benchmarks.ingest:secmon_selected", str(syslog), 10, False))
        table.assert_agree()
        table.notes.append("The first row selects lines with secmon._core.select_lines (Rust), the second with the "
                           "pure-Python twin; both parse the same lines.")
        tables.append(table)

        table = Table(f"ingest CloudTrail NDJSON: parse + map + event table ({os.path.getsize(ndjson) / 1e6:.1f} MB)",
                      bytes_processed=os.path.getsize(ndjson))
        table.add(measure_python("secmon", "benchmarks.ingest:secmon_ingest", str(ndjson), paths))
        table.add(measure_python("json.loads per line (counts only)", "benchmarks.ingest:naive_ndjson", str(ndjson)))
        table.add(measure_python("polars.read_ndjson (no mapping)", "benchmarks.ingest:polars_ndjson", str(ndjson)))
        table.assert_agree()
        table.items_processed = table.rows[0].answer[0]
        table.item_unit = "events"
        tables.append(table)
    return tables
