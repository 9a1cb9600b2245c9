"""Log formats: how the lines of a chunk become events.

A :class:`LogFormat` parses the lines of a :class:`~secmon.ingest.sources.Chunk` that the engine
selected (``line_idx``; ``None`` = all) into events in Datadog's standard form. Formats live in the
registry :data:`FORMATS`, keyed by name; :func:`get_format` raises an error listing valid names.

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
  re-serialized (``1.50`` becomes ``1.5``). A prefilter literal containing such characters, or a
  number from JSON, must not be used to skip lines.
- :meth:`LogFormat.implied_literals` is the finer, value-level promise the prefilter can use
  directly: for ``(path, value)`` the strings one of which every raw line yielding it contains
  (ASCII case-insensitively), ``None`` when there is no such promise, ``[]`` when no line of the
  format yields it. It covers derived attributes too (``source:sshd`` -> ``sshd``,
  ``evt.outcome:failure`` -> ``Failed `` / ``authentication failure``, CloudTrail
  ``source:cloudtrail`` -> ``eventSource``) and already excludes escaped values. Both promises
  are checked on every line of the real datasets (``tests/ingest/test_verbatim.py``).
"""

from __future__ import annotations

import datetime as dt
import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from secmon.errors import InputError
from secmon.ingest import stats as reasons
from secmon.ingest.json_events import MissingTimestamp, normalize_record, unwrap_document
from secmon.ingest.lines import fast_select_lines, line_count, split_lines
from secmon.ingest.messages import MESSAGE_PARSERS, is_ip, parse_pam
from secmon.ingest.stats import IngestStats
from secmon.ingest.timestamps import (
    MONTHS,
    TimestampError,
    clock_ms,
    day_ms,
    parse_access_log_time,
    parse_iso8601,
)

if TYPE_CHECKING:
    from secmon.ingest.sources import Chunk, Source

Event = dict[str, Any]


