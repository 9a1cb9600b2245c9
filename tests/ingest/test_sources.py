"""Sources and chunks: paths, globs, stdin, gzip/bzip2/xz by magic bytes, and the chunking invariant
(any chunk size gives the same events and the same rejections as reading whole)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.errors import InputError
from secmon.ingest import FORMATS, IngestStats, Source, open_sources, parse_events, split_lines
from secmon.ingest import sources
from secmon.ingest.sources import expand_paths

SYSLOG_LINES = [
    "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
    "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
    "Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: [ Failed password for root from 5.36.59.76 port 42393 ssh2]",
    "Dec 31 23:59:59 LabSZ sshd[1]: Accepted password for fztu from 119.137.62.142 port 38100 ssh2",
    "Jan  1 00:00:01 LabSZ sshd[2]: Failed password for r\u00e9my from 10.0.0.1 port 22 ssh2",
    "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ",
    "not a syslog line at all",
    "Foo 10 06:55:46 LabSZ sshd[1]: bad month",
    "",
    "   ",
]
JSON_LINES = [
    '{"timestamp": "2023-07-10T12:00:42Z", "message": "hello", "usr": {"name": "b\u00f6b"}}',
    '{"eventTime": "2023-07-10T12:00:42Z", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "sourceIPAddress": "1.2.3.4"}',
    '{"message": "no time"}',
    '{"timestamp": "yesterday"}',
    '{"timestamp": 1688990442, "msg": "epoch"',
    "[1, 2]",
    '{"Records": [{"eventTime": "2023-07-10T12:00:42Z", "eventSource": "s3", "eventName": "GetObject"}, 3]}',
    "",
]


def run_source(source: Source, chunk_bytes: int) -> tuple[list[dict[str, Any]], IngestStats]:
    stats = IngestStats()
    events: list[dict[str, Any]] = []
    for chunk in source.chunks(chunk_bytes):
        assert chunk.data.endswith(b"\n") or chunk is not None
        events.extend(source.format.parse(chunk, None, stats))
    return events, stats


def build(lines: list[str], endings: list[str], extra: bytes = b"") -> bytes:
    parts = [line.encode() + ending.encode() for line, ending in zip(lines, endings)]
    return b"".join(parts) + extra


@st.composite
def log_bytes(draw: st.DrawFn, pool: list[str]) -> bytes:
    lines = draw(st.lists(st.sampled_from(pool), max_size=25))
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n"]), min_size=len(lines), max_size=len(lines)))
    if lines and draw(st.booleans()):
        endings[-1] = ""  # a final line without newline
    data = build(lines, endings)
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data  # a UTF-8 byte order mark
    if draw(st.booleans()):
        data += b"Dec 10 06:55:46 LabSZ sshd[9]: Invalid user \xff\xfe from 1.2.3.4\n"  # invalid UTF-8
    if draw(st.booleans()):
        data += b"Dec 10 06:55:46 LabSZ sshd[9]: " + b"x" * 300 + b"\n"  # over the 200-byte limit below
    return data


def assert_same(a: tuple[list[dict[str, Any]], IngestStats], b: tuple[list[dict[str, Any]], IngestStats]) -> None:
    assert a[0] == b[0]
    assert a[1].rejected == b[1].rejected
    assert a[1].warnings == b[1].warnings
    assert a[1].lines_read == b[1].lines_read
    assert a[1].bytes_read == b[1].bytes_read
    assert a[1].events_read == b[1].events_read == len(a[0])


@pytest.mark.parametrize("fmt", ["syslog", "ndjson"])
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data(), chunk_bytes=st.one_of(st.integers(1, 8), st.integers(9, 400)))
def test_any_chunk_size_gives_the_same_events(fmt: str, data: st.DataObject, chunk_bytes: int) -> None:
    raw = data.draw(log_bytes(SYSLOG_LINES if fmt == "syslog" else JSON_LINES))
    whole = run_source(Source("t", data=raw, format=fmt, year=2015, max_line_bytes=200), 1 << 20)
    chunked = run_source(Source("t", data=raw, format=fmt, year=2015, max_line_bytes=200), chunk_bytes)
    assert_same(whole, chunked)
    for compress in COMPRESSORS.values():
        zipped = run_source(Source("t", data=compress(raw), format=fmt, year=2015, max_line_bytes=200), chunk_bytes)
        assert_same(whole, zipped)


@pytest.mark.parametrize("window", [1, 5, 64, 64 * 1024])
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data(), chunk_bytes=st.one_of(st.integers(1, 8), st.integers(9, 400)))
def test_file_chunks_read_to_a_line_end_give_the_same_events(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, window: int, data: st.DataObject, chunk_bytes: int
) -> None:
    """A regular file is read up to a line end found in the last ``window`` bytes of each span
    (``_to_line_end``), a stream cut and carried: the same events, statistics and bytes, and
    chunks that are exactly the file's bytes where they say they are."""
    monkeypatch.setattr(sources, "LINE_END_WINDOW", window)
    raw = data.draw(log_bytes(JSON_LINES))
    path = tmp_path_factory.mktemp("window") / "events.jsonl"
    path.write_bytes(raw)
    from_file = Source("t", path=path, format="ndjson", max_line_bytes=200)
    assert_same(run_source(Source("t", data=raw, format="ndjson", max_line_bytes=200), chunk_bytes), run_source(from_file, chunk_bytes))
    for chunk in Source("t", path=path, format="ndjson", max_line_bytes=200).chunks(chunk_bytes):
        if chunk.file_offset is not None:
            assert raw[chunk.file_offset:chunk.file_offset + len(chunk.data)] == chunk.data


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_selected_lines_give_the_events_of_those_lines(data: st.DataObject) -> None:
    raw = data.draw(log_bytes(JSON_LINES))
    source = Source("t", data=raw, format="ndjson")
    chunks = list(source.chunks(1 << 20))
    if not chunks:
        return
    n = len(split_lines(chunks[0].data))
    picked = sorted(data.draw(st.sets(st.integers(0, n - 1))) if n else set())
    selected = FORMATS["ndjson"].parse(chunks[0], np.array(picked, dtype=np.int64), IngestStats())
    one_by_one = [e for i in picked for e in FORMATS["ndjson"].parse(chunks[0], np.array([i]), IngestStats())]
    assert selected == one_by_one


