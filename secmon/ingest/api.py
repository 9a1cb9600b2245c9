"""Convenience entry points over sources and formats: everything in, events out."""

from __future__ import annotations

import copy
import glob
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from secmon.ingest.formats import LogFormat
from secmon.ingest.json_events import MissingTimestamp, normalize_record
from secmon.ingest.sources import DEFAULT_CHUNK_BYTES, Source, open_sources
from secmon.ingest.stats import BAD_TIMESTAMP, MISSING_TIMESTAMP, NOT_AN_OBJECT, IngestStats
from secmon.ingest.timestamps import TimestampError

Event = dict[str, Any]


def iter_events(
    sources: Iterable[Source], stats: IngestStats, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[list[Event]]:
    """Events per chunk, every line parsed (the engine's path without a prefilter)."""
    for source in sources:
        for chunk in source.chunks(chunk_bytes):
            yield source.format.parse(chunk, None, stats)


def parse_lines(
    lines: Iterable[str | bytes],
    *,
    format: str | LogFormat | None = None,
    year: int | None = None,
    stats: IngestStats | None = None,
    name: str = "<lines>",
) -> list[Event]:
    """Events from lines in memory (format detected from them unless given)."""
    data = b"\n".join(line.encode() if isinstance(line, str) else line for line in lines)
    source = Source(name, data=data, format=format, year=year)
    stats = stats if stats is not None else IngestStats()
    return [event for batch in iter_events([source], stats) for event in batch]


def normalize_events(records: Iterable[Any], stats: IngestStats | None = None, name: str = "<events>") -> list[Event]:
    """Already-decoded JSON records -> events (copied first: the caller's dicts stay untouched)."""
    stats = stats if stats is not None else IngestStats()
    events: list[Event] = []
    for k, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            stats.reject(NOT_AN_OBJECT, name, f"record {k}", f"a {type(record).__name__}, not an object")
            continue
        try:
            events.append(normalize_record(copy.deepcopy(record)))
        except MissingTimestamp as exc:
            stats.reject(MISSING_TIMESTAMP, name, f"record {k}", str(exc))
        except (TimestampError, ValueError, TypeError, OverflowError) as exc:
            stats.reject(BAD_TIMESTAMP, name, f"record {k}", str(exc))
    stats.count_events(name, len(events))
    return events


def _looks_like_paths(items: list[Any]) -> bool:
    return all(isinstance(item, Path) for item in items) or all(
        isinstance(item, str)
        and "\n" not in item
        and (item == "-" or os.path.exists(item) or (glob.has_magic(item) and bool(glob.glob(item, recursive=True))))
        for item in items
    )


def parse_events(
    inputs: str | Path | Iterable[str | Path] | Iterable[str | bytes] | Iterable[Event],
    *,
    format: str | LogFormat | None = None,
    year: int | None = None,
    stats: IngestStats | None = None,
) -> list[Event]:
    """Events from paths, lines or records, for tests and the Python API.

    - a path (``str``/``Path``) or a list of paths (files, directories, globs, ``-``);
    - a list of dicts: JSON records, normalized (timestamps, CloudTrail mapping, ...);
    - any other iterable of ``str``/``bytes``: lines in memory. A list of strings is taken as
      paths only when every item is an existing path, ``-`` or a glob that matches files (use
      :func:`open_sources` to get FileNotFoundError for missing paths).
    Rejections are counted in ``stats`` (pass one to see them)."""
    stats = stats if stats is not None else IngestStats()
    if isinstance(inputs, (str, Path)):
        items: list[Any] = [inputs]
    else:
        items = list(inputs)
    if not items:
        return []
    if all(isinstance(item, dict) for item in items):
        return normalize_events(items, stats)
    if isinstance(inputs, (str, Path)) or _looks_like_paths(items):
        sources = open_sources(items, format=format, year=year)
        return [event for batch in iter_events(sources, stats) for event in batch]
    return parse_lines(items, format=format, year=year, stats=stats)
