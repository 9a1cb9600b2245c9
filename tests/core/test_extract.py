"""secmon._core.extract_fields against its slow twin: orjson.loads per line + the event-table rules
of secmon.ingest.events (nested lookup, literal dotted key, array traversal), row by row."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from secmon._core import ExtractedBatch, extract_fields, normalized_events
from secmon.ingest.events import scalar_text, _unique_paths, to_frame

DATASETS = Path(__file__).parents[2] / ".." / "shared" / "datasets"
CLOUDTRAIL = DATASETS / "cloudtrail-invictus" / "events.jsonl"

OK, MALFORMED, NOT_OBJECT, BLANK, REPAIRED = 0, 1, 2, 3, 4


# --- the slow, obvious twin ----------------------------------------------------------------------


def split_lines(buffer: bytes, sep: bytes) -> list[bytes]:
    """Matcher's splitting: a trailing separator starts no line."""
    lines = buffer.split(sep)
    if buffer.endswith(sep) or not buffer:
        lines.pop()
    return lines


def load(raw: bytes) -> tuple[int, Any]:
    """(status, document) as secmon.ingest.formats.NdjsonFormat reads a line."""
    if not raw or raw.isspace():
        return BLANK, None
    try:
        doc, status = orjson.loads(raw), OK
    except orjson.JSONDecodeError:
        try:
            raw.decode()
            return MALFORMED, None
        except UnicodeDecodeError:
            pass
        try:
            doc, status = orjson.loads(raw.decode("utf-8", "replace")), REPAIRED
        except orjson.JSONDecodeError:
            return MALFORMED, None
    if type(doc) is not dict:
        return NOT_OBJECT, None
    return status, doc


MISSING = object()


def walk(node: Any, parts: list[str]) -> Any:
    """The value rules: nulls are missing; an array met by the walk gives a list of what the rest
    of the path gives on each element (flattened); a path ending on an array gives its elements."""
    if node is None:
        return MISSING
    if type(node) is list:
        if not parts:
            return _Many(x for x in node if x is not None)
        out: list[Any] = []
        for item in node:
            found = walk(item, parts)
            if type(found) is _Many:
                out.extend(found)
            elif found is not MISSING:
                out.append(found)
        return _Many(out)
    if not parts:
        return node
    if type(node) is dict and parts[0] in node:
        return walk(node[parts[0]], parts[1:])
    return MISSING


class _Many(list):  # type: ignore[type-arg]
    """Values a walk collected from arrays (unlike a JSON array inside such a list, which is one
    value written as compact JSON)."""


def lookup(event: dict[str, Any], path: str) -> Any:
    found = walk(event, path.split("."))
    if found is MISSING and path in event:
        found = walk(event[path], [])
    return found


def twin_frame(buffer: bytes, paths: Sequence[str], line_idx: Sequence[int] | None = None, sep: bytes = b"\n") -> pl.DataFrame:
    lines = split_lines(buffer, sep)
    chosen = range(len(lines)) if line_idx is None else list(line_idx)
    names = _unique_paths(paths)
    statuses: list[int] = []
    docs: list[Any] = []
    for i in chosen:
        status, doc = load(lines[i])
        statuses.append(status)
        docs.append(doc)
    columns = []
    for name in names:
        values = [MISSING if doc is None else lookup(doc, name) for doc in docs]
        if any(type(v) in (list, _Many) for v in values):
            rows = [
                None if v is MISSING else [scalar_text(x) for x in v] if type(v) is _Many else [scalar_text(v)]
                for v in values
            ]
            columns.append(pl.Series(name, rows, dtype=pl.List(pl.String)))
        else:
            columns.append(pl.Series(name, [None if v is MISSING else scalar_text(v) for v in values], dtype=pl.String))
    columns.append(pl.Series("__line", list(chosen), dtype=pl.UInt32))
    columns.append(pl.Series("__status", statuses, dtype=pl.UInt8))
    # A dict keeps a column named "" (a list of Series would rename it to column_0).
    return pl.DataFrame({c.name: c for c in columns})


def native_frame(buffer: bytes, paths: Sequence[str], line_idx: Sequence[int] | None = None, **kw: Any) -> pl.DataFrame:
    idx = None if line_idx is None else np.asarray(line_idx, dtype=np.uint32)
    return pl.DataFrame(extract_fields(buffer, paths, idx, **kw))


def check(buffer: bytes, paths: Sequence[str], line_idx: Sequence[int] | None = None, sep: bytes = b"\n") -> pl.DataFrame:
    want = twin_frame(buffer, paths, line_idx, sep)
    got = native_frame(buffer, paths, line_idx, sep=sep)
    assert_frame_equal(got, want)
    for threads in (1, 2):
        assert_frame_equal(native_frame(buffer, paths, line_idx, sep=sep, threads=threads), want)
    return got


# --- tables of cases -------------------------------------------------------------------------------

