"""The log-format base class and the rules every format follows.

A :class:`LogFormat` parses the lines of a :class:`~secmon.ingest.sources.Chunk` that the engine
selected (``line_idx``; ``None`` = all) into events in Datadog's standard form. The built-in
formats live in ``json_format``, ``syslog``, ``access_log`` and ``text``; the registry in
``secmon.ingest.formats``.

Decisions that affect every format:

- Invalid UTF-8 is **replaced** (U+FFFD) and counted as the warning ``invalid_utf8``; the event is
  kept, because attackers put arbitrary bytes in user names and a security tool should still see
  the attempt.
- A line longer than the source's ``max_line_bytes`` (default 1 MiB) is rejected as
  ``line_too_long``; blank lines are counted in ``IngestStats.blank_lines``, not as events.
- A line the format cannot read is rejected with a reason (``unparsed_line``, ``malformed_json``,
  ``missing_timestamp``, ``bad_timestamp``, ``not_an_object``), counted, and the run goes on.
- A ``\r`` ending a line (CRLF files) is dropped before parsing, whichever ``select_lines``
  (Rust or Python) cut the lines.
- :meth:`LogFormat.verbatim` tells the engine which attribute values appear byte for byte in the
  raw line. Values may still be *escaped* in the raw text: JSON escapes ``"``, ``\\``, control
  characters and possibly ``/`` and non-ASCII; access logs escape ``"`` and ``\\``; JSON numbers are
  re-serialized (``1.50`` becomes ``1.5``); invalid UTF-8 reads back as U+FFFD. A prefilter
  literal containing such characters, or a number from JSON, must not be used to skip lines.
- :meth:`LogFormat.implied_literals` is the finer, value-level promise the prefilter can use
  directly: for ``(path, value)`` the strings one of which every raw line yielding it contains
  (ASCII case-insensitively), ``None`` when there is no such promise, ``[]`` when no line of the
  format yields it. It covers derived attributes too (``source:sshd`` -> ``sshd``,
  ``evt.outcome:failure`` -> ``Failed `` / ``authentication failure``, CloudTrail
  ``source:cloudtrail`` -> ``eventSource``) and already excludes escaped values. Both promises
  are checked on every line of the real datasets (``tests/ingest/test_verbatim.py``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from secmon.ingest import stats as reasons
from secmon.ingest.lines import fast_select_lines, split_lines
from secmon.ingest.stats import IngestStats

if TYPE_CHECKING:
    from secmon.ingest.sources import Chunk, Source

Event = dict[str, Any]


class LineRejected(Exception):
    """Raised by a line parser: the line gives no event, for ``reason``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def selected_lines(chunk: Chunk, line_idx: np.ndarray | None) -> tuple[int, Iterable[tuple[int, bytes]]]:
    """(number of lines in ``chunk``, (index, line) pairs of the selected lines).

    All lines: one ``bytes.split``. A selection: the Rust ``select_lines`` when built, so lines
    the prefilter ruled out are never turned into Python objects."""
    data = chunk.data
    if line_idx is None:
        lines = split_lines(data)
        return len(lines), enumerate(lines)
    n_lines = chunk.line_count
    selection = np.asarray(line_idx)
    if selection.size == 0:
        return n_lines, ()
    low, high = int(selection.min()), int(selection.max())
    if low < 0 or high >= n_lines:
        bad = low if low < 0 else high
        raise IndexError(f"line index {bad} is out of range for a chunk of {n_lines} lines")
    if selection.dtype != np.uint32:
        selection = selection.astype(np.uint32)
    return n_lines, zip(selection.tolist(), fast_select_lines(data, selection))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk's events are built.

    Parsing allocates several small dicts per line and none of them form cycles; the collector's
    passes over them cost about 15% of parse time for nothing. Reference counting still frees
    everything, and the previous state is restored even on error."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def raw_safe(value: str, escaped: frozenset[str]) -> bool:
    """Whether ``value`` can be searched for as is in the raw text: not empty, no character the
    format escapes, and no U+FFFD (it stands for invalid UTF-8 bytes that are not in the line)."""
    return bool(value) and "\ufffd" not in value and not any(c in escaped for c in value)


JSON_ESCAPED = frozenset('"\\/') | frozenset(chr(c) for c in range(0x20))
QUOTE_ESCAPED = frozenset('"\\')

# Datadog's status for each syslog severity, 0 to 7.
SYSLOG_SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")


