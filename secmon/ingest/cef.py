"""ArcSight's Common Event Format (CEF): what firewalls, IDSs, WAFs and endpoint agents send, most
often as a syslog message whose tag is ``CEF``, sometimes as bare lines::

    <134>Sep 19 08:26:10 fw-1 CEF:0|Fortinet|FortiGate|7.2|13|traffic|5|src=10.0.0.5 spt=50000 dst=198.51.100.7 dpt=443 act=deny
    CEF:0|Imperva|WAF|14.1|1|SQL injection|9|rt=1714557600000 src=203.0.113.9 request=/search?q\\='1 suser=bob

The header goes to ``cef.version``, ``cef.device.vendor``/``product``/``version``,
``cef.device.event_class_id``, ``cef.name`` and ``cef.severity``, the extension's pairs to
``cef.extensions.<key>`` (the names Elastic's decoder uses), escapes undone (``\\|`` ``\\=``
``\\\\`` ``\\n`` ``\\r``). The usual keys are copied onto Datadog's attributes:
``network.client.ip``/``port`` <- ``src``/``spt``, ``network.destination.ip``/``port`` <-
``dst``/``dpt``, ``usr.name`` <- ``suser``, ``http.url``/``method``/``useragent`` <- ``request``,
``requestMethod``, ``requestClientApplication``, ``evt.outcome`` <- ``outcome``; ``status`` from the
severity (0-3 info, 4-6 warning, 7-8 error, 9-10 critical, or its Low/Medium/High/Very-High).
A bare line is dated by ``rt`` (else ``end``, ``start``): epoch milliseconds or a date such as
``Sep 19 2024 08:26:10``; a syslog message keeps the syslog header's time.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.paths import set_default
from secmon.ingest.timestamps import MONTHS, TimestampError, datetime_ms, is_plausible_ms, parse_any

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

# A pair starts at a key followed by an unescaped "=", after the start or a space.
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")
_UNESCAPE = re.compile(r"\\([\\=|nr])")
_ESCAPED = {"n": "\n", "r": "\r"}
_TEXT_DATE = re.compile(r"(\w{3}) (\d{1,2})(?: (\d{4}))? (\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?: \w+)?")
_SEVERITY_WORDS = {"unknown": "info", "low": "info", "medium": "warning", "high": "error", "very-high": "critical"}
_DATE_KEYS = ("rt", "end", "start")

# Extension key -> Datadog attribute, as CEF's dictionary defines the keys.
_STANDARD: dict[str, tuple[str, ...]] = {
    "src": ("network", "client", "ip"),
    "spt": ("network", "client", "port"),
    "dst": ("network", "destination", "ip"),
    "dpt": ("network", "destination", "port"),
    "suser": ("usr", "name"),
    "request": ("http", "url"),
    "requestMethod": ("http", "method"),
    "requestClientApplication": ("http", "useragent"),
}
_PORTS = frozenset({"spt", "dpt"})


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(1)), text) if "\\" in text else text


def _split_header(body: str) -> tuple[list[str], str] | None:
    """The seven header fields after ``CEF:`` (pipes escaped as ``\\|`` inside them) and the
    extension; None when there are fewer than seven."""
    fields: list[str] = []
    start = i = 0
    while len(fields) < 7:
        i = body.find("|", i)
        if i < 0:
            return None
        if _escaped(body, i):
            i += 1
            continue
        fields.append(_unescape(body[start:i]).strip())
        start = i = i + 1
    return fields, body[start:]


def _escaped(text: str, i: int) -> bool:
    """Whether the character at ``i`` follows an odd run of backslashes."""
    backslashes = 0
    while i - backslashes - 1 >= 0 and text[i - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _extensions(text: str) -> dict[str, str]:
    keys = [m for m in _KEY.finditer(text) if not _escaped(text, m.end() - 1)]
    pairs: dict[str, str] = {}
    for k, m in enumerate(keys):
        end = keys[k + 1].start() if k + 1 < len(keys) else len(text)
        value = text[m.end():end].strip()
        if value:
            pairs[m.group(1)] = _unescape(value)
    return pairs


def _status(severity: str) -> str | None:
    if severity.isdigit():
        level = int(severity)
        return "info" if level <= 3 else "warning" if level <= 6 else "error" if level <= 8 else "critical" if level <= 10 else None
    return _SEVERITY_WORDS.get(severity.lower())


def add_cef(event: Event, body: str) -> bool:
    """Read ``body`` (what follows ``CEF:``) into ``event``; False when it is no CEF record."""
    split = _split_header(body)
    if split is None:
        return False
    (version, vendor, product, device_version, event_class_id, name, severity), extension = split
    extensions = _extensions(extension)
    cef: dict[str, Any] = {"version": version, "device": {"vendor": vendor, "product": product, "version": device_version,
                                                          "event_class_id": event_class_id},
                           "name": name, "severity": severity}
    if extensions:
        cef["extensions"] = extensions
    event["cef"] = cef
    for key, path in _STANDARD.items():
        value = extensions.get(key)
        if value is None:
            continue
        set_default(event, path, int(value) if key in _PORTS and value.isdigit() else value)
    outcome = extensions.get("outcome")
    if outcome is not None:
        set_default(event, ("evt", "outcome"), outcome.lower())
    status = _status(severity)
    if status is not None:
        event.setdefault("status", status)
    return True


def parse_cef_message(event: Event, message: str) -> int:
    """The syslog message parser for the ``CEF`` tag (the message is what follows ``CEF:``)."""
    add_cef(event, message)
    return 1


def _time(extensions: dict[str, str]) -> int | None:
    for key in _DATE_KEYS:
        value = extensions.get(key)
        if value is None:
            continue
        m = _TEXT_DATE.fullmatch(value)
        if m is not None and m.group(1) in MONTHS and m.group(3) is not None:
            mon, day, year, hour, minute, second, fraction = m.groups()
            return datetime_ms(int(year), MONTHS[mon], int(day), hour, minute, second, fraction)
        ms = parse_any(value)
        if not is_plausible_ms(ms):
            raise TimestampError(f"{key}={value!r} is not a date from 1990 to 2100")
        return ms
    return None


class CefFormat(LogFormat):
    """Bare CEF lines (``CEF:0|...``), dated by their ``rt``/``end``/``start``."""

    name = "cef"
    description = "bare CEF lines (CEF:0|vendor|product|...|extension), dated by rt/end/start; CEF in syslog is read by the syslog format"
    verbatim_paths = frozenset({"message", "network.client.ip", "network.destination.ip", "network.client.port",
                                "network.destination.port", "usr.name"})
    escaped_chars = frozenset("\\=|")

    def sniff(self, line: str) -> bool:
        return line.startswith("CEF:") and _split_header(line[4:]) is not None

    def parse_text(self, text: str, source: Source) -> Event:
        event: Event = {"source": "cef", "message": text}
        if not text.startswith("CEF:") or not add_cef(event, text[4:]):
            raise LineRejected(reasons.UNPARSED_LINE, text)
        try:
            ts = _time(event["cef"].get("extensions", {}))
        except (TimestampError, ValueError, TypeError, OverflowError) as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        if ts is None:
            raise LineRejected(reasons.MISSING_TIMESTAMP, text)
        event["timestamp"] = ts
        return event