# (line, path, value as text, or a list for a List row, or None)
CASES: list[tuple[bytes, str, Any]] = [
    (b'{"a":"x"}', "a", "x"),
    (b'{"a":{"b":{"c":404}}}', "a.b.c", "404"),
    (b'{"network.client.ip":"1.2.3.4"}', "network.client.ip", "1.2.3.4"),
    (b'{"a":{"b":null},"a.b":"lit"}', "a.b", "lit"),
    (b'{"a":{"b":2},"a.b":"lit"}', "a.b", "2"),
    (b'{"a":null}', "a", None),
    (b'{"a":5}', "a.b", None),
    (b'{"a":1.5}', "a", "1.5"),
    (b'{"a":100.0}', "a", "100.0"),
    (b'{"a":1e16}', "a", "1e+16"),
    (b'{"a":0.00001}', "a", "1e-05"),
    (b'{"a":0.0001}', "a", "0.0001"),
    (b'{"a":1E2}', "a", "100.0"),
    (b'{"a":-0}', "a", "0"),
    (b'{"a":-0.0}', "a", "-0.0"),
    (b'{"a":18446744073709551615}', "a", "18446744073709551615"),
    (b'{"a":18446744073709551616}', "a", "1.8446744073709552e+19"),
    (b'{"a":true,"b":false}', "b", "false"),
    (b'{"a":{"y":[1,2.0,"\xc3\xa9"],"x":{}}}', "a", '{"y":[1,2.0,"\u00e9"],"x":{}}'),
    (b'{"a":{"q":"\\"\\n\\u0001\\u001f\\/"}}', "a", '{"q":"\\"\\n\\u0001\\u001f/"}'),
    (b'{"a":"\\ud83d\\ude00\\t"}', "a", "\U0001f600\t"),
    (b'{"\\u0061":1}', "a", "1"),
    (b'{"a":1,"a":2}', "a", "2"),
    (b'{"a":{"b":1},"a":{"c":2}}', "a.b", None),
    (b'{"a":{"b":1,"c":2,"b":3}}', "a", '{"b":3,"c":2}'),
    (b'{"a":[1,null,"x"]}', "a", ["1", "x"]),
    (b'{"a":[{"b":1},{"b":null},{"c":3},{"b":[2,3]},[{"b":4}]]}', "a.b", ["1", "2", "3", "4"]),
    (b'{"a":[[1,2],[3]]}', "a", ["[1,2]", "[3]"]),
    (b'{"a":[]}', "a.b", []),
    (b'{"a":[{"b":{"c":1.0}}]}', "a.b", ['{"c":1.0}']),
    (b'{"a.b":[1,{"c":2}]}', "a.b", ["1", '{"c":2}']),
]


@pytest.mark.parametrize(("line", "path", "want"), CASES, ids=[f"{c[0]!r}-{c[1]}" for c in CASES])
def test_value_table(line: bytes, path: str, want: Any) -> None:
    got = check(line + b"\n", [path])
    assert got[path].to_list() == [want]


# (line, status)
STATUS_CASES: list[tuple[bytes, int]] = [
    (b'{"a":1}', OK),
    (b' {"a":1} \r', OK),
    (b"", BLANK),
    (b" \t\x0b\x0c\r", BLANK),
    (b"[1]", NOT_OBJECT),
    (b'"s"', NOT_OBJECT),
    (b"null", NOT_OBJECT),
    (b'{"a":1e400}', MALFORMED),
    (b'{"a":"\\ud800"}', MALFORMED),
    (b'{"a":"\\udc00\\ud800"}', MALFORMED),
    (b'{"a":"\x01"}', MALFORMED),
    (b'{"a":01}', MALFORMED),
    (b'{"a":1.}', MALFORMED),
    (b'{"a":1,}', MALFORMED),
    (b'{"a":1} x', MALFORMED),
    (b"\xef\xbb\xbf{}", MALFORMED),
    (b'{"a":NaN}', MALFORMED),
    (b'{"a":"x\xff"}', REPAIRED),
    (b'{"a":"\xed\xa0\x80"}', REPAIRED),
    (b'{"a":\xff}', MALFORMED),
    # Regression: a repeated key on a line with invalid UTF-8 was reported malformed.
    (b'{"b":null,"b":[1,2],"c":"\xff"}', REPAIRED),
    (b'{"b":1,"b":2,}', MALFORMED),
    (b"[" * 1024 + b"]" * 1024, NOT_OBJECT),
    (b"[" * 1025 + b"]" * 1025, MALFORMED),
    (b'{"a":' * 1024 + b"1" + b"}" * 1024, OK),
    (b'{"a":' * 1025 + b"1" + b"}" * 1025, MALFORMED),
]


@pytest.mark.parametrize(("line", "status"), STATUS_CASES, ids=[repr(c[0][:30]) for c in STATUS_CASES])
def test_status_table(line: bytes, status: int) -> None:
    # Path "b" only: the twin cannot render the 1024-deep values as text (Python recursion).
    got = check(line + b"\n", ["b"])
    assert got["__status"].to_list() == [status]


def test_repaired_line_values_come_from_the_replaced_text() -> None:
    got = check(b'{"a":"x\xffy","b":{"c":"\xe2\x82"}}\n', ["a", "b"])
    assert got.row(0) == ("x\ufffdy", '{"c":"\ufffd"}', 0, REPAIRED)


def test_lines_split_like_the_matcher() -> None:
    for buffer in [b"", b"\n", b"\n\n", b'{"a":1}', b'{"a":1}\n', b'{"a":1}\n\n{"a":2}']:
        check(buffer, ["a"])
    got = check(b'{"a":1}|{"a":2}|', ["a"], sep=b"|")
    assert got["a"].to_list() == ["1", "2"]


def test_line_selection() -> None:
    buffer = b"".join(b'{"a":%d}\n' % i for i in range(100))
    got = check(buffer, ["a"], [3, 50, 99])
    assert got["a"].to_list() == ["3", "50", "99"]
    assert extract_fields(buffer, ["a"], [3, 5]).line_numbers().tolist() == [3, 5]


def test_paths_drop_at_and_repeat_once() -> None:
    batch = extract_fields(b'{"a":1}\n', ["@a", "a", "b"])
    assert batch.names == ["a", "b", "__line", "__status"]


