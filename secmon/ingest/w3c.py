"""The W3C extended log file format: Microsoft IIS's default web log (and Exchange's, and many
proxies'). Directives name what follows; a line holds the fields the last ``#Fields:`` named::

    #Software: Microsoft Internet Information Services 10.0
    #Version: 1.0
    #Date: 2024-05-01 10:00:00
    #Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
    2024-05-01 10:00:00 10.0.0.5 GET /index.html id=1 443 - 203.0.113.7 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 15

Every field stays addressable under its own name (``@c-ip``, ``@sc-status``); ``-`` is no value.
Datadog's standard attributes come from the fields IIS writes, as its pipeline maps them:
``network.client.ip`` <- ``c-ip``, ``http.method``, ``http.url`` (the stem and ``?`` query),
``http.url_details``, ``http.status_code``, ``http.useragent``, ``http.referer``, ``usr.name``,
``network.destination.ip``/``port``, bytes, ``duration`` (nanoseconds, from milliseconds).
The time is ``date`` and ``time`` (UTC, as IIS writes it), the ``#Date:`` directive's day when a
line has no ``date``. IIS writes a space inside a value as ``+``, which stays as written.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from secmon.ingest import stats as reasons
from secmon.ingest.access_log import url_details
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.paths import set_default
from secmon.ingest.timestamps import TimestampError, parse_iso8601

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_DIRECTIVE = re.compile(r"#(Software|Version|Date|Fields|Start-Date|End-Date|Remark): ?(.*)", re.DOTALL)
# Values are space-separated; other writers than IIS may quote a string holding spaces ("" inside).
_QUOTED_TOKENS = re.compile(r'"((?:[^"]|"")*)"|(\S+)')

# W3C field -> the Datadog attribute IIS's pipeline copies it to (an integer field only when its
# value is one).
_STANDARD: dict[str, str] = {
    "c-ip": "network.client.ip",
    "c-port": "network.client.port",
    "s-ip": "network.destination.ip",
    "s-port": "network.destination.port",
    "cs-method": "http.method",
    "cs-username": "usr.name",
    "cs(User-Agent)": "http.useragent",
    "cs(Referer)": "http.referer",
    "sc-status": "http.status_code",
    "sc-bytes": "network.bytes_written",
    "cs-bytes": "network.bytes_read",
    "s-computername": "host",
}
_STANDARD_PATHS = {name: tuple(path.split(".")) for name, path in _STANDARD.items()}
_INTEGER_FIELDS = frozenset({"c-port", "s-port", "sc-status", "sc-substatus", "sc-win32-status", "sc-bytes", "cs-bytes", "time-taken"})


class W3cFormat(LogFormat):
    """IIS and other W3C extended logs: directives give the fields, lines their values."""

    name = "w3c"
    description = "W3C extended log (IIS): #Fields directive, space-separated values; source:iis"
    #: The parser must see every ``#Fields:`` line, whatever the prefilter keeps.
    directive_literals = ("#Fields:",)
    # Every raw field and what is copied from one; not http.url (stem and query joined), the
    # status word, duration or the version without "HTTP/"... that are derived.
    verbatim_paths = frozenset({"message", *_STANDARD.values(), "http.url_details.path", "http.url_details.host"})
    escaped_chars = frozenset('"')

    def verbatim(self, path: str) -> bool:
        # A raw field's name is its W3C name (no dot in those): its value is as written.
        return path in self.verbatim_paths or ("." not in path and path not in ("source", "service", "status", "timestamp", "duration"))

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in ("source", "service"):
            return None if value == "iis" else []
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        return line.startswith("#Fields: ") or line.startswith("#Software: ") or line.startswith("#Version: ")

    def sniff_head(self, lines: list[str]) -> bool:
        """A file is W3C when its first lines are directives and one of them is ``#Fields:``."""
        directives = [line for line in lines if line.startswith("#")]
        return bool(lines) and lines[0].startswith("#") and any(line.startswith("#Fields: ") for line in directives) \
            and all(_DIRECTIVE.fullmatch(line) for line in directives)

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        state = source.parse_state
        if text.startswith("#"):
            directive = _DIRECTIVE.fullmatch(text)
            if directive is None:
                raise LineRejected(reasons.UNPARSED_LINE, text)
            name, value = directive.groups()
            if name == "Fields":
                state["w3c_fields"] = value.split()
            elif name == "Date":
                state["w3c_day"] = value.split(" ", 1)[0]
            return []
        fields: list[str] | None = state.get("w3c_fields")
        if fields is None:
            raise LineRejected(reasons.UNPARSED_LINE, f"no #Fields directive before this line: {text}")
        if '"' in text:
            values = [quoted.replace('""', '"') if bare is None or not bare else bare
                      for quoted, bare in _QUOTED_TOKENS.findall(text)]
        else:
            values = text.split()
        if len(values) != len(fields):
            raise LineRejected(reasons.UNPARSED_LINE, f"{len(values)} values for {len(fields)} fields: {text}")
        raw = dict(zip(fields, values))
        event: Event = {"source": "iis", "service": "iis", "message": text}
        for name, value in raw.items():
            if value == "-":
                continue
            if name in _INTEGER_FIELDS and value.isdigit():
                event[name] = int(value)
            else:
                event[name] = value
        event["timestamp"] = self._time(raw, state, text)
        for name, path in _STANDARD_PATHS.items():
            value = event.get(name)
            if value is not None and (name not in _INTEGER_FIELDS or type(value) is int):
                set_default(event, path, value)
        http = event.get("http")
        stem = event.get("cs-uri-stem")
        if stem is not None:
            http = event.setdefault("http", {})
            query = event.get("cs-uri-query")
            url = f"{stem}?{query}" if query is not None else stem
            http["url"] = url
            http["url_details"] = url_details(url)
            if (host := event.get("cs-host")) is not None:
                http["url_details"]["host"] = host
        if http is not None and (version := event.get("cs-version")) is not None:
            http["version"] = version.removeprefix("HTTP/")
        code = event.get("sc-status")
        if type(code) is int:
            event["status"] = "error" if code >= 500 else "warn" if code >= 400 else "info"
        if type(taken := event.get("time-taken")) is int:
            event["duration"] = taken * 1_000_000
        return event

    @staticmethod
    def _time(raw: dict[str, str], state: dict[str, Any], text: str) -> int:
        day = raw.get("date", "-")
        if day == "-":
            day = state.get("w3c_day", "-")
        clock = raw.get("time", "-")
        if day == "-" or clock == "-":
            raise LineRejected(reasons.MISSING_TIMESTAMP, text)
        try:
            return parse_iso8601(f"{day}T{clock}Z")
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
