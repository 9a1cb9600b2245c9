"""The native fast path for NDJSON lines in Datadog's attribute form.

``secmon._core.extract_fields`` turns candidate lines straight into event-table columns (no Python
object per value). That equals ``to_frame([normalize_record(orjson.loads(line))])`` exactly when
ingest's normalization would leave the record as it is apart from parsing ``timestamp``; this
module decides that per line, conservatively, and hands every other line (CloudTrail and
Kubernetes audit records, aliases such as ``msg`` or ``ddsource``, ISO timestamps, malformed or
blank lines, invalid UTF-8, over-long lines) back to the Python parser. Tests compare both paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import orjson
import polars as pl

from secmon._core import Matcher, extract_fields, select_lines

# Canonical values of ingest's status remapper (normalize_status maps each to itself).
CANONICAL_STATUSES = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug", "ok")

# Attributes normalize_generic reads; each must show the record needs no remapping.
_ALIASES: dict[str, tuple[str, ...]] = {
    "message": ("msg", "log"),
    "host": ("hostname", "syslog.hostname"),
    "service": ("syslog.appname", "dd.service"),
    "source": ("ddsource",),
    "tags": ("ddtags",),
    "status": ("severity", "level", "syslog.severity"),
}
_OTHER_DATES = ("_timestamp", "Timestamp", "date", "published_date", "syslog.timestamp")

# Byte strings that send a line to the Python parser: records ingest maps (CloudTrail, Kubernetes
# audit, wrapped record lists), keys spelled with escapes, and the ``@timestamp`` key (the
# extractor drops ``@`` from paths, so it cannot look that key up).
_PYTHON_MARKERS = [b"\\u", b'"@', b'"eventSource"', b'"eventName"', b'"eventTime"', b'"kind"', b'"apiVersion"',
                   b'"Records"', b'"items"']
_MARKERS = Matcher(_PYTHON_MARKERS)

# Epoch milliseconds, as ingest's epoch_to_ms reads a whole number (1e11 <= |v| < 1e14).
_EPOCH_MS = r"^-?(?:[1-9][0-9]{11}|[1-9][0-9]{12})$"


@dataclass(frozen=True)
class NativeBatch:
    """Candidate lines of one chunk split between the native table and the Python parser."""

    table: pl.DataFrame  # event-table columns (the engine's paths) + ``timestamp`` Int64 + ``__line``
    python_lines: np.ndarray  # uint32 line indices to parse in Python


def extraction_paths(paths: Sequence[str]) -> list[str]:
    wanted = dict.fromkeys(p for p in paths if p != "timestamp")
    wanted.update(dict.fromkeys(["timestamp", *_OTHER_DATES]))
    for target, aliases in _ALIASES.items():
        wanted.update(dict.fromkeys([target, *aliases]))
    return list(wanted)


def split_native(data: bytes, line_idx: np.ndarray, paths: Sequence[str], extract: list[str], max_line_bytes: int) -> NativeBatch:
    """Extract ``line_idx`` natively and decide which lines the native table may keep."""
    if line_idx.size == 0:
        return NativeBatch(pl.DataFrame(), line_idx)
    marked = _MARKERS.any_lines(data)
    if len(data) > max_line_bytes:
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A)
        starts = np.concatenate(([0], ends + 1))[: len(marked)]
        stops = np.concatenate((ends, [len(data)]))[: len(marked)]
        marked = marked | ((stops - starts) > max_line_bytes)
    native_idx = line_idx[~marked[line_idx]]
    python_idx = line_idx[marked[line_idx]]
    if native_idx.size == 0:
        return NativeBatch(pl.DataFrame(), python_idx)
    frame = pl.DataFrame(extract_fields(data, extract, native_idx))
    ok = _native_ok(frame)
    keep = frame.filter(ok)
    back = frame.filter(~ok)["__line"].to_numpy().astype(np.uint32)
    python_lines = np.sort(np.concatenate((python_idx, back))).astype(np.uint32)
    columns = [pl.col("timestamp").cast(pl.Int64).alias("timestamp")]
    columns += [pl.col(p) for p in paths if p != "timestamp"]
    return NativeBatch(keep.select(*columns, pl.col("__line")), python_lines)


def _null(frame: pl.DataFrame, name: str) -> pl.Expr:
    return pl.col(name).is_null() if name in frame.columns else pl.lit(True)


def _native_ok(frame: pl.DataFrame) -> pl.Expr:
    """Rows whose normalized event equals the raw record with ``timestamp`` parsed."""
    ok = pl.col("__status") == 0
    ts = pl.col("timestamp")
    ok = ok & (frame.schema["timestamp"] == pl.String) & ts.is_not_null() & ts.str.contains(_EPOCH_MS)
    for target, aliases in _ALIASES.items():
        if target == "status":
            continue
        alias_present = pl.any_horizontal([~_null(frame, a) for a in aliases])
        ok = ok & ~(_null(frame, target) & alias_present)
    status_aliases = pl.any_horizontal([~_null(frame, a) for a in _ALIASES["status"]])
    if frame.schema["status"] == pl.String:
        ok = ok & pl.when(pl.col("status").is_null()).then(~status_aliases).otherwise(pl.col("status").is_in(CANONICAL_STATUSES))
    else:
        ok = ok & pl.col("status").is_null() & ~status_aliases
    return ok.fill_null(False)


def canonical_events(data: bytes, lines: np.ndarray, timestamps: np.ndarray) -> list[str]:
    """The normalized events of native rows, as the engine keeps them (sorted-key JSON)."""
    out: list[str] = []
    for raw, ts in zip(select_lines(data, lines.astype(np.uint32)), timestamps.tolist()):
        event = orjson.loads(raw)
        event["timestamp"] = ts
        out.append(orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode())
    return out