def test_columns_export_one_by_one() -> None:
    batch = extract_fields(b'{"a":[1],"b":"x"}\n{"b":2}\n', ["a", "b"])
    assert pl.Series(batch["a"]).to_list() == [["1"], None]
    assert pl.Series(batch.column("b")).to_list() == ["x", "2"]
    assert pl.Series(batch["__line"]).dtype == pl.UInt32
    assert batch.statuses().tolist() == [0, 0]
    assert len(batch) == batch.num_rows == 2
    # Exports are independent: the batch outlives the frames and vice versa.
    frames = [pl.DataFrame(batch) for _ in range(3)]
    del batch
    assert all(f.equals(frames[0]) for f in frames)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"line_idx": np.array([5, 2], dtype=np.uint32)}, ValueError, "strictly ascending"),
        ({"line_idx": np.array([7], dtype=np.uint32)}, ValueError, "out of range"),
        ({"line_idx": np.array([1.0])}, TypeError, "uint32"),
        ({"line_idx": [-1]}, ValueError, "out of range"),
        ({"sep": b"ab"}, ValueError, "one byte"),
        ({"threads": 0}, ValueError, "at least 1"),
        ({"threads": 100_000}, ValueError, "at most 256"),
        ({"paths": "a"}, TypeError, "not one str"),
        ({"paths": ["__line"]}, ValueError, "collides"),
        ({"buffer": "text"}, TypeError, "bytes-like"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    args: dict[str, Any] = {"buffer": b'{"a":1}\n{"a":2}\n{"a":3}\n', "paths": ["a"], **kwargs}
    with pytest.raises(error, match=message):
        extract_fields(**args)


def test_missing_column_lists_the_names() -> None:
    with pytest.raises(KeyError, match="the columns are"):
        extract_fields(b"{}\n", ["a"]).column("b")


def test_large_input_in_parallel_agrees_with_one_thread() -> None:
    # Over the 1 MiB parallel threshold, with every row kind spread across task boundaries.
    kinds = [b'{"a":{"b":%d},"c":[%d]}', b'{"a":[{"b":%d}],"c":"%d"}', b"[%d,%d]", b'{"a":%d,"a.b":%d}', b"   ", b"{%d%d"]
    rows = (kinds[i % len(kinds)] for i in range(60_000))
    buffer = b"\n".join(k % (i, i) if b"%" in k else k for i, k in enumerate(rows)) + b"\n"
    one = native_frame(buffer, ["a.b", "c", "a"], threads=1)
    assert_frame_equal(native_frame(buffer, ["a.b", "c", "a"]), one)
    assert_frame_equal(native_frame(buffer, ["a.b", "c", "a"], threads=2), one)
    assert_frame_equal(one, twin_frame(buffer, ["a.b", "c", "a"]))


def test_agrees_with_to_frame_without_arrays() -> None:
    """Where the twin and today's to_frame define the same thing (no arrays, no `timestamp`)."""
    lines = [
        b'{"a":{"b":1.5,"c":{"d":[1]}},"a.b":"x","e":"\xc3\xa9"}',
        b'{"a.b":"lit","e":null}',
        b'{"a":{"b":{"z":1e20}},"e":true}',
    ]
    paths = ["a.b", "a.c", "e", "@a"]
    events = [orjson.loads(line) for line in lines]
    got = native_frame(b"\n".join(lines), paths).drop("__line", "__status")
    assert_frame_equal(got, to_frame(events, paths))


def test_cloudtrail_dataset() -> None:
    if not CLOUDTRAIL.exists():
        pytest.skip(f"dataset not found: {CLOUDTRAIL} (the shared datasets are not mounted)")
    buffer = CLOUDTRAIL.read_bytes()
    leaf_paths: set[str] = set()

    def collect(node: Any, prefix: str) -> None:
        if type(node) is dict:
            for key, value in node.items():
                collect(value, f"{prefix}{key}.")
        elif type(node) is list:
            for item in node:
                collect(item, prefix)
        if prefix:
            leaf_paths.add(prefix[:-1])

    for line in split_lines(buffer, b"\n")[:400]:
        collect(orjson.loads(line), "")
    paths = sorted(leaf_paths)
    assert len(paths) > 40
    got = check(buffer, paths)
    assert got.height == 2900 and got["__status"].eq(OK).all()
    assert got["eventName"].null_count() == 0


# --- property tests --------------------------------------------------------------------------------

KEYS = ["a", "b", "c", "a.b", "b.c", "x", "é", "", "a\\u002eb", "\\u0061", 'q\\"', "a.b.c"]
PATHS = ["a", "b", "c", "a.b", "b.c", "a.b.c", "a.a", "b.a", "x", "é", "", "@a", "c.a.b", "a.c", "a.", 'q"', "timestamp"]
WS = st.sampled_from(["", "", "", " ", "\t", " \r ", "  "])


def escape_char(ch: str, how: int) -> str:
    if ch in '"\\' or ord(ch) < 0x20 or how == 1:
        if ord(ch) > 0xFFFF:
            hi, lo = divmod(ord(ch) - 0x10000, 0x400)
            return f"\\u{0xD800 + hi:04x}\\u{0xDC00 + lo:04X}"
        return f"\\u{ord(ch):04x}" if how != 2 or ch not in "\"\\\n\t" else {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}[ch]
    if how == 3 and ch == "/":
        return "\\/"
    return ch


@st.composite
def json_strings(draw: st.DrawFn) -> str:
    text = draw(st.text(max_size=8))
    hows = draw(st.lists(st.integers(0, 3), min_size=len(text), max_size=len(text)))
    return '"' + "".join(escape_char(ch, how) for ch, how in zip(text, hows)) + '"'


@st.composite
def float_tokens(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return repr(draw(st.floats(allow_nan=False, allow_infinity=False)))
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.sampled_from(["0", "1", "9", "12345678901234567890", "4"]))
    frac = draw(st.sampled_from(["", ".0", ".5", ".000100", ".12345678901234567890123"]))
    exp = draw(st.sampled_from(["", "e5", "E+16", "e-5", "e-400", "e308", "e309", "E-4", "e15"]))
    if not frac and not exp:
        exp = "e0"
    return sign + whole + frac + exp


SCALARS = st.one_of(
    st.sampled_from(["null", "true", "false", "-0", "0"]),
    st.integers(-(2**70), 2**70).map(str),
    float_tokens(),
    json_strings(),
)


def arrays(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.lists(children, max_size=4), WS).map(lambda t: "[" + (t[1] + "," + t[1]).join(t[0]) + "]")


def objects(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    member = st.tuples(st.sampled_from(KEYS), WS, children).map(lambda t: f'"{t[0]}"{t[1]}:{t[1]}{t[2]}')
    return st.lists(member, max_size=5).map(lambda ms: "{" + ",".join(ms) + "}")


VALUES = st.recursive(SCALARS, lambda children: st.one_of(arrays(children), objects(children)), max_leaves=16)
DOCUMENTS = objects(VALUES)


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        return draw(WS).encode() + draw(DOCUMENTS).encode() + draw(WS).encode()
    if kind == 6:
        return draw(VALUES).encode()
    if kind == 7:
        return draw(st.sampled_from([b"", b" ", b"\t\x0b", b"\r"]))
    doc = draw(DOCUMENTS).encode()
    cut = draw(st.integers(0, len(doc)))
    junk = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\xe2\x82", b"}", b",", b'"', b"\\", b"\x00", b""]))
    if kind == 8:  # damage: truncate or insert junk (invalid UTF-8, stray structure)
        return doc[:cut] + junk + (doc[cut:] if draw(st.booleans()) else b"")
    # invalid UTF-8 inside a string value: a repaired line
    return b'{"a":"' + junk.replace(b'"', b"").replace(b"\\", b"") + b'",' + doc[1:]


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    st.lists(lines(), max_size=12),
    st.lists(st.sampled_from(PATHS), min_size=1, max_size=6),
    st.booleans(),
    st.data(),
)
def test_random_documents_match_the_twin(docs: list[bytes], paths: list[str], trailing: bool, data: st.DataObject) -> None:
    buffer = b"\n".join(docs) + (b"\n" if trailing and docs else b"")
    n = len(split_lines(buffer, b"\n"))
    line_idx = None
    if n and data.draw(st.booleans()):
        line_idx = sorted(data.draw(st.sets(st.integers(0, n - 1))))
    want = twin_frame(buffer, paths, line_idx)
    assert_frame_equal(native_frame(buffer, paths, line_idx, threads=1), want)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
