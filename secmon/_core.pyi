"""Type stubs for ``secmon._core``, the Rust extension module.

This file is the contract of the native core: every class and function with exact types.
``tests/core/test_stubs.py`` checks it against the compiled module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal, Protocol, TypeAlias, final

import numpy as np
import polars as pl
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
        """The engine of ``match_lines`` and ``any_lines``: "automaton" (Aho-Corasick over the
        whole buffer) or "hashed" (patterns of 11+ bytes through hashed 8-byte windows at every
        4th byte; shorter ones through Teddy when at most 64 and case-sensitive, else a hashed
        4-byte window at every byte; candidates verified). "auto" picks "hashed" for more than 64
        patterns of 4+ bytes each (up to 200,000). ``find_all`` and the column methods always
        use the automaton."""
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

def line_spans(
    buffer: Buffer, line_idx: NDArray[np.uint32] | Sequence[int], sep: bytes = b"\n"
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """(start offsets, lengths without the separator) of the lines numbered ``line_idx``, in the
    order asked; the same lines as ``select_lines``, as places instead of copies."""

# --- hash (rust_core/src/hash.rs, py/hash.rs) ---

def hash_bytes(
    data: bytes | bytearray | memoryview | list[bytes | bytearray | memoryview] | tuple[bytes | bytearray | memoryview, ...],
    algo: str,
) -> str:
    """Lowercase hex digest of a bytes-like object (any C-contiguous buffer), or of the
    concatenation of a list or tuple of them, without building the joined copy.

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
    keep its digest without being read. Names of one hard-linked inode with the same size,
    mtime_ns and ctime_ns are read once and share the digest. A missing root raises ``FileNotFoundError``; an unknown
    ``algo`` or a bad glob ``ValueError``.
    """

# --- cidr (rust_core/src/cidr.rs, py/ipset.rs) ---

@final
class IpSet:
    """IPv4/IPv6 prefixes, each tagged with the id of the list it came from; longest-prefix lookup.

    IPv4 ``a.b.c.d/n`` lives in the IPv6 space as ``::ffff:a.b.c.d/(96+n)``, so IPv4-mapped IPv6
    addresses match IPv4 entries; IPv6 prefixes never cover IPv4 addresses (``::/0`` does not hold
    ``1.2.3.4``, as in Python's ``ipaddress``). Entries
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


# --- extract (rust_core/src/extract.rs, py/extract.rs) ---


@final
class ExtractedColumn:
    """One column of an :class:`ExtractedBatch`; ``pl.Series(col)`` imports it through
    ``__arrow_c_array__`` without copying values."""

    @property
    def name(self) -> str:
        """The path this column holds (without a leading ``@``)."""
    def __len__(self) -> int: ...
    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]:
        """(schema capsule, array capsule) of the Arrow C data interface; a
        ``requested_schema`` is ignored (the column has one layout), as the protocol allows."""
    def __arrow_c_schema__(self) -> object: ...

@final
class ExtractedBatch:
    """The event table of some NDJSON lines, held natively; ``pl.DataFrame(batch)`` imports it
    through ``__arrow_c_stream__`` (one record batch) without copying values.

    Columns, in order: one per path (``String``, or ``List(String)`` when some row's value is a
    list), ``__line: UInt32`` (the line index in the buffer) and ``__status: UInt8``
    (0 ok, 1 malformed JSON, 2 not a JSON object, 3 blank, 4 invalid UTF-8 replaced, 5 needs
    Python's normalization (``normalize=True`` only); rows with status 1-3 and 5 are null in
    every path column). Strings are exported as Arrow ``Utf8View``
    (``LargeUtf8`` when a column holds more than 2 GiB of text), Polars' own layout."""

    @property
    def names(self) -> list[str]:
        """Column names in frame order: the paths, ``__line``, ``__status``, then the flags of a
        ``FlagProgram`` (``Boolean``) when one was given."""
    @property
    def num_rows(self) -> int:
        """Number of rows: one per selected line, blank and malformed ones included."""
    def __len__(self) -> int: ...
    def line_numbers(self) -> NDArray[np.uint32]:
        """The ``__line`` column as a new numpy array."""
    def statuses(self) -> NDArray[np.uint8]:
        """The ``__status`` column as a new numpy array."""
    def matched_rows(self) -> NDArray[np.uint32]:
        """Rows of status 0 for which some flag is set, ascending."""
    def select(self, rows: NDArray[np.uint32], columns: Sequence[str]) -> ExtractedBatch:
        """A new batch of ``rows`` (any order; ``IndexError`` past the end) and ``columns`` (paths
        then flags, each in the order given; ``__line`` and ``__status`` always come along), its text
        copied into buffers of its own: holding it does not hold this batch's text."""
    def column(self, name: str) -> ExtractedColumn:
        """One column by name (``KeyError`` listing the names when there is none)."""
    def __getitem__(self, key: str, /) -> ExtractedColumn: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """An Arrow C stream capsule of one struct batch; a ``requested_schema`` is ignored."""
    def __arrow_c_schema__(self) -> object: ...

