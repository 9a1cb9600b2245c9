"""Splitting a chunk's bytes into lines and picking lines by index.

These are the pure-Python twins of ``secmon._core.select_lines``: the engine may switch to the
Rust version, and the tests compare both against the naive definitions below.

A line ends at ``\\n``; a ``\\r`` right before it belongs to the line ending (CRLF files), a
final line without newline is still a line, and a trailing newline does not start a new line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def line_count(data: bytes) -> int:
    """Number of lines in ``data`` (a final line without newline counts)."""
    if not data:
        return 0
    n = data.count(b"\n")
    return n if data.endswith(b"\n") else n + 1


def split_lines(data: bytes) -> list[bytes]:
    """All lines of ``data`` without their line endings (``\\n`` or ``\\r\\n``)."""
    if not data:
        return []
    if b"\r" in data:
        # Only a \r right before \n is a line ending; a lone \r inside a line is content.
        data = data.replace(b"\r\n", b"\n")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def select_lines(data: bytes, line_idx: np.ndarray | Sequence[int]) -> list[bytes]:
    """The lines of ``data`` at the given 0-based indices, in the order given."""
    lines = split_lines(data)
    indices = line_idx.tolist() if isinstance(line_idx, np.ndarray) else list(line_idx)
    n = len(lines)
    for i in indices:
        if not 0 <= i < n:
            raise IndexError(f"line index {i} is out of range for a chunk of {n} lines")
    return [lines[i] for i in indices]


def split_lines_naive(data: bytes) -> list[bytes]:
    """The obvious definition, one byte at a time: the twin the tests compare against."""
    lines: list[bytes] = []
    current = bytearray()
    for byte in data:
        if byte == 0x0A:
            if current.endswith(b"\r"):
                del current[-1]
            lines.append(bytes(current))
            current = bytearray()
        else:
            current.append(byte)
    if current:
        lines.append(bytes(current))
    return lines
