"""The payload of baseline format 2, in plain Python: the slow, obvious twin of
``secmon._core.FimTree.payload()`` / ``FimTree.decode`` (rust_core/src/fim/payload.rs), which
documents the layout. Tests hold the two byte-for-byte equal; nothing in a command uses this one.

Rows are dicts of the frame columns (``secmon.fim.scan.FRAME_SCHEMA``), None for a null.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

# EntryType::ALL order in walk.rs: the type field stores an index into it.
TYPE_CODES: tuple[str, ...] = ("file", "dir", "symlink", "fifo", "socket", "char_device", "block_device", "unknown")

# (column, struct format) of the optional fields, in bit order after bit 0 (the path text) and bit 1 (the type).
_INTS: tuple[tuple[str, str], ...] = (
    ("size", "<Q"), ("mode", "<I"), ("uid", "<I"), ("gid", "<I"), ("inode", "<Q"), ("dev", "<Q"), ("nlink", "<Q"),
    ("mtime_ns", "<q"), ("ctime_ns", "<q"),
)  # fmt: skip
_TEXTS: tuple[str, ...] = ("target", "digest", "error", "xattrs", "capabilities")
COLUMNS: tuple[str, ...] = ("path", "path_bytes", "type", *(c for c, _ in _INTS), *_TEXTS)


def _put(out: bytearray, data: bytes) -> None:
    out += struct.pack("<I", len(data))
    out += data


def encode_rows(rows: Iterable[dict[str, Any]]) -> bytes:
    out = bytearray()
    for row in rows:
        path_bytes: bytes = row["path_bytes"]
        path_text = row["path"] if row["path"] != path_bytes.decode("utf-8", "replace") else None
        present = [path_text is not None, row["type"] is not None]
        present += [row[c] is not None for c, _ in _INTS]
        present += [row[c] is not None for c in _TEXTS]
        out += struct.pack("<H", sum(1 << i for i, p in enumerate(present) if p))
        _put(out, path_bytes)
        if path_text is not None:
            _put(out, path_text.encode())
        if row["type"] is not None:
            out.append(TYPE_CODES.index(row["type"]))
        for column, fmt in _INTS:
            if row[column] is not None:
                out += struct.pack(fmt, row[column])
        for column in _TEXTS:
            if row[column] is not None:
                _put(out, row[column].encode())
    return bytes(out)


def decode_rows(payload: bytes) -> list[dict[str, Any]]:
    """Rows of a payload; a malformed one raises ValueError (struct.error or a decode error)."""
    rows: list[dict[str, Any]] = []
    at = 0

    def take(n: int) -> bytes:
        nonlocal at
        if len(payload) - at < n:
            raise ValueError(f"baseline payload row {len(rows)}: truncated at byte {at}")
        chunk = payload[at : at + n]
        at += n
        return chunk

    def text() -> bytes:
        (length,) = struct.unpack("<I", take(4))
        return take(length)

    while at < len(payload):
        (present,) = struct.unpack("<H", take(2))
        path_bytes = text()
        row: dict[str, Any] = {"path_bytes": path_bytes}
        row["path"] = text().decode() if present & 1 else path_bytes.decode("utf-8", "replace")
        row["type"] = TYPE_CODES[take(1)[0]] if present & 2 else None
        bit = 2
        for column, fmt in _INTS:
            row[column] = struct.unpack(fmt, take(struct.calcsize(fmt)))[0] if present >> bit & 1 else None
            bit += 1
        for column in _TEXTS:
            row[column] = text().decode() if present >> bit & 1 else None
            bit += 1
        rows.append(row)
    return rows


def rows_to_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {column: [row[column] for row in rows] for column in COLUMNS}


def columns_to_rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    n = len(columns["path_bytes"])
    return [{column: columns[column][i] for column in COLUMNS} for i in range(n)]
