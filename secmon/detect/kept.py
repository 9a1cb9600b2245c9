"""The kept rows of a scan, spilled to disk as they come so memory does not grow with the input.

Each input chunk leaves a small table: the rows some rule query matched, with the timestamp, the
values detection reads, one flag per query, the event id and the event's place in the
:class:`~secmon.detect.event_store.EventStore`. Held in memory, these tables were most of a scan's
peak memory (measured: 2.1 GB for a 1 GB input, 8.7 GB for 5 GB). Written as uncompressed Arrow
IPC files instead, one per chunk and rule with the rule's rows and columns only, they cost a few
small sequential writes per chunk; detection then reads, rule by rule, only that rule's files, so
the working set is one rule's matches (or one slice of them), not every rule's.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.rule_frame import EID, LEN, REF, TS, GroupSlice, slice_of


MAX_PENDING_WRITES = 1  # chunks' kept rows waiting for the writer thread (bounded memory)
FILES_PER_PASS = 16  # a rule's kept files (one per input chunk) read at a time when slicing it


class KeptRows:
    """Append-only kept-row tables of one scan, in a temporary directory (removed by ``close``).

    Each chunk's rows are written once per rule that matched some of them, with that rule's
    columns only: detection then reads a rule's own rows and nothing else. One file per chunk
    with every rule's rows and flags made each rule scan every kept row, and what a scan reads
    stays in the allocator's hands for a while: on a 5 GB input that was what made detection's
    peak memory grow with the input."""

    def __init__(self, schema: dict[str, pl.DataType], rules: Sequence[CompiledRule], directory: str | None = None) -> None:
        self.schema = schema
        self._rules = [rule for rule in rules if any(flag in schema for flag in rule.flag_columns)]
        self._dir = tempfile.TemporaryDirectory(dir=directory, prefix="secmon-kept-")
        self._files: dict[int, list[str]] = {}  # rule index -> its files
        self.height = 0
        self._flag_rows: dict[str, int] = {}  # rows kept with each flag set
        # Writing a chunk's rows once per rule is a few dozen small Polars calls: a writer thread
        # does them (mostly without the GIL) while the scan builds the next chunk's table, which
        # was the slower of the scan's two stages (measured 1.0 s of 2.8 s at 1M events).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="secmon-kept-writer")
        self._pending: deque[Future[None]] = deque()

    def close(self) -> None:
        for pending in self._pending:
            pending.cancel()
        self._writer.shutdown(wait=True)
        self._pending.clear()
        self._dir.cleanup()

    def __enter__(self) -> KeptRows:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add(self, rows: pl.DataFrame) -> None:
        """Keep ``rows`` (written in the background, in order; read methods wait for them)."""
        if rows.height == 0:
            return
        self.height += rows.height
        self._pending.append(self._writer.submit(self._write, rows))
        while len(self._pending) > MAX_PENDING_WRITES:
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait until every added row is written (a failed write raises here)."""
        while self._pending:
            self._pending.popleft().result()

    @property
    def flag_rows(self) -> dict[str, int]:
        self.flush()
        return self._flag_rows

    def _write(self, rows: pl.DataFrame) -> None:
        # One schema for every part of a rule, so one scan reads them all.
        rows = rows.select([pl.col(name).cast(dtype) for name, dtype in self.schema.items()])
        counts = rows.select(pl.col(pl.Boolean).sum()).row(0, named=True)
        for flag, count in counts.items():
            self._flag_rows[flag] = self._flag_rows.get(flag, 0) + count
        for rule in self._rules:
            flags = self._flags(rule)
            if not any(counts.get(flag) for flag in flags):
                continue
            files = self._files.setdefault(rule.index, [])
            path = str(Path(self._dir.name) / f"rule{rule.index}-{len(files):07d}.arrow")
            rows.filter(pl.any_horizontal(flags)).select(self._columns(rule)).write_ipc(path, compression="uncompressed")
            files.append(path)

    def rule_rows(self, compiled: CompiledRule) -> int:
        """How many kept rows ``compiled`` matched (an event matching two queries counts twice)."""
        return sum(self.flag_rows.get(flag, 0) for flag in compiled.flag_columns)

    def for_rule(self, compiled: CompiledRule) -> pl.LazyFrame:
        """The rows ``compiled`` matched, with only the columns it reads (lazily: the rule frame
        is built from them in one query)."""
        self.flush()
        files = self._files.get(compiled.index)
        if not files:
            return pl.LazyFrame()
        return self._scan(files)

    def rule_slices(self, compiled: CompiledRule, count: int) -> Iterator[tuple[GroupSlice, pl.LazyFrame]]:
        """The rows ``compiled`` matched, one slice of its groups at a time (``count`` slices; a
        row two queries put in two slices is in both, and the rule frame keeps each query's own).

        One pass over the kept files, ``FILES_PER_PASS`` at a time, writes each slice's rows to
        files of its own; then each slice is read alone. Scanning every kept file once per slice
        instead cost a pass per slice, and a scan's transient memory grows with what it reads.
        A slice's files are removed when the consumer asks for the next slice."""
        self.flush()
        files = self._files.get(compiled.index)
        if not files:
            return
        slice_files: list[list[str]] = [[] for _ in range(count)]
        # Per query: its flag and the slice of its own group-by values (column ``__s{i}``).
        queries = [(i, cq) for i, cq in enumerate(compiled.queries) if compiled.flag_column(i) in self.schema]
        slice_ids = [slice_of([pl.col(p).cast(pl.String) for p in cq.group_by], count).alias(f"__s{i}") for i, cq in queries]
        for start in range(0, len(files), FILES_PER_PASS):
            rows = self._scan(files[start:start + FILES_PER_PASS]).with_columns(slice_ids).collect()
            for k in range(count):
                part = rows.filter(pl.any_horizontal([pl.col(compiled.flag_column(i)) & (pl.col(f"__s{i}") == k) for i, _ in queries]))
                if part.height:
                    path = str(Path(self._dir.name) / f"rule{compiled.index}-slice{k}-{start}.arrow")
                    part.drop(f"__s{i}" for i, _ in queries).write_ipc(path, compression="uncompressed")
                    slice_files[k].append(path)
            del rows
        for k, paths in enumerate(slice_files):
            if paths:
                yield GroupSlice(k, count), self._scan(paths)
                for path in paths:
                    os.unlink(path)

    def _flags(self, compiled: CompiledRule) -> list[str]:
        return [f for f in compiled.flag_columns if f in self.schema]

    def _columns(self, compiled: CompiledRule) -> list[str]:
        paths = {p for cq in compiled.queries for p in (*cq.group_by, *cq.distinct, *cq.metrics)}
        return [TS, EID, REF, LEN, *sorted(p for p in paths if p in self.schema), *self._flags(compiled)]

    @staticmethod
    def _scan(files: list[str]) -> pl.LazyFrame:
        return pl.scan_ipc(files)
