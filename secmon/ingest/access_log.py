"""Web server logs: Apache/nginx common and combined access logs, and the Apache and nginx error logs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from secmon.ingest import stats as reasons
from secmon.ingest.base import QUOTE_ESCAPED, Event, LineRejected, LogFormat
from secmon.ingest.messages import is_ip
from secmon.ingest.timestamps import MONTHS, TimestampError, datetime_ms, parse_access_log_time

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_QUOTED = r"\"((?:[^\"\\]|\\.)*)\""
# Apache's vhost_combined (Debian's other_vhosts_access.log) starts with "host:port ".
_ACCESS = re.compile(
    r"(?:([^\s:\[]+):(\d+) (?=\S+ \S+ \S+ \[))?(\S+) (\S+) (\S+) \[([^\]]+)\] " + _QUOTED
    + r" (\d{3}|-) (\d+|-)(?: " + _QUOTED + " " + _QUOTED + r")?.*",
    re.DOTALL,
)
# Only \" and \\ are undone; \xhh (Apache's escape for non-printable bytes) stays as logged.
_BACKSLASH_ESCAPE = re.compile(r"\\([\"\\])")


def _unescape(text: str) -> str:
    return _BACKSLASH_ESCAPE.sub(r"\1", text) if "\\" in text else text


def _status_from_code(code: int) -> str:
    return "error" if code >= 500 else "warn" if code >= 400 else "info"


def url_details(url: str) -> dict[str, Any]:
    """``http.url_details`` of a request's URL, as Datadog's URL parser gives it: the ``path`` as
    written, and the ``queryString`` as an object of its decoded parameters (``%27`` and ``+``
    decoded; a repeated name holds the list of its values).

    ``urllib.parse.parse_qsl(query, keep_blank_values=True)`` is the twin (a test holds them
    equal); it cost 6 us a line, as much again as the rest of an access-log line, where most
    parameters need no decoding at all."""
    path, _, query = url.partition("?")
    details: dict[str, Any] = {"path": path}
    parameters: dict[str, Any] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        previous = parameters.get(name)
        if previous is None:
            parameters[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            parameters[name] = [previous, value]
    if parameters:
        details["queryString"] = parameters
    return details


class _WebServerFormat(LogFormat):
    """A web server's log: every line matches ``line_pattern``, and ``source`` and ``service`` are
    one constant of the format."""

    source = ""
    line_pattern: re.Pattern[str]
    # The client is in the line; the server it reached is not.
    absent_namespaces = ("network.destination.",)

    def sniff(self, line: str) -> bool:
        return self.line_pattern.fullmatch(line) is not None

    def matched(self, text: str) -> re.Match[str]:
        m = self.line_pattern.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        return m

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in ("source", "service"):
            return None if value == self.source else []  # a constant of this format
        if path == "status":
            return self.status_literals(value)
        return super().implied_literals(path, value)

    def status_literals(self, value: str) -> list[str] | None:
        """What a line holds when its event's ``status`` is ``value`` (None: not written in it)."""
        return None


