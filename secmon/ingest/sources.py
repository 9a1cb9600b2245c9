"""Where log bytes come from: files, directories, globs, stdin, compressed files (gzip, bzip2, xz,
told by their magic bytes, not their names), the members of tar and zip archives
(``secmon.ingest.archives``); cut into chunks of lines.

The engine streams: :meth:`Source.chunks` yields :class:`Chunk` objects holding whole lines
(split at a newline, the remainder carried into the next chunk), so memory stays bounded by the
chunk size plus the line-length limit whatever the file size. A line longer than the limit is cut
to ``max_line_bytes + 1`` bytes (the rest skipped), which the parser then rejects as
``line_too_long``; the same line in a bigger chunk is rejected the same way, so chunk size never
changes the result.
"""

from __future__ import annotations

import errno
import glob
import gzip
import io
import os
import stat
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from secmon._core import read_records
from secmon.errors import InputError
from secmon.ingest.archives import MEMBER_READ_ERRORS, archive_kind, archive_members
from secmon.ingest.formats import LogFormat, format_for_file, get_format
from secmon.ingest.lines import fast_line_count
from secmon.ingest.stats import CORRUPT_INPUT, UNREADABLE_FILE

DEFAULT_CHUNK_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
HEAD_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"
BZIP2_MAGIC = b"BZh"  # then the block size digit and a block's magic (pi) or the end's (sqrt pi)
BZIP2_BLOCK_MAGICS = (b"1AY&SY", b"\x17rE8P\x90")
XZ_MAGIC = b"\xfd7zXZ\x00"
MAGIC_BYTES = 10
JOURNAL_MAGIC = b"LPKSHHRH"  # systemd journal files (/var/log/journal/*/*.journal)
UTF8_BOM = b"\xef\xbb\xbf"
STDIN_NAME = "<stdin>"


class SourceFile:
    """An open descriptor of a plain input file that outlives the reading of it, so a scan can
    read kept lines back (samples, ties) from the input itself instead of keeping copies. It is
    a duplicate of the reader's descriptor: a file renamed or rotated mid-scan still reads the
    bytes that were scanned. Closed by ``close`` or when no one holds it any more."""

    def __init__(self, fd: int, name: str = "input") -> None:
        self.fd: int | None = os.dup(fd)
        self.name = name

    def read_records(self, offsets: np.ndarray, lengths: np.ndarray) -> bytes:
        """The records at ``offsets`` (int64 arrays), in that order, joined by newlines;
        ``InputError`` when the file no longer has them (it was truncated or rewritten while the
        scan ran)."""
        if self.fd is None:
            raise ValueError(f"{self.name}: the input file was closed")
        try:
            return read_records(self.fd, offsets, lengths)
        except EOFError:
            raise InputError(
                f"{self.name}: the file was truncated while it was scanned (bytes it had are gone); "
                "scan a copy of a file that is being rewritten"
            ) from None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.close()


@dataclass(frozen=True, eq=False)
class Chunk:
    """Whole lines of one source. ``first_line`` is the 1-based number of its first line;
    ``nbytes`` the input bytes it stands for (more than ``len(data)`` when an over-long line was
    cut); ``read_error`` is set on the last chunk of a source whose compressed stream was corrupt
    or truncated (what came before is still parsed; the parser counts the error)."""

    data: bytes
    first_line: int
    source: Source
    nbytes: int = -1
    read_error: str | None = None
    read_error_reason: str = CORRUPT_INPUT
    # Where ``data`` starts in ``source.file`` when it is a contiguous, uncompressed slice of it
    # (the engine then refers to kept lines in place instead of copying them); None otherwise.
    file_offset: int | None = None

    def __post_init__(self) -> None:
        if self.nbytes < 0:
            object.__setattr__(self, "nbytes", len(self.data))

    @cached_property
    def line_count(self) -> int:
        """Lines in ``data``, counted once: the reader, the prefilter stage and the parser all
        need it (four passes over every chunk's bytes cost 0.25 s of CPU at 1M events)."""
        return fast_line_count(self.data)


