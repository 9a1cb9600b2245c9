"""Splitting a chunk's bytes into lines and picking lines by index.

The definitions match the Rust core (``secmon._core.count_lines`` / ``select_lines``), which the
parsers use when it is built: a line ends at ``\n`` (not included), a final line without
newline is still a line, and a trailing newline does not start a new line. A ``\r`` before the
``\n`` stays in the line here; the parsers drop it (CRLF files), so either implementation gives
the same events. The tests compare both against the naive definitions below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def line_count(data: bytes) -> int:
    """Number of lines in ``data`` (a final line without newline counts)."""
    if not data:
        return 0
    n = data.count(b"\n")
    return n if data.endswith(b"\n") else n + 1


def split_lines(data: bytes) -> list[bytes]:
    """All lines of ``data`` without their ``\n``."""
    if not data:
        return []
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


def _core_function(name: str) -> Callable[..., Any] | None:
    try:
        from secmon import _core
    except ImportError:  # pragma: no cover - the extension is always built in this project
        return None
    return getattr(_core, name, None)


#: The fastest available ``select_lines`` (Rust when built, else the Python twin above).
fast_select_lines: Callable[[bytes, Any], list[bytes]] = _core_function("select_lines") or select_lines
#: The fastest available ``line_count`` (Rust's memchr count: measured 0.5 ms per 16 MiB chunk
#: against 5 ms for ``bytes.count``, which the chunk reader paid for every chunk).
fast_line_count: Callable[[bytes], int] = _core_function("count_lines") or line_count


def split_lines_naive(data: bytes) -> list[bytes]:
    """The obvious definition, one byte at a time: the twin the tests compare against."""
    lines: list[bytes] = []
    current = bytearray()
    for byte in data:
        if byte == 0x0A:
            lines.append(bytes(current))
            current = bytearray()
        else:
            current.append(byte)
    if current:
        lines.append(bytes(current))
    return lines