# Exactly halfway between two shortest digit strings: Python's repr takes the even one (...312.2).
@example(562949953421312.2)
def test_floats_print_like_python(x: float) -> None:
    line = b'{"a":%s,"b":{"c":%s}}\n' % (repr(x).encode(), repr(x).encode())
    got = native_frame(line, ["a", "b"])
    assert got.row(0)[:2] == (json.dumps(x), json.dumps({"c": x}, separators=(",", ":")))


@SETTINGS
@given(st.binary(max_size=40))
def test_arbitrary_bytes_never_crash_and_match(raw: bytes) -> None:
    buffer = raw.replace(b"\n", b" ") + b"\n" + b'{"a":"' + raw.replace(b'"', b"").replace(b"\\", b"").replace(b"\n", b"") + b'"}\n'
    check(buffer, ["a"])


def test_extracted_batch_type() -> None:
    assert isinstance(extract_fields(b"", ["a"]), ExtractedBatch)
    assert pl.DataFrame(extract_fields(b"", ["a"])).schema == pl.Schema(
        {"a": pl.String, "__line": pl.UInt32, "__status": pl.UInt8}
    )


@pytest.mark.slow
@settings(max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), max_size=20), st.lists(st.sampled_from(PATHS), min_size=1, max_size=8))
def test_random_documents_match_the_twin_long(docs: list[bytes], paths: list[str]) -> None:
    buffer = b"\n".join(docs)
    assert_frame_equal(native_frame(buffer, paths, threads=1), twin_frame(buffer, paths))


def test_schema_capsules_and_requested_schema() -> None:
    batch = extract_fields(b'{"a":1}\n', ["a"])
    for exporter in (batch, batch["a"]):
        assert type(exporter.__arrow_c_schema__()).__name__ == "PyCapsule"
    # A requested schema is ignored (allowed by the protocol): the export is the native one.
    stream = batch.__arrow_c_stream__(batch.__arrow_c_schema__())
    assert type(stream).__name__ == "PyCapsule"
    schema, array = batch["a"].__arrow_c_array__(batch["a"].__arrow_c_schema__())
    assert type(schema).__name__ == type(array).__name__ == "PyCapsule"


# --- normalize=True: ingest's normalize_record, natively -----------------------------------------
#
# The twin: orjson.loads + secmon.ingest.json_events.normalize_record + to_frame. A row the native
# side keeps (status 0) must equal the twin's row; a row the twin cannot normalize (it raises) must
# not be kept; rows the native side hands back (status 5) are the twin's to parse.

from secmon.ingest.json_events import normalize_record  # noqa: E402
from secmon.ingest.timestamps import TimestampError, parse_any  # noqa: E402

