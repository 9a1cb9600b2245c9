"""Syslog: RFC 3164 (no year: the ``year`` option and a Dec -> Jan rollover tracker), its
RFC 3339-dated variant, and RFC 5424 with structured data; program messages (sshd, PAM) are
mapped by ``messages``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat, raw_safe, syslog_priority
from secmon.ingest.messages import parse_program_message
from secmon.ingest.timestamps import MONTHS, TimestampError, YearTracker, day_ms, fraction_ms, parse_iso8601

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

RFC3164_RECORD = re.compile(
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


def _sd_value(text: str) -> str:
    return _SD_UNESCAPE.sub(r"\1", text) if "\\" in text else text


class SyslogFormat(LogFormat):
    """RFC 3164 (BSD, no year) and RFC 5424 syslog, with the program's message parsed when
    secmon knows the program (sshd, PAM)."""

    name = "syslog"
    description = "syslog: RFC 3164 (the `year` option, Dec->Jan rollover), RFC 3339-dated BSD, RFC 5424"
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
            "sudo.user",
            "sudo.command",
            "sudo.tty",
            "sudo.pwd",
            "sudo.reason",
            "target.user.name",
            "target.group.name",
            "network.destination.ip",  # a CEF message's dst (and dpt)
            "network.destination.port",
        }
    )

    # RFC 5424 structured data escapes ", \ and ]; a CEF message escapes \, = and |.
    escaped_chars = frozenset('"\\]=|')

    def verbatim(self, path: str) -> bool:
        return path in self.verbatim_paths or path.startswith("syslog.structured_data.")

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path == "source":
            # The program name, lower-cased: the line holds it in some ASCII case.
            return [value] if value.isascii() and raw_safe(value, self.escaped_chars) else None
        if path == "evt.name":
            # What the message parsers (secmon.ingest.messages) set evt.name from.
            return {"authentication": ["Failed ", "Accepted ", "authentication failure"], "sudo": ["COMMAND="],
                    "user_created": ["new user: "], "group_member_added": ["add '", " added by "]}.get(value, [])
        if path == "evt.outcome":
            return {"failure": ["Failed ", "authentication failure", "COMMAND="], "success": ["Accepted ", "COMMAND="]}.get(value, [])
        if path == "pam.module":
            return ["pam_unix"] if value == "pam_unix" else []
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        m = RFC3164_RECORD.match(line)
        if m is not None and m.group(2) in MONTHS:
            return True
        return _RFC5424.match(line) is not None or _RFC3339_BSD.match(line) is not None

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        m = RFC3164_RECORD.fullmatch(text)
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
            tracker = YearTracker.of(source)
            # Two-digit fields compare correctly as strings: no int() needed to validate them.
            if hour > "23" or minute > "59" or second > "60":
                raise LineRejected(reasons.BAD_TIMESTAMP, f"no such time {hour}:{minute}:{second}: {text}")
            try:
                ts = day_ms(tracker.year_for(month, int(day)), month, int(day))
            except TimestampError as exc:
                raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
            ts += int(hour) * 3_600_000 + int(minute) * 60_000 + int(second) * 1000
            if fraction:
                ts += fraction_ms(fraction)
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
            fields, event["status"] = syslog_priority(int(pri))
            event.setdefault("syslog", {}).update(fields)
        return with_program(event, program, pid, message)


def with_program(event: Event, program: str | None, pid: str | None, message: str) -> Event | list[Event]:
    """The event of a record logged by ``program`` (its tag): ``service``, ``syslog.appname``
    and ``syslog.pid`` set, and the message parsed where secmon knows the program."""
    if not program:
        return event
    event["service"] = program
    syslog = event.get("syslog")
    if syslog is None:
        syslog = event["syslog"] = {}
    syslog["appname"] = program
    if pid is not None:
        syslog["pid"] = pid
    return parse_program_message(event, program, message)
