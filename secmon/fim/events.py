"""FIM changes as log events, so ordinary detection rules alert on them.

Each change becomes one event with Datadog's reserved attributes (``timestamp``, ``host``,
``source:fim``, ``service``, ``status``, ``message``) and the change under ``file``::

    @file.path  @file.name  @file.directory  @file.change (added|removed|modified|possible_missed_changes)
    @file.attributes  @file.before.*  @file.after.*   (mode, permissions "4755", suid, sgid, uid, gid,
                                                      size, digest, target, type, capabilities, ...)
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from secmon.fim.change import Change

SOURCE = "fim"
SERVICE = "secmon-fim"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _message(path: str, change: str, attributes: Iterable[str]) -> str:
    attrs = list(attributes)
    if change == "modified" and attrs:
        return f"File integrity: {path} modified ({', '.join(attrs)})"
    return f"File integrity: {path} {change}"


def change_to_event(change: Change, *, host: str, timestamp: str) -> dict[str, Any]:
    directory, _, name = change.path.rpartition("/")
    file: dict[str, Any] = {
        "path": change.path,
        "name": name,
        "directory": directory or "/",
        "change": change.change,
        "attributes": list(change.attributes),
    }
    if change.before is not None:
        file["before"] = change.before
    if change.after is not None:
        file["after"] = change.after
    return {
        "timestamp": timestamp,
        "host": host,
        "source": SOURCE,
        "service": SERVICE,
        "status": "warning",
        "message": _message(change.path, change.change, change.attributes),
        "evt": {"name": "file_integrity", "category": "file"},
        "file": file,
    }


def to_events(changes: Iterable[Change], *, host: str | None = None, timestamp: str | None = None) -> list[dict[str, Any]]:
    """One event per change; ``timestamp`` (ISO 8601 UTC) defaults to now, ``host`` to this host."""
    stamp = timestamp or utc_now_iso()
    name = host or socket.gethostname()
    return [change_to_event(c, host=name, timestamp=stamp) for c in changes]


def missed_changes_event(
    path: str, *, window_start: str, window_end: str, reason: str, host: str | None = None
) -> dict[str, Any]:
    """The explicit "possible missed changes" event of the real-time watcher."""
    return {
        "timestamp": window_end,
        "host": host or socket.gethostname(),
        "source": SOURCE,
        "service": SERVICE,
        "status": "warning",
        "message": f"File integrity: possible missed changes under {path} between {window_start} and {window_end}: {reason}",
        "evt": {"name": "file_integrity", "category": "file"},
        "file": {
            "path": path,
            "change": "possible_missed_changes",
            "attributes": [],
            "window": {"start": window_start, "end": window_end},
            "reason": reason,
        },
    }
