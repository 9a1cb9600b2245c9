"""The baseline as a Python object: a Polars frame of the recorded entries plus how they were
recorded. The file layout, its integrity check and the format versions are in
:mod:`secmon.fim.store`; format 2 payloads are encoded/decoded by the Rust core
(``secmon._core.FimTree``), format 1 (Parquet) files still load.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from secmon.fim import store
from secmon.fim.errors import BaselineIntegrityError
from secmon.fim.policy import AttributePolicy
from secmon.fim.scan import FRAME_SCHEMA
from secmon.fim.store import FORMAT_VERSION, MAGIC, read_key_file


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
    created: str = field(default_factory=store.utc_created)
    host: str = field(default_factory=store.hostname)

    def header(self) -> dict[str, Any]:
        return store.header_dict(
            created=self.created,
            host=self.host,
            source=self.source,
            algo=self.algo,
            paths=self.paths,
            excludes=self.excludes,
            root_dir=self.root_dir,
            xattrs=self.xattrs,
            follow_symlinks=self.follow_symlinks,
            one_file_system=self.one_file_system,
            policy=self.policy.to_json(),
            entries=self.frame.height,
        )

    def payload(self) -> bytes:
        """The rows as a format 2 payload (encoded by the Rust core)."""
        from secmon._core import FimTree

        columns = self.frame.select(list(FRAME_SCHEMA)).to_dict(as_series=False)
        return bytes(FimTree.from_columns(columns).payload())

    def save(self, path: str | os.PathLike[str], key: bytes | None = None) -> None:
        """Write atomically (format 2): a crash mid-write leaves the old baseline, never a half file."""
        store.write(path, self.header(), self.payload(), key)

    @classmethod
    def load(cls, path: str | os.PathLike[str], key: bytes | None = None) -> Baseline:
        """Read and verify a baseline; any mismatch raises :class:`BaselineIntegrityError`."""
        name = os.fspath(path)
        verified = store.verify(path, key)
        header = verified.header
        frame = frame_of_payload(name, verified.version, verified.payload)
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


def frame_of_payload(name: str, version: int, payload: bytes | memoryview) -> pl.DataFrame:
    """The entries of a verified payload as a frame (format 2 through the Rust core, 1 Parquet)."""
    if version == 1:
        try:
            return pl.read_parquet(io.BytesIO(payload))
        except Exception as exc:  # a verified file that does not parse was written by a broken writer
            raise BaselineIntegrityError(name, f"payload does not parse as Parquet: {exc}") from None
    from secmon._core import FimTree

    try:
        tree = FimTree.decode(bytes(payload))
    except ValueError as exc:
        raise BaselineIntegrityError(name, f"payload does not parse: {exc}") from None
    return pl.DataFrame(tree.columns(), schema=FRAME_SCHEMA)


__all__ = ["FORMAT_VERSION", "MAGIC", "Baseline", "frame_of_payload", "read_key_file"]
