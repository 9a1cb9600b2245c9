"""Ingestion: log bytes from files/stdin/``.gz`` -> chunks of lines -> events -> event tables.

Two levels, so the engine can run its literal prefilter over raw bytes before any parsing:

- :func:`open_sources` -> :class:`Source` (name, detected :class:`LogFormat`) ->
  :meth:`Source.chunks` -> :class:`Chunk` (whole lines) -> :meth:`LogFormat.parse` (only the
  selected line indices) -> events; :func:`secmon.ingest.events.to_frame` -> Polars event table.
- :func:`parse_events` for everything at once (tests, the Python API).

Formats (registry :data:`FORMATS`): ``ndjson``, ``json`` (documents: CloudTrail ``Records``,
arrays, Kubernetes ``EventList``), ``syslog`` (RFC 3164/5424 with sshd and PAM message parsers),
``access_log``/``nginx``/``apache`` (common/combined), ``apache_error``, ``nginx_error``,
``journald`` (``journalctl -o json``), ``docker``/``cri`` (container runtime logs around lines of
another format), ``text``, plus user parsers from YAML (:func:`register_parsers`). For the
prefilter, each format says which values occur in its raw lines (:meth:`LogFormat.verbatim`,
:meth:`LogFormat.implied_literals`).

Modules: ``sources`` (inputs, chunks), ``lines`` (line splitting, Rust twin), ``base`` (the
LogFormat contract and the rules every format follows), ``json_format``/``json_events`` (JSON,
CloudTrail, Kubernetes audit), ``syslog``/``messages`` (syslog, sshd, PAM), ``journald``,
``containers``, ``access_log``, ``text``, ``parsers`` (user parsers), ``formats`` (registry,
detection), ``events`` (``to_frame``), ``stats`` (IngestStats), ``timestamps``, ``api``
(``parse_events``).
"""

from __future__ import annotations

from secmon.ingest.api import iter_events, normalize_events, parse_events, parse_lines
from secmon.ingest.events import to_frame
from secmon.ingest.formats import FORMATS, LogFormat, detect_format, get_format
from secmon.ingest.lines import line_count, select_lines, split_lines
from secmon.ingest.parsers import ParserFileError, load_parsers, register_parsers, unregister_parsers
from secmon.ingest.sources import DEFAULT_CHUNK_BYTES, DEFAULT_MAX_LINE_BYTES, Chunk, Source, open_sources
from secmon.ingest.stats import IngestStats

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "FORMATS",
    "Chunk",
    "IngestStats",
    "LogFormat",
    "ParserFileError",
    "Source",
    "detect_format",
    "get_format",
    "iter_events",
    "line_count",
    "load_parsers",
    "normalize_events",
    "open_sources",
    "parse_events",
    "parse_lines",
    "register_parsers",
    "select_lines",
    "split_lines",
    "to_frame",
    "unregister_parsers",
]