NEEDS_PYTHON = 5
NORMALIZED_PATHS = [
    "timestamp", "message", "status", "host", "service", "source", "tags", "evt.name", "evt.outcome",
    "network.client.ip", "http.useragent", "http.status_code", "usr.id", "usr.name",
]
# Path sets: the targets, raw fields beside them, objects above targets and paths below them.
PATH_SETS = [
    NORMALIZED_PATHS,
    [*NORMALIZED_PATHS, "eventName", "userIdentity.arn", "sourceIPs", "responseStatus.code", "level", "kind"],
    ["@timestamp", "@evt.name", "@usr.name", "source", "msg"],
    [*NORMALIZED_PATHS, "evt", "network.client", "tags.x"],
]


def normalized_twin(lines: list[bytes], kept: list[int], paths: Sequence[str]) -> pl.DataFrame:
    events = []
    for i in kept:
        status, doc = load(lines[i])
        assert status == OK, f"line {i} kept natively but the twin reads status {status}: {lines[i]!r}"
        events.append(normalize_record(doc))
    return to_frame(events, paths)


def check_normalized(buffer: bytes, paths: Sequence[str], threads: int | None = None) -> pl.DataFrame:
    """Native normalized rows against the twin; returns the native frame (all rows)."""
    lines = split_lines(buffer, b"\n")
    frame = native_frame(buffer, paths, normalize=True, threads=threads)
    statuses = frame["__status"].to_list()
    for i, (raw, status) in enumerate(zip(lines, statuses)):
        want_status, doc = load(raw)
        if status == OK:
            assert want_status == OK, raw
        elif status in (MALFORMED, NOT_OBJECT, BLANK):
            assert want_status == status, raw
        else:
            assert status == NEEDS_PYTHON, status
        if want_status == OK and status == OK:
            try:
                normalize_record(doc)
            except (TimestampError, ValueError, TypeError, OverflowError) as exc:
                raise AssertionError(f"kept natively but ingest rejects it ({exc}): {raw!r}") from None
    kept = [i for i, s in enumerate(statuses) if s == OK]
    names = _unique_paths(paths)
    got = frame.filter(pl.col("__status") == OK).select(names)
    if "timestamp" in names:
        got = got.with_columns(pl.col("timestamp").cast(pl.Int64))
    want = normalized_twin(lines, kept, paths)
    if kept:
        assert_frame_equal(got, want)
        # The normalized record as JSON text (what the engine keeps for samples) equals the
        # twin's dict.
        texts = normalized_events(buffer, np.asarray(kept, dtype=np.uint32))
        for i, text in zip(kept, texts):
            assert text is not None, lines[i]
            twin = normalize_record(orjson.loads(lines[i]))
            assert orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS) == orjson.dumps(twin, option=orjson.OPT_SORT_KEYS), (lines[i], text)
    return frame


DAY = st.integers(0, 32)
ISO_PARTS = st.fixed_dictionaries({
    "year": st.one_of(st.integers(1, 9999), st.sampled_from([0, 1900, 2000, 2023, 2024, 2100])),
    "month": st.integers(0, 13),
    "day": DAY,
    "sep": st.sampled_from(["T", " ", "t", "", "TT"]),
    "time": st.one_of(st.none(), st.tuples(st.integers(0, 25), st.integers(0, 61), st.one_of(st.none(), st.integers(0, 61)))),
    "fraction": st.one_of(st.none(), st.tuples(st.sampled_from([".", ","]), st.text("0123456789", max_size=12))),
    "space": st.sampled_from(["", "", " ", "\t"]),
    "zone": st.one_of(st.none(), st.sampled_from(["Z", "z"]),
                      st.tuples(st.sampled_from("+-"), st.integers(0, 99), st.sampled_from([":", "", None]), st.integers(0, 99))),
    "pad": st.sampled_from(["", " ", "\n"]),
})


def iso_text(p: dict[str, Any]) -> str:
    text = f"{p['year']:04d}-{p['month']:02d}-{p['day']:02d}"
    if p["time"] is not None:
        hour, minute, second = p["time"]
        text += f"{p['sep']}{hour:02d}:{minute:02d}"
        if second is not None:
            text += f":{second:02d}"
            if p["fraction"] is not None:
                text += p["fraction"][0] + p["fraction"][1]
    text += p["space"]
    zone = p["zone"]
    if isinstance(zone, str):
        text += zone
    elif zone is not None:
        sign, hours, colon, minutes = zone
        text += f"{sign}{hours:02d}" + ("" if colon is None else f"{colon}{minutes:02d}")
    return p["pad"] + text + p["pad"]


TIMESTAMP_TEXT = st.one_of(
    ISO_PARTS.map(iso_text),
    st.text("0123456789-:TZz+., \t", max_size=32),
    st.from_regex(r"\A-?[0-9]{1,20}(\.[0-9]{1,8})?\Z"),
    st.sampled_from(["", " 1700000000 ", "1e9", "١٧٠٠٠٠٠٠٠٠", "2023-07-10T12:00:00\u00a0Z", "Monday", "2023-07-10T12:00:00.123Z"]),
)


def twin_timestamp(value: Any) -> int | None:
    try:
        return parse_any(value)
    except (TimestampError, ValueError, OverflowError):
        return None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(TIMESTAMP_TEXT, st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False, width=64)), min_size=1, max_size=30))
def test_timestamps_parse_like_parse_any(values: list[Any]) -> None:
    """ISO 8601 and epoch values in ``timestamp``: what the native side keeps equals parse_any."""
    buffer = b"".join(json.dumps({"timestamp": v}).encode() + b"\n" for v in values)
    frame = pl.DataFrame(extract_fields(buffer, ["timestamp"], normalize=True))
    for value, status, got in zip(values, frame["__status"].to_list(), frame["timestamp"].to_list()):
        want = twin_timestamp(value)
        if status == OK:
            assert want is not None and int(got) == want, (value, got, want)
        else:
            assert status == NEEDS_PYTHON