class LineRejected(Exception):
    """Raised by a line parser: the line gives no event, for ``reason``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _selected(data: bytes, line_idx: np.ndarray | None) -> tuple[int, Iterable[tuple[int, bytes]]]:
    """(number of lines in ``data``, (index, line) pairs of the selected lines).

    All lines: one ``bytes.split``. A selection: the Rust ``select_lines`` when built, so lines
    the prefilter ruled out are never turned into Python objects."""
    if line_idx is None:
        lines = split_lines(data)
        return len(lines), enumerate(lines)
    indices = line_idx.tolist() if isinstance(line_idx, np.ndarray) else list(line_idx)
    n_lines = line_count(data)
    for i in indices:
        if not 0 <= i < n_lines:
            raise IndexError(f"line index {i} is out of range for a chunk of {n_lines} lines")
    if not indices:
        return n_lines, ()
    if isinstance(line_idx, np.ndarray) and line_idx.dtype != np.uint32:
        line_idx = line_idx.astype(np.uint32)
    return n_lines, zip(indices, fast_select_lines(data, line_idx if line_idx is not None else indices))


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


def _raw_safe(value: str, escaped: frozenset[str]) -> bool:
    return bool(value) and not any(c in escaped for c in value)


_JSON_ESCAPED = frozenset('"\\/') | frozenset(chr(c) for c in range(0x20))
_QUOTE_ESCAPED = frozenset('"\\')


class LogFormat:
    """Base class: a named way of turning raw lines into events."""

    name: str = ""
    description: str = ""
    line_oriented: bool = True
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
        if self.verbatim(path) and _raw_safe(value, self.escaped_chars):
            return [value]
        return None

    #: Characters the raw format may escape inside values (a literal holding one is unsafe).
    escaped_chars: frozenset[str] = frozenset()

    def sniff(self, line: str) -> bool:
        """Whether a (non-empty) line looks like this format; used by format detection."""
        return False

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        """One decoded, non-blank line -> event(s); raises :class:`LineRejected`."""
        raise NotImplementedError

    def parse(self, chunk: Chunk, line_idx: np.ndarray | None, stats: IngestStats) -> list[Event]:
        """Parse the selected lines of ``chunk`` (all when ``line_idx`` is None) into events.

        Every line of the chunk is counted as read, selected or not, so call this once per chunk
        (with an empty ``line_idx`` for a chunk the prefilter rules out entirely)."""
        if chunk.read_error is not None:
            stats.reject(reasons.CORRUPT_INPUT, chunk.source.name, f"after line {chunk.first_line - 1}", chunk.read_error)
        with gc_paused():
            return self._parse(chunk, line_idx, stats)

    def _parse(self, chunk: Chunk, line_idx: np.ndarray | None, stats: IngestStats) -> list[Event]:
        source = chunk.source
        name = source.name
        n_lines, selected = _selected(chunk.data, line_idx)
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
            else:
                events.extend(produced)  # type: ignore[arg-type]
        stats.count_events(name, len(events))
        return events


# --- JSON ------------------------------------------------------------------------------------

_JSON_DERIVED = frozenset({"timestamp", "source", "service", "status", "evt.outcome", "tags"})


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _records_to_events(
    records: list[Any], stats: IngestStats, name: str, where: Callable[[int], int | str], out: list[Event]
) -> None:
    for k, record in enumerate(records):
        if type(record) is not dict:
            stats.reject(reasons.NOT_AN_OBJECT, name, where(k), f"a JSON {type(record).__name__}, not an object")
            continue
        try:
            out.append(normalize_record(record))
        except MissingTimestamp as exc:
            stats.reject(reasons.MISSING_TIMESTAMP, name, where(k), str(exc))
        except (TimestampError, ValueError, TypeError, OverflowError) as exc:
            stats.reject(reasons.BAD_TIMESTAMP, name, where(k), str(exc))


class JsonFormatBase(LogFormat):
    """Shared by NDJSON and JSON documents: the record keeps its raw fields."""

    escaped_chars = _JSON_ESCAPED

    def verbatim(self, path: str) -> bool:
        # Passthrough attributes and the copies we make (eventName -> evt.name, sourceIPAddress ->
        # network.client.ip, ...) appear in the raw text; values we compute do not.
        return path not in _JSON_DERIVED

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if not value.isascii() or not _raw_safe(value, _JSON_ESCAPED):
            return None
        if any(c in value for c in ".eE") and _is_float(value):
            return None  # JSON numbers are re-serialized: 1.50 in the raw text reads back as 1.5
        if path == "source" or path == "service":
            # Derived for CloudTrail / Kubernetes audit, else copied from source/ddsource/service.
            extra = {"cloudtrail": ["eventSource"], "kubernetes.audit": ["audit.k8s.io"]}
            return [*extra.get(value, []), value]
        if path == "evt.outcome":
            # CloudTrail: errorCode present or not; Kubernetes: responseStatus.code; else copied.
            derived = {"failure": ["errorCode", "responseStatus"], "success": ["eventSource", "responseStatus"]}
            return [*derived.get(value, []), value]
        if path in _JSON_DERIVED:
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
        n_lines, selected = _selected(chunk.data, line_idx)
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
                    append(normalize_record(obj))
                except MissingTimestamp as exc:
                    stats.reject(reasons.MISSING_TIMESTAMP, name, first_line + i, str(exc))
                except (TimestampError, ValueError, TypeError, OverflowError) as exc:
                    stats.reject(reasons.BAD_TIMESTAMP, name, first_line + i, str(exc))
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
        stats.count_read(name, line_count(data), chunk.nbytes)
        events: list[Event] = []
        if line_idx is not None and len(line_idx) == 0:
            return events
        if not data.strip():
            stats.blank_lines += line_count(data)
            return events
        try:
            document = self._loads(data, stats, name, "document")
        except LineRejected as rejected:
            stats.reject(rejected.reason, name, f"document at line {chunk.first_line}", rejected.detail)
            return events
        _records_to_events(unwrap_document(document), stats, name, lambda k: f"record {k + 1}", events)
        stats.count_events(name, len(events))
        return events


# --- syslog ----------------------------------------------------------------------------------

_RFC3164 = re.compile(
    r"(?:<(\d{1,3})>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))? (\S+) "
    r"(?:([^\s:\[]+(?: [\d.]+)?)(?:\[(\d+)\])?: ?)?(.*)",
    re.DOTALL,
)
# rsyslog's RFC 3339 variant of the BSD format (Debian/Ubuntu auth.log since 2023):
# "2024-05-01T10:00:00.123456+02:00 host sshd[1]: message".
_RFC3339_BSD = re.compile(
    r"(?:<(\d{1,3})>)?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (\S+) "
    r"(?:([^\s:\[]+(?: [\d.]+)?)(?:\[(\d+)\])?: ?)?(.*)",
    re.DOTALL,
)
_TAG_ONLY = re.compile(r"([^\s:\[]+)(?:\[(\d+)\])?")
_RFC5424 = re.compile(
    r"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\\"]|\\.|\"(?:[^\"\\]|\\.)*\")*\])+)(?: (.*))?",
    re.DOTALL,
)
_SD_ELEMENT = re.compile(r"\[([^\s\]=\"]+)((?:\s+[^=\s\]\"]+=\"(?:[^\"\\]|\\.)*\")*)\s*\]")
_SD_PARAM = re.compile(r"([^=\s\]\"]+)=\"((?:[^\"\\]|\\.)*)\"")
_SD_UNESCAPE = re.compile(r"\\([\"\\\]])")
_SEVERITY_STATUS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
_PROGRAM_SUFFIX = re.compile(r"\(.*\)$| [\d.]+$")


def _program_source(program: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 (a deliberate cache)
    """``sshd`` -> sshd, ``sshd(pam_unix)`` -> sshd, ``/usr/sbin/cron`` -> cron, ``syslogd 1.4.1`` ->
    syslogd."""
    found = cache.get(program)
    if found is None:
        found = cache[program] = _PROGRAM_SUFFIX.sub("", program.rsplit("/", 1)[-1]).lower() or program.lower()
    return found


class YearTracker:
    """Years for RFC 3164 timestamps, which have none.

    The first line gets ``year`` (default: the current UTC year, or the previous one if the date
    would be more than a day in the future). A jump back of more than six months (Dec -> Jan)
    starts the next year; a line more than six months *ahead* of the last one (a late December
    line after January began) belongs to the year before. State lives on the :class:`Source`,
    so chunks must be parsed in order (any chunk size gives the same years). Behind a prefilter
    only parsed lines are seen: the rollover is still found as long as parsed lines lie on both
    sides of it, and only a gap of more than six months between parsed lines can mislead it."""

    def __init__(self, year: int | None) -> None:
        self.year = year
        self.last_month: int | None = None

    def year_for(self, month: int, day: int) -> int:
        if self.year is None:
            now = dt.datetime.now(dt.timezone.utc)
            self.year = now.year
            try:
                future = dt.datetime(now.year, month, day, tzinfo=dt.timezone.utc) - now > dt.timedelta(days=1)
            except ValueError:
                future = False
            if future:
                self.year -= 1
        last = self.last_month
        if last is None:
            self.last_month = month
            return self.year
        if month < last - 6:
            self.year += 1
            self.last_month = month
            return self.year
        if month > last + 6:
            return self.year - 1
        self.last_month = month
        return self.year


def _sd_value(text: str) -> str:
    return _SD_UNESCAPE.sub(r"\1", text) if "\\" in text else text


class SyslogFormat(LogFormat):
    """RFC 3164 (BSD, no year) and RFC 5424 syslog, with the program's message parsed when
    secmon knows the program (sshd, PAM)."""

    name = "syslog"
    description = "syslog RFC 3164 (year from the `year` option, Dec->Jan rollover), its RFC 3339-dated variant, or RFC 5424"
    verbatim_paths = frozenset(
        {
            "host",
            "service",
            "message",
            "syslog.appname",
            "syslog.pid",
            "syslog.msgid",
            "usr.name",
            "network.client.ip",
            "network.client.port",
            "network.client.host",
            "ssh.auth_method",
            "pam.rhost",
            "pam.service",
        }
    )

    # RFC 5424 structured data escapes ", \ and ]; nothing else is escaped in syslog text.
    escaped_chars = frozenset('"\\]')

    def verbatim(self, path: str) -> bool:
        return path in self.verbatim_paths or path.startswith("syslog.structured_data.")

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path == "source":
            # The program name, lower-cased: the line holds it in some case.
            return [value] if value else None
        if path == "evt.name":
            return ["Failed ", "Accepted ", "authentication failure"] if value == "authentication" else []
        if path == "evt.outcome":
            return {"failure": ["Failed ", "authentication failure"], "success": ["Accepted "]}.get(value, [])
        if path == "pam.module":
            return ["pam_unix"] if value == "pam_unix" else []
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        m = _RFC3164.match(line)
        if m is not None and m.group(2) in MONTHS:
            return True
        return _RFC5424.match(line) is not None or _RFC3339_BSD.match(line) is not None

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        m = _RFC3164.fullmatch(text)
        if m is not None:
            pri, mon, day, hour, minute, second, fraction, host, program, pid, message = m.groups()
            if host[-1] == ":" and (tag := _TAG_ONLY.fullmatch(host[:-1])) is not None:
                # No host name (macOS, some embedded syslogds): what we took for the host is the tag.
                program, pid = tag.groups()
                host = None
                message = text[m.end(8) + 1 :]
            month = MONTHS.get(mon)
            if month is None:
                raise LineRejected(reasons.BAD_TIMESTAMP, f"unknown month {mon!r}: {text}")
            tracker = source.parse_state.get("years")
            if tracker is None:
                tracker = source.parse_state["years"] = YearTracker(source.year)
            # Two-digit fields compare correctly as strings: no int() needed to validate them.
            if hour > "23" or minute > "59" or second > "60":
                raise LineRejected(reasons.BAD_TIMESTAMP, f"no such time {hour}:{minute}:{second}: {text}")
            try:
                ts = day_ms(tracker.year_for(month, int(day)), month, int(day))
            except TimestampError as exc:
                raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
            ts += int(hour) * 3_600_000 + int(minute) * 60_000 + int(second) * 1000
            if fraction:
                ts += int((fraction + "00")[:3])
            event: Event = {"timestamp": ts, "host": host, "message": message}
            if host is None:
                del event["host"]
        elif (m3 := _RFC3339_BSD.fullmatch(text)) is not None:
            pri, stamp, host, program, pid, message = m3.groups()
            try:
                ts = parse_iso8601(stamp)
            except TimestampError as exc:
                raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
            event = {"timestamp": ts, "host": host, "message": message}
        elif text.startswith("<") and (m5 := _RFC5424.fullmatch(text)) is not None:
            pri, stamp, host, program, pid, msgid, structured, message = m5.groups()
            try:
                ts = parse_iso8601(stamp)
            except TimestampError as exc:
                raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
            message = (message or "").removeprefix("\ufeff")
            event = {"timestamp": ts, "message": message}
            if host != "-":
                event["host"] = host
            program = None if program == "-" else program
            pid = None if pid == "-" else pid
            if msgid != "-":
                event["syslog"] = {"msgid": msgid}
            if structured != "-":
                data: dict[str, dict[str, str]] = {}
                for sd_id, params in _SD_ELEMENT.findall(structured):
                    data[sd_id] = {k: _sd_value(v) for k, v in _SD_PARAM.findall(params)}
                event.setdefault("syslog", {})["structured_data"] = data
        else:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        if pri is not None:
            priority = int(pri)
            syslog = event.setdefault("syslog", {})
            syslog["severity"] = priority & 7
            syslog["facility"] = priority >> 3
            event["status"] = _SEVERITY_STATUS[priority & 7]
        if not program:
            return event
        event["service"] = program
        syslog = event.get("syslog")
        if syslog is None:
            syslog = event["syslog"] = {}
        syslog["appname"] = program
        if pid is not None:
            syslog["pid"] = pid
        program_source = _program_source(program)
        event["source"] = program_source
        if "(pam_unix)" in program:
            parse_pam(event, message, service=program_source)
            return event
        parse_message = MESSAGE_PARSERS.get(program_source)
        if parse_message is not None:
            copies = parse_message(event, message)
            if copies > 1:
                # Independent copies (callers may mutate events); orjson is ~10x faster than deepcopy.
                frozen = orjson.dumps(event)
                return [event] + [orjson.loads(frozen) for _ in range(copies - 1)]
        elif message.startswith("pam_unix("):
            parse_pam(event, message)
        return event


# --- access logs -----------------------------------------------------------------------------

_QUOTED = r"\"((?:[^\"\\]|\\.)*)\""
_ACCESS = re.compile(
    r"(\S+) (\S+) (\S+) \[([^\]]+)\] " + _QUOTED + r" (\d{3}|-) (\d+|-)(?: " + _QUOTED + " " + _QUOTED + r")?.*",
    re.DOTALL,
)
# Only \" and \\ are undone; \xhh (Apache's escape for non-printable bytes) stays as logged.
_BACKSLASH_ESCAPE = re.compile(r"\\([\"\\])")


def _unescape(text: str) -> str:
    return _BACKSLASH_ESCAPE.sub(r"\1", text) if "\\" in text else text


def _status_from_code(code: int) -> str:
    return "error" if code >= 500 else "warn" if code >= 400 else "info"


class AccessLogFormat(LogFormat):
    """Apache/nginx common and combined access logs (``\\"`` inside quoted fields is unescaped)."""

    line_oriented = True
    verbatim_paths = frozenset(
        {
            "message",
            "network.client.ip",
            "usr.name",
            "http.ident",
            "http.method",
            "http.url",
            "http.url_details.path",
            "http.version",
            "http.status_code",
            "network.bytes_written",
            "http.referer",
            "http.useragent",
        }
    )

    def __init__(self, name: str = "access_log", source: str = "access_log") -> None:
        self.name = name
        self.source = source
        self.description = f"Apache/nginx common or combined access log (source:{source})"

    def sniff(self, line: str) -> bool:
        return _ACCESS.fullmatch(line) is not None

    def parse_text(self, text: str, source: Source) -> Event:
        m = _ACCESS.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        client, ident, user, stamp, request, status, size, referer, agent = m.groups()
        try:
            ts = parse_access_log_time(stamp)
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        http: dict[str, Any] = {}
        event: Event = {"timestamp": ts, "source": self.source, "service": self.source, "message": text,
                        "network": {"client": {"ip": client}}, "http": http}
        if user != "-":
            event["usr"] = {"name": _unescape(user)}
        if ident != "-":
            http["ident"] = ident
        request = _unescape(request)
        first_space = request.find(" ")
        last_space = request.rfind(" ")
        if 0 < first_space < last_space:
            url = request[first_space + 1 : last_space]
            http["method"] = request[:first_space]
            http["url"] = url
            http["url_details"] = {"path": url.split("?", 1)[0]}
            http["version"] = request[last_space + 1 :].removeprefix("HTTP/")
        elif request and request != "-":
            http["url"] = request
        if status != "-":
            code = int(status)
            http["status_code"] = code
            event["status"] = _status_from_code(code)
        if size != "-":
            event["network"]["bytes_written"] = int(size)
        if referer is not None and referer != "-":
            http["referer"] = _unescape(referer)
        if agent is not None and agent != "-":
            http["useragent"] = _unescape(agent)
        return event

    escaped_chars = _QUOTE_ESCAPED

    def verbatim(self, path: str) -> bool:
        # http.version drops the "HTTP/" prefix but the rest is still a substring of the line.
        return path in self.verbatim_paths

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in ("source", "service"):
            return None if value == self.source else []  # a constant of this format
        return super().implied_literals(path, value)


# --- Apache error log ------------------------------------------------------------------------

_APACHE_ERROR = re.compile(
    r"\[\w{3} (\w{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))? (\d{4})\] \[(?:[\w-]+:)?(\w+)\]"
    r"(?: \[pid (\d+)(?::tid \d+)?\])?(?: \[client ([^\]]+)\])? ?(.*)",
    re.DOTALL,
)
_IPV4_PORT = re.compile(r"(\d+\.\d+\.\d+\.\d+):(\d+)")


class ApacheErrorFormat(LogFormat):
    """Apache ``error_log``: ``[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] message``."""

    name = "apache_error"
    description = "Apache error log ([date] [level] [client ip] message), source:apache"
    verbatim_paths = frozenset({"message", "network.client.ip", "network.client.port"})

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in ("source", "service"):
            return None if value == "apache" else []
        if path == "status":
            return [f"{value}]"] if value.isalpha() else []  # "[error]" or "[core:error]"
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        return _APACHE_ERROR.fullmatch(line) is not None

    def parse_text(self, text: str, source: Source) -> Event:
        m = _APACHE_ERROR.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        mon, day, hour, minute, second, fraction, year, level, pid, client, message = m.groups()
        month = MONTHS.get(mon)
        if month is None:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"unknown month {mon!r}: {text}")
        try:
            ts = day_ms(int(year), month, int(day)) + clock_ms(int(hour), int(minute), int(second))
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        if fraction:
            ts += int((fraction + "00")[:3])
        event: Event = {"timestamp": ts, "source": "apache", "service": "apache", "status": level.lower(),
                        "message": message}
        if pid is not None:
            event["apache"] = {"pid": pid}
        if client is not None:
            with_port = _IPV4_PORT.fullmatch(client)
            if with_port is not None:
                event["network"] = {"client": {"ip": with_port.group(1), "port": int(with_port.group(2))}}
            else:
                event["network"] = {"client": {"ip": client} if is_ip(client) else {"host": client}}
        return event


