"""Benchmark ``Matcher.match_lines``: every (line, pattern) pair of NDJSON logs, 2,000 patterns.

Contenders, each in a fresh process on the same seeded corpus file:
- ``secmon``: ``match_lines`` over the mmapped file, default (parallel over chunks of lines);
- ``secmon 1 thread``: the same with ``parallel=False``;
- ``pyahocorasick per line``: the usual Python way, ``Automaton.iter`` over each line, a set per line;
- ``python naive loop`` (smoke only): ``pattern in line`` for every line and pattern.

Every contender answers (pair count, checksum of the pairs); the run fails unless all agree.

A second table times ``any_lines`` (the detection engine's prefilter: does any pattern occur in
the line?) on the same corpus, single-threaded, hashed engine against the automaton engine and
pyahocorasick stopping at the first hit of each line; answers are (flagged lines, checksum).
Times are of the matching alone, measured inside the child: building each automaton (and, for
the Python contenders, nothing else) is excluded and reported in the notes. Peak memory is the
whole child process. Targets: >= 20x pyahocorasick per line, >= 1 GB/s single-threaded.
"""

from __future__ import annotations

import bisect
import mmap
import os
import time
from dataclasses import replace
from typing import Any, Literal

from benchmarks import corpus
from benchmarks.harness import Measurement, Table, cpu_note, measure_python

SEED = 2024
N_PATTERNS = 2_000
FULL_BYTES = 250_000_000
SMOKE_BYTES = 2_000_000
CHECK_MOD = (1 << 61) - 1


def _checksum_pairs(lines: object, patterns: object) -> tuple[int, int]:
    import numpy as np

    li = np.asarray(lines, dtype=np.uint64)
    pi = np.asarray(patterns, dtype=np.uint64)
    # Sum of (line * 2^20 + pattern) over all pairs, mod a Mersenne prime: order-free and cheap.
    keyed = (li << np.uint64(20)) | pi
    return len(li), int(keyed.sum(dtype=np.uint64)) % CHECK_MOD


# Each contender returns ((pair count, checksum), seconds building, seconds matching, CPU
# seconds matching). CPU time is reported beside wall time because the benchmark machine may be
# shared: wall time then measures the neighbours as much as the code.
Timed = tuple[tuple[int, int], float, float, float]


def secmon_match_lines(
    path: str, parallel: bool, engine: Literal["auto", "automaton", "hashed"] = "auto"
) -> Timed:
    # The first numpy array the extension returns imports numpy (~0.1 s); do it before timing.
    import numpy  # noqa: F401

    from secmon import Matcher

    patterns = corpus.patterns(N_PATTERNS, SEED)
    started = time.perf_counter()
    matcher = Matcher(patterns, engine=engine)
    built = time.perf_counter()
    cpu = time.process_time()
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        lines, pats = matcher.match_lines(data, parallel=parallel)
    # Clocks first: the checksum is the benchmark's bookkeeping, not matching.
    seconds, cpu_seconds = time.perf_counter() - built, time.process_time() - cpu
    return _checksum_pairs(lines, pats), built - started, seconds, cpu_seconds


def secmon_any_lines(path: str, engine: Literal["auto", "automaton", "hashed"] = "auto") -> Timed:
    import numpy as np

    from secmon import Matcher

    patterns = corpus.patterns(N_PATTERNS, SEED)
    started = time.perf_counter()
    matcher = Matcher(patterns, engine=engine)
    built = time.perf_counter()
    cpu = time.process_time()
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        flags = matcher.any_lines(data, parallel=False)
    seconds, cpu_seconds = time.perf_counter() - built, time.process_time() - cpu
    flagged = np.flatnonzero(flags).astype(np.uint64)
    answer = (len(flagged), int(flagged.sum(dtype=np.uint64)) % CHECK_MOD)
    return answer, built - started, seconds, cpu_seconds


def _pyahocorasick_automaton() -> tuple[Any, float, float]:
    """The baseline's automaton over the benchmark patterns, and when its build started/ended."""
    import ahocorasick

    patterns = corpus.patterns(N_PATTERNS, SEED)
    started = time.perf_counter()
    automaton = ahocorasick.Automaton()
    for pid, pattern in enumerate(patterns):
        automaton.add_word(pattern.decode(), pid)
    automaton.make_automaton()
    return automaton, started, time.perf_counter()


def pyahocorasick_any_per_line(path: str) -> Timed:
    automaton, started, built = _pyahocorasick_automaton()
    cpu = time.process_time()
    count = 0
    total = 0
    with open(path, "rb") as fh:
        for li, raw in enumerate(fh):
            if next(automaton.iter(raw.decode()), None) is not None:
                count += 1
                total += li
    return (count, total % CHECK_MOD), built - started, time.perf_counter() - built, time.process_time() - cpu


def pyahocorasick_per_line(path: str) -> Timed:
    automaton, started, built = _pyahocorasick_automaton()
    cpu = time.process_time()
    count = 0
    total = 0
    with open(path, "rb") as fh:
        for li, raw in enumerate(fh):
            found = {pid for _, pid in automaton.iter(raw.decode())}
            count += len(found)
            total += sum((li << 20) | pid for pid in found)
    return (count, total % CHECK_MOD), built - started, time.perf_counter() - built, time.process_time() - cpu


