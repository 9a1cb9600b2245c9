"""The registry of log formats and format detection.

:data:`FORMATS` maps names (``ndjson``, ``json``, ``journald``, ``docker``, ``cri``, ``syslog``,
``auditd``, ``access_log``, ``nginx``, ``apache``, ``apache_error``, ``nginx_error``, ``cfdr``, ``hpc``, ``cef``, ``snort``, ``w3c``, ``zeek``,
``logfmt``, ``csv``, ``text``, plus user parsers)
to :class:`LogFormat` objects; :func:`get_format` raises an error listing the valid names;
:func:`detect_format` picks one from the first lines of a file, :func:`format_for_file` binds a
container runtime's format to the lines it wraps. The rules every format follows are in
``secmon.ingest.base``.
"""

from __future__ import annotations

import re

from secmon.errors import InputError
from secmon.ingest.access_log import AccessLogFormat, ApacheErrorFormat, NginxErrorFormat
from secmon.ingest.auditd import AuditdFormat
from secmon.ingest.base import LineRejected, LogFormat, gc_paused
from secmon.ingest.cef import CefFormat
from secmon.ingest.cfdr import CfdrFormat, HpcFormat
from secmon.ingest.containers import ContainerFormat, CriFormat, DockerJsonFormat
from secmon.ingest.csv_format import CsvFormat
from secmon.ingest.journald import JournaldFormat
from secmon.ingest.json_format import JsonDocumentFormat, NdjsonFormat
from secmon.ingest.logfmt import LogfmtFormat
from secmon.ingest.snort import SnortFormat
from secmon.ingest.syslog import SyslogFormat
from secmon.ingest.text import TextFormat
from secmon.ingest.w3c import W3cFormat
from secmon.ingest.zeek import ZeekFormat

FORMATS: dict[str, LogFormat] = {
    fmt.name: fmt
    for fmt in (
        NdjsonFormat(),
        JsonDocumentFormat(),
        JournaldFormat(),
        DockerJsonFormat(),
        CriFormat(),
        SyslogFormat(),
        AuditdFormat(),
        AccessLogFormat(),
        AccessLogFormat("nginx", "nginx"),
        AccessLogFormat("apache", "apache"),
        ApacheErrorFormat(),
        NginxErrorFormat(),
        CfdrFormat(),
        HpcFormat(),
        CefFormat(),
        SnortFormat(),
        W3cFormat(),
        ZeekFormat(),
        LogfmtFormat(),
        CsvFormat(),
        TextFormat(),
    )
}
BUILTIN_FORMATS: frozenset[str] = frozenset(FORMATS)

_JSON_ARRAY_START = re.compile(r"\[\s*(?:[{\[\"\]]|-?\d+\s*[,\]]|true|false|null|$)")

# Formats a file's header declares (directives naming the fields), asked before the vote.
_HEAD_DECLARED: tuple[str, ...] = ("w3c", "zeek")
# Detection order for line formats (a first line opening JSON is looked at before the vote, so
# that documents spread over lines are recognised; NDJSON also votes, for files whose first
# line is damaged).
_SNIFF_ORDER: tuple[str, ...] = ("ndjson", "cri", "syslog", "auditd", "access_log", "apache_error", "nginx_error", "cfdr", "hpc", "cef", "snort", "logfmt")


def get_format(name: str | LogFormat) -> LogFormat:
    """The registered format called ``name``; an unknown name lists the valid ones."""
    if isinstance(name, LogFormat):
        return name
    found = FORMATS.get(name)
    if found is None:
        raise InputError(f"unknown log format {name!r}; valid formats: {', '.join(sorted(FORMATS))}")
    return found


def detect_format(head: bytes, max_lines: int = 8) -> LogFormat:
    """Pick a format from the first non-empty lines of a file (majority vote over ``max_lines``)."""
    text = head.decode("utf-8", "replace").lstrip("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()][:max_lines]
    if not lines:
        return FORMATS["text"]
    first = lines[0].lstrip()
    if first.startswith(("{", "[")):
        ndjson = FORMATS["ndjson"]
        # A whole object on the first line is NDJSON (a one-line CloudTrail file too: the NDJSON
        # parser unwraps {"Records": [...]}); an object spread over lines is one document, unless
        # the "[" opens a bracketed date of a text format (Apache error logs, Proxifier).
        # One malformed first line must not turn a whole NDJSON file into one bad document, so
        # the first lines vote.
        if sum(map(ndjson.sniff, lines)) * 2 >= len(lines) or ndjson.sniff(lines[0]):
            # Journal entries (`journalctl -o json`) and Docker's container logs are JSON lines of
            # their own shapes.
            for shaped in (FORMATS["journald"], FORMATS["docker"]):
                if sum(map(shaped.sniff, lines)) * 2 > len(lines):
                    return shaped
            return ndjson
        if first.startswith("{") or _JSON_ARRAY_START.match(first):
            return FORMATS["json"]
    # Formats whose header declares them (W3C's and Zeek's directives).
    for declared in _HEAD_DECLARED:
        if FORMATS[declared].sniff_head(lines):
            return FORMATS[declared]
    # User parsers go first (they are more specific) and take part only through their own
    # ``detect`` pattern (their sniff is False otherwise).
    candidates = [*(n for n in FORMATS if n not in BUILTIN_FORMATS), *_SNIFF_ORDER]
    votes: dict[str, int] = {}
    for line in lines:
        for candidate in candidates:
            if FORMATS[candidate].sniff(line):
                votes[candidate] = votes.get(candidate, 0) + 1
                break
    best = max(votes, key=lambda n: votes[n]) if votes else None
    # A format must explain at least half of the lines looked at, else it is CSV with a header
    # row, or plain text.
    if best is not None and votes[best] * 2 >= len(lines):
        return FORMATS[best]
    return FORMATS["csv"] if FORMATS["csv"].sniff_head(lines) else FORMATS["text"]


def format_for_file(name: str | LogFormat | None, head: bytes) -> LogFormat:
    """The format a file is read with: ``name`` (forced) or the one detected from its ``head``;
    a container runtime's format is bound to the format of the lines it wraps, found in ``head``."""
    fmt = get_format(name) if name is not None else detect_format(head)
    if isinstance(fmt, ContainerFormat) and fmt.inner is None:
        return fmt.bound(head, detect_format)
    if isinstance(fmt, CsvFormat) and fmt.columns is None:
        return fmt.bound(head)  # the file's own header row names its columns
    return fmt


__all__ = [
    "BUILTIN_FORMATS",
    "FORMATS",
    "LineRejected",
    "LogFormat",
    "detect_format",
    "format_for_file",
    "gc_paused",
    "get_format",
]
