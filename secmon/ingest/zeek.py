"""Zeek's (Bro's) tab-separated logs: conn.log, dns.log, http.log, ssl.log, ... as Zeek writes
them by default. A header of directives says how to read the lines::

    #separator \\x09
    #set_separator	,
    #empty_field	(empty)
    #unset_field	-
    #path	conn
    #fields	ts	uid	id.orig_h	id.orig_p	id.resp_h	id.resp_p	proto	service	...
    #types	time	string	addr	port	addr	port	enum	string	...

Each line becomes the record Zeek's JSON writer would have written for it (unset fields left out,
``(empty)`` an empty string or set, sets and vectors lists, numbers and booleans typed by
``#types``, ``\\xHH`` escapes decoded), plus ``_path`` (the log: conn, dns, ...); that record is
then normalized as a Zeek JSON record is (``secmon.ingest.json_events.ZEEK``), so
a rule reads both alike: ``source:zeek``, ``network.client.ip`` <- ``id.orig_h``, ...
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.json_events import ZEEK, MissingTimestamp
from secmon.ingest.timestamps import TimestampError

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")
_INTEGER_TYPES = frozenset({"count", "int", "port"})
_FLOAT_TYPES = frozenset({"time", "interval", "double"})
# Directives that set how the lines after them are read (#open and #close only say when).
_SETTINGS = ("separator", "set_separator", "empty_field", "unset_field", "path", "fields", "types")

# Fields whose values are written as they read (strings and integers), for the prefilter; floats
# are re-formatted, booleans read T/F, and any field may hold an escape, so nothing else is.
_VERBATIM_FIELDS = frozenset({
    "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "conn_state", "history",
    "query", "qtype_name", "rcode_name", "method", "host", "uri", "referrer", "user_agent", "status_code",
    "status_msg", "server_name", "subject", "issuer", "version", "cipher", "client", "server", "note", "msg",
    "name", "network.client.ip", "network.client.port", "network.destination.ip", "network.destination.port",
    "http.method", "http.url", "http.status_code", "http.useragent", "http.referer", "dns.question.name",
})  # fmt: skip


def _unescape(text: str) -> str:
    """Zeek's ``\\xHH`` escapes are bytes (a separator, a control character, a byte of invalid
    UTF-8): decoded back to bytes, then the whole value as UTF-8."""
    if "\\x" not in text:
        return text
    return _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode()).decode("utf-8", "replace")


class _Header:
    """How the lines of one log are read, from its directives (defaults: Zeek's)."""

    def __init__(self) -> None:
        self.separator = "\t"
        self.set_separator = ","
        self.empty_field = "(empty)"
        self.unset_field = "-"
        self.path: str | None = None
        self.fields: list[str] | None = None
        self.types: list[str] | None = None

    def directive(self, text: str) -> None:
        if text.startswith("#separator "):
            self.separator = _unescape(text[len("#separator ") :])
            return
        name, _, value = text[1:].partition(self.separator)
        if name == "fields":
            self.fields = value.split(self.separator)
            self.types = None
        elif name == "types":
            self.types = value.split(self.separator)
        elif name in ("set_separator", "empty_field", "unset_field"):
            setattr(self, name, _unescape(value))
        elif name == "path":
            self.path = value

    def value(self, text: str, kind: str) -> Any:
        """A field as Zeek's JSON writer writes it (``kind`` from #types)."""
        if kind.startswith(("set[", "vector[")):
            if text == self.empty_field:
                return []
            inner = kind[kind.index("[") + 1 : -1]
            return [self.value(item, inner) for item in text.split(self.set_separator)]
        if text == self.empty_field:
            return ""
        try:
            if kind in _INTEGER_TYPES:
                return int(text)
            if kind in _FLOAT_TYPES and math.isfinite(number := float(text)):
                return number
        except ValueError:
            pass  # written as it was: the event keeps what the line said
        if kind == "bool" and text in ("T", "F"):
            return text == "T"
        return _unescape(text)


class ZeekFormat(LogFormat):
    """Zeek's TSV logs: the header's fields and types, each line the record Zeek's JSON would be."""

    name = "zeek"
    description = "Zeek (Bro) TSV logs: #fields/#types header; events as Zeek's JSON records, source:zeek"
    directive_literals = tuple(f"#{name}" for name in _SETTINGS)
    escaped_chars = frozenset("\\\t")

    def verbatim(self, path: str) -> bool:
        return path in _VERBATIM_FIELDS

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path == "source":
            return None if value == "zeek" else []
        return super().implied_literals(path, value)

    def sniff_head(self, lines: list[str]) -> bool:
        return bool(lines) and lines[0].startswith("#separator ")

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        header: _Header | None = source.parse_state.get("zeek")
        if header is None:
            header = source.parse_state["zeek"] = _Header()
        if text.startswith("#"):
            header.directive(text)
            return []
        if header.fields is None:
            raise LineRejected(reasons.UNPARSED_LINE, f"no #fields directive before this line: {text}")
        values = text.split(header.separator)
        if len(values) != len(header.fields):
            raise LineRejected(reasons.UNPARSED_LINE, f"{len(values)} values for {len(header.fields)} fields: {text}")
        types = header.types if header.types is not None and len(header.types) == len(values) else None
        record: dict[str, Any] = {}
        for i, (name, raw) in enumerate(zip(header.fields, values)):
            if raw == header.unset_field:
                continue
            record[name] = header.value(raw, types[i] if types is not None else ("time" if name == "ts" else "string"))
        if header.path is not None:
            record["_path"] = header.path
        try:
            return ZEEK.normalize(record)
        except MissingTimestamp as exc:
            raise LineRejected(reasons.MISSING_TIMESTAMP, f"{exc}: {text}") from None
        except (TimestampError, ValueError, TypeError, OverflowError) as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
