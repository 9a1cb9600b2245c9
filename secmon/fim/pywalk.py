"""The slow, obvious twin of ``secmon._core.scan_tree``: os.scandir + os.lstat + hashlib.

Same arguments, same columns, same rules as the native walker (see :data:`SCAN_SCHEMA`). It
exists so tests can compare the parallel Rust walker against something small enough to read,
and so secmon still works where the extension was built without the walker. Nothing here is
tuned for speed; it reads files sequentially in fixed 1 MiB chunks.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from secmon.fim.attributes import HASH_ALGORITHMS
from secmon.fim.globs import ExcludeMatcher

SCAN_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String(),
    "path_bytes": pl.Binary(),
    "type": pl.String(),
    "size": pl.UInt64(),
    "mode": pl.UInt32(),
    "uid": pl.UInt32(),
    "gid": pl.UInt32(),
    "inode": pl.UInt64(),
    "dev": pl.UInt64(),
    "nlink": pl.UInt64(),
    "mtime_ns": pl.Int64(),
    "ctime_ns": pl.Int64(),
    "target": pl.String(),
    "digest": pl.String(),
    "error": pl.String(),
}

CHUNK_BYTES = 1 << 20


def new_hasher(algo: str) -> Any:
    """A streaming hasher for ``algo``; blake3/xxh3 need their optional Python packages here."""
    if algo in ("sha256", "sha1", "md5"):
        return hashlib.new(algo)
    if algo == "blake3":
        try:
            import blake3  # type: ignore[import-not-found]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError("hash algorithm 'blake3' needs the native walker or the 'blake3' package") from exc
        return blake3.blake3()
    if algo == "xxh3_128":
        try:
            import xxhash  # type: ignore[import-not-found]
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError("hash algorithm 'xxh3_128' needs the native walker or the 'xxhash' package") from exc
        return xxhash.xxh3_128()
    raise ValueError(f"unknown hash algorithm {algo!r}; valid: {', '.join(HASH_ALGORITHMS)}")


def hash_file(path: str | bytes | os.PathLike[str], algo: str) -> str:
    """Hex digest of a regular file, read in fixed-size chunks (memory does not grow with size)."""
    hasher = new_hasher(algo)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{os.fsdecode(path)!s} is not a regular file")
        while chunk := os.read(fd, CHUNK_BYTES):
            hasher.update(chunk)
    finally:
        os.close(fd)
    return str(hasher.hexdigest())


def file_type(mode: int) -> str:
    """The walker's type name for an ``st_mode``."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "char_device"
    if stat.S_ISBLK(mode):
        return "block_device"
    return "unknown"


def _error_text(exc: OSError) -> str:
    return f"{exc.strerror or exc} (errno {exc.errno})" if exc.errno else str(exc)


