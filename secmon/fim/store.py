"""The baseline file on disk: verify it, write it. Free of Polars and pydantic (the fast command
path uses it directly; :class:`secmon.fim.baseline.Baseline` builds on it).

Layout (one file, written atomically through a temporary file and rename)::

    SECMON-FIM-BASELINE 2 sha256=<hex>\\n        or  ... hmac-sha256=<hex>\\n
    {"format": ..., "algo": ..., "paths": [...], "policy": {...}, "payload_bytes": N, ...}\\n
    <N bytes of payload>

The digest (or the HMAC-SHA256 under ``--key-file``) covers everything after the first line, header
included, so neither the recorded entries nor the recorded settings (paths, excludes, attribute
rules) can be changed without the check failing. A plain digest catches corruption and truncation;
only the HMAC stops an attacker who can rewrite the file, which is why a baseline signed with a
key is never accepted without it, and a key given for an unsigned baseline is an error too.

Format versions: 2 (written now) carries the rows in the record layout of
``rust_core/src/fim/payload.rs`` (read and written without Polars); 1 carried Parquet. Version 1
files keep loading (through Polars) and are checked by the Polars pipeline; ``check --update``
rewrites them as version 2.
"""

from __future__ import annotations

import json
import os
import time
from _operator import _compare_digest as compare_digest  # what hmac.compare_digest is
from typing import TYPE_CHECKING, Any, NamedTuple

# Imports here are kept to what a check needs: tempfile, socket, pathlib, datetime and hashlib
# (OpenSSL) together cost more start-up time than verifying a 50k-entry baseline. The plain sha256
# goes through the Rust core (SHA-NI when the CPU has it); hmac is imported only with a key.

from secmon.fim.errors import BaselineIntegrityError, FimError

if TYPE_CHECKING:
    from secmon._core import FimTree

MAGIC = b"SECMON-FIM-BASELINE"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
MAX_HEADER_BYTES = 16 << 20
# Hex characters of the recorded SHA-256 or HMAC-SHA256.
_HEX_DIGEST = 64


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The HMAC key: the file's bytes without a trailing newline; an empty key is refused."""
    with open(path, "rb") as fh:
        key = fh.read().rstrip(b"\r\n")
    if not key:
        raise FimError(f"key file {os.fspath(path)} is empty; an HMAC key must have at least one byte")
    return key


def utc_created() -> str:
    """Now, as ``2026-11-28T16:35:00Z`` (what ``datetime.isoformat(timespec="seconds")`` spells)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def hostname() -> str:
    """``socket.gethostname()`` without importing socket: on Linux both are uname's nodename."""
    return os.uname().nodename


def header_dict(
    *,
    created: str,
    host: str,
    source: str,
    algo: str | None,
    paths: list[str],
    excludes: list[str],
    root_dir: str | None,
    xattrs: bool,
    follow_symlinks: bool,
    one_file_system: bool,
    policy: dict[str, Any],
    entries: int,
    version: int = FORMAT_VERSION,
) -> dict[str, Any]:
    """The JSON header of a baseline (``payload_bytes`` is added by :func:`write`)."""
    from secmon import __version__

    return {
        "format": "secmon-fim-baseline",
        "version": version,
        "secmon": __version__,
        "created": created,
        "host": host,
        "source": source,
        "algo": algo,
        "paths": paths,
        "excludes": excludes,
        "root_dir": root_dir,
        "xattrs": xattrs,
        "follow_symlinks": follow_symlinks,
        "one_file_system": one_file_system,
        "policy": policy,
        "entries": entries,
    }


