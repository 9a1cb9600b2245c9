"""The native fast path for NDJSON lines: event-table rows straight from bytes.

``secmon._core.extract_fields(..., normalize=True)`` turns candidate lines into event-table columns
(no Python object per value) *with* ingest's record normalization: CloudTrail records, Kubernetes
audit events and generic records get their timestamp (ISO 8601 or epoch) and standard attributes
(``evt.name``, ``network.client.ip``, ``usr.name``, ``status`` words, ``msg``/``hostname``/
``ddsource`` aliases, ...) exactly as ``to_frame([normalize_record(orjson.loads(line))])`` would
give them. Every line it cannot reproduce exactly (status ``NEEDS_PYTHON``: odd timestamps, a
scalar in the way of a nested attribute, repeated or escaped keys, maybe-IPv6 addresses, record
lists), and every malformed, blank, non-object, invalid-UTF-8 or over-long line, goes back to the
Python parser, which also counts and reports the rejects. Tests compare both paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from secmon._core import ExtractedBatch, FlagProgram, extract_fields, line_spans

# ``__status`` of rows the native table keeps; every other status is parsed in Python.
STATUS_OK = 0
# ``__status`` of valid JSON objects whose normalization only Python reproduces.
NEEDS_PYTHON = 5


@dataclass(frozen=True)
class NativeBatch:
    """Candidate lines of one chunk split between the native table and the Python parser."""

    table: pl.DataFrame  # event-table columns + ``timestamp`` Int64 (+ flags) + ``__line``
    python_lines: np.ndarray  # uint32 line indices to parse in Python
    # Where each table row's line is in the chunk: start offsets and lengths (uint64).
    starts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    lengths: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    # The events the extractor read (rows of status ok); the table holds all of them, or with
    # flags only those some rule flag is set for, ``rows`` giving each one's index among them.
    events: int = 0
    rows: np.ndarray | None = None


def split_native(
    data: bytes,
    line_idx: np.ndarray,
    paths: Sequence[str],
    max_line_bytes: int,
    flags: FlagProgram | None = None,
    keep: Sequence[str] = (),
) -> NativeBatch:
    """Extract and normalize ``line_idx`` (ascending) natively; lines the native table cannot
    hold exactly are returned for the Python parser.

    With ``flags``, the rule flags are evaluated natively too, and the table holds only the events
    some flag is set for, with the ``timestamp``, ``keep`` and flag columns."""
    if line_idx.size == 0:
        return NativeBatch(pl.DataFrame(), line_idx)
    line_idx = line_idx.astype(np.uint32, copy=False)
    # The candidates' places: for the engine's references to kept lines, and to send over-long
    # lines to the parser (which rejects them) from the candidates alone. A pass over every byte
    # of the chunk for its newlines cost more than the extraction of some chunks.
    starts, lengths = line_spans(data, line_idx)
    too_long = lengths > max_line_bytes
    python_idx = line_idx[too_long]
    if python_idx.size:
        line_idx, starts, lengths = line_idx[~too_long], starts[~too_long], lengths[~too_long]
    if line_idx.size == 0:
        return NativeBatch(pl.DataFrame(), python_idx)
    batch = extract_fields(data, list(paths), line_idx, normalize=True, flags=flags)
    ok = batch.statuses() == STATUS_OK
    python_lines = np.sort(np.concatenate((python_idx, batch.line_numbers()[~ok]))).astype(np.uint32)
    rows = None
    if flags is None:
        frame = pl.DataFrame(batch)
        columns = [pl.col("timestamp").cast(pl.Int64), *(pl.col(p) for p in paths if p != "timestamp")]
        kept = frame.select(*columns, pl.col("__line")).filter(pl.Series(ok))
        events = kept.height
    else:
        matched = batch.matched_rows()
        events = int(ok.sum())
        rows = (np.cumsum(ok, dtype=np.int64) - 1)[matched]
        kept = gathered_rows(batch, matched, keep, flags)
    at = np.searchsorted(line_idx, kept["__line"].to_numpy())
    return NativeBatch(kept, python_lines, starts[at], lengths[at], events, rows)


def gathered_rows(batch: ExtractedBatch, rows: np.ndarray, keep: Sequence[str], flags: FlagProgram) -> pl.DataFrame:
    """Rows ``rows`` of ``batch`` with the ``timestamp`` (Int64), the ``keep`` paths, the flags and
    ``__line``, gathered natively into buffers of their own (``ExtractedBatch.select``): the
    kept rows of a chunk without Polars filtering every column and without the chunk's text."""
    names = [p for p in keep if p != "timestamp"] + list(flags.names)
    picked = pl.DataFrame(batch.select(rows.astype(np.uint32, copy=False), ["timestamp", *names]))
    return picked.select(pl.col("timestamp").cast(pl.Int64), *names, "__line")