class _PrefixedStream(io.RawIOBase):
    """``head`` then the rest of ``stream``: lets stdin be sniffed and still read from the start."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = head
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


# name, opener of a decompressing reader over a binary file object, the errors its reads raise on
# corrupt or truncated data.
_Decompression = tuple[str, Any, tuple[type[BaseException], ...]]


def _decompressing(head: bytes) -> _Decompression | None:
    """How to read a stream starting with ``head`` (its first MAGIC_BYTES bytes); None for an
    uncompressed one. bz2 and lzma are imported only for their files."""
    if head.startswith(GZIP_MAGIC):
        return "gzip", lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"), (EOFError, OSError, zlib.error)
    if head.startswith(BZIP2_MAGIC) and head[3:4].isdigit() and head[4:10] in BZIP2_BLOCK_MAGICS:
        import bz2

        return "bzip2", bz2.BZ2File, (EOFError, OSError, ValueError)
    if head.startswith(XZ_MAGIC):
        import lzma

        return "xz", lzma.LZMAFile, (EOFError, lzma.LZMAError)
    return None


def _as_is(raw: BinaryIO) -> BinaryIO:
    return raw


class _TolerantDecompressor:
    """A decompressing stream that ends, instead of raising, where the data is corrupt or
    truncated (a log rotated while being written): everything before is kept, the error is
    remembered and reported on the last chunk, and the run goes on."""

    def __init__(self, how: _Decompression, raw: BinaryIO) -> None:
        self.name, opener, self._errors = how
        self._inner = opener(raw)
        self.error: str | None = None

    # A failing read loses what it decompressed: pieces are read with read1 (one block of the
    # compressed input a call; read gathers blocks until it has the size asked for, so a file cut
    # short lost up to a piece before the cut, all of a small one).
    PIECE = 64 * 1024

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all with -1), fewer only at the end of the data or where it breaks:
        the reader cuts chunks from whole reads (a short read made a 16 MiB chunk a 64 KiB one,
        and a compressed file paid the per-chunk work 256 times over)."""
        parts: list[bytes] = []
        remaining = n if n >= 0 else sys.maxsize
        while remaining > 0 and self.error is None:
            try:
                piece = self._inner.read1(min(remaining, self.PIECE))
            except self._errors as exc:
                self.error = f"corrupt or truncated {self.name} data: {exc}"
                break
            if not piece:
                break
            parts.append(piece)
            remaining -= len(piece)
        return b"".join(parts)

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _TolerantDecompressor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LINE_END_WINDOW = 64 * 1024  # bytes before a chunk's end searched for the line end it stops at