def syslog_priority(priority: int) -> tuple[dict[str, int], str]:
    """A syslog ``<PRI>``: ``syslog.severity`` and ``syslog.facility``, and the status it gives."""
    return {"severity": priority & 7, "facility": priority >> 3}, SYSLOG_SEVERITIES[priority & 7]


class LogFormat:
    """Base class: a named way of turning raw lines into events."""

    name: str = ""
    description: str = ""
    line_oriented: bool = True
    #: Whether every value of its events is one JSON can hold (a user parser may cast "nan" to a
    #: float): the engine then writes them as JSON without checking.
    json_safe_events: bool = True
    #: Attribute paths whose values are copied byte for byte from the raw line (text formats).
    verbatim_paths: frozenset[str] = frozenset()

    def verbatim(self, path: str) -> bool:
        """Whether the value at ``path`` appears verbatim in the raw line (conservative: when in
        doubt, False; see the module docstring for escaping)."""
        return path in self.verbatim_paths

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        """Strings one of which occurs (ASCII case-insensitively) in every raw line of this format
        that yields an event with ``path`` equal to ``value`` (as the event table writes it).

        ``None``: no such promise (the prefilter must not rely on this term); ``[]``: no line of
        this format ever yields that value. Verbatim attributes give ``[value]`` unless the value
        may be escaped in the raw text; derived ones give the text they are derived from
        (``evt.outcome:failure`` from sshd needs ``Failed `` or ``authentication failure``)."""
        if path.startswith(self.absent_namespaces):
            return []
        if self.verbatim(path) and raw_safe(value, self.escaped_chars):
            return [value]
        return None

    #: Attribute namespaces no event of this format holds (``network.destination.`` in an sshd
    #: log): a query on them can never match its lines.
    absent_namespaces: tuple[str, ...] = ()

    #: Literals of the lines that change how the next lines are read (a header naming the
    #: fields): the prefilter lets every line holding one through, whatever the rules ask.
    directive_literals: tuple[str, ...] = ()

    #: Characters the raw format may escape inside values (a literal holding one is unsafe).
    escaped_chars: frozenset[str] = frozenset()

    def sniff(self, line: str) -> bool:
        """Whether a (non-empty) line looks like this format; used by format detection."""
        return False

    def sniff_head(self, lines: list[str]) -> bool:
        """Whether a file's first non-empty lines declare this format (a header of directives);
        such formats are asked before the line-by-line vote."""
        return False

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        """One decoded, non-blank line -> event(s); raises :class:`LineRejected`. No event (an
        empty list) is a header line: one that says how the next lines read."""
        raise NotImplementedError

    def parse(self, chunk: Chunk, line_idx: np.ndarray | None, stats: IngestStats) -> list[Event]:
        """Parse the selected lines of ``chunk`` (all when ``line_idx`` is None) into events.

        Every line of the chunk is counted as read, selected or not, so call this once per chunk
        (with an empty ``line_idx`` for a chunk the prefilter rules out entirely)."""
        if chunk.read_error is not None:
            where = f"after line {chunk.first_line - 1}" if chunk.first_line > 1 else "start of file"
            stats.reject(chunk.read_error_reason, chunk.source.name, where, chunk.read_error)
        with gc_paused():
            return self._parse(chunk, line_idx, stats)

    def _parse(self, chunk: Chunk, line_idx: np.ndarray | None, stats: IngestStats) -> list[Event]:
        source = chunk.source
        name = source.name
        n_lines, selected = selected_lines(chunk, line_idx)
        stats.count_read(name, n_lines, chunk.nbytes)
        limit = source.max_line_bytes
        first_line = chunk.first_line
        parse_text = self.parse_text
        events: list[Event] = []
        for i, raw in selected:
            if raw[-1:] == b"\r":  # CRLF line ending
                raw = raw[:-1]
            if len(raw) > limit:
                stats.reject(reasons.LINE_TOO_LONG, name, first_line + i, f"longer than the limit of {limit} bytes")
                continue
            if not raw or raw.isspace():
                stats.blank_lines += 1
                continue
            try:
                text = raw.decode()
            except UnicodeDecodeError as exc:
                text = raw.decode("utf-8", "replace")
                stats.warn(reasons.INVALID_UTF8, name, first_line + i, str(exc))
            try:
                produced = parse_text(text, source)
            except LineRejected as rejected:
                stats.reject(rejected.reason, name, first_line + i, rejected.detail or text)
                continue
            if type(produced) is dict:
                events.append(produced)
            elif produced:
                events.extend(produced)  # type: ignore[arg-type]
            else:
                stats.header_lines += 1
        stats.count_events(name, len(events))
        return events