def test_chunks_hold_whole_lines_and_number_them(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"l1\nline2\r\nl3\nlast")
    source = next(open_sources([path], format="text"))
    chunks = list(source.chunks(4))
    assert b"".join(c.data for c in chunks) == path.read_bytes()
    for chunk in chunks[:-1]:
        assert chunk.data.endswith(b"\n")
    assert [c.first_line for c in chunks] == [1, 2, 3, 4]


def test_over_long_line_is_rejected_not_held(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"timestamp": 1, "a": "' + b"x" * 5000 + b'"}\n{"timestamp": 2}\n')
    source = next(open_sources([path], max_line_bytes=1000))
    stats = IngestStats()
    events = []
    for chunk in source.chunks(64):
        assert len(chunk.data) <= 64 + 1001 + 1
        events.extend(source.format.parse(chunk, None, stats))
    assert [e["timestamp"] for e in events] == [2000]
    assert stats.rejected == Counter({"line_too_long": 1})
    assert stats.bytes_read == path.stat().st_size
    assert "big.jsonl:1" in stats.examples["line_too_long"][0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.booleans(), st.lists(st.integers(0, 40), max_size=30), st.integers(1, 64), st.booleans())
def test_chunk_file_offsets_point_at_the_chunk_data_in_the_file(
    tmp_path_factory: pytest.TempPathFactory, bom: bool, line_lengths: list[int], chunk_bytes: int, final_newline: bool,
) -> None:
    """A chunk that says where it is in the file is exactly those bytes of the file (the engine
    reads kept lines back from there); only chunks holding a cut over-long line say nowhere."""
    body = b"\n".join(bytes([97 + i % 26]) * n for i, n in enumerate(line_lengths))
    content = (b"\xef\xbb\xbf" if bom else b"") + body + (b"\n" if final_newline and line_lengths else b"")
    path = tmp_path_factory.mktemp("offsets") / "lines.log"
    path.write_bytes(content)
    source = Source("lines.log", path=path, format="text", max_line_bytes=30)
    chunks = list(source.chunks(chunk_bytes))
    assert sum(c.nbytes for c in chunks) == len(content)
    for chunk in chunks:
        cut = any(len(line) > 30 for line in chunk.data.split(b"\n"))
        if chunk.file_offset is None:
            assert cut, "an uncut chunk of a plain file knows its place"
        else:
            assert content[chunk.file_offset:chunk.file_offset + len(chunk.data)] == chunk.data
            assert source.file is not None
            assert source.file.read_records(np.array([chunk.file_offset]), np.array([len(chunk.data)])) == chunk.data