# --- plain text ------------------------------------------------------------------------------

_LEADING_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?(?=\s|$)")


class TextFormat(LogFormat):
    """Anything else: the line is the message. A line that starts with an ISO 8601 time gets it;
    any other line is rejected as ``missing_timestamp`` (there is no honest time to give it)."""

    name = "text"
    description = "plain text lines: message only; timestamp from a leading ISO 8601 date, else rejected"
    verbatim_paths = frozenset({"message"})

    def sniff(self, line: str) -> bool:
        return True

    def parse_text(self, text: str, source: Source) -> Event:
        m = _LEADING_ISO.match(text)
        if m is None:
            raise LineRejected(reasons.MISSING_TIMESTAMP, text)
        try:
            ts = parse_iso8601(m.group(0).replace(",", "."))
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        return {"timestamp": ts, "message": text}


# --- registry --------------------------------------------------------------------------------

FORMATS: dict[str, LogFormat] = {
    fmt.name: fmt
    for fmt in (
        NdjsonFormat(),
        JsonDocumentFormat(),
        SyslogFormat(),
        AccessLogFormat(),
        AccessLogFormat("nginx", "nginx"),
        AccessLogFormat("apache", "apache"),
        ApacheErrorFormat(),
        TextFormat(),
    )
}
BUILTIN_FORMATS: frozenset[str] = frozenset(FORMATS)