def _regular_file_size(stream: BinaryIO) -> int | None:
    """The size of the regular file ``stream`` reads, None when it is something else."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, io.UnsupportedOperation):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _to_line_end(stream: BinaryIO, chunk_bytes: int, size: int) -> int:
    """How much of a regular file to read next so that the read ends just after a newline: at
    most ``chunk_bytes``, found by reading the last ``LINE_END_WINDOW`` bytes of that span first.
    The block read is then the chunk itself; cut at its last newline, it was copied once more
    (measured: 0.25 s of the reading thread's 0.34 s over 553 MB). ``chunk_bytes`` when there is
    no newline in the window or the span reaches the end of the file as it was when opened: the
    caller cuts and carries as for any stream, which is also what happens if the file changes
    between the two reads."""
    position = stream.tell()
    if position + chunk_bytes >= size:
        return chunk_bytes
    window = min(LINE_END_WINDOW, chunk_bytes)
    tail = os.pread(stream.fileno(), window, position + chunk_bytes - window)
    cut = tail.rfind(b"\n")
    return chunk_bytes if cut < 0 else chunk_bytes - len(tail) + cut + 1


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, reading again on short reads (pipes and gzip return less)."""
    parts: list[bytes] = []
    remaining = n
    while remaining > 0:
        block = stream.read(remaining)
        if not block:
            break
        parts.append(block)
        remaining -= len(block)
    return b"".join(parts)


class Source:
    """One input: a file, stdin, or bytes in memory; with its detected (or forced) format.

    ``parse_state`` belongs to the format parsing this source (e.g. the syslog year tracker), so
    chunks of one source must be parsed in order."""

    def __init__(
        self,
        name: str,
        *,
        path: Path | None = None,
        data: bytes | None = None,
        stream: BinaryIO | None = None,
        format: str | LogFormat | None = None,
        year: int | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        owns_stream: bool = False,
        unreadable: str | None = None,
        read_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        """``read_errors``: what reading ``stream`` raises where its data breaks off (an archive
        cut short under a member): the source then ends there and reports it, as a corrupt
        compressed file does."""
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
        #: Why a file found in a directory or glob could not be opened (counted, not raised).
        self.unreadable = unreadable
        if unreadable is not None:
            data, format = b"", format or "text"
        self.name = name
        self.path = path
        self.year = year
        self.max_line_bytes = max_line_bytes
        self.parse_state: dict[str, Any] = {}
        self.compressed = False
        self._data = data
        self._stream = stream
        self._consumed = False
        self._owned_stream = stream if owns_stream else None
        self._decompressor: _TolerantDecompressor | None = None
        if stream is not None and read_errors:
            self._stream = self._decompress(("archive", _as_is, read_errors), stream)  # type: ignore[assignment]
        #: The plain file being read (set by ``chunks``), for chunks with a ``file_offset``.
        self.file: SourceFile | None = None
        head = self._head()
        #: "tar" or "zip" for an archive file: ``open_sources`` reads its members in its place.
        self.archive = archive_kind(head) if path is not None else None
        self.format: LogFormat = format_for_file(format, head)
        if format is None and head.startswith(JOURNAL_MAGIC):
            # journald's binary store, met in a scan of /var/log: not lines to count as garbage.
            self.unreadable = f"a binary systemd journal file; read it through `journalctl --file {name} -o json | secmon scan -`"

    def __repr__(self) -> str:
        return f"Source({self.name!r}, format={self.format.name!r})"

    def _head(self) -> bytes:
        """The first bytes (decompressed), without consuming a one-shot stream."""
        if self._stream is not None:
            raw = self._stream
            magic = _read_exactly(raw, MAGIC_BYTES)
            raw = io.BufferedReader(_PrefixedStream(magic, raw))
            if (found := _decompressing(magic)) is not None:
                raw = self._decompress(found, raw)  # type: ignore[assignment]
            head = _read_exactly(raw, HEAD_BYTES)
            self._stream = io.BufferedReader(_PrefixedStream(head, raw))
            return head
        with self._open_fresh() as stream:
            return _read_exactly(stream, HEAD_BYTES)

    def _open_fresh(self) -> BinaryIO:
        if self._data is not None:
            data = self._data
            if (found := _decompressing(data[:MAGIC_BYTES])) is not None:
                return self._decompress(found, io.BytesIO(data))  # type: ignore[return-value]
            return io.BytesIO(data)
        assert self.path is not None
        handle = open(self.path, "rb")  # noqa: SIM115 (returned to the caller, closed there)
        found = _decompressing(handle.read(MAGIC_BYTES))
        handle.seek(0)
        if found is not None:
            return self._decompress(found, handle)  # type: ignore[return-value]
        return handle

    def _decompress(self, how: _Decompression, raw: BinaryIO) -> _TolerantDecompressor:
        self.compressed = True
        self._decompressor = _TolerantDecompressor(how, raw)
        return self._decompressor

    def _open(self) -> BinaryIO:
        if self._stream is not None:
            if self._consumed:
                raise InputError(f"{self.name}: a stream can be read only once")
            self._consumed = True
            return self._stream
        return self._open_fresh()

    def chunks(self, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[Chunk]:
        """Whole-line chunks of about ``chunk_bytes`` (one chunk per document for JSON documents)."""
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be at least 1, got {chunk_bytes}")
        if self.unreadable is not None:
            yield Chunk(b"", 1, self, 0, read_error=self.unreadable, read_error_reason=UNREADABLE_FILE)
            return
        stream = self._open()
        try:
            if not self.format.line_oriented:
                data = stream.read()
                nbytes = len(data)
                if data.startswith(UTF8_BOM):
                    data = data[len(UTF8_BOM) :]
                error = self._decompressor.error if self._decompressor is not None else None
                if data or error:
                    yield Chunk(data, 1, self, nbytes, read_error=error)
                return
            yield from self._line_chunks(stream, chunk_bytes)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            if isinstance(exc, (FileNotFoundError, PermissionError)):
                raise
            raise InputError(f"{self.name}: cannot read: {exc}") from exc
        finally:
            stream.close()  # for stdin this closes our wrapper, not sys.stdin itself
            if self._owned_stream is not None:
                self._owned_stream.close()

    def _line_chunks(self, stream: BinaryIO, chunk_bytes: int) -> Iterator[Chunk]:
        limit = self.max_line_bytes
        line_no = 1
        plain = self.path is not None and self._data is None and not self.compressed
        if plain and self.file is None:
            self.file = SourceFile(stream.fileno(), self.name)
        file_pos = 0  # where the next chunk's input bytes (``nbytes`` of them) start in the file
        carry = _read_exactly(stream, len(UTF8_BOM))
        carry_extra = 0  # input bytes not in the chunk data (BOM, cut over-long lines), for nbytes
        lead = 0  # of those, the ones before the chunk data (a BOM)
        if carry == UTF8_BOM:  # editors on Windows start files with one; it is not part of line 1
            carry, carry_extra, lead = b"", len(UTF8_BOM), len(UTF8_BOM)
        head, carry = carry, b""  # the probed bytes start the first block (they may hold newlines)

        def make_chunk(data: bytes, read_error: str | None = None) -> Chunk:
            nonlocal file_pos, lead
            # In place only when nothing inside the data was cut out (a cut over-long line).
            offset = file_pos + lead if plain and carry_extra == lead else None
            chunk = Chunk(data, line_no, self, len(data) + carry_extra, read_error=read_error, file_offset=offset)
            file_pos += chunk.nbytes
            lead = 0
            return chunk
        skipping = False  # inside an over-long line whose first limit+1 bytes are in ``carry``
        regular_size = _regular_file_size(stream) if plain else None
        while True:
            want = chunk_bytes
            if regular_size is not None and not carry and not skipping:
                want = _to_line_end(stream, chunk_bytes, regular_size)
            block = stream.read(want)
            if head:
                block, head = head + block, b""
            if not block:
                break
            if skipping:
                nl = block.find(b"\n")
                if nl < 0:
                    carry_extra += len(block)
                    continue
                carry_extra += nl
                block = b"\n" + block[nl + 1 :]
                skipping = False
            cut = block.rfind(b"\n")  # ``carry`` holds no newline: the chunk ends in ``block``
            if cut < 0:
                buf = carry + block
                if len(buf) > limit:
                    carry_extra += len(buf) - (limit + 1)
                    carry = buf[: limit + 1]
                    skipping = True
                else:
                    carry = buf
                continue
            # One copy of the block into the chunk (a concatenation, then a slice of it, was two);
            # none when the block is the chunk (read up to a line end, see ``_to_line_end``).
            if carry:
                data = b"".join((carry, memoryview(block)[: cut + 1]))
            else:
                data = block if cut + 1 == len(block) else block[: cut + 1]
            chunk = make_chunk(data)
            yield chunk
            carry_extra = 0
            line_no += chunk.line_count
            carry = block[cut + 1 :]
            if len(carry) > limit:
                carry_extra += len(carry) - (limit + 1)
                carry = carry[: limit + 1]
                skipping = True
        error = self._decompressor.error if self._decompressor is not None else None
        if carry or error or carry_extra:  # carry_extra alone: a file that is only a BOM
            yield make_chunk(carry, read_error=error)


def expand_paths(paths: Sequence[str | Path]) -> list[tuple[str, Path | None]]:
    """Files named by ``paths``: files as given, directories recursively (sorted), globs
    (``**`` recursive), ``-`` for stdin. A missing path or a glob matching nothing raises
    FileNotFoundError naming it; an empty directory gives nothing."""
    found: list[tuple[str, Path | None]] = []
    for entry in paths:
        text = os.fspath(entry)
        if text == "-":
            found.append((STDIN_NAME, None))
            continue
        path = Path(text)
        if path.is_dir():
            found.extend(_directory_files(path))
        elif path.exists():
            found.append((text, path))
        elif glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(errno.ENOENT, "no file matches the pattern", text)
            for match in matches:
                match_path = Path(match)
                if match_path.is_dir():
                    found.extend(_directory_files(match_path))
                else:
                    found.append((match, match_path))
        else:
            raise FileNotFoundError(errno.ENOENT, "no such file or directory", text)
    return found


def _directory_files(directory: Path) -> list[tuple[str, Path | None]]:
    return [(str(p), p) for p in sorted(directory.rglob("*")) if p.is_file()]


def open_sources(
    paths: Sequence[str | Path],
    *,
    format: str | LogFormat | None = None,
    year: int | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Source]:
    """Sources for files, directories (recursive), globs and ``-`` (stdin), ``.gz`` by magic bytes.

    Paths and the format name are checked now (FileNotFoundError, InputError listing valid
    formats); each file is opened and its format detected when the iterator reaches it. A file
    named explicitly that cannot be opened raises (PermissionError, ...); one found inside a
    directory or by a glob is yielded as an unreadable source, counted as ``unreadable_file``
    when parsed, so one root-only file does not stop a scan of ``/var/log``."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if format is not None:
        format = get_format(format)
    files = expand_paths(paths)
    explicit = {os.fspath(p) for p in paths}

    def generate() -> Iterator[Source]:
        for name, path in files:
            try:
                source = make(name, path)
            except OSError as exc:
                if name in explicit:
                    raise
                source = Source(name, path=path, unreadable=f"cannot read: {exc.strerror or exc}")
            if source.archive is None:
                yield source
                continue
            for member, stream in archive_members(name, path, source.archive):  # type: ignore[arg-type]
                if isinstance(stream, str):
                    yield Source(member, path=path, unreadable=stream)
                else:
                    yield Source(member, stream=stream, format=format, year=year, max_line_bytes=max_line_bytes,
                                 read_errors=MEMBER_READ_ERRORS)

    def make(name: str, path: Path | None) -> Source:
        if path is None:
            return Source(name, stream=sys.stdin.buffer, format=format, year=year, max_line_bytes=max_line_bytes)
        if not path.is_file():
            # A pipe (``<(zcat x.gz)``, /dev/stdin): it can be read once, so it is sniffed and
            # then read through the same handle.
            handle = open(path, "rb")  # noqa: SIM115 (closed when the source is read)
            return Source(name, stream=handle, format=format, year=year, max_line_bytes=max_line_bytes,
                          owns_stream=True)
        return Source(name, path=path, format=format, year=year, max_line_bytes=max_line_bytes)

    return generate()

