"""``secmon.Matcher`` against its two slow twins: a ``bytes.find`` loop and pyahocorasick.

Patterns that contain the separator byte are accepted and never match (a match never spans a
separator); the tests pin that choice.
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import ahocorasick
import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import corpus
from secmon import Matcher
from secmon._core import count_lines, line_spans, select_lines

Pairs = list[tuple[int, int]]


# --- the slow twins ---------------------------------------------------------------------------


def split_lines(data: bytes, sep: bytes) -> list[bytes]:
    lines = data.split(sep)
    if data == b"" or data.endswith(sep):
        lines.pop()
    return lines


def naive_pairs(patterns: Sequence[bytes], data: bytes, sep: bytes = b"\n", icase: bool = False) -> Pairs:
    """Every line, every pattern, ``bytes.find``."""
    fold = (lambda b: b.lower()) if icase else (lambda b: b)
    out = []
    for li, line in enumerate(split_lines(data, sep)):
        for pi, p in enumerate(patterns):
            if fold(line).find(fold(p)) != -1:
                out.append((li, pi))
    return out


def pyaho_pairs(patterns: Sequence[bytes], data: bytes, sep: bytes = b"\n", icase: bool = False) -> Pairs:
    """pyahocorasick per line; bytes map 1:1 to str through latin-1 so any byte works."""
    if not patterns:
        return []
    fold = (lambda b: b.lower()) if icase else (lambda b: b)
    automaton = ahocorasick.Automaton()
    by_text: dict[str, list[int]] = {}
    for pi, p in enumerate(patterns):
        by_text.setdefault(fold(p).decode("latin-1"), []).append(pi)
    for text, ids in by_text.items():
        automaton.add_word(text, ids)
    automaton.make_automaton()
    out: Pairs = []
    for li, line in enumerate(split_lines(data, sep)):
        found = {pi for _, ids in automaton.iter(fold(line).decode("latin-1")) for pi in ids}
        out.extend((li, pi) for pi in sorted(found))
    return out


def naive_occurrences(patterns: Sequence[bytes], data: bytes) -> list[tuple[int, int, int]]:
    out = []
    for pi, p in enumerate(patterns):
        at = data.find(p)
        while at != -1:
            out.append((at, pi, at + len(p)))
            at = data.find(p, at + 1)
    return sorted(out)


def pairs_of(result: tuple[np.ndarray, np.ndarray]) -> Pairs:
    lines, pats = result
    assert lines.dtype == np.uint32 and pats.dtype == np.uint32
    return list(zip(lines.tolist(), pats.tolist(), strict=True))


Engine = Literal["auto", "automaton", "hashed"]


def engines_for(patterns: Sequence[bytes]) -> list[Engine]:
    """Every engine that accepts these patterns (the hashed one needs 4+ bytes each)."""
    engines: list[Engine] = ["auto", "automaton"]
    return engines + (["hashed"] if all(len(p) >= 4 for p in patterns) else [])


def check_all_ways(patterns: list[bytes], data: bytes, sep: bytes = b"\n", icase: bool = False) -> Pairs:
    """Every engine, sequential and parallel, and both twins agree; returns the agreed pairs."""
    expected = naive_pairs(patterns, data, sep, icase)
    assert pyaho_pairs(patterns, data, sep, icase) == expected
    flags = np.zeros(count_lines(data, sep), dtype=bool)
    for li, _ in expected:
        flags[li] = True
    for engine in engines_for(patterns):
        m = Matcher(patterns, ascii_case_insensitive=icase, engine=engine)
        assert pairs_of(m.match_lines(data, sep, parallel=False)) == expected, engine
        assert pairs_of(m.match_lines(data, sep)) == expected, engine
        assert m.any_lines(data, sep).tolist() == flags.tolist(), engine
        assert m.any_lines(data, sep, parallel=False).tolist() == flags.tolist(), engine
    assert count_lines(data, sep) == len(split_lines(data, sep))
    return expected


# --- hypothesis: random and adversarial input --------------------------------------------------

# A tiny alphabet makes overlaps, prefixes, duplicates and separator-crossing candidates common.
ALPHABET = b"abAB\n;\xff"
small_bytes = st.binary(max_size=6).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))
patterns_st = st.lists(small_bytes.filter(bool), max_size=8)
text_st = st.binary(max_size=300).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(patterns=patterns_st, data=text_st, sep=st.sampled_from([b"\n", b";"]), icase=st.booleans())
def test_random_input_agrees_with_both_twins(patterns: list[bytes], data: bytes, sep: bytes, icase: bool) -> None:
    check_all_ways(patterns, data, sep, icase)


@st.composite
def long_patterns_and_text(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """Patterns of 4..24 bytes (the hashed engine's range: Teddy or the gate below 11 bytes, the
    wide filter from 11), half of them cut from the text."""
    data = draw(st.binary(max_size=400).map(lambda b: bytes(b"aAb\n;\xff"[x % 6] for x in b)))
    patterns = []
    for _ in range(draw(st.integers(0, 8))):
        size = draw(st.integers(4, 24))
        if data and len(data) >= size and draw(st.booleans()):
            at = draw(st.integers(0, len(data) - size))
            patterns.append(data[at : at + size])
        else:
            patterns.append(draw(st.binary(min_size=size, max_size=size)).translate(bytes(b"aAb\n;\xff"[x % 6] for x in range(256))))
    return patterns, data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=long_patterns_and_text(), sep=st.sampled_from([b"\n", b";"]), icase=st.booleans())
def test_hashed_engine_agrees_with_both_twins(case: tuple[list[bytes], bytes], sep: bytes, icase: bool) -> None:
    patterns, data = case
    check_all_ways(patterns, data, sep, icase)


@settings(max_examples=150, deadline=None)
@given(patterns=patterns_st, data=text_st, icase=st.booleans())
def test_find_all_agrees_with_a_find_loop(patterns: list[bytes], data: bytes, icase: bool) -> None:
    m = Matcher(patterns, ascii_case_insensitive=icase)
    ids, starts, ends = m.find_all(data)
    assert ids.dtype == np.uint32 and starts.dtype == np.uint64 and ends.dtype == np.uint64
    got = sorted(zip(starts.tolist(), ids.tolist(), ends.tolist(), strict=True))
    fold = (lambda b: b.lower()) if icase else (lambda b: b)
    assert got == naive_occurrences([fold(p) for p in patterns], fold(data))
    assert got == list(zip(starts.tolist(), ids.tolist(), ends.tolist(), strict=True)), "sorted by start, then id"


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(st.text(alphabet="abcXYZ é☃", min_size=1, max_size=5), min_size=1, max_size=6),
    rows=st.lists(st.one_of(st.none(), st.text(alphabet="abcXYZ é☃\n", max_size=40)), max_size=30),
)
def test_match_column_agrees_with_a_per_row_twin(words: list[str], rows: list[str | None]) -> None:
    m = Matcher(words)
    expected = [(ri, pi) for ri, row in enumerate(rows) if row is not None for pi, w in enumerate(words) if w in row]
    series = pl.Series(rows, dtype=pl.String)
    assert pairs_of(m.match_column(series)) == expected
    flags = [row is not None and any(w in row for w in words) for row in rows]
    assert m.any_column(series).tolist() == flags


# Bytes around the ASCII upper-case range and >= 0x80 with and without the 0x20 bit: a wrong
# case fold (in the SIMD or the word-at-a-time path) turns one into the other.
FOLD_ALPHABET = b"aAzZ@[`{\xc1\xe1\n"


@st.composite
def many_patterns_and_text(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """Up to 100 patterns of 4..20 bytes, most cut from the text: more short ones than Teddy takes
    (the per-byte gate then handles them) beside long ones (the wide filter)."""
    data = draw(st.binary(min_size=40, max_size=600).map(lambda b: bytes(FOLD_ALPHABET[x % len(FOLD_ALPHABET)] for x in b)))
    patterns = []
    for _ in range(draw(st.integers(1, 100))):
        size = draw(st.integers(4, 20))
        if len(data) >= size and draw(st.integers(0, 3)):
            at = draw(st.integers(0, len(data) - size))
            patterns.append(data[at : at + size])
        else:
            patterns.append(bytes(FOLD_ALPHABET[x % len(FOLD_ALPHABET)] for x in draw(st.binary(min_size=size, max_size=size))))
    return patterns, data


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=many_patterns_and_text(), icase=st.booleans())
def test_many_patterns_of_both_length_classes_agree_with_both_twins(case: tuple[list[bytes], bytes], icase: bool) -> None:
    patterns, data = case
    check_all_ways(patterns, data, b"\n", icase)


def test_patterns_at_every_offset_of_a_line_and_at_the_buffer_end() -> None:
    """The wide filter reads 8-byte windows at every 4th byte, 8 of them per SIMD step."""
    source = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for size in (4, 7, 10, 11, 12, 15, 19):
        pattern = source[:size]
        for at in range(0, 70, 3):
            line = b"." * at + pattern
            data = line + b"..\nab\n\n" + line  # the last occurrence ends the buffer
            check_all_ways([pattern, source[size - 4 : size + 7]], data)
            check_all_ways([pattern.lower()], data.lower(), icase=True)


# --- named cases ---------------------------------------------------------------------------------

CASES = [
    # (patterns, data, sep, icase, expected pairs)
    ([b"ssh", b"sshd"], b"sshd: ok", b"\n", False, [(0, 0), (0, 1)]),
    ([b"abc", b"bcd", b"c"], b"xabcdx\nbc", b"\n", False, [(0, 0), (0, 1), (0, 2), (1, 2)]),
    ([b"x", b"x"], b"x", b"\n", False, [(0, 0), (0, 1)]),
    ([b"a\nb"], b"a\nb", b"\n", False, []),
    ([b"b", b"a\nbc"], b"a\nbc", b"\n", False, [(1, 0)]),
    ([b"ERROR"], b"error\nErRoR\nERROR", b"\n", True, [(0, 0), (1, 0), (2, 0)]),
    ([b"ERROR"], b"error\nErRoR\nERROR", b"\n", False, [(2, 0)]),
    ([b"\xff\xfe"], b"\xff\xfe\n\xfe\xff", b"\n", False, [(0, 0)]),
    ([b"a"], b"\n\na\n\n", b"\n", False, [(2, 0)]),
    ([b"a"], b"", b"\n", False, []),
    ([], b"anything\n", b"\n", False, []),
]


@pytest.mark.parametrize(("patterns", "data", "sep", "icase", "expected"), CASES)
def test_named_cases(patterns: list[bytes], data: bytes, sep: bytes, icase: bool, expected: Pairs) -> None:
    assert check_all_ways(patterns, data, sep, icase) == expected


def test_str_and_bytes_patterns_match_the_same_bytes() -> None:
    m = Matcher(["é", b"\xc3\xa9", "plain"])
    assert pairs_of(m.match_lines("café plain".encode())) == [(0, 0), (0, 1), (0, 2)]
    assert m.patterns == ["é", b"\xc3\xa9", "plain"]
    assert m.pattern(1) == b"\xc3\xa9"
    assert len(m) == 3
    with pytest.raises(IndexError, match="pattern id 3 is out of range"):
        m.pattern(3)


def test_empty_pattern_is_rejected_with_its_index() -> None:
    with pytest.raises(ValueError, match="pattern 1 is empty"):
        Matcher([b"a", b""])


def test_engine_choice_and_its_errors() -> None:
    many = [f"keyword-{i}".encode() for i in range(100)]
    assert Matcher(many).engine == "hashed"
    assert Matcher([*many, b"root"], ascii_case_insensitive=True).engine == "hashed"
    assert Matcher(many[:10]).engine == "automaton", "few patterns: the automaton's own prefilters win"
    assert Matcher([*many, b"ab"]).engine == "automaton", "a pattern shorter than 4 bytes"
    assert Matcher(many, engine="automaton").engine == "automaton"
    assert Matcher([b"abcd"], engine="hashed").engine == "hashed"
    with pytest.raises(ValueError, match="pattern 1 is 2 bytes; the hashed engine needs patterns of at least 4 bytes"):
        Matcher([b"abcd", b"ab"], engine="hashed")
    with pytest.raises(ValueError, match="engine \"fast\" is not one of"):
        Matcher([b"abcd"], engine="fast")  # type: ignore[arg-type]


def test_bad_arguments_get_clear_errors() -> None:
    with pytest.raises(TypeError, match="pattern 1 is int"):
        Matcher([b"a", 5])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a single string"):
        Matcher("abc")  # type: ignore[arg-type]
    m = Matcher([b"a"])
    with pytest.raises(ValueError, match="sep must be exactly one byte"):
        m.match_lines(b"a", b"\r\n")
    with pytest.raises(TypeError, match="buffer must be a bytes-like object"):
        m.match_lines("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a Polars Series or an Arrow string array"):
        m.match_column(["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Arrow format 'l'"):
        m.match_column(pl.Series([1, 2]))
    with pytest.raises(TypeError, match="dictionary-encoded"):
        m.match_column(pl.Series(["a", "b"], dtype=pl.Categorical))


def test_buffer_protocol_objects_are_read_in_place(tmp_path: Path) -> None:
    data = b"one ssh\ntwo\nthree sshd\n"
    m = Matcher([b"ssh", b"sshd"])
    expected = [(0, 0), (2, 0), (2, 1)]
    assert pairs_of(m.match_lines(bytearray(data))) == expected
    assert pairs_of(m.match_lines(memoryview(data))) == expected
    assert pairs_of(m.match_lines(memoryview(b"xx" + data)[2:])) == expected
    path = tmp_path / "log"
    path.write_bytes(data)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert pairs_of(m.match_lines(mapped)) == expected
        assert count_lines(mapped) == 3


def test_a_10_mb_line_and_no_trailing_newline() -> None:
    line = b"x" * 5_000_000 + b"needle" + b"y" * 5_000_000
    data = b"first needle\n" + line + b"\nlast"
    m = Matcher([b"needle", b"last", b"xy"])
    assert pairs_of(m.match_lines(data)) == [(0, 0), (1, 0), (2, 1)]
    assert pairs_of(m.match_lines(data, parallel=False)) == [(0, 0), (1, 0), (2, 1)]
    assert m.any_lines(data).tolist() == [True, True, True]


def test_empty_lines_and_empty_input() -> None:
    m = Matcher([b"a"])
    assert pairs_of(m.match_lines(b"")) == []
    assert m.any_lines(b"").tolist() == []
    assert m.any_lines(b"\n\n\na").tolist() == [False, False, False, True]
    assert count_lines(b"") == 0 and count_lines(b"\n") == 1 and count_lines(b"a\n\nb") == 3


def test_100k_patterns_agree_with_the_pyahocorasick_twin() -> None:
    patterns = [f"10.{i // 256 % 256}.{i % 256}.{i // 65536}".encode() for i in range(100_000)]
    patterns += [b"10.0.0.1", b"10.0.0"]  # a duplicate and a prefix of many
    data = b"\n".join(
        f'{{"ip":"10.{i % 256}.{i * 7 % 256}.{i % 3}","n":{i}}}'.encode() for i in range(3_000)
    )
    m = Matcher(patterns)
    expected = pyaho_pairs(patterns, data)
    assert len(expected) > 1_000
    assert pairs_of(m.match_lines(data)) == expected


def test_parallel_chunks_give_the_sequential_answer() -> None:
    data = corpus.generate(12_000_000, seed=3)  # several 4 MB chunks
    patterns = corpus.patterns(2_000, seed=3)
    m = Matcher(patterns)
    assert m.engine == "hashed"
    seq = m.match_lines(data, parallel=False)
    par = m.match_lines(data)
    assert len(seq[0]) > 1_000
    assert np.array_equal(seq[0], par[0]) and np.array_equal(seq[1], par[1])
    by_automaton = Matcher(patterns, engine="automaton").match_lines(data)
    assert np.array_equal(seq[0], by_automaton[0]) and np.array_equal(seq[1], by_automaton[1])
    assert np.array_equal(m.any_lines(data), m.any_lines(data, parallel=False))
    # And both agree with pyahocorasick on a slice of whole lines.
    head = data[: data.index(b"\n", 500_000) + 1]
    assert pairs_of(m.match_lines(head)) == pyaho_pairs(patterns, head)


def test_many_threads_share_one_matcher() -> None:
    data = corpus.generate(1_000_000, seed=5)
    m = Matcher(corpus.patterns(500, seed=5), ascii_case_insensitive=True)
    expected = pairs_of(m.match_lines(data, parallel=False))
    barrier = threading.Barrier(4)

    def work(_: int) -> Pairs:
        barrier.wait()
        return pairs_of(m.match_lines(data))

    with ThreadPoolExecutor(4) as pool:
        assert all(r == expected for r in pool.map(work, range(4)))


def test_select_lines_returns_the_asked_lines_in_order() -> None:
    data = b"zero\none\n\nthree"
    assert select_lines(data, np.array([3, 0, 2, 3], dtype=np.uint32)) == [b"three", b"zero", b"", b"three"]
    assert select_lines(data, [1]) == [b"one"]
    assert select_lines(b"a;b", [1], b";") == [b"b"]
    with pytest.raises(ValueError, match=r"line index 4 \(position 0\) is out of range: the buffer has 4 lines"):
        select_lines(data, [4])
    with pytest.raises(ValueError, match="line index -1"):
        select_lines(data, [-1])


@given(st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=30), st.booleans(), st.data())
def test_line_spans_are_the_places_of_select_lines(lines: list[bytes], trailing: bool, data: st.DataObject) -> None:
    buffer = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    n = count_lines(buffer)
    wanted = data.draw(st.lists(st.integers(0, n - 1), max_size=20)) if n else []
    starts, lengths = line_spans(buffer, np.array(wanted, dtype=np.uint32))
    assert starts.dtype == np.uint64 and lengths.dtype == np.uint64
    assert [buffer[a:a + b] for a, b in zip(starts.tolist(), lengths.tolist())] == select_lines(buffer, wanted)
    with pytest.raises(ValueError, match="out of range"):
        line_spans(buffer, [n])


def test_select_lines_picks_what_match_lines_found() -> None:
    data = corpus.generate(200_000, seed=1)
    m = Matcher([b"Failed password"])
    lines, _ = m.match_lines(data)
    chosen = select_lines(data, lines)
    assert chosen and all(b"Failed password" in line for line in chosen)
    assert chosen == [line for line in split_lines(data, b"\n") if b"Failed password" in line]


def test_match_column_reads_every_arrow_string_layout() -> None:
    pa = pytest.importorskip("pyarrow")
    rows = ["sshd accepted", None, "x" * 20 + "ssh", "", "nothing"]
    expected = [(0, 0), (0, 1), (2, 0)]
    m = Matcher(["ssh", "sshd"])
    for column in (
        pl.Series(rows),
        pl.Series(["pad", *rows])[1:],  # a sliced Series: non-zero Arrow offset
        pa.array(rows, pa.string()),
        pa.array(rows, pa.large_string()),
        pa.array(rows, pa.string_view()),
        pa.array([r.encode() if r is not None else None for r in rows], pa.binary()),
        pa.chunked_array([rows[:2], rows[2:]]),
        pa.array(["pad", *rows], pa.string()).slice(1),
    ):
        assert pairs_of(m.match_column(column)) == expected, column.type if hasattr(column, "type") else column
        assert m.any_column(column).tolist() == [True, False, True, False, False]


def test_a_struct_column_is_rejected_with_the_reason() -> None:
    pa = pytest.importorskip("pyarrow")
    with pytest.raises(TypeError, match="struct/list: pass one column"):
        Matcher(["a"]).match_column(pa.chunked_array([pa.array([{"a": "x"}])]))


def test_corpus_is_deterministic_valid_ndjson() -> None:
    import json

    a = corpus.generate(300_000, seed=11)
    assert a == corpus.generate(300_000, seed=11)
    assert a != corpus.generate(300_000, seed=12)
    assert len(a) <= 300_000 and a.endswith(b"\n")
    sources = {json.loads(line).get("source") for line in a.splitlines()}
    assert {"sshd", "nginx", "cloudtrail", "kubernetes.audit"} <= sources
    hits = Matcher(corpus.patterns(2_000, seed=11)).match_lines(a)
    assert len(hits[0]) > 0


def test_long_columns_split_into_parallel_runs_keep_row_numbers() -> None:
    pa = pytest.importorskip("pyarrow")
    base = corpus.generate(10_000_000, seed=4).decode().splitlines()
    rows = (base * (150_000 // len(base) + 1))[:150_000]  # more than two 65,536-row runs
    assert len(rows) == 150_000
    m = Matcher(corpus.patterns(2_000, seed=4))
    by_lines = m.match_lines("\n".join(rows).encode())
    for column in (pl.Series(rows), pa.chunked_array([rows[:70_000], rows[70_000:]])):
        got = m.match_column(column)
        assert np.array_equal(got[0], by_lines[0]) and np.array_equal(got[1], by_lines[1])
        assert m.any_column(column).tolist() == m.any_lines("\n".join(rows).encode()).tolist()


@pytest.mark.slow
def test_a_million_patterns_build_and_match() -> None:
    patterns = [f"{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}|{i}".encode() for i in range(1_000_000)]
    m = Matcher(patterns)
    assert m.engine == "automaton"  # beyond the hashed engine's 200,000
    data = b"\n".join(b"x " + patterns[i] + b" tail" for i in range(0, 1_000_000, 997))
    expected = pyaho_pairs(patterns, data)
    assert len(expected) >= 1_000_000 // 997
    assert pairs_of(m.match_lines(data)) == expected