def scan_tree(
    roots: Sequence[str | os.PathLike[str]],
    *,
    algo: str | None = None,
    excludes: Iterable[str] = (),
    follow_symlinks: bool = False,
    threads: int | None = None,
    previous: pl.DataFrame | None = None,
    one_file_system: bool = False,
) -> pl.DataFrame:
    """Walk ``roots`` and return one row per entry (roots included), sorted by ``path_bytes``.

    ``threads`` is accepted for signature parity and ignored: this twin is sequential on purpose.
    """
    del threads
    if algo is not None and algo not in HASH_ALGORITHMS:
        raise ValueError(f"unknown hash algorithm {algo!r}; valid: {', '.join(HASH_ALGORITHMS)}")
    exclude = ExcludeMatcher(list(excludes))
    reuse: dict[bytes, tuple[int, int, int, int, int, str]] = {}
    if previous is not None and algo is not None and previous.height:
        for row in previous.select("path_bytes", "size", "mtime_ns", "ctime_ns", "inode", "mode", "digest").iter_rows():
            if row[6] is not None and None not in row[1:6]:
                reuse[row[0]] = (row[1], row[2], row[3], row[4], row[5], row[6])
    columns: dict[str, list[Any]] = {name: [] for name in SCAN_SCHEMA}
    seen: set[bytes] = set()

    def emit(path_b: bytes, st: os.stat_result | None, target: str | None, digest: str | None, error: str | None) -> None:
        if path_b in seen:  # overlapping roots: one row per entry
            return
        seen.add(path_b)
        columns["path"].append(path_b.decode("utf-8", "replace"))
        columns["path_bytes"].append(path_b)
        if st is None:
            columns["type"].append("unknown")
            for name in ("size", "mode", "uid", "gid", "inode", "dev", "nlink", "mtime_ns", "ctime_ns"):
                columns[name].append(None)
        else:
            columns["type"].append(file_type(st.st_mode))
            columns["size"].append(st.st_size)
            columns["mode"].append(st.st_mode)
            columns["uid"].append(st.st_uid)
            columns["gid"].append(st.st_gid)
            columns["inode"].append(st.st_ino)
            columns["dev"].append(st.st_dev)
            columns["nlink"].append(st.st_nlink)
            columns["mtime_ns"].append(st.st_mtime_ns)
            columns["ctime_ns"].append(st.st_ctime_ns)
        columns["target"].append(target)
        columns["digest"].append(digest)
        columns["error"].append(error)

    def visit(path_b: bytes, root_dev: int, ancestors: frozenset[tuple[int, int]], is_root: bool) -> None:
        try:
            lst = os.lstat(path_b)
        except OSError as exc:
            if is_root:
                raise
            # Vanished between listing and lstat, or refused: a row that says so (type unknown).
            emit(path_b, None, None, None, f"stat: {_error_text(exc)}")
            return
        st = lst
        link_error: str | None = None
        if follow_symlinks and stat.S_ISLNK(lst.st_mode):
            try:
                st = os.stat(path_b)
            except FileNotFoundError:
                link_error = "broken symlink: target does not exist"
            except OSError as exc:
                link_error = f"following symlink: {_error_text(exc)}"
        if link_error is not None:
            emit(path_b, lst, _readlink(path_b), None, link_error)
            return
        target: str | None = None
        digest: str | None = None
        error: str | None = None
        if stat.S_ISLNK(lst.st_mode):
            target = _readlink(path_b)
        elif stat.S_ISREG(st.st_mode) and algo is not None:
            old = reuse.get(path_b)
            if old is not None and old[:5] == (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode):
                digest = old[5]
            else:
                try:
                    digest = hash_file(path_b, algo)
                except OSError as exc:
                    error = _error_text(exc)
        is_dir = stat.S_ISDIR(st.st_mode)
        key = (st.st_dev, st.st_ino)
        if is_dir and follow_symlinks and key in ancestors:
            emit(path_b, st, target, None, "symlink loop: directory is its own ancestor")
            return
        children: list[bytes] = []
        if is_dir and (not one_file_system or st.st_dev == root_dev or is_root):
            try:
                with os.scandir(path_b) as it:
                    children = [entry.path for entry in it]
            except OSError as exc:
                error = _error_text(exc)
        emit(path_b, st, target, digest, error)
        for child in children:
            if exclude.excluded(child):
                continue
            visit(child, root_dev, ancestors | {key}, False)

    for root in roots:
        root_b = os.fsencode(root)
        if len(root_b) > 1:
            root_b = root_b.rstrip(b"/") or b"/"
        root_dev = os.lstat(root_b).st_dev  # a root that cannot be stat-ed is an error, as in the core
        visit(root_b, root_dev, frozenset(), True)
    frame = pl.DataFrame(columns, schema=SCAN_SCHEMA)
    return frame.sort("path_bytes")


def _readlink(path_b: bytes) -> str | None:
    try:
        return os.readlink(path_b).decode("utf-8", "replace")
    except OSError:
        return None

