"""tar and zip archives of logs: each member read as the file it was, breaks reported."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, parse_events

AUTH = (b"Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for root from 173.234.31.186 port 38926 ssh2\n"
        b"Dec 10 06:55:49 LabSZ sshd[24201]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2\n")
EVENTS = b"".join(b'{"timestamp": %d, "source": "app", "message": "m%d"}\n' % (1700000000000 + i, i) for i in range(50))
MEMBERS = {"var/log/auth.log": AUTH, "var/log/app.jsonl.gz": gzip.compress(EVENTS), "var/log/empty.log": b""}


def tar_bytes(mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        archive.addfile(tarfile.TarInfo("var/log"))  # a directory entry: skipped
        for name, data in MEMBERS.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("var/log/", b"")
        for name, data in MEMBERS.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def events_of(path: Path) -> tuple[list[dict], IngestStats]:
    stats = IngestStats()
    return parse_events([path], year=2015, stats=stats), stats


@pytest.mark.parametrize(("name", "make"), [("logs.tar", lambda: tar_bytes("w")), ("logs.tgz", lambda: tar_bytes("w:gz")),
                                            ("logs.tar.xz", lambda: tar_bytes("w:xz")), ("logs.zip", zip_bytes),
                                            ("no-extension", lambda: tar_bytes("w:bz2"))])
def test_members_read_as_the_files_they_were(tmp_path: Path, name: str, make) -> None:
    archive = tmp_path / name
    archive.write_bytes(make())
    for member, data in MEMBERS.items():
        (tmp_path / "plain" / member).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "plain" / member).write_bytes(data)
    events, stats = events_of(archive)
    expected, _ = events_of(tmp_path / "plain")
    assert sorted(map(repr, events)) == sorted(map(repr, expected)) and len(events) == 52
    assert sorted(stats.files) == sorted(f"{archive}:{m}" for m, data in MEMBERS.items() if data) and not stats.rejected


def test_a_broken_archive_keeps_the_members_before_the_break_and_says_so(tmp_path: Path) -> None:
    whole = tar_bytes("w:gz")
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    events, stats = events_of(cut)
    assert [e["source"] for e in events[:2]] == ["sshd", "sshd"]
    assert stats.rejected_total >= 1 and set(stats.rejected) <= {"corrupt_input", "unreadable_file"}
    broken_zip = tmp_path / "cut.zip"
    broken_zip.write_bytes(zip_bytes()[:100])
    events, stats = events_of(broken_zip)
    assert events == [] and stats.rejected == {"unreadable_file": 1}
    assert "not a readable zip archive" in stats.examples["unreadable_file"][0]


def test_a_compressed_log_is_no_archive(tmp_path: Path) -> None:
    log = tmp_path / "auth.log.1.gz"
    log.write_bytes(gzip.compress(AUTH))
    events, stats = events_of(log)
    assert len(events) == 2 and list(stats.files) == [str(log)]
