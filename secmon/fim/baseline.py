"""The baseline file: what the tree looked like, protected against tampering and truncation.

Layout (one file, written atomically through a temporary file and rename)::

    SECMON-FIM-BASELINE 1 sha256=<hex>\\n        or  ... hmac-sha256=<hex>\\n
    {"format": ..., "algo": ..., "paths": [...], "policy": {...}, "payload_bytes": N, ...}\\n
    <N bytes of Parquet: one row per entry, the scan columns>

The digest (or the HMAC-SHA256 under ``--key-file``) covers everything after the first line, header
included, so neither the recorded entries nor the recorded settings (paths, excludes, attribute
rules) can be changed without the check failing. A plain digest catches corruption and truncation;
only the HMAC stops an attacker who can rewrite the file, which is why a baseline signed with a
key is never accepted without it, and a key given for an unsigned baseline is an error too.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from secmon.fim.config import AttributePolicy
from secmon.fim.errors import BaselineIntegrityError, FimError
from secmon.fim.scan import FRAME_SCHEMA

MAGIC = b"SECMON-FIM-BASELINE"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 16 << 20


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """The HMAC key: the file's bytes without a trailing newline; an empty key is refused."""
    key = Path(path).read_bytes().rstrip(b"\r\n")
    if not key:
        raise FimError(f"key file {os.fspath(path)} is empty; an HMAC key must have at least one byte")
    return key


@dataclass
class Baseline:
    """A recorded tree: the entries (``frame``) plus how they were recorded."""

    frame: pl.DataFrame
    algo: str | None
    paths: list[str]
    excludes: list[str]
    policy: AttributePolicy
    xattrs: bool = True
    root_dir: str | None = None
    source: str = "filesystem"  # or "image" (a docker save tarball)
    follow_symlinks: bool = False
    one_file_system: bool = False
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))
    host: str = field(default_factory=socket.gethostname)

    def header(self) -> dict[str, Any]:
        from secmon import __version__

        return {
            "format": "secmon-fim-baseline",
            "version": FORMAT_VERSION,
            "secmon": __version__,
            "created": self.created,
            "host": self.host,
            "source": self.source,
            "algo": self.algo,
            "paths": self.paths,
            "excludes": self.excludes,
            "root_dir": self.root_dir,
            "xattrs": self.xattrs,
            "follow_symlinks": self.follow_symlinks,
            "one_file_system": self.one_file_system,
            "policy": self.policy.to_json(),
            "entries": self.frame.height,
        }

    def save(self, path: str | os.PathLike[str], key: bytes | None = None) -> None:
        """Write atomically: a crash mid-write leaves the old baseline, never a half file."""
        buffer = io.BytesIO()
        self.frame.select(list(FRAME_SCHEMA)).write_parquet(buffer, compression="zstd")
        payload = buffer.getvalue()
        header = self.header()
        header["payload_bytes"] = len(payload)
        body = json.dumps(header, sort_keys=True).encode() + b"\n" + payload
        if key is not None:
            token = b"hmac-sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        else:
            token = b"sha256=" + hashlib.sha256(body).hexdigest().encode()
        first = MAGIC + b" " + str(FORMAT_VERSION).encode() + b" " + token + b"\n"
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(first + body)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str], key: bytes | None = None) -> Baseline:
        """Read and verify a baseline; any mismatch raises :class:`BaselineIntegrityError`."""
        name = os.fspath(path)
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise FimError(f"baseline {name} does not exist; create it with `secmon fim baseline PATH... --db {name}`") from None
        newline = data.find(b"\n", 0, 4096)
        if not data.startswith(MAGIC + b" ") or newline == -1:
            shown = data[:40]
            raise BaselineIntegrityError(name, f"not a secmon FIM baseline (starts with {shown!r})")
        fields = data[:newline].split(b" ")
        if len(fields) != 3 or fields[1] != str(FORMAT_VERSION).encode():
            raise BaselineIntegrityError(name, f"unsupported baseline header {data[:newline]!r}")
        kind, _, recorded = fields[2].partition(b"=")
        body = data[newline + 1 :]
        if kind == b"hmac-sha256":
            if key is None:
                raise BaselineIntegrityError(name, "it is signed with HMAC-SHA256; pass the same --key-file to verify it")
            actual = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        elif kind == b"sha256":
            if key is not None:
                raise BaselineIntegrityError(
                    name, "a key file was given but this baseline carries no HMAC, so anyone could have rewritten it"
                )
            actual = hashlib.sha256(body).hexdigest().encode()
        else:
            raise BaselineIntegrityError(name, f"unknown integrity method {kind!r}")
        header_end = body.find(b"\n", 0, MAX_HEADER_BYTES)
        header: dict[str, Any] | None = None
        if header_end != -1:
            try:
                header = json.loads(body[:header_end])
            except ValueError:
                header = None
        if not hmac.compare_digest(actual, recorded):
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
        try:
            frame = pl.read_parquet(io.BytesIO(body[header_end + 1 :]))
        except Exception as exc:  # a verified file that does not parse was written by a broken writer
            raise BaselineIntegrityError(name, f"payload does not parse as Parquet: {exc}") from None
        missing = [c for c in FRAME_SCHEMA if c not in frame.columns]
        if missing:
            raise BaselineIntegrityError(name, f"payload lacks columns {', '.join(missing)}")
        frame = frame.select([pl.col(c).cast(t) for c, t in FRAME_SCHEMA.items()])
        return cls(
            frame=frame,
            algo=header["algo"],
            paths=list(header["paths"]),
            excludes=list(header["excludes"]),
            policy=AttributePolicy.from_json(header["policy"]),
            xattrs=bool(header["xattrs"]),
            root_dir=header.get("root_dir"),
            source=header.get("source", "filesystem"),
            follow_symlinks=bool(header.get("follow_symlinks", False)),
            one_file_system=bool(header.get("one_file_system", False)),
            created=header["created"],
            host=header["host"],
        )
