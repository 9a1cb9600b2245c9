"""Type stubs for ``secmon._core``, the Rust extension module.

This file is the contract of the native core: every class and function with exact types.
``tests/core/test_stubs.py`` checks it against the compiled module.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal, Protocol, TypeAlias, final

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Buffer

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: Any = None, /) -> Any: ...

class _ArrowArray(Protocol):
    def __arrow_c_array__(self, requested_schema: Any = None, /) -> tuple[Any, Any]: ...

# A Polars Series, a pyarrow (Chunked)Array, or any Arrow PyCapsule exporter of one string column.
_ArrowStringColumn: TypeAlias = _ArrowStream | _ArrowArray

__version__: str

# --- matcher (rust_core/src/matcher.rs, py/matcher.rs) ---

@final
class Matcher:
    """One automaton over many literal patterns that reports **every** pattern present.

    Patterns are bytes or str (str is matched as its UTF-8 bytes); pattern ids are their indices.
    A pattern that is a prefix, substring or overlap of another is still reported, and duplicate
    patterns are each reported under their own id. With ``ascii_case_insensitive`` ASCII letters
    match regardless of case. An empty pattern list matches nothing; an empty pattern is a
    ``ValueError``. Lines are split on one separator byte: a trailing separator starts no new line
    and a match never spans a separator, so a pattern containing the separator byte never matches
    (it is accepted, since the separator is chosen per call). Buffers are any bytes-like object
    (bytes, bytearray, memoryview, mmap), read in place without copying; do not resize or write
    them from another thread during a call. Methods release the GIL and may be called from many
    threads at once. ``engine`` chooses how ``match_lines`` searches (the answers are the same).
    """

    def __new__(
        cls,
        patterns: Sequence[bytes | str],
        *,
        ascii_case_insensitive: bool = False,
        engine: Literal["auto", "automaton", "hashed"] = "auto",
    ) -> Matcher: ...
    def __len__(self) -> int: ...
    @property
    def patterns(self) -> list[bytes | str]:
        """The patterns, each as given (bytes or str), in id order."""
    @property
    def ascii_case_insensitive(self) -> bool:
        """Whether ASCII letters match regardless of case."""
    @property
    def engine(self) -> Literal["automaton", "hashed"]:
        """The engine of ``match_lines``: "automaton" (Aho-Corasick over the whole buffer) or
        "hashed" (a filter on hashed 4/8-byte windows, candidates verified). "auto" picks
        "hashed" for more than 64 patterns of 4+ bytes each (up to 200,000). ``any_lines``,
        ``find_all`` and the column methods always use the automaton."""
    def pattern(self, pattern_id: int) -> bytes | str:
        """Pattern number ``pattern_id``, as given; ``IndexError`` when out of range."""
    def match_lines(
        self, buffer: Buffer, sep: bytes = b"\n", *, parallel: bool = True
    ) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """Every (line index, pattern id) pair present, each once, sorted by line then pattern.

        ``parallel=False`` scans on the calling thread only; the answer is the same either way.
        """
    def any_lines(self, buffer: Buffer, sep: bytes = b"\n", *, parallel: bool = True) -> NDArray[np.bool_]:
        """One flag per line: does any pattern occur in it?"""
    def find_all(self, buffer: Buffer) -> tuple[NDArray[np.uint32], NDArray[np.uint64], NDArray[np.uint64]]:
        """Every occurrence, overlapping ones included, as (pattern id, start, end) sorted by start
        then pattern id; separators are not special here."""
    def match_column(self, column: _ArrowStringColumn) -> tuple[NDArray[np.uint32], NDArray[np.uint32]]:
        """Every (row index, pattern id) pair of a string column (Polars Series, pyarrow array or
        anything with ``__arrow_c_stream__``/``__arrow_c_array__``; layouts utf8, large utf8 and
        utf8 view, and their binary twins), read without copying. Nulls match nothing."""
    def any_column(self, column: _ArrowStringColumn) -> NDArray[np.bool_]:
        """One flag per row of a string column: does any pattern occur in it? Null gives False."""

def count_lines(buffer: Buffer, sep: bytes = b"\n") -> int:
    """Number of lines: separators, plus one when the last line has no trailing separator."""

def select_lines(buffer: Buffer, line_idx: NDArray[np.uint32] | Sequence[int], sep: bytes = b"\n") -> list[bytes]:
    """The lines numbered ``line_idx`` (without their separator), in the order asked;
    ``ValueError`` naming the index when one is past the last line."""

# --- hash (rust_core/src/hash.rs, py/hash.rs) ---

# --- walk (rust_core/src/walk.rs, py/walk.rs) ---

# --- cidr (rust_core/src/cidr.rs, py/ipset.rs) ---

@final
class IpSet:
    """IPv4/IPv6 prefixes, each tagged with the id of the list it came from; longest-prefix lookup.

    IPv4 ``a.b.c.d/n`` lives in the IPv6 space as ``::ffff:a.b.c.d/(96+n)``, so IPv4-mapped IPv6
    addresses match IPv4 entries (and an IPv6 prefix such as ``::/0`` covers IPv4 too). Entries
    parse like ``ipaddress.ip_network(text, strict=False)``: host bits are cleared, leading zeros
    in IPv4 octets and surrounding whitespace are rejected; netmask forms and IPv6 scope ids are
    not accepted. When the same prefix is in two lists the smaller list id wins. Safe to share
    between threads; lookups release the GIL.
    """

    def __new__(cls) -> IpSet: ...
    def __len__(self) -> int:
        """Number of prefixes held."""
    @classmethod
    def from_lists(cls, lists: Sequence[Sequence[str]], *, strict: bool = True) -> IpSet:
        """Build from several lists; list ``i`` gets id ``i``."""
    def add(self, cidrs: Sequence[str], list_id: int, *, strict: bool = True) -> int:
        """Add one list's entries (addresses or CIDRs). Strict: a bad entry is a ``ValueError``
        naming its index and value, and nothing is added. Not strict: bad entries are skipped;
        returns how many."""
    def load_netset(self, path: str | PathLike[str], list_id: int, *, strict: bool = True) -> int:
        """Add a netset/ipset file (``#`` comments, blank lines, one entry per line); errors name
        the file and line. Returns the number of bad entries skipped (0 when strict)."""
    @property
    def skipped(self) -> int:
        """Bad entries skipped so far by non-strict adds and loads."""
    def lookup(self, ips: _ArrowStringColumn | Sequence[str | None]) -> NDArray[np.int32]:
        """Per address the list id of the longest matching prefix; -1 for no match, null or an
        invalid address."""
    def lookup_with_stats(self, ips: _ArrowStringColumn | Sequence[str | None]) -> tuple[NDArray[np.int32], int]:
        """``lookup`` and the number of invalid (non-null, unparsable) addresses."""
