"""Type stubs for ``secmon._core``, the Rust extension module.

This file is the contract of the native core: every class and function with exact types.
``tests/core/test_stubs.py`` checks it against the compiled module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import polars as pl

__version__: str

# --- matcher (rust_core/src/matcher.rs, py/matcher.rs) ---

# --- hash (rust_core/src/hash.rs, py/hash.rs) ---

def hash_bytes(data: bytes | bytearray | memoryview, algo: str) -> str:
    """Lowercase hex digest of a bytes-like object (any C-contiguous buffer).

    ``algo`` is one of ``sha256``, ``blake3``, ``xxh3_128``, ``sha1``, ``md5``; anything else
    raises ``ValueError`` listing them. Digests equal hashlib's, ``b3sum``'s and
    ``xxhsum -H2``'s (xxh3_128 in canonical big-endian form). The GIL is released for inputs of
    64 KiB and more.
    """

def hash_file(path: str | bytes | os.PathLike[str] | os.PathLike[bytes], algo: str) -> str:
    """Lowercase hex digest of a regular file, streamed with fixed memory, the GIL released.

    Raises ``FileNotFoundError`` (with the path), ``IsADirectoryError`` for a directory,
    ``PermissionError``, or ``OSError`` for a fifo, socket or device (never opened for reading,
    so this never blocks); ``ValueError`` for an unknown ``algo``.
    """

# --- walk (rust_core/src/walk.rs, py/walk.rs) ---

def scan_tree(
    roots: str | bytes | os.PathLike[str] | os.PathLike[bytes] | Sequence[str | bytes | os.PathLike[str] | os.PathLike[bytes]],
    *,
    algo: str | None = None,
    excludes: Sequence[str] = (),
    follow_symlinks: bool = False,
    threads: int | None = None,
    previous: pl.DataFrame | None = None,
    one_file_system: bool = False,
) -> pl.DataFrame:
    """Walk ``roots`` in parallel (GIL released): one row per filesystem entry, roots included.

    Columns, in this order: ``path: String`` (root as given, trailing slashes stripped, joined
    with ``/``; lossy UTF-8), ``path_bytes: Binary`` (lossless), ``type: String`` (``file``,
    ``dir``, ``symlink``, ``fifo``, ``socket``, ``char_device``, ``block_device``,
    ``unknown``), ``size: UInt64``, ``mode: UInt32`` (full st_mode), ``uid: UInt32``,
    ``gid: UInt32``, ``inode: UInt64``, ``dev: UInt64``, ``nlink: UInt64``, ``mtime_ns: Int64``,
    ``ctime_ns: Int64`` (all null when the entry could not be stat-ed), ``target: String``
    (symlink target of entries that are symlinks, else null), ``digest: String`` (hex, regular
    files only, when ``algo`` is set), ``error: String`` (null when fine; otherwise starts with
    ``permission denied``, ``vanished during scan``, ``symlink loop``, ``broken symlink``,
    ``replaced during scan``, ``changed during scan`` or ``io error``). A digest always covers
    exactly ``size`` bytes: a file that grew or shrank while it was read (or a pseudo file of
    ``/proc`` or ``/sys``, whose stat size means nothing) gets a ``changed during scan`` error
    and no digest, and is never read much past its stat size (one page). Sorted by ``path`` (then ``path_bytes``); a path
    reached from two roots appears once.

    Roots are not followed when they are symlinks unless ``follow_symlinks``. ``excludes`` are
    globs matched against the full path (``*`` crosses ``/``): a match is left out and, for a
    directory, not descended. With ``follow_symlinks`` a symlink is reported with its target's
    stat and type, keeps its ``target``, and a directory reached again below itself is a row
    with a ``symlink loop`` error. ``one_file_system`` does not descend into directories on
    another device than their root. ``previous`` (an earlier result scanned with the same
    ``algo``) lets a regular file whose size, mtime_ns, ctime_ns, inode and mode are unchanged
    keep its digest without being read. A missing root raises ``FileNotFoundError``; an unknown
    ``algo`` or a bad glob ``ValueError``.
    """

# --- cidr (rust_core/src/cidr.rs, py/ipset.rs) ---
