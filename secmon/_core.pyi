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
    ``replaced during scan`` or ``io error``). Sorted by ``path`` (then ``path_bytes``); a path
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

# --- extract (rust_core/src/extract.rs, py/extract.rs) ---

import numpy as np  # noqa: E402  (kept inside this section so sections merge independently)
import numpy.typing as npt  # noqa: E402

class ExtractedColumn:
    """One column of an :class:`ExtractedBatch`; ``pl.Series(col)`` imports it through
    ``__arrow_c_array__`` without copying values."""

    @property
    def name(self) -> str: ...
    def __len__(self) -> int: ...
    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]:
        """(schema capsule, array capsule) of the Arrow C data interface; a
        ``requested_schema`` is ignored (the column has one layout), as the protocol allows."""
    def __arrow_c_schema__(self) -> object: ...

class ExtractedBatch:
    """The event table of some NDJSON lines, held natively; ``pl.DataFrame(batch)`` imports it
    through ``__arrow_c_stream__`` (one record batch) without copying values.

    Columns, in order: one per path (``String``, or ``List(String)`` when some row's value is a
    list), ``__line: UInt32`` (the line index in the buffer) and ``__status: UInt8``
    (0 ok, 1 malformed JSON, 2 not a JSON object, 3 blank, 4 invalid UTF-8 replaced; rows with
    status 1-3 are null in every path column). Strings are exported as Arrow ``Utf8View``
    (``LargeUtf8`` when a column holds more than 2 GiB of text), Polars' own layout."""

    @property
    def names(self) -> list[str]:
        """Column names in frame order: the paths, then ``__line`` and ``__status``."""
    @property
    def num_rows(self) -> int: ...
    def __len__(self) -> int: ...
    def line_numbers(self) -> npt.NDArray[np.uint32]:
        """The ``__line`` column as a new numpy array."""
    def statuses(self) -> npt.NDArray[np.uint8]:
        """The ``__status`` column as a new numpy array."""
    def column(self, name: str) -> ExtractedColumn:
        """One column by name (``KeyError`` listing the names when there is none)."""
    def __getitem__(self, name: str) -> ExtractedColumn: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """An Arrow C stream capsule of one struct batch; a ``requested_schema`` is ignored."""
    def __arrow_c_schema__(self) -> object: ...

def extract_fields(
    buffer: bytes | bytearray | memoryview,
    paths: Sequence[str],
    line_idx: npt.NDArray[np.uint32] | Sequence[int] | None = None,
    *,
    sep: bytes = b"\n",
    threads: int | None = None,
) -> ExtractedBatch:
    """The event table of NDJSON lines, straight from bytes (GIL released, parallel over lines).

    Exactly ``secmon.ingest.events.to_frame([orjson.loads(line)], paths)`` per line, with every
    path as text: ``@`` prefixes dropped, duplicate paths kept once; a path is looked up nested
    first, then as a literal dotted top-level key; JSON null is missing; a walk that meets an
    array resolves the rest of the path on each element and collects the values (arrays of
    arrays flatten; a path ending on an array gives its elements; nulls dropped) into a list;
    strings as they are, integers in decimal, floats as ``repr``, ``true``/``false``, objects
    (and arrays inside lists) as compact JSON as ``json.dumps`` writes them.

    Lines are split on ``sep`` as ``Matcher.match_lines`` splits them (a trailing separator
    starts no line); ``line_idx`` picks lines by index (strictly ascending; None = every line).
    Lines orjson rejects (also after replacing invalid UTF-8, status 4) have status 1; ``threads``
    caps the worker threads (default: rayon's pool when the input is over 1 MiB). ``ValueError``
    for an index out of range or not ascending, a ``sep`` that is not one byte, ``threads < 1``,
    or a path named ``__line``/``__status``.
    """
