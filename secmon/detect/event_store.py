"""Where a scan keeps the events its kept rows came from, until signals need them as samples.

Detection reads a few columns per kept row (time, group-by values, flags); the whole event is
needed only for the samples of a signal and to break ties between events of one group at the same
millisecond. Keeping every kept event as canonical JSON in memory made memory grow with the input
and cost a JSON round trip per kept row, so events go to an append-only temporary file instead and
a kept row carries only a reference to its bytes:

- ``ref = 2 * offset + kind`` and ``length``: the record's place in the file, and whether it holds
  canonical JSON already (kind 0, events the Python parsers built) or a raw NDJSON line (kind 1,
  rows of the native extractor: normalized and canonicalized only if asked for).

Canonical JSON is what the engine always used for an event: ``orjson`` with sorted keys, so ties
and samples come out exactly as before whichever path an event took.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np
import orjson

from secmon._core import normalized_events
from secmon.ingest.json_events import normalize_record

CANONICAL = 0
RAW_NDJSON = 1


def canonical_json(event: dict) -> str:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()


def _canonical_of_lines(lines: list[bytes]) -> list[str]:
    """Canonical JSON of raw NDJSON lines the native extractor kept: ``normalized_events`` writes
    each normalized record natively (the line plus what normalization adds), so only the key
    sort is left to orjson; a line it declines goes through ``normalize_record``."""
    buffer = b"\n".join(lines)  # lines of a chunk: none holds a newline
    texts = normalized_events(buffer, np.arange(len(lines), dtype=np.uint32))
    loads = orjson.loads
    return [
        canonical_json(loads(text) if text is not None else normalize_record(loads(line)))
        for text, line in zip(texts, lines)
    ]


class EventStore:
    """Append-only event records in an unnamed temporary file (gone when closed)."""

    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory, prefix="secmon-events-")
        self._size = 0
        self._cache: dict[int, str] = {}

    def close(self) -> None:
        self._file.close()
        self._cache.clear()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def forget_cached(self) -> None:
        """Drop the JSON decoded so far (one rule's ties and samples are fetched together)."""
        self._cache.clear()

    def append(self, records: Sequence[bytes], kind: int) -> tuple[np.ndarray, np.ndarray]:
        """Store ``records``; their (ref, length) arrays, int64 and int32."""
        lengths = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
        starts = self._size + np.cumsum(lengths) - lengths
        self._file.write(b"".join(records))
        self._size += int(lengths.sum())
        return starts * 2 + kind, lengths.astype(np.int32)

    def canonical(self, refs: np.ndarray | Sequence[int], lengths: np.ndarray | Sequence[int]) -> list[str]:
        """The canonical JSON of each referenced event, in the order asked."""
        self._file.flush()
        fd = self._file.fileno()
        refs_list = np.asarray(refs).tolist()
        missing = {ref: length for ref, length in zip(refs_list, np.asarray(lengths).tolist()) if ref not in self._cache}
        raw_refs: list[int] = []
        raw_lines: list[bytes] = []
        for ref, length in missing.items():
            data = os.pread(fd, length, ref >> 1)
            if ref & 1 == CANONICAL:
                self._cache[ref] = data.decode()
            else:
                raw_refs.append(ref)
                raw_lines.append(data)
        if raw_lines:
            for ref, text in zip(raw_refs, _canonical_of_lines(raw_lines)):
                self._cache[ref] = text
        return [self._cache[ref] for ref in refs_list]

    def events(self, refs: np.ndarray | Sequence[int], lengths: np.ndarray | Sequence[int]) -> list[dict]:
        return [orjson.loads(text) for text in self.canonical(refs, lengths)]
