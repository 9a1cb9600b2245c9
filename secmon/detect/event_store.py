"""Where a scan keeps the events its kept rows came from, until signals need them as samples.

Detection reads a few columns per kept row (time, group-by values, flags); the whole event is
needed only for the samples of a signal and to break ties between events of one group at the same
millisecond. Keeping every kept event as canonical JSON in memory made memory grow with the input
and cost a JSON round trip per kept row, so a kept row carries only a reference to its bytes:

- ``ref = ((offset << FILE_BITS | file_no) << 1) | kind`` and ``length``: which file holds the
  record (0: the store's own append-only temporary file; k: the k-th input file registered with
  :meth:`EventStore.input_file`), where, and whether it is canonical JSON already (kind 0, events
  the Python parsers built) or a raw NDJSON line (kind 1, rows of the native extractor:
  normalized and canonicalized only if asked for).
- Raw lines of a plain input file are referred to in place, in the input itself: copying them
  to the temporary file wrote half the input again (measured 0.7 s of an 8 s scan of 553 MB).
  Lines of compressed inputs and stdin, and of more than ``MAX_INPUT_FILES`` files, are copied.

Canonical JSON is what the engine always used for an event: ``orjson`` with sorted keys, so ties
and samples come out exactly as before whichever path an event took. Ties are broken by a digest
of it (:func:`tie_digest`), worked out ``TIE_BATCH`` events at a time: the texts themselves, for
every tied row of a slice at once, were the largest part of detection's peak memory.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence

import numpy as np
import orjson

from secmon._core import normalized_events, read_records
from secmon.ingest.json_events import normalize_record
from secmon.ingest.sources import SourceFile

CANONICAL = 0
RAW_NDJSON = 1
FILE_BITS = 20  # offsets up to 2**42 (4 TiB) per file
MAX_INPUT_FILES = 256  # input files referred to in place per scan (each holds a descriptor open)
TIE_BATCH = 4096  # events made canonical at a time to break ties


def canonical_json(event: dict) -> str:
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()


def tie_digest(canonical: str) -> bytes:
    """What orders events of one group at the same millisecond: the 16-byte BLAKE2b of their
    canonical JSON. It depends on the event alone (not on input order or chunking), and two
    different events tie on it with probability 2**-128; equal events are interchangeable."""
    return hashlib.blake2b(canonical.encode(), digest_size=16).digest()


def _normalized_of_lines(joined: bytes, count: int) -> list[bytes]:
    """The normalized record of each of the ``count`` raw NDJSON lines in ``joined`` (separated
    by newlines), as JSON: ``normalized_events`` writes each natively (the line plus what
    normalization adds); a line it declines goes through ``normalize_record``."""
    texts = normalized_events(joined, np.arange(count, dtype=np.uint32))
    if all(text is not None for text in texts):
        return texts  # type: ignore[return-value]
    lines = joined.split(b"\n")
    loads, dumps = orjson.loads, orjson.dumps
    return [text if text is not None else dumps(normalize_record(loads(line))) for text, line in zip(texts, lines)]


class EventStore:
    """Event records by reference: appended to an unnamed temporary file (gone when closed), or
    left in place in the scan's input files."""

    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=directory, prefix="secmon-events-")
        self._size = 0
        self._inputs: list[SourceFile] = []
        self._input_no: dict[int, int] = {}  # id(SourceFile) -> file_no

    def close(self) -> None:
        self._file.close()
        self._inputs.clear()
        self._input_no.clear()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def append(self, records: Sequence[bytes], kind: int) -> tuple[np.ndarray, np.ndarray]:
        """Store ``records``; their (ref, length) arrays, int64 and int32."""
        lengths = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
        starts = self._size + np.cumsum(lengths) - lengths
        self._file.write(b"".join(records))
        self._size += int(lengths.sum())
        return _refs(starts, 0, kind), lengths.astype(np.int32)

    def input_file(self, source: SourceFile) -> int | None:
        """The file number of an input file whose records are referred to in place, or None when
        the scan already holds ``MAX_INPUT_FILES`` open (the caller copies the records instead)."""
        found = self._input_no.get(id(source))
        if found is None and len(self._inputs) < MAX_INPUT_FILES:
            self._inputs.append(source)
            found = self._input_no[id(source)] = len(self._inputs)
        return found

    def refer(self, file_no: int, offsets: np.ndarray, lengths: np.ndarray, kind: int) -> tuple[np.ndarray, np.ndarray]:
        """(ref, length) arrays of records at ``offsets`` in input file ``file_no``."""
        return _refs(np.asarray(offsets, dtype=np.int64), file_no, kind), np.asarray(lengths).astype(np.int32)

    def _records(
        self, refs: np.ndarray | Sequence[int], lengths: np.ndarray | Sequence[int]
    ) -> tuple[list[int], dict[int, bytes], list[tuple[list[int], bytes]]]:
        """The refs in the order asked; each referenced canonical record, by ref; and the raw
        lines, one (refs, lines joined by newlines) batch per file. Each record is read once, a
        file's records in one call. Reads are positional and nothing is kept between calls, so
        threads may share a store."""
        self._file.flush()
        refs_list = np.asarray(refs).tolist()
        unique = dict(zip(refs_list, np.asarray(lengths).tolist()))  # ref -> length, each once
        keys = np.fromiter(unique.keys(), dtype=np.int64, count=len(unique))
        sizes = np.fromiter(unique.values(), dtype=np.int64, count=len(unique))
        file_nos = (keys >> 1) & ((1 << FILE_BITS) - 1)
        offsets = keys >> (FILE_BITS + 1)
        canonical: dict[int, bytes] = {}
        raw: list[tuple[list[int], bytes]] = []
        for file_no in np.unique(file_nos).tolist():
            for kind in (CANONICAL, RAW_NDJSON):
                picked = (file_nos == file_no) & ((keys & 1) == kind)
                if not picked.any():
                    continue
                if file_no == 0:
                    joined = read_records(self._file.fileno(), offsets[picked], sizes[picked])
                else:
                    joined = self._inputs[file_no - 1].read_records(offsets[picked], sizes[picked])
                # Neither canonical JSON (orjson escapes newlines) nor an NDJSON line holds one.
                if kind == CANONICAL:
                    canonical.update(zip(keys[picked].tolist(), joined.split(b"\n")))
                else:
                    raw.append((keys[picked].tolist(), joined))
        return refs_list, canonical, raw

    def canonical(self, refs: np.ndarray | Sequence[int], lengths: np.ndarray | Sequence[int]) -> list[str]:
        """The canonical JSON of each referenced event, in the order asked."""
        order, records, raw = self._records(refs, lengths)
        texts = {ref: data.decode() for ref, data in records.items()}
        loads = orjson.loads
        for raw_refs, joined in raw:
            texts.update(zip(raw_refs, (canonical_json(loads(t)) for t in _normalized_of_lines(joined, len(raw_refs)))))
        return [texts[ref] for ref in order]

    def tie_keys(self, refs: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The :func:`tie_digest` of each referenced event as two uint64 columns (its high and
        low eight bytes, so they sort as the digest does), ``TIE_BATCH`` events at a time."""
        refs, lengths = np.asarray(refs), np.asarray(lengths)
        words = np.empty((len(refs), 2), dtype=">u8")  # big-endian: the digest's byte order
        for start in range(0, len(refs), TIE_BATCH):
            texts = self.canonical(refs[start:start + TIE_BATCH], lengths[start:start + TIE_BATCH])
            digests = b"".join(map(tie_digest, texts))
            words[start:start + len(texts)] = np.frombuffer(digests, dtype=">u8").reshape(-1, 2)
        native = words.astype(np.uint64)
        return native[:, 0], native[:, 1]

    def event_json(self, refs: np.ndarray | Sequence[int], lengths: np.ndarray | Sequence[int]) -> list[bytes]:
        """The JSON of each referenced event, normalized, in the order asked: what a signal keeps
        of its samples until they are read (``Signal.samples`` parses them then). Not canonical:
        the sorted-key text in between was a third of the cost of samples (measured: 0.3 s of
        0.95 s for 101k samples) and changes no value."""
        order, records, raw = self._records(refs, lengths)
        for raw_refs, joined in raw:
            records.update(zip(raw_refs, _normalized_of_lines(joined, len(raw_refs))))
        return [records[ref] for ref in order]

    def events(self, refs: np.ndarray | Sequence[int], lengths: np.ndarray | Sequence[int]) -> list[dict]:
        """Each referenced event as a dict (a fresh one per position asked)."""
        loads = orjson.loads
        return [loads(text) for text in self.event_json(refs, lengths)]


def _refs(offsets: np.ndarray, file_no: int, kind: int) -> np.ndarray:
    return (((offsets.astype(np.int64) << FILE_BITS) | file_no) << 1) | kind
