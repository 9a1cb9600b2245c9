"""One FIM scan: resolve paths, walk (native walker or its Python twin), map container roots, add xattrs.

The walker returns host paths; with ``root_dir`` (a container's root filesystem) every path is
reported as seen inside the container (``/etc/passwd``, not ``/var/lib/.../rootfs/etc/passwd``),
so a baseline taken on one copy of a root filesystem can be checked against another.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from secmon.fim import pywalk
from secmon.fim.errors import FimError
from secmon.fim.paths import ScanSpec, exclude_regex, resolve_paths, walker_exclude_globs
from secmon.fim.xattrs import read_xattrs

WalkerChoice = Literal["auto", "native", "python"]

FRAME_SCHEMA: dict[str, pl.DataType] = {
    **pywalk.SCAN_SCHEMA,
    "xattrs": pl.String(),
    "capabilities": pl.String(),
}


def native_scan_tree() -> Any | None:
    """``secmon._core.scan_tree`` when the extension has it, else None."""
    try:
        from secmon import _core
    except ImportError:  # pragma: no cover - the package always ships its core
        return None
    return getattr(_core, "scan_tree", None)


def pick_walker(choice: WalkerChoice = "auto") -> Any:
    """The walker function for ``choice`` (``SECMON_FIM_WALKER=python`` forces the twin)."""
    choice = os.environ.get("SECMON_FIM_WALKER", choice)  # type: ignore[assignment]
    if choice == "python":
        return pywalk.scan_tree
    native = native_scan_tree()
    if native is None:
        if choice == "native":
            raise FimError("the native walker secmon._core.scan_tree is not built into this installation")
        return pywalk.scan_tree
    return native


@dataclass
class ScanResult:
    frame: pl.DataFrame
    notes: list[str] = field(default_factory=list)  # paths skipped, per-entry errors

    @property
    def errors(self) -> pl.DataFrame:
        return self.frame.filter(pl.col("error").is_not_null()).select("path", "type", "error")


def _to_host(frame: pl.DataFrame, root_dir: str) -> pl.DataFrame:
    prefix = os.fsencode(root_dir.rstrip("/"))
    host_bytes = [prefix + (b"" if p == b"/" else p) for p in frame["path_bytes"].to_list()]
    return frame.with_columns(pl.Series("path_bytes", host_bytes, dtype=pl.Binary))


def _to_display(frame: pl.DataFrame, root_dir: str) -> pl.DataFrame:
    prefix = os.fsencode(root_dir.rstrip("/"))
    cut = len(prefix)
    shown = [p[cut:] or b"/" for p in frame["path_bytes"].to_list()]
    return frame.with_columns(
        pl.Series("path_bytes", shown, dtype=pl.Binary),
        pl.Series("path", [p.decode("utf-8", "replace") for p in shown], dtype=pl.String),
    )


def prune_excluded(frame: pl.DataFrame, excludes: Sequence[str]) -> pl.DataFrame:
    """Drop excluded entries and everything under an excluded directory (vectorized in Polars)."""
    regex = exclude_regex(excludes)
    if regex is None:
        return frame
    return frame.filter(~pl.col("path").str.contains(regex))


def scan(spec: ScanSpec, previous: pl.DataFrame | None = None, walker: WalkerChoice = "auto") -> ScanResult:
    """Scan ``spec`` and return the frame in reported-path space, sorted by ``path_bytes``.

    ``previous`` (a baseline frame) lets the walker reuse digests of files whose size, mtime, ctime,
    inode and mode are unchanged instead of reading them again, and xattrs of entries whose inode
    and ctime are unchanged.
    """
    pairs, notes = resolve_paths(spec)
    walk = pick_walker(walker)
    host_roots = [host for _, host in pairs]
    walker_excludes = walker_exclude_globs(spec.excludes, spec.root_dir)
    prev = None
    if previous is not None and previous.height:
        prev = previous.select(pywalk.SCAN_SCHEMA.keys())
        if spec.root_dir:
            prev = _to_host(prev, spec.root_dir)
    if host_roots:
        try:
            frame = walk(
                host_roots,
                algo=spec.algo,
                excludes=walker_excludes,
                follow_symlinks=spec.follow_symlinks,
                previous=prev if spec.algo is not None else None,
                one_file_system=spec.one_file_system,
            )
        except ValueError as exc:  # e.g. blake3 asked of the Python twin without the blake3 package
            raise FimError(f"cannot scan {', '.join(display for display, _ in pairs)}: {exc}") from None
    else:
        frame = pl.DataFrame(schema=pywalk.SCAN_SCHEMA)
    frame = frame.select([pl.col(name).cast(dtype) for name, dtype in pywalk.SCAN_SCHEMA.items()])
    if spec.xattrs:
        frame = _add_xattrs(frame, prev if previous is not None and "xattrs" in previous.columns else None, previous)
    else:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("xattrs"), pl.lit(None, pl.String).alias("capabilities"))
    if spec.root_dir:
        frame = _to_display(frame, spec.root_dir)
    frame = prune_excluded(frame, spec.excludes).unique("path_bytes", keep="first", maintain_order=True)
    frame = frame.sort("path_bytes").select(list(FRAME_SCHEMA))
    errors = frame.filter(pl.col("error").is_not_null())
    for path, error in errors.select("path", "error").iter_rows():
        notes.append(f"{path}: {error}")
    return ScanResult(frame, notes)


def _add_xattrs(frame: pl.DataFrame, prev_host: pl.DataFrame | None, previous: pl.DataFrame | None) -> pl.DataFrame:
    """Add ``xattrs``/``capabilities`` columns, reading only entries that may have changed.

    Setting or removing an xattr updates the inode's ctime, so an entry whose inode and ctime equal
    the previous scan's keeps the previous values without a syscall (like digests in the walker).
    """
    need_read = pl.Series("need", [True] * frame.height, dtype=pl.Boolean)
    reused_x: list[str | None] = [None] * frame.height
    reused_c: list[str | None] = [None] * frame.height
    if prev_host is not None and previous is not None and previous.height:
        old = prev_host.select("path_bytes", pl.col("inode").alias("_pi"), pl.col("ctime_ns").alias("_pc")).with_columns(
            previous["xattrs"].alias("_px"), previous["capabilities"].alias("_pcap")
        )
        joined = frame.select("path_bytes", "inode", "ctime_ns", "mode").join(old, on="path_bytes", how="left", maintain_order="left")
        need_read = ~((joined["_pi"] == joined["inode"]) & (joined["_pc"] == joined["ctime_ns"])).fill_null(False)
        reused_x = joined["_px"].to_list()
        reused_c = joined["_pcap"].to_list()
    xattr_values: list[str | None] = []
    caps: list[str | None] = []
    extra_errors: list[str | None] = []
    for path_b, mode, need, old_x, old_c in zip(
        frame["path_bytes"].to_list(), frame["mode"].to_list(), need_read.to_list(), reused_x, reused_c, strict=True
    ):
        if mode is None:
            xattr_values.append(None)
            caps.append(None)
            extra_errors.append(None)
        elif not need:
            xattr_values.append(old_x)
            caps.append(old_c)
            extra_errors.append(None)
        else:
            value, cap, error = read_xattrs(path_b)
            xattr_values.append(value)
            caps.append(cap)
            extra_errors.append(error)
    return frame.with_columns(
        pl.Series("xattrs", xattr_values, dtype=pl.String),
        pl.Series("capabilities", caps, dtype=pl.String),
        pl.coalesce(pl.col("error"), pl.Series("_xerr", extra_errors, dtype=pl.String)).alias("error"),
    )


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=FRAME_SCHEMA)


__all__ = ["FRAME_SCHEMA", "ScanResult", "ScanSpec", "empty_frame", "pick_walker", "prune_excluded", "scan", "walker_exclude_globs"]
