"""secmon._core.extract_fields against its slow twin: orjson.loads per line + the event-table rules
of secmon.ingest.events (nested lookup, literal dotted key, array traversal), row by row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from secmon._core import ExtractedBatch, extract_fields
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
