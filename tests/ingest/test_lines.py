"""split_lines / select_lines / line_count against the byte-at-a-time definition."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secmon.ingest.lines import line_count, select_lines, split_lines, split_lines_naive

# Bytes biased towards the characters that matter: newlines, carriage returns, UTF-8 lead bytes.
line_bytes = st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"\xc3\xa9", b" ", b"{", b"\xff"]), max_size=60).map(
    b"".join
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (b"\n", [b""]),
        (b"a", [b"a"]),
        (b"a\n", [b"a"]),
        (b"a\nb", [b"a", b"b"]),
        (b"a\r\nb\r\n", [b"a\r", b"b\r"]),  # the parsers drop the \r, as with Rust select_lines
        (b"a\rb\n", [b"a\rb"]),
        (b"\n\n", [b"", b""]),
        (b"a\r", [b"a\r"]),
    ],
)
def test_split_lines_table(data: bytes, expected: list[bytes]) -> None:
    assert split_lines(data) == expected
    assert split_lines_naive(data) == expected
    assert line_count(data) == len(expected)


@given(line_bytes)
def test_split_lines_matches_naive(data: bytes) -> None:
    assert split_lines(data) == split_lines_naive(data)
    assert line_count(data) == len(split_lines_naive(data))


@given(line_bytes, st.data())
def test_select_lines_matches_indexing(data: bytes, draw: st.DataObject) -> None:
    lines = split_lines_naive(data)
    if not lines:
        return
    idx = draw.draw(st.lists(st.integers(0, len(lines) - 1), max_size=10))
    assert select_lines(data, np.array(idx, dtype=np.int64)) == [lines[i] for i in idx]
    assert select_lines(data, idx) == [lines[i] for i in idx]


def test_select_lines_out_of_range_names_the_index() -> None:
    with pytest.raises(IndexError, match="line index 5 is out of range for a chunk of 2 lines"):
        select_lines(b"a\nb\n", np.array([5]))


@given(line_bytes, st.data())
def test_rust_select_lines_matches_python(data: bytes, draw: st.DataObject) -> None:
    from secmon import _core

    rust_select = getattr(_core, "select_lines", None)
    if rust_select is None:
        pytest.skip("secmon._core.select_lines is not built yet; the engine uses the Python version")
    lines = split_lines(data)
    idx = draw.draw(st.lists(st.integers(0, max(len(lines) - 1, 0)), max_size=10)) if lines else []
    assert list(rust_select(data, np.array(idx, dtype=np.uint32))) == select_lines(data, idx)