def test_compressed_and_streamed_chunks_have_no_file_offset(tmp_path: Path) -> None:
    gz = tmp_path / "a.log.gz"
    gz.write_bytes(gzip.compress(b"one\ntwo\n"))
    assert [c.file_offset for c in next(open_sources([gz], format="text")).chunks(4)] == [None, None]
    in_memory = Source("mem", data=b"one\ntwo\n", format="text")
    assert {c.file_offset for c in in_memory.chunks(4)} == {None}


COMPRESSORS = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_compression_is_detected_by_magic_bytes_not_name(tmp_path: Path, suffix: str) -> None:
    compress = COMPRESSORS[suffix]
    plain = tmp_path / "auth.log"
    plain.write_text(SYSLOG_LINES[1] + "\n")
    disguised = tmp_path / "auth.log.1"  # no suffix
    disguised.write_bytes(compress(plain.read_bytes()))
    named = tmp_path / f"auth.log.2.{suffix}"
    named.write_bytes(compress(plain.read_bytes()))
    sources = list(open_sources([plain, disguised, named], year=2015))
    assert [s.format.name for s in sources] == ["syslog"] * 3
    assert [s.compressed for s in sources] == [False, True, True]
    assert parse_events(disguised, year=2015) == parse_events(plain, year=2015) == parse_events(named, year=2015)


