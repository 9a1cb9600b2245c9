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

from secmon._core import extract_fields, line_spans

# ``__status`` of rows the native table keeps; every other status is parsed in Python.
STATUS_OK = 0
# ``__status`` of valid JSON objects whose normalization only Python reproduces.
NEEDS_PYTHON = 5


@dataclass(frozen=True)
class NativeBatch:
    """Candidate lines of one chunk split between the native table and the Python parser."""

    table: pl.DataFrame  # event-table columns (the engine's paths) + ``timestamp`` Int64 + ``__line``
    python_lines: np.ndarray  # uint32 line indices to parse in Python
    # Where each table row's line is in the chunk: start offsets and lengths (uint64).
    starts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    lengths: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))


def split_native(data: bytes, line_idx: np.ndarray, paths: Sequence[str], max_line_bytes: int) -> NativeBatch:
    """Extract and normalize ``line_idx`` (ascending) natively; lines the native table cannot
    hold exactly are returned for the Python parser."""
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
    frame = pl.DataFrame(extract_fields(data, list(paths), line_idx, normalize=True))
    ok = frame["__status"] == STATUS_OK
    keep = frame.filter(ok)
    back = frame.filter(~ok)["__line"].to_numpy().astype(np.uint32)
    python_lines = np.sort(np.concatenate((python_idx, back))).astype(np.uint32)
    columns = [pl.col("timestamp").cast(pl.Int64).alias("timestamp")]
    columns += [pl.col(p) for p in paths if p != "timestamp"]
    at = np.searchsorted(line_idx, keep["__line"].to_numpy())
    return NativeBatch(keep.select(*columns, pl.col("__line")), python_lines, starts[at], lengths[at])
