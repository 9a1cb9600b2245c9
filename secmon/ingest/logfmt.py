"""Key=value lines (logfmt): Go services, Grafana Loki and Prometheus, HashiCorp's tools, Heroku's
router, and appliances that log pairs (FortiGate, often behind a syslog priority)::

    time=2024-05-01T10:00:00Z level=warn msg="login failed" user=alice src=203.0.113.7
    <189>date=2024-05-01 time=10:00:00 devname="FG100" type="traffic" srcip=10.0.0.5 dstip=198.51.100.7

Each line becomes the record of its pairs (a quoted value unescaped, a plain integer or decimal
typed, an empty value left out), read as a JSON record is
(:func:`~secmon.ingest.json_format.record_event`): ``level`` gives the status, ``msg`` the
message, ``time``/``ts``/``timestamp`` the time. A ``date`` and a ``time`` of day (FortiGate's) are
one time together. A syslog priority in front gives ``syslog.severity``/``facility`` and the status.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat, raw_safe, syslog_priority
from secmon.ingest.csv_format import typed_cell
from secmon.ingest.json_format import JSON_DERIVED, record_event

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_PAIR = r'[A-Za-z_][\w.\-/:]*=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)'
_LINE = re.compile(r"(?:<(\d{1,3})>)?\s*(" + _PAIR + r"(?:\s+" + _PAIR + r")*)\s*")
_PAIRS = re.compile(r'([A-Za-z_][\w.\-/:]*)=(?:"((?:[^"\\]|\\.)*)"|([^\s"]*))')
_UNESCAPE = re.compile(r"\\(.)")
_TIME_OF_DAY = re.compile(r"\d{2}:\d{2}:\d{2}(?:\.\d+)?")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_ZONE = re.compile(r"[+-]\d{2}:?\d{2}")
MIN_PAIRS = 3


class LogfmtFormat(LogFormat):
    """Lines of key=value pairs, each a record read as JSON records are."""

    name = "logfmt"
    description = "key=value lines (logfmt; FortiGate-style pairs, behind a syslog priority or not), read as JSON records"
    escaped_chars = frozenset('"\\')

    def verbatim(self, path: str) -> bool:
        return path not in JSON_DERIVED and not path.startswith("syslog.")

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in JSON_DERIVED or not raw_safe(value, self.escaped_chars):
            return None  # computed (status from level, a time from date and time), or unescaped
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        m = _LINE.fullmatch(line)
        return m is not None and len(_PAIRS.findall(m.group(2))) >= MIN_PAIRS

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        m = _LINE.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, f"not key=value pairs: {text}")
        priority, body = m.groups()
        record: dict[str, Any] = {}
        for key, quoted, bare in _PAIRS.findall(body):
            if quoted:
                record[key] = _UNESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
            elif bare:
                record[key] = typed_cell(bare)
        day, clock = record.get("date"), record.get("time")
        if isinstance(day, str) and isinstance(clock, str) and _DAY.fullmatch(day) and _TIME_OF_DAY.fullmatch(clock):
            # FortiGate writes the day and the time of day apart (and "date" alone is a day),
            # with its zone in "tz" on newer releases; without one the time is UTC.
            zone = record.get("tz")
            zone = zone if isinstance(zone, str) and _ZONE.fullmatch(zone) else "Z"
            record.setdefault("timestamp", f"{day}T{clock}{zone}")
        if priority is not None:
            fields, status = syslog_priority(int(priority))
            record.setdefault("syslog", fields)
            if not any(name in record for name in ("status", "severity", "level")):
                record["status"] = status
        return record_event(record)
