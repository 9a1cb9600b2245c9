"""The Linux audit log (``/var/log/audit/audit.log``), as auditd writes it.

Why: on RHEL, Amazon Linux, SUSE and hardened Debian hosts the audit log is where logins, sudo,
account changes and the commands that audit rules watch (``-a always,exit -S execve -k ...``) are
recorded, often beside an auth log that holds less. Read as text, each line was one opaque message.

A line is ``[node=NAME ]type=TYPE msg=audit(EPOCH.MILLIS:SERIAL): key=value ...``, with
``log_format=ENRICHED`` followed by a group separator (0x1d) and the interpreted values in upper
case (``UID="root" AUID="alice"``). Values are bare, ``"double-quoted"``, or for the user-space
records (``USER_LOGIN``, ``USER_AUTH``, ``USER_CMD``, ...) one ``msg='...'`` holding more pairs.
Strings audit cannot trust (an account name, a command line, a path) are written quoted, or as
bare hexadecimal when they hold a space, a quote or a control character.

Mapping (every pair stays addressable as ``@auditd.<key>``; the ``msg='...'`` pairs too, without
replacing an outer one; the enriched values as ``@auditd.enriched.<KEY>``):

- ``timestamp`` <- the record's epoch (the same for every record of one event, told apart by
  ``auditd.serial``); ``host`` <- ``node``; ``source`` ``auditd``; ``message`` <- the whole line.
- ``auditd.type`` <- ``type``; hexadecimal untrusted strings decoded (``acct``, ``exe``,
  ``comm``, ``cmd``, ``proctitle``, the ``EXECVE`` arguments, ...; a ``proctitle``'s NUL
  separators become spaces).
- ``usr.name`` <- ``acct`` (the account a login or authentication was for), ``network.client.ip``
  <- ``addr`` when it is an IP, ``evt.outcome`` ``success``/``failure`` <- ``res`` (``success``/
  ``failed`` in user-space records, ``1``/``0`` in the kernel's) or a ``SYSCALL``'s ``success``
  (``yes``/``no``).

The prefilter is promised ``source`` (every line holds ``msg=audit(``), ``auditd.type`` (the
line holds ``type=TYPE``), ``network.client.ip`` (``addr`` is an address, never encoded) and
``evt.outcome`` (from ``res=`` or ``success=``); nothing else, as a decoded value is not in the line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.messages import is_ip
from secmon.ingest.timestamps import fraction_ms

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_HEADER = re.compile(r"(?:node=(\S+) )?type=([A-Za-z0-9_]+) msg=audit\((\d+)\.(\d{1,3}):(\d+)\):\s?(.*)", re.DOTALL)
# key=value, value bare, "double-quoted" or 'single-quoted' (the user-space records' msg='...').
_PAIR = re.compile(r"""([A-Za-z0-9_-]+)=("[^"]*"|'[^']*'|\S*)""")
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_ENRICHED_SEPARATOR = "\x1d"
# Fields audit writes as untrusted strings: quoted, or hexadecimal when they hold a space, a quote
# or a control character (audit's own list is longer; these are the ones rules read). A bare value
# of one of them is always hexadecimal; other bare values (ids, numbers, syscall arguments) never.
_UNTRUSTED = frozenset({"acct", "comm", "exe", "cmd", "cwd", "name", "path", "proctitle", "key", "data"})
# res= of user-space records (success, failed) and kernel ones (1, 0); a SYSCALL's success=.
_OUTCOMES = {"success": "success", "failed": "failure", "1": "success", "0": "failure"}
_SYSCALL_OUTCOMES = {"yes": "success", "no": "failure"}


def _decoded(key: str, value: str, execve: bool) -> str:
    """A value as audit meant it: quotes removed, an untrusted string's hexadecimal decoded (an
    ``EXECVE`` record's arguments ``a0``, ``a1``, ... are untrusted strings too)."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    untrusted = key in _UNTRUSTED or (execve and key[:1] == "a" and key[1:].isdigit())
    if untrusted and _HEX.fullmatch(value):
        text = bytes.fromhex(value).decode("utf-8", "replace")
        return text.replace("\x00", " ").rstrip() if key == "proctitle" else text
    return value


def _pairs(text: str, into: dict[str, Any], execve: bool = False) -> None:
    """The key=value pairs of ``text`` into ``into``; a ``msg='...'`` is read for its own pairs."""
    for key, raw in _PAIR.findall(text):
        if key == "msg" and raw[:1] == "'":
            inner: dict[str, Any] = {}
            _pairs(raw[1:-1], inner)
            for inner_key, value in inner.items():
                into.setdefault(inner_key, value)
            continue
        into.setdefault(key, _decoded(key, raw, execve))


class AuditdFormat(LogFormat):
    name = "auditd"
    description = "Linux audit log (type=... msg=audit(epoch:serial): key=value ...), source:auditd"
    verbatim_paths = frozenset({"host", "message", "network.client.ip"})
    # An audit record's addr is the client's; no destination is read from it.
    absent_namespaces = ("network.destination.",)

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path == "source":
            return ["msg=audit("] if value == "auditd" else []
        if path == "auditd.type":
            return [f"type={value}"] if value.isascii() and value.replace("_", "").isalnum() else None
        if path == "evt.outcome":
            return {"success": ["res=success", "res=1", "success=yes"], "failure": ["res=failed", "res=0", "success=no"]}.get(value, [])
        return super().implied_literals(path, value)

    def sniff(self, line: str) -> bool:
        return _HEADER.match(line) is not None

    def parse_text(self, text: str, source: Source) -> Event:
        m = _HEADER.fullmatch(text)
        if m is None:
            raise LineRejected(reasons.UNPARSED_LINE, f"not an audit record: {text[:200]}")
        node, record_type, seconds, millis, serial, body = m.groups()
        event: Event = {"timestamp": int(seconds) * 1000 + fraction_ms(millis), "message": text}
        if node is not None:
            event["host"] = node
        return add_audit_record(event, record_type, int(serial), body)


def add_audit_record(event: Event, record_type: str, serial: int | None, body: str) -> Event:
    """``event`` with the attributes of one audit record: ``source`` ``auditd``, ``auditd.*`` from
    the record's ``body`` (its pairs, then after 0x1d the enriched ones) and the standard ones.
    Shared by the audit log and journal entries that the kernel's audit sent."""
    enriched_text = ""
    if _ENRICHED_SEPARATOR in body:
        body, enriched_text = body.split(_ENRICHED_SEPARATOR, 1)
    auditd: dict[str, Any] = {}
    _pairs(body, auditd, record_type == "EXECVE")
    auditd["type"] = record_type
    if serial is not None:
        auditd["serial"] = serial
    if enriched_text:
        enriched: dict[str, Any] = {}
        _pairs(enriched_text, enriched)
        auditd["enriched"] = enriched
    event["source"] = "auditd"
    event["auditd"] = auditd
    account = auditd.get("acct")
    if isinstance(account, str) and account not in ("", "?", "(unknown)"):
        event["usr"] = {"name": account}
    address = auditd.get("addr")
    if isinstance(address, str) and is_ip(address):
        event["network"] = {"client": {"ip": address}}
    outcome = _OUTCOMES.get(auditd["res"]) if "res" in auditd else _SYSCALL_OUTCOMES.get(auditd.get("success", ""))
    if outcome is not None:
        event["evt"] = {"outcome": outcome}
    return event