@settings(max_examples=300, deadline=None)
@given(ISO_PARTS.filter(lambda p: p["sep"] in ("T", " ") and p["time"] is not None))
def test_valid_iso_dates_stay_native(parts: dict[str, Any]) -> None:
    """Coverage, not only safety: every ISO date parse_any reads (ASCII) is read natively."""
    text = iso_text(parts)
    want = twin_timestamp(text)
    frame = pl.DataFrame(extract_fields(json.dumps({"timestamp": text}).encode(), ["timestamp"], normalize=True))
    if want is None:
        assert frame["__status"][0] == NEEDS_PYTHON
    else:
        assert frame["__status"][0] == OK and int(frame["timestamp"][0]) == want, text


def _maybe(draw: st.DrawFn, value: Any, p: float = 0.8) -> Any:
    return value if draw(st.floats(0, 1)) < p else draw(AWKWARD)


MISSING_KEY = object()
AWKWARD = st.sampled_from([MISSING_KEY, None, "", "x", 0, 1, 404, 1.5, True, False, [], ["a"], [None, "b"], {}, {"name": "n"}])
TIMESTAMP_VALUES = st.one_of(
    ISO_PARTS.map(iso_text), st.sampled_from(["2023-11-14T22:13:21Z", "2022-11-29 00:09:04.38", "2023-11-14T22:13:21.645+01:00"]),
    st.integers(10**9, 2 * 10**12), st.floats(1e9, 2e9), AWKWARD,
)
IPS = st.sampled_from(["10.0.0.1", "203.0.113.7", "01.2.3.4", "256.1.1.1", "AWS Internal", "ec2.amazonaws.com",
                       "2001:db8::1", "::ffff:1.2.3.4", "1.2.3.4 ", "١.٢.٣.٤"])


def _put(record: dict[str, Any], key: str, value: Any) -> None:
    if value is not MISSING_KEY:
        record[key] = value


@st.composite
def cloudtrail_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"eventVersion": "1.08"}
    _put(record, "eventTime", draw(TIMESTAMP_VALUES) if draw(st.booleans()) else "2023-11-14T22:13:21Z")
    _put(record, "eventSource", _maybe(draw, draw(st.sampled_from(["signin.amazonaws.com", "iam.amazonaws.com"])), 0.95))
    _put(record, "eventName", _maybe(draw, draw(st.sampled_from(["ConsoleLogin", "GetObject", "CreateAccessKey"]))))
    _put(record, "errorCode", _maybe(draw, MISSING_KEY if draw(st.booleans()) else "AccessDenied", 0.7))
    _put(record, "sourceIPAddress", _maybe(draw, draw(IPS)))
    _put(record, "userAgent", _maybe(draw, "aws-cli/2.14.0"))
    identity: dict[str, Any] = {"type": draw(st.sampled_from(["IAMUser", "AssumedRole", "Root"]))}
    _put(identity, "arn", _maybe(draw, "arn:aws:iam::123456789012:user/alice"))
    _put(identity, "userName", _maybe(draw, draw(st.sampled_from(["alice", "bob"])), 0.5))
    if draw(st.booleans()):
        issuer = _maybe(draw, {"type": "Role", "userName": _maybe(draw, "admin-role")})
        identity["sessionContext"] = _maybe(draw, {"sessionIssuer": issuer, "attributes": {"mfaAuthenticated": "false"}})
    _put(record, "userIdentity", _maybe(draw, identity, 0.9))
    add_existing_targets(draw, record)
    return record


@st.composite
def k8s_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": _maybe(draw, "Event", 0.9), "apiVersion": _maybe(draw, draw(st.sampled_from(["audit.k8s.io/v1", "audit.k8s.io/v1beta1", "v1"])), 0.9),
                              "level": draw(st.sampled_from(["Metadata", "Request", "RequestResponse"])), "stage": "ResponseComplete"}
    for key in ("requestReceivedTimestamp", "stageTimestamp", "timestamp"):
        if draw(st.booleans()):
            record[key] = draw(TIMESTAMP_VALUES)
    _put(record, "verb", _maybe(draw, draw(st.sampled_from(["get", "create", "delete"]))))
    _put(record, "user", _maybe(draw, {"username": _maybe(draw, draw(st.sampled_from(["system:anonymous", "alice"]))), "groups": ["g"]}))
    _put(record, "sourceIPs", _maybe(draw, draw(st.lists(IPS, max_size=3))))
    _put(record, "userAgent", _maybe(draw, "kubectl/v1.29.0"))
    code = draw(st.one_of(st.sampled_from([200, 201, 399, 400, 403, 404, 500, 0, -1, 10**19, 2.0, "403", True]), AWKWARD))
    _put(record, "responseStatus", _maybe(draw, {"code": code} if code is not MISSING_KEY else {}))
    _put(record, "objectRef", {"resource": "pods", "namespace": "default", "subresource": "exec"})
    add_existing_targets(draw, record)
    return record