def write(
    path: str | os.PathLike[str], header: dict[str, Any], payload: bytes | FimTree, key: bytes | None, version: int = FORMAT_VERSION
) -> None:
    """Write atomically: a crash mid-write leaves the old baseline, never a half file.

    ``payload`` is the payload's bytes, or the :class:`~secmon._core.FimTree` whose payload it
    is: then the Rust core encodes it on all cores while it hashes and writes it, part by part
    (``FimTree.write_payload``), instead of building 9 MB of bytes, hashing them and writing them
    one step after the other. Both give the same file.
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        tree, data, length = None, payload, len(payload)
    else:
        tree, data, length = payload, b"", payload.payload_length()
    header = {**header, "payload_bytes": length}
    head = json.dumps(header, sort_keys=True).encode() + b"\n"
    # The first line has the same length whatever the digest, so it is written last, into the
    # room left for it, once the digest of everything after it is known.
    first = MAGIC + b" " + str(version).encode() + b" " + (b"hmac-sha256=" if key is not None else b"sha256=")
    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    os.makedirs(directory, exist_ok=True)
    # What tempfile.mkstemp does (O_EXCL, 0600), without importing tempfile.
    tmp = os.path.join(directory, f".{os.path.basename(target)}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.lseek(fd, len(first) + _HEX_DIGEST + 1, os.SEEK_SET)
            if tree is not None:
                mac = tree.write_payload(fd, head, key)
            else:
                mac = _mac(key, head, data)
                with open(fd, "wb", closefd=False) as fh:
                    fh.write(head)
                    fh.write(data)
            os.pwrite(fd, first + mac.encode() + b"\n", 0)
            os.fchmod(fd, 0o600)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _mac(key: bytes | None, *parts: bytes | memoryview) -> str:
    """Hex HMAC-SHA256 of the parts joined under ``key``, or their plain SHA-256 without one
    (the parts are hashed one after the other, never copied into one buffer)."""
    if key is not None:
        import hashlib
        import hmac

        mac = hmac.new(key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return mac.hexdigest()
    from secmon._core import hash_bytes

    return hash_bytes(list(parts), "sha256")


class VerifiedBaseline(NamedTuple):
    """A baseline file whose digest/HMAC matched: its format version, header and payload bytes."""

    version: int
    header: dict[str, Any]
    payload: memoryview


def verify(path: str | os.PathLike[str], key: bytes | None = None) -> VerifiedBaseline:
    """Read and verify a baseline; any mismatch raises :class:`BaselineIntegrityError`."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise FimError(f"baseline {name} does not exist; create it with `secmon fim baseline PATH... --db {name}`") from None
    newline = data.find(b"\n", 0, 4096)
    if not data.startswith(MAGIC + b" ") or newline == -1:
        shown = data[:40]
        raise BaselineIntegrityError(name, f"not a secmon FIM baseline (starts with {shown!r})")
    fields = data[:newline].split(b" ")
    if len(fields) != 3 or fields[1] not in [str(v).encode() for v in READABLE_VERSIONS]:
        raise BaselineIntegrityError(
            name, f"unsupported baseline header {data[:newline]!r} (this secmon reads format versions 1 and 2; re-create the baseline)"
        )
    version = int(fields[1])
    kind, _, recorded = fields[2].partition(b"=")
    body = memoryview(data)[newline + 1 :]
    if kind == b"hmac-sha256":
        if key is None:
            raise BaselineIntegrityError(name, "it is signed with HMAC-SHA256; pass the same --key-file to verify it")
        actual = _mac(key, body).encode()
    elif kind == b"sha256":
        if key is not None:
            raise BaselineIntegrityError(
                name, "a key file was given but this baseline carries no HMAC, so anyone could have rewritten it"
            )
        actual = _mac(None, body).encode()
    else:
        raise BaselineIntegrityError(name, f"unknown integrity method {kind!r}")
    header_end = data.find(b"\n", newline + 1, newline + 1 + MAX_HEADER_BYTES)
    header: dict[str, Any] | None = None
    if header_end != -1:
        try:
            header = json.loads(data[newline + 1 : header_end])
        except ValueError:
            header = None
        header_end -= newline + 1
    if not compare_digest(actual, recorded):
        if header is not None and isinstance(header.get("payload_bytes"), int):
            have = len(body) - header_end - 1
            if have < header["payload_bytes"]:
                raise BaselineIntegrityError(
                    name, f"truncated: the header records {header['payload_bytes']} payload bytes, the file has {have}"
                )
        what = "HMAC" if kind == b"hmac-sha256" else "digest"
        raise BaselineIntegrityError(
            name, f"{what} mismatch (recorded {recorded[:16].decode(errors='replace')}..., computed {actual[:16].decode()}...): the file was modified"
        )
    if header is None or header.get("format") != "secmon-fim-baseline":
        raise BaselineIntegrityError(name, "the header is not a secmon FIM baseline header")
    payload = body[header_end + 1 :]
    if version >= 2 and header.get("payload_bytes") != len(payload):
        raise BaselineIntegrityError(name, f"the header records {header.get('payload_bytes')} payload bytes, the file has {len(payload)}")
    return VerifiedBaseline(version, header, payload)


__all__ = ["FORMAT_VERSION", "MAGIC", "VerifiedBaseline", "header_dict", "read_key_file", "verify", "write"]
