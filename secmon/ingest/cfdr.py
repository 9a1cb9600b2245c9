"""The supercomputer logs of the USENIX Computer Failure Data Repository (BGL, Thunderbird,
Spirit, Liberty; loghub's BGL and Thunderbird sets), as Oliner and Stearley published them
(:class:`CfdrFormat`), and Los Alamos' HPC cluster logs (loghub's HPC set, :class:`HpcFormat`):

    - 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root
    - 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.363779 R02-M1-N0-C:J12-U11 RAS KERNEL INFO instruction cache parity error corrected

An alert category (``-`` for none), epoch seconds, the date, the node, then the record as the
machine logged it: a syslog record (Thunderbird, Spirit, Liberty), read as one so that the sshd and
PAM parsers map it, or a Blue Gene/L RAS record (local time with microseconds, location, type,
component, level, message). The time is the epoch seconds (UTC); a BGL record adds its fraction.

    134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component \042alt0\042 is in the unavailable state (HWID=1463)

An HPC record: its number, the node, the component, its state (an event kind), epoch seconds, a
flag, then the message.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.syslog import RFC3164_RECORD, SyslogFormat, with_program
from secmon.ingest.timestamps import epoch_to_ms, fraction_ms, is_plausible_ms

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_LINE = re.compile(r"(\S+) (\d{9,10}) \d{4}\.\d{2}\.\d{2} (\S+) (.*)", re.DOTALL)
_BGL_RECORD = re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}\.\d{2}\.(\d{2})\.(\d{1,6}) \S+ (\S+) (\S+) (\S+) ?(.*)", re.DOTALL)

# Datadog's status for the BGL severity levels.
_BGL_STATUS = {
    "DEBUG": "debug", "INFO": "info", "WARNING": "warning", "SEVERE": "error", "ERROR": "error",
    "FAILURE": "critical", "FATAL": "critical",
}

_SYSLOG = SyslogFormat()


def _epoch_ms(seconds: str, text: str) -> int:
    """The line's epoch seconds in milliseconds; a time no log of these machines can hold rejects it."""
    ts = epoch_to_ms(int(seconds))
    if not is_plausible_ms(ts):
        raise LineRejected(reasons.BAD_TIMESTAMP, f"{seconds} is not a plausible epoch time: {text}")
    return ts


class CfdrFormat(LogFormat):
    """BGL and Thunderbird-style supercomputer logs: the epoch time, the node as ``host``, the
    alert category as ``cfdr.alert_category`` (absent for ``-``), and the record parsed."""

    name = "cfdr"
    description = "supercomputer logs (USENIX CFDR: BGL, Thunderbird, Spirit, Liberty): epoch time, node, syslog or BGL RAS record"
    verbatim_paths = frozenset({"host", "cfdr.alert_category", "bgl.type", "bgl.level"}) | _SYSLOG.verbatim_paths
    escaped_chars = _SYSLOG.escaped_chars

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in ("source", "evt.name", "evt.outcome", "pam.module"):
            # Only the syslog records set these, as a syslog line would.
            return _SYSLOG.implied_literals(path, value)
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        m = _LINE.match(line)
        return m is not None and is_plausible_ms(epoch_to_ms(int(m.group(2))))

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        m = _LINE.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        alert, seconds, node, record = m.groups()
        ts = _epoch_ms(seconds, text)
        event: Event = {"timestamp": ts, "host": node, "message": record}
        if alert != "-":
            event["cfdr"] = {"alert_category": alert}
        if (bgl := _BGL_RECORD.fullmatch(record)) is not None:
            second, fraction, kind, component, level, message = bgl.groups()
            if int(second) == int(seconds) % 60:  # the same second: its fraction is this time's
                event["timestamp"] = ts + fraction_ms(fraction)
            event["message"] = message
            event["service"] = component
            event["bgl"] = {"type": kind, "level": level}
            if (status := _BGL_STATUS.get(level)) is not None:
                event["status"] = status
            return event
        if (bsd := RFC3164_RECORD.fullmatch(record)) is not None:
            program, pid, message = bsd.group(9), bsd.group(10), bsd.group(11)
            event["message"] = message
            return with_program(event, program, pid, message)
        return event


_HPC_LINE = re.compile(r"(\d+) (\S+) (\S+) (\S+) (\d{9,10}) (\d+) ?(.*)", re.DOTALL)


class HpcFormat(LogFormat):
    """Los Alamos' HPC cluster logs: the epoch time, the node as ``host``, the component as
    ``service``, and the record's number, state and flag under ``hpc``."""

    name = "hpc"
    description = "LANL HPC cluster logs (loghub's HPC): record number, node, component, state, epoch time, flag, message"
    verbatim_paths = frozenset({"host", "service", "hpc.state", "hpc.flag", "hpc.log_id"})

    def sniff(self, line: str) -> bool:
        m = _HPC_LINE.fullmatch(line)
        return m is not None and is_plausible_ms(epoch_to_ms(int(m.group(5))))

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        m = _HPC_LINE.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        log_id, node, component, state, seconds, flag, message = m.groups()
        return {"timestamp": _epoch_ms(seconds, text), "host": node, "service": component, "message": message,
                "hpc": {"log_id": log_id, "state": state, "flag": flag}}