@st.composite
def generic_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(["timestamp", "_timestamp", "Timestamp", "eventTime", "date", "published_date", "@timestamp"]), max_size=2, unique=True)):
        record[key] = draw(TIMESTAMP_VALUES)
    if draw(st.integers(0, 5)) == 0:
        record["syslog"] = _maybe(draw, {"timestamp": draw(TIMESTAMP_VALUES), "severity": draw(st.sampled_from(["err", 3, "Warning"])), "hostname": "h1", "appname": "cron"})
    if draw(st.integers(0, 7)) == 0:
        record["syslog.timestamp"] = draw(TIMESTAMP_VALUES)
    for key in draw(st.lists(st.sampled_from(["message", "msg", "log", "host", "hostname", "service", "dd", "source", "ddsource", "tags", "ddtags"]), max_size=4, unique=True)):
        if key == "dd":
            record[key] = _maybe(draw, {"service": "svc"})
        elif key == "ddtags":
            record[key] = _maybe(draw, draw(st.sampled_from(["env:prod, team:sec", " , a:b,,", "", "x", "é:1"])))
        else:
            record[key] = _maybe(draw, draw(st.sampled_from(["web-1", "app", "Failed password for root"])), 0.6)
    for key in draw(st.lists(st.sampled_from(["status", "severity", "level"]), max_size=2, unique=True)):
        record[key] = draw(st.one_of(
            st.sampled_from(["info", "INFO", " Warn ", "err", "E", "fatal", "ok", "success", "Metadata", "", " ", "007", "8", "12", "x", "²", "ǅ"]),
            st.integers(-3, 12), st.sampled_from([3.0, True, False, None, [], {"a": 1}])))
    add_existing_targets(draw, record)
    return record


def add_existing_targets(draw: st.DrawFn, record: dict[str, Any]) -> None:
    """Values already where normalization writes: kept, in the way, null, or literal dotted."""
    for key in draw(st.lists(st.sampled_from(["evt", "network", "usr", "http", "source", "service", "evt.name", "usr.name", "network.client.ip"]), max_size=2, unique=True)):
        record[key] = draw(st.sampled_from([None, "x", 7, [], [{"name": "n"}], {}, {"name": "pre", "outcome": None},
                                            {"client": {"ip": "10.9.9.9"}}, {"client": None}, {"client": "c"}, {"useragent": None}]))


RECORDS = st.one_of(cloudtrail_records(), k8s_records(), generic_records())


def _drop_missing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_missing(v) for k, v in value.items() if v is not MISSING_KEY}
    if isinstance(value, list):
        return [_drop_missing(v) for v in value if v is not MISSING_KEY]
    return value


@st.composite
def record_lines(draw: st.DrawFn) -> bytes:
    record = _drop_missing(draw(RECORDS))
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    how = draw(st.integers(0, 12))
    if how == 0 and len(record) > 0:  # a repeated key (orjson keeps the last value)
        key = draw(st.sampled_from(sorted(record)))
        text = text[:-1] + (", " if record else "") + json.dumps(key) + ": " + json.dumps(draw(AWKWARD.filter(lambda v: v is not MISSING_KEY))) + "}"
    elif how == 1:  # an escaped key
        text = text.replace('"eventName"', '"event\\u004eame"').replace('"kind"', '"\\u006bind"').replace('"level"', '"lev\\u0065l"')
    elif how == 2:
        text = json.dumps({"Records": [record]})
    return text.encode()


@settings(max_examples=int(os.environ.get("SECMON_FUZZ", 300)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record_lines(), min_size=1, max_size=25), st.sampled_from(PATH_SETS))
def test_random_records_normalize_like_ingest(lines: list[bytes], paths: list[str]) -> None:
    check_normalized(b"\n".join(lines) + b"\n", paths)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), max_size=15), st.sampled_from(PATH_SETS + [PATHS]))
def test_random_documents_normalize_like_ingest(docs: list[bytes], paths: list[str]) -> None:
    """Arbitrary JSON (and broken lines) through normalize=True: never a wrong row."""
    check_normalized(b"\n".join(docs) + b"\n", paths)


def test_normalized_cases_stay_native() -> None:
    """The common shapes are normalized natively (the fast path is not an empty promise)."""
    lines = [
        {"eventTime": "2023-11-14T22:13:21Z", "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
         "sourceIPAddress": "10.0.0.1", "userAgent": "aws-cli", "errorCode": "Denied",
         "userIdentity": {"type": "AssumedRole", "arn": "arn:x", "sessionContext": {"sessionIssuer": {"userName": "role"}}}},
        {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "verb": "get", "user": {"username": "bob"},
         "sourceIPs": ["10.0.0.2", "10.0.0.3"], "requestReceivedTimestamp": "2022-11-29 00:09:04.38", "responseStatus": {"code": 403}},
        {"timestamp": "2023-11-14T22:13:21.5+01:00", "msg": "hello", "level": " WARN ", "hostname": "h", "ddsource": "app",
         "ddtags": "env:prod, team:sec,,", "syslog": {"appname": "cron"}},
        {"timestamp": 1700000000, "status": 3, "message": "m", "evt": {"name": "already"}},
        {"date": "1700000000.25", "severity": "Emerg"},
    ]
    buffer = b"\n".join(json.dumps(x).encode() for x in lines) + b"\n"
    frame = check_normalized(buffer, [*NORMALIZED_PATHS, "tags"])
    assert frame["__status"].to_list() == [OK] * len(lines)
    assert frame["evt.outcome"].to_list()[:2] == ["failure", "failure"]
    assert frame["usr.name"].to_list()[:2] == ["role", "bob"]
    assert frame["network.client.ip"].to_list()[:2] == ["10.0.0.1", "10.0.0.2"]
    assert frame["status"].to_list()[2:] == ["warning", "error", "emergency"]
    assert frame["tags"].to_list()[2] == ["env:prod", "team:sec"]


