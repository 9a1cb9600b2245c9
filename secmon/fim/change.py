"""One reported change and the JSON view of an entry (kept free of Polars: the fast path uses it).

The change report contract: ``{"path", "change": "added"|"removed"|"modified", "attributes":
[...], "before": {...}, "after": {...}}``; :func:`snapshot` is the one place that decides what
``before``/``after`` hold, for the Polars diff, its slow twin, the Rust diff and the watcher alike.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "type", "size", "mode", "uid", "gid", "inode", "nlink", "mtime_ns", "ctime_ns", "target", "digest", "xattrs", "capabilities",
)  # fmt: skip


@lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    # Cached: the files of one change burst share a handful of seconds, and strftime is slow.
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _iso_ns(ns: int) -> str:
    seconds, rem = divmod(ns, 1_000_000_000)
    return f"{_iso_seconds(seconds)}.{rem:09d}Z"


def snapshot(row: dict[str, Any]) -> dict[str, Any]:
    """The JSON view of one entry: present fields only, mode also as octal permissions."""
    # Written out rather than looped: the real-time watcher builds two of these per change.
    get = row.get
    out = {name: value for name in SNAPSHOT_COLUMNS if (value := get(name)) is not None}
    xattrs = out.get("xattrs")
    if xattrs is not None:
        out["xattrs"] = json.loads(xattrs)
    mode = out.get("mode")
    if mode is not None:
        out["permissions"] = f"{mode & 0o7777:04o}"
        out["suid"] = bool(mode & stat.S_ISUID)
        out["sgid"] = bool(mode & stat.S_ISGID)
    mtime = out.get("mtime_ns")
    if mtime is not None:
        out["mtime"] = _iso_ns(mtime)
    ctime = out.get("ctime_ns")
    if ctime is not None:
        out["ctime"] = _iso_ns(ctime)
    return out


@dataclass(frozen=True)
class Change:
    """One changed path. ``attributes`` is empty for added/removed entries."""

    path: str
    path_bytes: bytes
    change: str  # added | removed | modified
    attributes: tuple[str, ...]
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "attributes": list(self.attributes),
            "before": self.before,
            "after": self.after,
        }