def test_directories_recurse_and_globs_expand(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.jsonl").write_text('{"timestamp": 1}\n')
    (tmp_path / "d" / "sub" / "b.jsonl").write_text('{"timestamp": 2}\n')
    (tmp_path / "empty").mkdir()
    names = [name for name, _ in expand_paths([tmp_path / "d"])]
    assert names == [str(tmp_path / "d" / "a.jsonl"), str(tmp_path / "d" / "sub" / "b.jsonl")]
    assert [n for n, _ in expand_paths([str(tmp_path / "d" / "**" / "*.jsonl")])] == names
    assert expand_paths([tmp_path / "empty"]) == []
    assert sorted(e["timestamp"] for e in parse_events(tmp_path / "d")) == [1000, 2000]


def test_missing_path_and_empty_glob_name_themselves(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.log"):
        open_sources([tmp_path / "nope.log"])
    with pytest.raises(FileNotFoundError, match=r"\*.zzz"):
        open_sources([str(tmp_path / "*.zzz")])


def test_unknown_format_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown log format 'xml'; valid formats: .*ndjson.*syslog"):
        open_sources([tmp_path], format="xml")


def test_stdin_is_read_and_sniffed() -> None:
    code = (
        "from secmon.ingest import IngestStats, parse_events\n"
        "s = IngestStats()\n"
        "ev = parse_events('-', year=2015, stats=s)\n"
        "print(len(ev), s.summary())\n"
    )
    data = gzip.compress(("\n".join(SYSLOG_LINES[:4]) + "\n").encode())
    proc = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "8 8 events read, 0 rejected"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'{"a": 1}\n{"b": 2}\n', "ndjson"),
        (b'{"Records": [{"eventTime": "2023-07-10T12:00:42Z"}]}', "ndjson"),
        (b'{\n  "Records": [\n', "json"),
        (b'{"a": 1\n{"b": 2}\n{"c": 3}\n', "ndjson"),
        (b'garbage\n{"b": 2}\n', "ndjson"),
        (b'plain words\nmore words\n{"b": 2}\n', "text"),
        (b'{\n  "a": {"b": 1},\n  "c": [1, 2]\n}\n', "json"),
        (b"[\n  {\"a\": 1},\n", "json"),
        (b"Dec 10 06:55:46 LabSZ sshd[24200]: hi\n", "syslog"),
        (b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed\n", "syslog"),
        (b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326\n', "access_log"),
        (b"[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok\n", "apache_error"),
        (b"[10.30 16:49:06] chrome.exe - proxy.cse.cuhk.edu.hk:5070 open\n", "text"),
        (b"\n\n   \n", "text"),
    ],
)
def test_format_detection(head: bytes, expected: str) -> None:
    assert Source("t", data=head).format.name == expected


def test_summary_line_counts_reasons() -> None:
    stats = IngestStats()
    parse_events(JSON_LINES, format="ndjson", stats=stats)
    assert stats.summary() == (
        "3 events read, 6 rejected: bad_timestamp=1, malformed_json=1, missing_timestamp=1, not_an_object=3"
    )


@pytest.mark.parametrize(("suffix", "name"), [("gz", "gzip"), ("bz2", "bzip2"), ("xz", "xz")])
def test_truncated_compressed_files_keep_what_came_before_and_count_the_error(tmp_path: Path, suffix: str, name: str) -> None:
    lines = [f'{{"timestamp": {1688990442 + i}, "n": {i}, "pad": "{i * 7919 % 100003:x}"}}' for i in range(60000)]
    whole = COMPRESSORS[suffix](("\n".join(lines) + "\n").encode())
    path = tmp_path / f"rotated.jsonl.{suffix}"
    path.write_bytes(whole[: len(whole) // 2])
    stats = IngestStats()
    events = parse_events(path, stats=stats)
    assert 0 < len(events) < 60000
    assert [e["n"] for e in events] == list(range(len(events)))
    # the stream error, plus the line cut in the middle by the truncation (none where the
    # decompressor gives whole blocks only and a block ended at a line end)
    assert stats.rejected["corrupt_input"] == 1 and stats.rejected["malformed_json"] <= 1
    assert f"rotated.jsonl.{suffix}:after line " in stats.examples["corrupt_input"][0]
    assert f"truncated {name}" in stats.examples["corrupt_input"][0]


@pytest.mark.parametrize("suffix", ["gz", "bz2", "xz"])
def test_compressed_files_are_cut_into_chunks_as_plain_ones_are(tmp_path: Path, suffix: str) -> None:
    """The reader asks for whole chunks; a decompressor that answered with one block at a time
    cut a file into 64 KiB chunks, each paying the per-chunk work (a gzip NDJSON scan took 8x)."""
    data = "".join(f'{{"timestamp": {1688990442 + i}, "n": {i}}}\n' for i in range(100_000)).encode()
    plain, packed = tmp_path / "events.jsonl", tmp_path / f"events.jsonl.{suffix}"
    plain.write_bytes(data)
    packed.write_bytes(COMPRESSORS[suffix](data))
    sizes = [[len(c.data) for c in Source(str(p), path=p).chunks(1 << 20)] for p in (plain, packed)]
    assert sum(sizes[1]) == len(data) and len(sizes[1]) == len(sizes[0]) == len(data) // (1 << 20) + 1


@pytest.mark.parametrize("suffix", ["gz", "xz"])
def test_a_small_file_cut_short_keeps_its_lines_before_the_cut(tmp_path: Path, suffix: str) -> None:
    """Under 64 KiB: a read of one compressed block at a time loses at most that block (reading
    64 KiB at once lost everything)."""
    lines = [f'{{"timestamp": {1688990442 + i}, "n": {i}, "pad": "{i * 7919 % 100003:x}"}}' for i in range(400)]
    whole = COMPRESSORS[suffix](("\n".join(lines) + "\n").encode())
    path = tmp_path / f"small.jsonl.{suffix}"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    stats = IngestStats()
    events = parse_events(path, stats=stats)
    assert 0 < len(events) < 400 and [e["n"] for e in events] == list(range(len(events)))
    assert stats.rejected["corrupt_input"] == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rust_and_python_line_selection_give_the_same_events(data: st.DataObject, monkeypatch: pytest.MonkeyPatch) -> None:
    import secmon.ingest.base as formats
    from secmon.ingest.lines import select_lines

    raw = data.draw(log_bytes(SYSLOG_LINES))
    source = Source("t", data=raw, format="syslog", year=2015)
    chunks = list(source.chunks(1 << 20))
    if not chunks:
        return
    n = chunks[0].line_count
    picked = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1)))) if n else [], dtype=np.uint32)
    fast = FORMATS["syslog"].parse(chunks[0], picked, IngestStats())
    with monkeypatch.context() as patch:
        patch.setattr(formats, "fast_select_lines", select_lines)
        source.parse_state.clear()
        slow = FORMATS["syslog"].parse(chunks[0], picked, IngestStats())
    source.parse_state.clear()
    assert fast == slow