@pytest.mark.parametrize(
    "record",
    [
        {"eventTime": "2023-11-14T22:13:21Z", "eventSource": "s", "eventName": "E", "evt": "x"},  # scalar in the way
        {"eventTime": "2023-11-14T22:13:21Z", "eventSource": "s", "eventName": "E", "sourceIPAddress": "2001:db8::1"},
        {"eventTime": "Monday", "eventSource": "s", "eventName": "E"},
        {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "sourceIPs": [None, "1.2.3.4"], "timestamp": 1700000000},
        {"timestamp": "2023-11-14T22:13:21Z", "status": "²"},
        {"Records": {"a": 1}, "timestamp": 1700000000},
    ],
)
def test_awkward_records_go_to_python(record: dict[str, Any]) -> None:
    frame = check_normalized(json.dumps(record).encode(), NORMALIZED_PATHS)
    assert frame["__status"].to_list() == [NEEDS_PYTHON]


def test_repeated_and_escaped_keys_go_to_python() -> None:
    lines = [b'{"timestamp":1700000000,"msg":"a","msg":"b"}', b'{"timestamp":1700000000,"\\u006dsg":"a"}',
             b'{"timestamp":1700000000,"msg":"\xff"}']
    frame = check_normalized(b"\n".join(lines), NORMALIZED_PATHS)
    assert frame["__status"].to_list() == [NEEDS_PYTHON] * 3


def _dataset_lines(path: Path, field: str | None = None, kind: str | None = None) -> list[bytes]:
    if not path.exists():
        pytest.skip(f"dataset {path} is absent (see ../shared/datasets/README.md)")
    out = []
    for raw in path.read_bytes().splitlines():
        doc = orjson.loads(raw)
        if field is not None:
            doc = doc.get(field)
            if not isinstance(doc, dict) or (kind is not None and kind not in orjson.dumps(doc).decode()):
                continue
        out.append(orjson.dumps(doc))
    return out


@pytest.mark.parametrize(
    ("path", "field", "kind", "native_share"),
    [
        (CLOUDTRAIL, None, None, 0.99),
        (DATASETS / "cloudtrail-stratus" / "events.jsonl", None, None, 0.9),
        (DATASETS / "panther-tests" / "rule_tests.jsonl", "log", "audit.k8s.io", 0.8),
        (DATASETS / "panther-tests" / "rule_tests.jsonl", "log", "eventSource", 0.8),
    ],
    ids=["cloudtrail-invictus", "cloudtrail-stratus", "panther-k8s-audit", "panther-cloudtrail"],
)
def test_real_records_normalize_like_ingest(path: Path, field: str | None, kind: str | None, native_share: float) -> None:
    lines = _dataset_lines(path, field, kind)
    buffer = b"\n".join(lines) + b"\n"
    paths = [*NORMALIZED_PATHS, "eventName", "userIdentity.arn", "objectRef.resource", "requestParameters.bucketName"]
    frame = check_normalized(buffer, paths)
    readable = 0  # records ingest normalizes (the others, e.g. without a timestamp, it rejects)
    for raw in lines:
        try:
            normalize_record(orjson.loads(raw))
            readable += 1
        except (TimestampError, ValueError):
            pass
    assert readable >= 10, f"{path.name}: too few records to compare"
    ok_share = (frame["__status"] == OK).sum() / readable
    assert ok_share >= native_share, f"only {ok_share:.0%} of {path.name}'s readable records normalized natively"
    assert_frame_equal(check_normalized(buffer, paths, threads=2), frame)


@pytest.mark.parametrize(
    "record",
    [
        {"eventTime": "2023-11-14T22:13:21Z", "eventSource": "s", "eventName": "E", "evt": None, "network": {"client": None},
         "sourceIPAddress": "10.0.0.1", "userIdentity": {"arn": "a", "userName": 7}, "usr": {}},
        {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "timestamp": 1700000000123, "http": {"method": "GET"},
         "responseStatus": {"code": 404}, "sourceIPs": ["10.0.0.2"], "evt": {"name": "kept"}, "verb": "get"},
        {"timestamp": "1700000000", "status": 12, "level": "x", "ddtags": "a:b, c", "msg": {"a": 1}.get("a"), "ddsource": None},
    ],
)
def test_normalized_events_write_the_normalized_record(record: dict[str, Any]) -> None:
    line = json.dumps(record, indent=None, separators=(" , ", " : ")).encode()
    (text,) = normalized_events(b"  " + line + b"  \n", [0])
    assert text is not None
    assert orjson.loads(text) == normalize_record(json.loads(line))


@SETTINGS
@given(st.lists(lines(), max_size=12), st.lists(st.sampled_from(PATHS), min_size=1, max_size=6, unique=True), st.data())
def test_select_equals_gathering_the_frame(docs: list[bytes], paths: list[str], data: st.DataObject) -> None:
    """``ExtractedBatch.select`` (native gather into new buffers) against Polars' gather of the
    whole frame: any rows, repeats and any order included, any subset of the path columns."""
    buffer = b"\n".join(docs)
    batch = extract_fields(buffer, paths)
    frame = pl.DataFrame(batch)
    height = len(batch)
    rows = data.draw(st.lists(st.integers(0, height - 1), max_size=3 * height)) if height else []
    names = [c for c in frame.columns if c in data.draw(st.sets(st.sampled_from(frame.columns[: -2]))) or c.startswith("__")]
    picked = pl.DataFrame(batch.select(np.array(rows, dtype=np.uint32), [n for n in names if not n.startswith("__")]))
    assert_frame_equal(picked, frame[rows].select(names))


def test_select_names_bad_rows_and_columns() -> None:
    batch = extract_fields(b'{"a": "x"}\n{"a": "y"}\n', ["a"])
    with pytest.raises(IndexError, match="row 2 is out of range for a batch of 2 rows"):
        batch.select(np.array([0, 2], dtype=np.uint32), ["a"])
    with pytest.raises(KeyError, match='no column "b"'):
        batch.select(np.array([0], dtype=np.uint32), ["b"])
    assert batch.matched_rows().tolist() == []  # no flag program: no row is matched