class AccessLogFormat(_WebServerFormat):
    """Apache/nginx common and combined access logs (``\\"`` inside quoted fields is unescaped),
    also with Apache's ``vhost_combined`` ``host:port`` in front (``http.url_details.host``/``port``)."""

    line_oriented = True
    line_pattern = _ACCESS
    verbatim_paths = frozenset(
        {
            "message",
            "network.client.ip",
            "usr.name",
            "http.ident",
            "http.method",
            "http.url",
            "http.url_details.path",
            "http.url_details.host",
            "http.version",  # "HTTP/" cut off: the rest is still a substring of the line
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

    def parse_text(self, text: str, source: Source) -> Event:
        vhost, port, client, ident, user, stamp, request, status, size, referer, agent = self.matched(text).groups()
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
            http["url_details"] = url_details(url)
            http["version"] = request[last_space + 1 :].removeprefix("HTTP/")
        elif request and request != "-":
            http["url"] = request
        if status != "-":
            code = int(status)
            http["status_code"] = code
            event["status"] = _status_from_code(code)
        if size != "-":
            event["network"]["bytes_written"] = int(size)
        if vhost is not None:
            http.setdefault("url_details", {}).update(host=vhost, port=int(port))
        if referer is not None and referer != "-":
            http["referer"] = _unescape(referer)
        if agent is not None and agent != "-":
            http["useragent"] = _unescape(agent)
        return event

    escaped_chars = QUOTE_ESCAPED


# --- Apache error log ------------------------------------------------------------------------

_APACHE_ERROR = re.compile(
    r"\[\w{3} (\w{3}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))? (\d{4})\] \[(?:[\w-]+:)?(\w+)\]"
    r"(?: \[pid (\d+)(?::tid \d+)?\])?(?: \[client ([^\]]+)\])? ?(.*)",
    re.DOTALL,
)
_IPV4_PORT = re.compile(r"(\d+\.\d+\.\d+\.\d+):(\d+)")


class ApacheErrorFormat(_WebServerFormat):
    """Apache ``error_log``: ``[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] message``."""

    name = "apache_error"
    description = "Apache error log ([date] [level] [client ip] message), source:apache"
    verbatim_paths = frozenset({"message", "network.client.ip", "network.client.port"})
    source = "apache"
    line_pattern = _APACHE_ERROR

    def status_literals(self, value: str) -> list[str] | None:
        return [f"{value}]"] if value.isalpha() else []  # "[error]" or "[core:error]"

    def parse_text(self, text: str, source: Source) -> Event:
        mon, day, hour, minute, second, fraction, year, level, pid, client, message = self.matched(text).groups()
        month = MONTHS.get(mon)
        if month is None:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"unknown month {mon!r}: {text}")
        try:
            ts = datetime_ms(int(year), month, int(day), hour, minute, second, fraction)
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
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


# --- nginx error log -------------------------------------------------------------------------

_NGINX_ERROR = re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2}) \[(\w+)\] (\d+)#(\d+): (?:\*(\d+) )?(.*)", re.DOTALL)
# The context nginx appends to a message about a request: `, client: 1.2.3.4, server: _,
# request: "GET / HTTP/1.1", upstream: "http://...", host: "example.com", referrer: "..."`.
_NGINX_CONTEXT = re.compile(r", (client|server|request|upstream|host|referrer): (\"[^\"]*\"|[^,]*)")


class NginxErrorFormat(_WebServerFormat):
    """nginx ``error.log``: ``2024/05/01 10:00:00 [error] 1234#1234: *5 open() "/x" failed (2: No
    such file or directory), client: 1.2.3.4, server: _, request: "GET /x HTTP/1.1", host: "h"``.

    The time is the server's local time, without a zone: read as UTC, as for the Apache error log.
    ``error.message`` is the message before the request context; the context's client and request
    become ``network.client.ip`` and ``http.method``/``url``/``version`` as in the access log, its
    Host header ``http.url_details.host`` (``host`` is the machine that logged)."""

    name = "nginx_error"
    description = "nginx error log (date [level] pid#tid: *connection message, client: ip, request: ...), source:nginx"
    verbatim_paths = frozenset(
        {"message", "error.message", "network.client.ip", "http.method", "http.url", "http.url_details.path",
         "http.version", "http.url_details.host", "http.referer", "nginx.server", "nginx.upstream"}
    )  # fmt: skip
    source = "nginx"
    line_pattern = _NGINX_ERROR

    def status_literals(self, value: str) -> list[str] | None:
        return [f"[{value}]"] if value.isalpha() else []

    def parse_text(self, text: str, source: Source) -> Event:
        year, month, day, hour, minute, second, level, pid, tid, connection, message = self.matched(text).groups()
        try:
            ts = datetime_ms(int(year), int(month), int(day), hour, minute, second)
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        nginx: dict[str, Any] = {"pid": pid, "tid": tid}
        if connection is not None:
            nginx["connection_id"] = int(connection)
        event: Event = {"timestamp": ts, "source": "nginx", "service": "nginx", "status": level.lower(),
                        "message": message, "nginx": nginx}
        context = _NGINX_CONTEXT.search(message)
        if context is None:
            return event
        event["error"] = {"message": message[: context.start()]}
        http: dict[str, Any] = {}
        for key, raw in _NGINX_CONTEXT.findall(message, context.start()):
            value = raw[1:-1] if raw.startswith('"') and raw.endswith('"') and len(raw) > 1 else raw
            if key == "client":
                event["network"] = {"client": {"ip": value} if is_ip(value) else {"host": value}}
            elif key == "request":
                parts = value.split(" ")
                if len(parts) == 3:
                    http["method"], http["url"], version = parts
                    http["url_details"] = url_details(parts[1])
                    http["version"] = version.removeprefix("HTTP/")
                elif value:
                    http["url"] = value
            elif key == "host":
                http.setdefault("url_details", {})["host"] = value
            elif key == "referrer":
                http["referer"] = value
            else:
                nginx[key] = value
        if http:
            event["http"] = http
        return event