def test_a_pipe_is_sniffed_and_read_once(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    payload = gzip.compress(("\n".join(SYSLOG_LINES[:4]) + "\n").encode())

    def feed() -> None:
        with open(fifo, "wb") as writer:
            writer.write(payload)

    thread = threading.Thread(target=feed)
    thread.start()
    stats = IngestStats()
    events = parse_events([str(fifo)], year=2015, stats=stats)
    thread.join(timeout=10)
    assert len(events) == 8 and stats.rejected_total == 0


@pytest.mark.parametrize("fmt", ["ndjson", "json", "syslog"])
def test_a_byte_order_mark_is_not_part_of_the_first_line(fmt: str) -> None:
    body = {"ndjson": b'{"timestamp": 1}\n', "json": b'[\n  {"timestamp": 1}\n]', "syslog": SYSLOG_LINES[0].encode()}[fmt]
    stats = IngestStats()
    source = Source("bom", data=b"\xef\xbb\xbf" + body, year=2015)
    assert source.format.name == fmt
    events = [e for chunk in source.chunks(2) for e in source.format.parse(chunk, None, stats)]
    assert len(events) == 1 and stats.rejected_total == 0
    assert stats.bytes_read == len(body) + 3


def test_parse_rejects_an_out_of_range_selection_by_name() -> None:
    source = Source("t", data=b'{"timestamp": 1}\n{"timestamp": 2}\n', format="ndjson")
    [chunk] = list(source.chunks())
    with pytest.raises(IndexError, match="line index 2 is out of range for a chunk of 2 lines"):
        source.format.parse(chunk, np.array([0, 2], dtype=np.uint32), IngestStats())
    assert [e["timestamp"] for e in source.format.parse(chunk, [1], IngestStats())] == [2000]  # a plain list works


def test_an_unreadable_file_inside_a_directory_is_counted_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    import secmon.ingest.sources as sources

    (tmp_path / "ok.jsonl").write_text('{"timestamp": 1}\n')
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"timestamp": 2}\n')

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) == str(secret):
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(sources, "open", guarded_open, raising=False)
    stats = IngestStats()
    events = parse_events(tmp_path, stats=stats)
    assert [e["timestamp"] for e in events] == [1000]
    assert stats.rejected == Counter({"unreadable_file": 1})
    assert stats.examples["unreadable_file"] == [f"{secret}:start of file: cannot read: Permission denied"]
    with pytest.raises(PermissionError):
        list(open_sources([secret]))  # named explicitly: the user hears about it at once


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["syslog", "ndjson"])
@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data(), chunk_bytes=st.integers(1, 64))
def test_any_chunk_size_gives_the_same_events_long_run(fmt: str, data: st.DataObject, chunk_bytes: int) -> None:
    """The chunking invariant with many more examples (``pytest -m slow``)."""
    raw = data.draw(log_bytes(SYSLOG_LINES if fmt == "syslog" else JSON_LINES))
    whole = run_source(Source("t", data=raw, format=fmt, year=2015, max_line_bytes=200), 1 << 20)
    assert_same(whole, run_source(Source("t", data=raw, format=fmt, year=2015, max_line_bytes=200), chunk_bytes))