def extract_fields(
    buffer: bytes | bytearray | memoryview,
    paths: Sequence[str],
    line_idx: NDArray[np.uint32] | Sequence[int] | None = None,
    *,
    sep: bytes = ...,
    threads: int | None = None,
    normalize: bool = False,
    flags: FlagProgram | None = None,
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

    ``normalize=True``: each row is ``to_frame([normalize_record(orjson.loads(line))], paths)``
    instead (``secmon.ingest.json_events``: CloudTrail, Kubernetes audit and generic records get
    their standard attributes; ``timestamp`` holds epoch milliseconds in decimal). A JSON object
    whose normalization is not reproduced exactly (odd timestamp formats, a scalar in the way of a
    nested attribute, repeated or escaped keys, possible IPv6 addresses, record lists, invalid
    UTF-8, a record ingest would reject) gets status 5 and null columns: parse it in Python.

    ``flags``: the program's flags are evaluated over the rows and added as Boolean columns.
    """

@final
class FlagProgram:
    """Named boolean predicates over the columns ``extract_fields`` builds: rule queries lowered
    by ``secmon.query.native`` (the Polars flag expressions are their twin).

    ``flags`` is a sequence of ``(name, predicate)``. A predicate is a tuple: ``("const", bool)``,
    ``("and", [p, ...])``, ``("or", [p, ...])``, ``("not", p)``, ``("any", column, test)`` (some
    item of the column passes; a null or absent column passes nothing) or
    ``("first_in_ipset", column, IpSet)`` (the first item is an address in the set). A test is
    one of ``("exists",)``, ``("eq", str)``, ``("in", [str, ...])``, ``("prefix", str)``,
    ``("suffix", str)``, ``("contains", str)``, ``("prefix_suffix", head, tail)`` (not
    overlapping), ``("contains_any", [str, ...])``, ``("regex", rust_regex)``,
    ``("number", low | None, low_inclusive, high | None, high_inclusive)`` (the value written as a
    JSON number, within the bounds), ``("lower", test)`` (over the Unicode lower case),
    ``("strip_prefix", str, test)`` (over the rest after the prefix; false without it) or
    ``("in_ipset", IpSet, skip_colon)``. ``ValueError`` names the flag and what is wrong.

    Rows are evaluated in parallel; a decision tree over the flags' exact-value gates (``source``
    first) skips the flags a row cannot set.
    """

    def __new__(cls, flags: Sequence[tuple[str, tuple[object, ...]]]) -> FlagProgram: ...
    @property
    def names(self) -> list[str]:
        """The flag names, in order."""

def normalized_events(
    buffer: bytes | bytearray | memoryview,
    line_idx: NDArray[np.uint32] | Sequence[int],
    *,
    sep: bytes = ...,
) -> list[bytes | None]:
    """The normalized record of each selected NDJSON line as JSON text (GIL released):
    ``orjson.loads`` of it equals ``normalize_record(orjson.loads(line))`` (the line with the
    members normalization adds or replaces written in; a JSON reader keeps the last of repeated
    keys). None where ``extract_fields(..., normalize=True)`` gives status 5 or the line is not
    a JSON object. ``ValueError`` for an index out of range or a ``sep`` that is not one byte.
    """

def read_records(
    fd: int,
    offsets: NDArray[np.int64],
    lengths: NDArray[np.int64],
    *,
    sep: bytes = ...,
) -> bytes:
    """The records at ``offsets`` (``lengths`` bytes each) of the file open as ``fd``, in the
    order given, joined by ``sep`` (GIL released; the descriptor stays open). ``EOFError`` when
    a record lies past the end of the file, ``OSError`` for a failed read, ``ValueError`` for
    arrays of different lengths or a negative value."""

# --- lifecycle (rust_core/src/lifecycle.rs, py/lifecycle.rs) ---

def signal_spans(
    event_group: NDArray[np.int64],
    event_ts: NDArray[np.int64],
    event_id: NDArray[np.int64],
    trigger_group: NDArray[np.int64],
    trigger_ts: NDArray[np.int64],
    trigger_case: NDArray[np.int64],
    case_rank: NDArray[np.int64],
    *,
    window_ms: int,
    keep_alive_ms: int,
    max_duration_ms: int,
    max_samples: int,
) -> dict[str, NDArray[np.int64]]:
    """The signals of one rule over all of its groups in one pass (GIL released).

    Events and triggers are parallel int64 columns sorted by (group, time); trigger ties are
    walked in the order given. Each trigger covers its group's events in ``[t - window_ms, t]``;
    it joins the open signal of its group when within ``keep_alive_ms`` of the previous trigger
    and (unless ``max_duration_ms`` is 0) within ``max_duration_ms`` of the signal's first
    event, else it starts a new one. A signal counts distinct ``event_id`` s once, takes the case
    of highest ``case_rank`` (the earlier on ties) and keeps its first ``max_samples`` distinct
    rows. Returns int64 arrays keyed ``group, case, first_seen, last_seen, event_count`` (one
    per signal), ``sample_offsets`` (signals + 1) and ``sample_rows`` (rows of the events).
    ``secmon.detect.lifecycle.signal_spans_reference`` is the Python twin.

    ``TypeError`` for an argument that is not a 1-d int64 array; ``ValueError`` for columns of
    different lengths, unsorted input, a case out of range, a negative duration or
    ``max_samples``, or a trigger whose window holds no event of its group.
    """
# --- fim (rust_core/src/fim/, py/fim.rs) ---

# (regex over the reported path, entry types or None, attribute names, growing-log semantics)
_PolicyRule: TypeAlias = tuple[str, Sequence[str] | None, Sequence[str], bool]
# type, size, mode, uid, gid, inode, nlink, mtime_ns, ctime_ns, target, digest, xattrs, capabilities
_Snapshot: TypeAlias = tuple[
    str | None, int | None, int | None, int | None, int | None, int | None, int | None,
    int | None, int | None, str | None, str | None, str | None, str | None,
]  # fmt: skip

@final
class FimTree:
    """The rows of one FIM tree (a scan, or a decoded baseline payload), kept in Rust.

    The rows are the columns of ``secmon.fim.scan.FRAME_SCHEMA``; they cross into Python only as
    one payload (``payload()``), as columns on request, or as the changes of ``diff``.
    """

    @staticmethod
    def decode(payload: bytes) -> FimTree:
        """Parse a baseline format 2 payload; ``ValueError`` naming the row and byte when malformed."""
    @staticmethod
    def from_columns(columns: dict[str, list[Any]]) -> FimTree:
        """Rows from frame columns (``DataFrame.to_dict(as_series=False)``): every column of
        ``FRAME_SCHEMA``, equal lengths; ``ValueError`` for a missing column, a wrong value type,
        a null path or an unknown entry type (each named)."""
    def payload(self) -> bytes:
        """The baseline format 2 payload of these rows (layout in rust_core/src/fim/payload.rs)."""
    def payload_length(self) -> int:
        """``len(self.payload())``, without encoding the payload."""
    def write_payload(self, fd: int, head: bytes, key: bytes | None = None) -> str:
        """Write ``head`` and then ``payload()`` to the open file ``fd`` (from its offset on) and
        return the hex SHA-256 of the two, or their HMAC-SHA256 under ``key`` (GIL released): the
        payload is encoded on all cores while it is hashed and written, part by part, in order.
        A failed write raises ``OSError``."""
    def __len__(self) -> int: ...
    def type_counts(self) -> list[tuple[str | None, int]]:
        """(type or None, number of rows), sorted by type with None first."""
    def errors(self) -> list[tuple[str, str]]:
        """(path, error) of every row with an error, in row order."""
    def columns(self) -> dict[str, list[Any]]:
        """The rows as a dict of lists, one per ``FRAME_SCHEMA`` column, for ``polars.DataFrame``."""
    def diff(
        self,
        after: FimTree,
        *,
        rules: Sequence[_PolicyRule],
        default_attributes: Sequence[str],
        default_growing: bool,
        root_prefix: bytes | None = None,
        algo: str | None = None,
    ) -> list[tuple[Literal["added", "removed", "modified"], str, bytes, tuple[str, ...], _Snapshot | None, _Snapshot | None]]:
        """Changes from this tree to ``after`` (GIL released), sorted by path bytes, each path once:
        (change, path, path_bytes, changed attributes, before, after). The first rule whose types
        (if any) include the entry's and whose regex matches its path picks the compared
        attributes, else the default. Entries without a mode on either side, or under a
        directory that side could not list, are neither added nor removed. For growing rules,
        ``content`` is dropped when the first ``size`` bytes the baseline saw (read now at
        ``root_prefix`` + path and hashed with ``algo``) still have the recorded digest.
        ``ValueError`` for an unknown attribute or type name or a regex that does not compile."""

def fim_scan(
    roots: Sequence[bytes],
    *,
    root_prefix: bytes | None = None,
    algo: str | None = None,
    walker_excludes: Sequence[str] = (),
    exclude_regex: str | None = None,
    xattrs: bool = True,
    follow_symlinks: bool = False,
    one_file_system: bool = False,
    threads: int | None = None,
    previous: FimTree | None = None,
    reuse_digests: bool = True,
    reuse_xattrs: bool = True,
) -> FimTree:
    """One FIM scan (GIL released): ``scan_tree`` over the host paths ``roots`` with
    ``walker_excludes``, then paths reported inside ``root_prefix``, rows whose reported path
    matches ``exclude_regex`` dropped, one row per path sorted by bytes, and (with ``xattrs``) the
    xattrs and decoded file capabilities of every stat-ed entry read on all cores. ``previous``
    (an earlier tree of the same paths) lets unchanged regular files keep their digests
    (``reuse_digests``: size, mtime, ctime, inode and mode equal) and entries keep their xattrs
    (``reuse_xattrs``: inode and ctime equal). ``FileNotFoundError`` for a missing root;
    ``ValueError`` for an unknown ``algo``, a bad glob or regex, or ``threads`` of 0."""
# --- compliance (rust_core/src/compliance.rs) -------------------------------------------------

# A fact spec: ([(fact path, dtype)], [(scope path, nested spec)]), dtype one of
# "bool" | "num" | "int" | "str" | "strlist" (``secmon.compliance.fast.native_spec`` builds it).
_FactSpec: TypeAlias = tuple[Sequence[tuple[Sequence[str], str]], Sequence[tuple[Sequence[str], Any]]]

def k8s_workload_facts(paths: Sequence[bytes], spec: _FactSpec) -> dict[str, Any]:
    """Read, parse and normalize Kubernetes workload manifests on all cores (GIL released) and
    return the typed facts ``spec`` asks for, as ``secmon.compliance.k8s.normalize_workload`` and
    ``secmon.compliance.facts.build_scope`` would compute them.

    Returns ``{"facts": scope, "file_index", "names", "lines", "locations", "fallback"}``: one
    entry per workload row (index of its file in ``paths``, ``Kind/ns/name``, document start line,
    pod spec path), and the indexes of the files handed back to the Python path (anything this
    reader does not reproduce exactly: JSON, Helm templates, YAML 1.1-ambiguous scalars, tags,
    aliases, non-workload kinds, odd values, unreadable files). A scope is ``{"columns",
    "parents", "paths", "children"}``: one list per fact (a ``strlist`` fact as ``(flat values,
    lengths)`` with -1 for absent), parent row and source path per row, nested scopes in spec
    order. ``ValueError`` for an unknown dtype.
    """
