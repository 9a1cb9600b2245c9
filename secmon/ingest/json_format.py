"""JSON formats: NDJSON (one record per line) and whole JSON documents (CloudTrail deliveries,
arrays, Kubernetes EventLists). The record mapping itself is in ``json_events``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from secmon.ingest import stats as reasons
from secmon.ingest.base import JSON_ESCAPED, Event, LineRejected, LogFormat, raw_safe, selected_lines
from secmon.ingest.json_events import SOURCE_MARKERS, MissingTimestamp, normalize_record, unwrap_document
from secmon.ingest.lines import fast_line_count
from secmon.ingest.stats import IngestStats
from secmon.ingest.timestamps import TimestampError

if TYPE_CHECKING:
    from secmon.ingest.sources import Chunk

# Attributes normalization computes (not copied from the record): never in the raw text as they read.
JSON_DERIVED = frozenset({"timestamp", "source", "service", "status", "evt.outcome", "tags"})


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def json_object(text: str | bytes) -> dict[str, Any]:
    """One line's JSON object: ``malformed_json`` or ``not_an_object`` otherwise (LineRejected)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise LineRejected(reasons.MALFORMED_JSON, str(exc)) from None
    if type(value) is not dict:
        raise LineRejected(reasons.NOT_AN_OBJECT, f"a JSON {type(value).__name__}, not an object")
    return value


def record_event(record: dict[str, Any]) -> Event:
    """``normalize_record``, its refusals as LineRejected: ``missing_timestamp``, ``bad_timestamp``."""
    try:
        return normalize_record(record)
    except MissingTimestamp as exc:
        raise LineRejected(reasons.MISSING_TIMESTAMP, str(exc)) from None
    except (TimestampError, ValueError, TypeError, OverflowError) as exc:
        raise LineRejected(reasons.BAD_TIMESTAMP, str(exc)) from None


def _records_to_events(
    records: list[Any], stats: IngestStats, name: str, where: Callable[[int], int | str], out: list[Event]
) -> None:
    for k, record in enumerate(records):
        try:
            if type(record) is not dict:
                raise LineRejected(reasons.NOT_AN_OBJECT, f"a JSON {type(record).__name__}, not an object")
            out.append(record_event(record))
        except LineRejected as rejected:
            stats.reject(rejected.reason, name, where(k), rejected.detail)


class JsonFormatBase(LogFormat):
    """Shared by NDJSON and JSON documents: the record keeps its raw fields."""

    escaped_chars = JSON_ESCAPED

    def verbatim(self, path: str) -> bool:
        # Passthrough attributes and the copies we make (eventName -> evt.name, sourceIPAddress ->
        # network.client.ip, ...) appear in the raw text; values we compute do not.
        return path not in JSON_DERIVED

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if not value.isascii() or not raw_safe(value, JSON_ESCAPED):
            return None
        if any(c in value for c in ".eE") and _is_float(value):
            return None  # JSON numbers are re-serialized: 1.50 in the raw text reads back as 1.5
        if path == "source" or path == "service":
            # Derived for CloudTrail, Kubernetes audit and the integrations, else copied from
            # source/ddsource/service.
            return [*SOURCE_MARKERS.get(value, ()), value]
        if path == "evt.outcome":
            # CloudTrail: errorCode present or not; Kubernetes: responseStatus.code; else copied.
            derived = {"failure": ["errorCode", "responseStatus"], "success": ["eventSource", "responseStatus"]}
            return [*derived.get(value, []), value]
        if path in JSON_DERIVED:
            return None
        return [value]

    @staticmethod
    def _loads(raw: bytes, stats: IngestStats, name: str, where: int | str) -> Any:
        """orjson.loads, repairing invalid UTF-8 (warning) and raising LineRejected otherwise."""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode()
            except UnicodeDecodeError:
                try:
                    value = orjson.loads(raw.decode("utf-8", "replace"))
                except orjson.JSONDecodeError:
                    raise LineRejected(reasons.MALFORMED_JSON, f"{exc}") from None
                stats.warn(reasons.INVALID_UTF8, name, where, "invalid UTF-8 replaced")
                return value
            raise LineRejected(reasons.MALFORMED_JSON, f"{exc}") from None


class NdjsonFormat(JsonFormatBase):
    name = "ndjson"
    description = "one JSON object per line (also unwraps CloudTrail {\"Records\": [...]} and arrays per line)"

    def sniff(self, line: str) -> bool:
        try:
            return isinstance(orjson.loads(line), (dict, list))
        except orjson.JSONDecodeError:
            return False

    def _parse(self, chunk: Chunk, line_idx: np.ndarray | None, stats: IngestStats) -> list[Event]:
        source = chunk.source
        name = source.name
        n_lines, selected = selected_lines(chunk, line_idx)
        stats.count_read(name, n_lines, chunk.nbytes)
        limit = source.max_line_bytes
        first_line = chunk.first_line
        loads = orjson.loads
        events: list[Event] = []
        append = events.append
        for i, raw in selected:
            if raw[-1:] == b"\r":  # CRLF line ending (JSON would skip it, the length limit not)
                raw = raw[:-1]
            if len(raw) > limit:
                stats.reject(reasons.LINE_TOO_LONG, name, first_line + i, f"longer than the limit of {limit} bytes")
                continue
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError:
                if not raw or raw.isspace():
                    stats.blank_lines += 1
                    continue
                try:
                    obj = self._loads(raw, stats, name, first_line + i)
                except LineRejected as rejected:
                    stats.reject(rejected.reason, name, first_line + i, f"{rejected.detail}: {raw[:120]!r}")
                    continue
            # The common case first: one plain object per line, normalized in place.
            if type(obj) is dict and "Records" not in obj and "items" not in obj:
                try:
                    append(record_event(obj))
                except LineRejected as rejected:
                    stats.reject(rejected.reason, name, first_line + i, rejected.detail)
                continue
            line_no = first_line + i
            _records_to_events(unwrap_document(obj), stats, name, lambda _k: line_no, events)
        stats.count_events(name, len(events))
        return events


class JsonDocumentFormat(JsonFormatBase):
    """A whole JSON document per file: CloudTrail deliveries, arrays, Kubernetes EventLists."""

    name = "json"
    description = "one JSON document per file: {\"Records\": [...]}, {\"items\": [...]}, [...] or {...}"
    line_oriented = False

    def _parse(self, chunk: Chunk, line_idx: np.ndarray | None, stats: IngestStats) -> list[Event]:
        name = chunk.source.name
        data = chunk.data
        stats.count_read(name, fast_line_count(data), chunk.nbytes)
        events: list[Event] = []
        if line_idx is not None and len(line_idx) == 0:
            return events
        if not data.strip():
            stats.blank_lines += fast_line_count(data)
            return events
        try:
            document = self._loads(data, stats, name, "document")
        except LineRejected as rejected:
            stats.reject(rejected.reason, name, f"document at line {chunk.first_line}", rejected.detail)
            return events
        _records_to_events(unwrap_document(document), stats, name, lambda k: f"record {k + 1}", events)
        stats.count_events(name, len(events))
        return events
