"""Archives of logs: tar (plain, gzip, bzip2 or xz: a support bundle, ``/var/log`` packed up) and
zip (a console's or a vendor's download) files are read member by member, each member a source of
its own named ``archive:member`` (compressed members are decompressed as any file is).

An archive is told by its content, not its name: a zip's ``PK`` signature, a tar's ``ustar``
magic in its first header once decompressed. A member that cannot be read (encrypted, cut short)
and an archive that breaks midway are reported, the members before them kept.
"""

from __future__ import annotations

import lzma
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

ZIP_MAGIC = b"PK\x03\x04"
_TAR_MAGIC_AT = 257  # "ustar" in a POSIX or GNU tar's first header


def archive_kind(head: bytes) -> str | None:
    """``"zip"``, ``"tar"`` or None for a file whose first bytes, decompressed as every source's
    are (``Source``'s head), are ``head``."""
    if head.startswith(ZIP_MAGIC):
        return "zip"
    return "tar" if head[_TAR_MAGIC_AT : _TAR_MAGIC_AT + 5] == b"ustar" else None


# What reading a member raises where the archive under it breaks off (a truncated download).
MEMBER_READ_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error, lzma.LZMAError, tarfile.TarError)

# A member: (its source name, a stream of its bytes) or (its name, why it cannot be read).
Member = tuple[str, BinaryIO | str]


def archive_members(name: str, path: Path, kind: str) -> Iterator[Member]:
    """The regular-file members of the archive at ``path``, in archive order. Each stream is
    valid until the next member is asked for (the engine reads one source after another)."""
    if kind == "zip":
        yield from _zip_members(name, path)
    else:
        yield from _tar_members(name, path)


def _zip_members(name: str, path: Path) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield name, f"not a readable zip archive: {exc}"
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            member = f"{name}:{info.filename}"
            try:
                stream = archive.open(info)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError) as exc:  # encrypted, unknown method
                yield member, f"cannot read the member: {exc}"
                continue
            with stream:
                yield member, stream  # type: ignore[misc]


def _tar_members(name: str, path: Path) -> Iterator[Member]:
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        yield name, f"not a readable tar archive: {exc}"
        return
    with archive:
        while True:
            try:
                info = archive.next()
            except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as exc:
                yield name, f"the archive breaks after its last readable member: {exc}"
                return
            if info is None:
                return
            if not info.isfile():
                continue
            stream = archive.extractfile(info)
            if stream is None:
                continue
            with stream:
                yield f"{name}:{info.name}", stream