def python_find_per_pattern(path: str) -> Timed:
    """The obvious twin: ``bytes.find`` of each pattern over the whole file, hits mapped to lines."""
    patterns = corpus.patterns(N_PATTERNS, SEED)
    started = time.perf_counter()
    cpu = time.process_time()
    with open(path, "rb") as fh:
        data = fh.read()
    line_starts = [0] + [i + 1 for i in range(len(data)) if data[i] == 10]  # noqa: PLR2004
    pairs: set[tuple[int, int]] = set()
    for pid, pattern in enumerate(patterns):
        at = data.find(pattern)
        while at != -1:
            pairs.add((bisect.bisect_right(line_starts, at) - 1, pid))
            at = data.find(pattern, at + 1)
    total = sum((li << 20) | pid for li, pid in pairs)
    return (len(pairs), total % CHECK_MOD), 0.0, time.perf_counter() - started, time.process_time() - cpu


def _measure(name: str, target: str, *args: Any) -> tuple[Measurement, float, float]:
    """Run a contender in a fresh process; keep its matching time, return build and CPU time."""
    m = measure_python(name, target, *args)
    answer, build_seconds, match_seconds, cpu_seconds = m.answer
    return replace(m, seconds=match_seconds, answer=answer), build_seconds, cpu_seconds


def run(smoke: bool) -> list[Table]:
    size = SMOKE_BYTES if smoke else FULL_BYTES
    path = corpus.cached_corpus(size, SEED)
    n_bytes = os.path.getsize(path)
    with open(path, "rb") as fh:
        n_lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 24), b""))
    table = Table(
        title=f"match_lines: {n_bytes / 1e6:,.0f} MB NDJSON, {n_lines:,} lines, {N_PATTERNS:,} patterns",
        reference="secmon",
        bytes_processed=n_bytes,
        items_processed=n_lines,
        item_unit="lines",
    )
    builds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    contenders = [
        ("secmon", "benchmarks.bench_matcher:secmon_match_lines", (str(path), True)),
        ("secmon 1 thread", "benchmarks.bench_matcher:secmon_match_lines", (str(path), False)),
        (
            "secmon 1 thread, automaton engine",
            "benchmarks.bench_matcher:secmon_match_lines",
            (str(path), False, "automaton"),
        ),
        ("pyahocorasick per line", "benchmarks.bench_matcher:pyahocorasick_per_line", (str(path),)),
    ]
    if smoke:
        contenders.append(("python bytes.find per pattern", "benchmarks.bench_matcher:python_find_per_pattern", (str(path),)))
    load_before = os.getloadavg()[0]
    for name, target, args in contenders:
        measurement, builds[name], cpu[name] = _measure(name, target, *args)
        table.add(measurement)
    table.assert_agree()
    pairs = table.rows[0].answer[0]
    single = next(r for r in table.rows if r.name == "secmon 1 thread")
    single_gbs = n_bytes / single.seconds / 1e9
    single_cpu_gbs = n_bytes / cpu["secmon 1 thread"] / 1e9
    aho = "pyahocorasick per line"
    vs_aho = table.ratio(aho) * table.rows[0].seconds / single.seconds
    vs_aho_cpu = cpu[aho] / cpu["secmon 1 thread"]
    table.notes.append(
        f"{pairs:,} (line, pattern) pairs, identical for every contender. Patterns: ~10% attacker IPs that occur, "
        f"~15% rule keywords and IOC domains, the rest IOC IPs that never occur; corpus seed {SEED}; {cpu_note()}."
    )
    table.notes.append(
        "Times are matching only; automaton builds took "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in builds.items() if seconds)
        + "."
    )
    table.notes.append(
        "CPU time of the matching (all threads), MB/s of CPU time: "
        + ", ".join(f"{name} {seconds:.3f} s ({n_bytes / seconds / 1e6:,.0f})" for name, seconds in cpu.items())
        + f". Load average before / after the run: {load_before:.1f} / {os.getloadavg()[0]:.1f}."
    )
    table.notes.append(
        f"Targets, wall time: single-threaded {single_gbs:.2f} GB/s (>= 1 GB/s: {'met' if single_gbs >= 1 else 'NOT met'}), "
        f"{vs_aho:.1f}x pyahocorasick per line (>= 20x: {'met' if vs_aho >= 20 else 'NOT met'}). "
        f"CPU time: {single_cpu_gbs:.2f} GB/s ({'met' if single_cpu_gbs >= 1 else 'NOT met'}), "
        f"{vs_aho_cpu:.1f}x ({'met' if vs_aho_cpu >= 20 else 'NOT met'})."
    )
    return [table, _any_lines_table(str(path), n_bytes, n_lines)]


def _any_lines_table(path: str, n_bytes: int, n_lines: int) -> Table:
    table = Table(
        title=f"any_lines, 1 thread: {n_bytes / 1e6:,.0f} MB NDJSON, {n_lines:,} lines, {N_PATTERNS:,} patterns",
        reference="secmon any_lines 1 thread",
        bytes_processed=n_bytes,
        items_processed=n_lines,
        item_unit="lines",
    )
    cpu: dict[str, float] = {}
    contenders = [
        ("secmon any_lines 1 thread", "benchmarks.bench_matcher:secmon_any_lines", (path,)),
        ("secmon any_lines 1 thread, automaton engine", "benchmarks.bench_matcher:secmon_any_lines", (path, "automaton")),
        ("pyahocorasick first hit per line", "benchmarks.bench_matcher:pyahocorasick_any_per_line", (path,)),
    ]
    load_before = os.getloadavg()[0]
    for name, target, args in contenders:
        measurement, _, cpu[name] = _measure(name, target, *args)
        table.add(measurement)
    table.assert_agree()
    table.notes.append(
        f"{table.rows[0].answer[0]:,} lines hold a pattern, the same for every contender. CPU time (MB/s of CPU time): "
        + ", ".join(f"{name} {seconds:.3f} s ({n_bytes / seconds / 1e6:,.0f})" for name, seconds in cpu.items())
        + f". Load average before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}."
    )
    return table
