"""systemd journal entries as ``journalctl -o json`` writes them: one JSON object per line.

Why a format of its own: Debian 12 and later, Fedora, Arch and most container hosts keep sshd's
log only in the journal, and a journal entry is not a Datadog-shaped record (no ``timestamp`` or
``message`` attribute; the program is a field, not a prefix of the text), so the NDJSON format
would reject every entry. ``journalctl -o json --since ... | secmon scan -`` is how such a host's
log reaches secmon.

Mapping (the entry's own fields stay addressable as they are: ``@_SYSTEMD_UNIT``, ``@_UID``, ...):

- ``timestamp`` <- ``_SOURCE_REALTIME_TIMESTAMP`` (when the program logged, what ``journalctl``
  shows), else ``__REALTIME_TIMESTAMP`` (when the journal received it): microseconds since the
  epoch, as decimal text.
- ``message`` <- ``MESSAGE``. journalctl writes text that is not printable UTF-8 as an array of
  byte values; it is decoded, invalid UTF-8 replaced. A field the entry holds more than once is an
  array of its values: the first is taken.
- ``host`` <- ``_HOSTNAME``; ``service`` and ``syslog.appname`` <- the first non-empty of
  ``SYSLOG_IDENTIFIER``, ``_SYSTEMD_UNIT``, ``_COMM`` (what Datadog's journald integration takes
  for ``service`` and ``source``); ``syslog.pid`` <- ``SYSLOG_PID``, else ``_PID``;
  ``syslog.severity`` and ``status`` <- ``PRIORITY``; ``syslog.facility`` <- ``SYSLOG_FACILITY``.
- ``source`` and the attributes of the message: as for a syslog line of the same program
  (:func:`secmon.ingest.messages.parse_program_message`: sshd, including OpenSSH 9.8+'s
  ``sshd-session``, and PAM). An entry the kernel's audit sent (``_TRANSPORT=audit``, on hosts
  without auditd) is an audit record, as in the audit log (``source:auditd``, ``@auditd.*``).

The prefilter is promised only ``source`` (the program fields are JSON strings holding it;
``auditd`` by the ``audit`` transport). A message that journalctl wrote as bytes does not appear as
text in the raw line, so nothing parsed out of ``message`` can be promised; rules on sshd are still
narrowed to sshd's entries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from secmon.ingest import stats as reasons
from secmon.ingest.base import JSON_ESCAPED, SYSLOG_SEVERITIES, Event, LineRejected, LogFormat, raw_safe
from secmon.ingest.auditd import add_audit_record
from secmon.ingest.json_format import json_object
from secmon.ingest.messages import parse_program_message

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_TIMESTAMP_FIELDS = ("_SOURCE_REALTIME_TIMESTAMP", "__REALTIME_TIMESTAMP")
_PROGRAM_FIELDS = ("SYSLOG_IDENTIFIER", "_SYSTEMD_UNIT", "_COMM")


def field_text(value: Any) -> str | None:
    """A journal field's value as text: a string as it is, an array of byte values decoded (invalid
    UTF-8 replaced), the first value of a repeated field; None for anything else (null: journalctl
    leaves out values over its size limit)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        if all(type(b) is int and 0 <= b <= 255 for b in value):
            return bytes(value).decode("utf-8", "replace")
        return field_text(value[0])
    return None


def _first_text(entry: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        text = field_text(entry.get(name))
        if text:
            return text
    return None


def _timestamp_ms(entry: dict[str, Any]) -> int:
    for name in _TIMESTAMP_FIELDS:
        text = field_text(entry.get(name))
        if text is None:
            continue
        if not (text.isascii() and text.isdigit()):
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{name}: {text[:60]!r} is not microseconds since the epoch")
        return int(text) // 1000
    raise LineRejected(reasons.MISSING_TIMESTAMP, "no " + " or ".join(_TIMESTAMP_FIELDS))


def _small_int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() and len(text) <= 3 else None


def journal_event(event: dict[str, Any]) -> Event | list[Event]:
    """The event(s) of one journal entry: the entry itself, with the mapped attributes added."""
    event["timestamp"] = _timestamp_ms(event)
    message = field_text(event.get("MESSAGE"))
    if message is not None:
        event["message"] = message
    host = field_text(event.get("_HOSTNAME"))
    if host:
        event["host"] = host
    syslog: dict[str, Any] = {}
    severity = _small_int(field_text(event.get("PRIORITY")))
    if severity is not None and severity < len(SYSLOG_SEVERITIES):
        syslog["severity"] = severity
        event["status"] = SYSLOG_SEVERITIES[severity]
    facility = _small_int(field_text(event.get("SYSLOG_FACILITY")))
    if facility is not None:
        syslog["facility"] = facility
    program = _first_text(event, _PROGRAM_FIELDS)
    if program is not None:
        event["service"] = syslog["appname"] = program
    pid = _first_text(event, ("SYSLOG_PID", "_PID"))
    if pid is not None:
        syslog["pid"] = pid
    if syslog:
        event["syslog"] = syslog
    if field_text(event.get("_TRANSPORT")) == "audit" and message:
        # Sent by the kernel's audit (hosts without auditd keep it in the journal): "TYPE pairs".
        record_type, _, body = message.partition(" ")
        serial = field_text(event.get("_AUDIT_ID"))
        return add_audit_record(event, field_text(event.get("_AUDIT_TYPE_NAME")) or record_type,
                                int(serial) if serial and serial.isdigit() else None, body)
    if program is None:
        return event
    return parse_program_message(event, program, message or "")


class JournaldFormat(LogFormat):
    name = "journald"
    description = "systemd journal: `journalctl -o json` (one entry per line; sshd and PAM messages parsed)"

    escaped_chars = JSON_ESCAPED

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path == "source" and value == "auditd":
            return ["audit"]  # "_TRANSPORT" : "audit", or a program called auditd
        if path == "source" and value.isascii() and value.isprintable() and raw_safe(value, JSON_ESCAPED):
            # source is the program name lower-cased, a basename, a suffix cut off or an alias
            # (sshd-session -> sshd): each is a part of a program field's string in the raw line.
            return [value]
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return False
        return isinstance(entry, dict) and any(name in entry for name in _TIMESTAMP_FIELDS)

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        return journal_event(json_object(text))
