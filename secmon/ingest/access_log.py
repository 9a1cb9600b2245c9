"""Web server logs: Apache/nginx common and combined access logs, and the Apache error log."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from secmon.ingest import stats as reasons
from secmon.ingest.base import QUOTE_ESCAPED, Event, LineRejected, LogFormat
from secmon.ingest.messages import is_ip
from secmon.ingest.timestamps import MONTHS, TimestampError, clock_ms, day_ms, parse_access_log_time

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

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

    escaped_chars = QUOTE_ESCAPED

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
