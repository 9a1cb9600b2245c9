"""The kept rows of a scan, spilled to disk as they come so memory does not grow with the input.

Each input chunk leaves a small table: the rows some rule query matched, with the timestamp, the
values detection reads, one flag per query, the event id and the event's place in the
:class:`~secmon.detect.event_store.EventStore`. Held in memory, these tables were most of a scan's
peak memory (measured: 2.1 GB for a 1 GB input, 8.7 GB for 5 GB). Buffered up to BUFFER_BYTES and
then written as uncompressed Arrow IPC files instead, one per rule with the rule's rows and columns
only, they cost a few sequential writes per spill; detection then reads, rule by rule, only that
rule's files, so the working set is one rule's matches (or one slice of them), not every rule's.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.detect.rule_frame import EID, LEN, REF, TS, GroupSlice, bucket_of, group_values


MAX_PENDING_WRITES = 1  # chunks' kept rows waiting for the writer thread (bounded memory)
BUFFER_BYTES = 16 << 20  # kept rows held per scan before they are written, all rules together
PASS_BYTES = 8 << 20  # a rule's kept files read at a time when slicing it: about this many bytes
BUCKETS_PER_SLICE = 16  # hash buckets a slice is made of: the grain slices are balanced with


def pack_buckets(rows: np.ndarray, slices: int) -> list[tuple[int, ...]]:
    """Hash buckets (``rows[b]`` rows in bucket ``b``) packed into at most ``slices`` slices,
    each bucket into the lightest slice so far, heaviest bucket first. A group is never split,
    but a few heavy groups no longer share one slice by the luck of the hash (seven users in
    four slices put five of them in one: 297k of a 5 GB input's 355k rows). Empty buckets are
    left out, and so are slices that get no bucket."""
    loads = [0] * slices
    members: list[list[int]] = [[] for _ in range(slices)]
    for bucket in np.argsort(-rows, kind="stable").tolist():
        if rows[bucket] == 0:
            break
        lightest = loads.index(min(loads))
        members[lightest].append(bucket)
        loads[lightest] += int(rows[bucket])
    return [tuple(sorted(m)) for m in members if m]


def _batches_of(files: list[str], limit: int) -> list[list[str]]:
    """``files`` in order, cut into runs of about ``limit`` bytes (a bigger file is a run alone)."""
    batches: list[list[str]] = [[]]
    size = 0
    for path in files:
        nbytes = os.path.getsize(path)
        if batches[-1] and size + nbytes > limit:
            batches.append([])
            size = 0
        batches[-1].append(path)
        size += nbytes
    return batches if batches[-1] else []


def _compact(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` in buffers of their own. A filtered frame's string columns still point into the
    buffers of the whole chunk they came from: held, a few kept rows held all of them (measured:
    +350 MB of peak memory at 1M events). An Arrow IPC round trip in memory copies out only what
    the rows use."""
    buffer = io.BytesIO()
    rows.write_ipc(buffer, compression="uncompressed")
    return pl.read_ipc(buffer.getvalue())


class KeptRows:
    """Append-only kept-row tables of one scan, in a temporary directory (removed by ``close``).

    Each spill writes the buffered rows once per rule that matched some of them, with that rule's
    columns only: detection then reads a rule's own rows and nothing else. One file per spill
    with every rule's rows and flags made each rule scan every kept row, and what a scan reads
    stays in the allocator's hands for a while: on a 5 GB input that was what made detection's
    peak memory grow with the input."""

    def __init__(self, schema: dict[str, pl.DataType], rules: Sequence[CompiledRule], directory: str | None = None) -> None:
        self.schema = schema
        self._rules = [rule for rule in rules if any(flag in schema for flag in rule.flag_columns)]
        self._dir = tempfile.TemporaryDirectory(dir=directory, prefix="secmon-kept-")
        self._files: dict[int, list[str]] = {}  # rule index -> its files
        # Rows wait in memory until BUFFER_BYTES of them do: then each rule's are written as one
        # file. A file per chunk and rule was 594 files at 1M events: creating and removing them
        # (the filesystem's inode work, Polars' writer setup) cost 0.5 s of CPU, and splitting
        # each chunk's rows by rule made the writer thread the slowest stage of the scan.
        self._buffer: list[pl.DataFrame] = []
        self._buffered_bytes = 0
        self._buffered_flags: set[str] = set()  # flags set on some buffered row
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

    def add(self, rows: pl.DataFrame, *, own_buffers: bool = False) -> None:
        """Keep ``rows`` (written in the background, in order; read methods wait for them).
        ``own_buffers``: their columns hold no text of other rows (they were gathered natively,
        ``ExtractedBatch.select``), so they are kept without a copy."""
        if rows.height == 0:
            return
        self.height += rows.height
        self._pending.append(self._writer.submit(self._write, rows, own_buffers))
        while len(self._pending) > MAX_PENDING_WRITES:
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait until every added row is written (a failed write raises here)."""
        while self._pending:
            self._pending.popleft().result()
        self._spill()

    @property
    def flag_rows(self) -> dict[str, int]:
        self.flush()
        return self._flag_rows

    def _write(self, rows: pl.DataFrame, own_buffers: bool = False) -> None:
        # One schema for every part of a rule, so one scan reads them all.
        rows = rows.select([pl.col(name).cast(dtype) for name, dtype in self.schema.items()])
        if not own_buffers:
            rows = _compact(rows)
        counts = rows.select(pl.col(pl.Boolean).sum()).row(0, named=True)
        for flag, count in counts.items():
            self._flag_rows[flag] = self._flag_rows.get(flag, 0) + count
            if count:
                self._buffered_flags.add(flag)
        self._buffer.append(rows)
        self._buffered_bytes += int(rows.estimated_size())
        if self._buffered_bytes >= BUFFER_BYTES:
            self._spill()

    def _spill(self) -> None:
        """Write the buffered rows, one file per rule that matched some, with its rows and columns."""
        if not self._buffer:
            return
        rows = pl.concat(self._buffer, rechunk=False)
        matched, self._buffered_flags = self._buffered_flags, set()
        self._buffer.clear()
        self._buffered_bytes = 0
        for rule in self._rules:
            flags = self._flags(rule)
            if matched.isdisjoint(flags):
                continue  # none of its rows in this spill
            part = rows.select(self._columns(rule)).filter(pl.any_horizontal(flags))  # gathers its columns only
            files = self._files.setdefault(rule.index, [])
            path = str(Path(self._dir.name) / f"rule{rule.index}-{len(files):07d}.arrow")
            part.write_ipc(path, compression="uncompressed")
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
        """The rows ``compiled`` matched, one slice of its groups at a time (at most ``count``
        slices, balanced by rows; a row two queries put in two slices is in both, and the rule
        frame keeps each query's own).

        A first pass counts each query's rows per hash bucket of its group-by values (reading
        those columns only) and packs the buckets into slices; a second writes each slice's rows
        to files of its own, about ``PASS_BYTES`` of kept files at a time; then each slice is
        read alone. Scanning every kept file once per slice instead cost a pass per slice, and a
        scan's transient memory grows with what it reads (16 files a pass held 16 spills' rows
        once a file held a whole spill's: 5 GB of input peaked 25% above 1 GB). A slice's files
        are removed when the consumer asks for the next slice."""
        self.flush()
        files = self._files.get(compiled.index)
        if not files:
            return
        buckets = count * BUCKETS_PER_SLICE
        # Per query: its flag and the bucket of its own group-by values (column ``__b{i}``).
        queries = [(i, compiled.flag_column(i)) for i in range(len(compiled.queries)) if compiled.flag_column(i) in self.schema]
        bucket_ids = [
            bucket_of(group_values(self.schema, compiled.queries[i]), buckets).alias(f"__b{i}") for i, _ in queries
        ]
        batches = _batches_of(files, PASS_BYTES)
        rows = np.zeros(buckets, dtype=np.int64)
        for batch in batches:
            ids = self._scan(batch).select(*(pl.col(flag) for _, flag in queries), *bucket_ids).collect()
            for i, flag in queries:
                rows += np.bincount(ids.filter(pl.col(flag))[f"__b{i}"].to_numpy(), minlength=buckets)
            del ids
        slices = [GroupSlice(members, buckets) for members in pack_buckets(rows, count)]
        slice_files: list[list[str]] = [[] for _ in slices]
        for n, batch in enumerate(batches):
            kept = self._scan(batch).with_columns(bucket_ids).collect()
            for k, groups_slice in enumerate(slices):
                part = kept.filter(pl.any_horizontal([pl.col(flag) & pl.col(f"__b{i}").is_in(groups_slice.buckets) for i, flag in queries]))
                if part.height:
                    path = str(Path(self._dir.name) / f"rule{compiled.index}-slice{k}-{n}.arrow")
                    part.drop(f"__b{i}" for i, _ in queries).write_ipc(path, compression="uncompressed")
                    slice_files[k].append(path)
            del kept
        for groups_slice, paths in zip(slices, slice_files):
            if paths:
                yield groups_slice, self._scan(paths)
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