_JSON_ARRAY_START = re.compile(r"\[\s*(?:[{\[\"\]]|-?\d+\s*[,\]]|true|false|null|$)")

# Detection order for line formats (JSON is recognised by its first character first).
_SNIFF_ORDER: tuple[str, ...] = ("syslog", "access_log", "apache_error")


def get_format(name: str | LogFormat) -> LogFormat:
    """The registered format called ``name``; an unknown name lists the valid ones."""
    if isinstance(name, LogFormat):
        return name
    found = FORMATS.get(name)
    if found is None:
        raise InputError(f"unknown log format {name!r}; valid formats: {', '.join(sorted(FORMATS))}")
    return found


def detect_format(head: bytes, max_lines: int = 8) -> LogFormat:
    """Pick a format from the first non-empty lines of a file (majority vote over ``max_lines``)."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()][:max_lines]
    if not lines:
        return FORMATS["text"]
    first = lines[0].lstrip()
    if first.startswith(("{", "[")):
        ndjson = FORMATS["ndjson"]
        # A whole object on the first line is NDJSON (a one-line CloudTrail file too: the NDJSON
        # parser unwraps {"Records": [...]}); an object spread over lines is one document, unless
        # the "[" opens a bracketed date of a text format (Apache error logs, Proxifier).
        # One malformed first line must not turn a whole NDJSON file into one bad document, so
        # the first lines vote.
        if sum(map(ndjson.sniff, lines)) * 2 >= len(lines) or ndjson.sniff(lines[0]):
            return ndjson
        if first.startswith("{") or _JSON_ARRAY_START.match(first):
            return FORMATS["json"]
    # User parsers go first (they are more specific) and take part only through their own
    # ``detect`` pattern (their sniff is False otherwise).
    candidates = [*(n for n in FORMATS if n not in BUILTIN_FORMATS), *_SNIFF_ORDER]
    votes: dict[str, int] = {}
    for line in lines:
        for candidate in candidates:
            if FORMATS[candidate].sniff(line):
                votes[candidate] = votes.get(candidate, 0) + 1
                break
    if not votes:
        return FORMATS["text"]
    best = max(votes, key=lambda n: votes[n])
    # A format must explain at least half of the lines looked at, else it is plain text.
    return FORMATS[best] if votes[best] * 2 >= len(lines) else FORMATS["text"]
