"""Intrusion detection alerts in Snort's "fast" form, which Suricata's ``fast.log`` keeps too::

    05/01-10:00:00.123456  [**] [1:2010935:3] ET SCAN Suspicious inbound to MSSQL port 1433 [**] [Classification: Potentially Bad Traffic] [Priority: 2] {TCP} 203.0.113.9:50000 -> 10.0.0.5:1433

The date has no year unless Snort ran with ``-y`` (``05/01/24-10:00:00``): a yearless one takes
``--year`` and syslog's rollover rule. Attributes: ``network.client.ip``/``port`` (the source),
``network.destination.ip``/``port``, ``network.transport`` (the protocol, lower-cased),
``snort.gid``/``sid``/``rev`` (the rule), ``message`` and ``snort.signature`` (its text),
``snort.classification``, ``snort.priority`` and ``status`` from it (1 critical, 2 error,
3 warning, 4 and above info); ``source:snort``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.timestamps import TimestampError, YearTracker, datetime_ms

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_ADDRESS = r"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*?)(?::(\d+))?"
_ALERT = re.compile(
    r"(\d{2})/(\d{2})(?:/(\d{2}|\d{4}))?-(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s+\[\*\*\]\s+\[(\d+):(\d+):(\d+)\]\s+(.*?)\s+\[\*\*\]"
    r"(?:\s+\[Classification:\s*([^\]]*?)\s*\])?(?:\s+\[Priority:\s*(\d+)\])?\s+\{([^}]+)\}\s+" + _ADDRESS + r"\s+->\s+" + _ADDRESS,
)
_STATUS = {1: "critical", 2: "error", 3: "warning"}


class SnortFormat(LogFormat):
    """Snort's and Suricata's fast alerts: one alert a line."""

    name = "snort"
    description = "Snort and Suricata fast alerts (fast.log: date [**] [gid:sid:rev] signature [**] ... {PROTO} src -> dst), source:snort"
    verbatim_paths = frozenset({
        "message", "snort.signature", "snort.classification", "snort.gid", "snort.sid", "snort.rev", "snort.priority",
        "network.client.ip", "network.client.port", "network.destination.ip", "network.destination.port",
    })  # fmt: skip

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in ("source", "service"):
            return None if value == "snort" else []
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        return _ALERT.fullmatch(line) is not None

    def parse_text(self, text: str, source: Source) -> Event:
        m = _ALERT.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        (month, day, year, hour, minute, second, fraction, gid, sid, rev, signature, classification, priority, protocol,
         src, src_port, dst, dst_port) = m.groups()
        try:
            if year is None:
                full_year = YearTracker.of(source).year_for(int(month), int(day))
            else:
                full_year = int(year) + (2000 if len(year) == 2 else 0)
            ts = datetime_ms(full_year, int(month), int(day), hour, minute, second, fraction)
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        snort: dict[str, object] = {"gid": int(gid), "sid": int(sid), "rev": int(rev), "signature": signature}
        if classification:
            snort["classification"] = classification
        event: Event = {"timestamp": ts, "source": "snort", "message": signature, "snort": snort,
                        "network": {"transport": protocol.lower(), "client": _endpoint(src, src_port),
                                    "destination": _endpoint(dst, dst_port)}}
        if priority is not None:
            snort["priority"] = int(priority)
            event["status"] = _STATUS.get(int(priority), "info")
        return event


def _endpoint(address: str, port: str | None) -> dict[str, object]:
    endpoint: dict[str, object] = {"ip": address.strip("[]")}
    if port is not None:
        endpoint["port"] = int(port)
    return endpoint
