"""Container images as FIM trees: a ``docker save`` tarball read without extracting it.

Layers are applied in ``manifest.json`` order with OCI/AUFS whiteouts: ``.wh.NAME`` deletes NAME
(and everything under it) from lower layers, ``.wh..wh..opq`` empties its directory of lower-layer
entries. Whiteouts never hide entries of their own layer. Contents are hashed while streaming
each member, so memory does not grow with file size. A tar entry has no inode, link count or
ctime, so those columns are null and image comparisons use :data:`IMAGE_ATTRIBUTES`.
"""

from __future__ import annotations

import json
import posixpath
import stat
import tarfile
from typing import IO, Any

import polars as pl

from secmon.fim import pywalk
from secmon.fim.errors import ImageError
from secmon.fim.globs import ExcludeMatcher
from secmon.fim.scan import FRAME_SCHEMA
from secmon.fim.xattrs import _show, decode_capability

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

_TYPE_BITS = {
    tarfile.REGTYPE: (stat.S_IFREG, "file"),
    tarfile.AREGTYPE: (stat.S_IFREG, "file"),
    tarfile.CONTTYPE: (stat.S_IFREG, "file"),
    tarfile.DIRTYPE: (stat.S_IFDIR, "dir"),
    tarfile.SYMTYPE: (stat.S_IFLNK, "symlink"),
    tarfile.FIFOTYPE: (stat.S_IFIFO, "fifo"),
    tarfile.CHRTYPE: (stat.S_IFCHR, "char_device"),
    tarfile.BLKTYPE: (stat.S_IFBLK, "block_device"),
}


def _normalize(name: str, image: str, layer: str) -> str:
    depth = 0
    for part in name.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise ImageError(f"{image}: layer {layer}: member {name!r} escapes the root filesystem")
        elif part not in ("", "."):
            depth += 1
    path = posixpath.normpath("/" + name.lstrip("/"))
    return path[1:] if path.startswith("//") else path


def _hash_member(tar: tarfile.TarFile, member: tarfile.TarInfo, algo: str | None) -> str | None:
    if algo is None:
        return None
    hasher = pywalk.new_hasher(algo)
    fh = tar.extractfile(member)
    if fh is None:
        return None
    while chunk := fh.read(pywalk.CHUNK_BYTES):
        hasher.update(chunk)
    return str(hasher.hexdigest())


def _xattrs(member: tarfile.TarInfo) -> tuple[str | None, str | None]:
    values: dict[str, str] = {}
    capabilities = None
    for key, value in member.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr.") :]
        raw = value.encode("utf-8", "surrogateescape")
        values[name] = _show(raw)
        if name == "security.capability":
            try:
                capabilities = decode_capability(raw)
            except ValueError as exc:
                capabilities = f"undecodable: {exc}"
    if not values:
        return None, None
    return json.dumps(values, sort_keys=True, ensure_ascii=False), capabilities


def _entry(member: tarfile.TarInfo, path: str, digest: str | None, size: int) -> dict[str, Any]:
    type_bits, kind = _TYPE_BITS.get(member.type, (0, "unknown"))
    xattrs, caps = _xattrs(member)
    target = member.linkname if member.type == tarfile.SYMTYPE else None
    if kind == "symlink":
        size = len(member.linkname.encode("utf-8", "surrogateescape"))
    elif kind != "file":
        size = 0
    return {
        "path": path,
        "type": kind,
        "size": size,
        "mode": type_bits | (member.mode & 0o7777),
        "uid": member.uid,
        "gid": member.gid,
        "mtime_ns": int(round(float(member.mtime) * 1_000_000_000)),
        "target": target,
        "digest": digest,
        "xattrs": xattrs,
        "capabilities": caps,
    }


def _open_layer(outer: tarfile.TarFile, name: str, image: str) -> tarfile.TarFile:
    try:
        member = outer.getmember(name)
    except KeyError:
        raise ImageError(f"{image}: manifest.json lists layer {name!r}, which is not in the tarball") from None
    fh: IO[bytes] | None = outer.extractfile(member)
    if fh is None:
        raise ImageError(f"{image}: layer {name!r} is not a regular file in the tarball")
    try:
        return tarfile.open(fileobj=fh, mode="r:*")  # plain or gzip-compressed (OCI) layers
    except tarfile.TarError as exc:
        raise ImageError(f"{image}: layer {name!r} is not a tar archive: {exc}") from None


def _apply_layer(state: dict[str, dict[str, Any]], layer: tarfile.TarFile, layer_name: str, image: str, algo: str | None) -> None:
    own: dict[str, dict[str, Any]] = {}
    deleted: list[str] = []
    opaque: list[str] = []
    for member in layer:
        path = _normalize(member.name, image, layer_name)
        directory, _, base = path.rpartition("/")
        directory = directory or "/"
        if base == OPAQUE_MARKER:
            opaque.append(directory)
            continue
        if base.startswith(WHITEOUT_PREFIX):
            deleted.append(posixpath.join(directory, base[len(WHITEOUT_PREFIX) :]))
            continue
        if member.type == tarfile.LNKTYPE:
            # A hard link shares its target's content (the target is in this layer or below).
            source = _normalize(member.linkname, image, layer_name)
            origin = own.get(source) or state.get(source)
            if origin is None:
                raise ImageError(f"{image}: layer {layer_name}: hard link {member.name!r} points at missing {member.linkname!r}")
            entry = _entry(member, path, origin["digest"], origin["size"])
            entry.update(type="file", size=origin["size"], mode=stat.S_IFREG | (member.mode & 0o7777))
            own[path] = entry
            continue
        digest = _hash_member(layer, member, algo) if member.isreg() else None
        own[path] = _entry(member, path, digest, member.size)
    for directory in opaque:
        prefix = directory.rstrip("/") + "/"
        for path in [p for p in state if p.startswith(prefix)]:
            del state[path]
    for gone in deleted:
        prefix = gone.rstrip("/") + "/"
        state.pop(gone, None)
        for path in [p for p in state if p.startswith(prefix)]:
            del state[path]
    state.update(own)


def scan_image(tar_path: str, *, algo: str | None = "sha256", excludes: tuple[str, ...] = ()) -> pl.DataFrame:
    """The merged root filesystem of a ``docker save`` tarball, as a FIM frame."""
    try:
        outer = tarfile.open(tar_path, mode="r:*")
    except FileNotFoundError:
        raise
    except (tarfile.TarError, OSError) as exc:
        raise ImageError(f"{tar_path}: not a tar archive: {exc}") from None
    with outer:
        try:
            manifest_member = outer.extractfile("manifest.json")
        except KeyError:
            raise ImageError(f"{tar_path}: no manifest.json; expected the output of `docker save`") from None
        if manifest_member is None:
            raise ImageError(f"{tar_path}: manifest.json is not a regular file")
        try:
            manifest = json.loads(manifest_member.read())
        except ValueError as exc:
            raise ImageError(f"{tar_path}: manifest.json is not JSON: {exc}") from None
        if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0].get("Layers"), list):
            raise ImageError(f"{tar_path}: manifest.json must describe exactly one image with a Layers list")
        state: dict[str, dict[str, Any]] = {}
        for layer_name in manifest[0]["Layers"]:
            with _open_layer(outer, layer_name, tar_path) as layer:
                _apply_layer(state, layer, layer_name, tar_path, algo)
    if "/" not in state:
        state["/"] = {"path": "/", "type": "dir", "size": 0, "mode": stat.S_IFDIR | 0o755, "uid": 0, "gid": 0, "mtime_ns": 0}
    exclude = ExcludeMatcher(list(excludes))
    rows = [entry for path, entry in state.items() if not exclude.excluded(path)]  # pruned again below
    columns: dict[str, list[Any]] = {name: [] for name in FRAME_SCHEMA}
    for entry in rows:
        raw = entry["path"].encode("utf-8", "surrogateescape")
        for name in FRAME_SCHEMA:
            if name == "path_bytes":
                columns[name].append(raw)
            elif name == "path":
                columns[name].append(raw.decode("utf-8", "replace"))
            elif name == "target" and entry.get("target") is not None:
                columns[name].append(entry["target"].encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            else:
                columns[name].append(entry.get(name))
    frame = pl.DataFrame(columns, schema=FRAME_SCHEMA)
    from secmon.fim.scan import prune_excluded

    return prune_excluded(frame, excludes).sort("path_bytes")


def comparable_with_image(frame: pl.DataFrame) -> pl.DataFrame:
    """What survives from a tar header to an unpacked tree: whole-second mtimes of files.

    Applied to both sides when an image is compared with a filesystem baseline, so a root
    filesystem unpacked from an image does not differ from it in every entry. Directories lose
    their size (a filesystem's, not the tar's) and their mtime (unpacking writes into a directory
    after its own header, and whiteouts delete from it, so its mtime never survives); symlinks
    lose their mtime (extractors cannot set it without lutimes) and their permission bits.
    """
    is_dir = pl.col("type") == "dir"
    is_link = pl.col("type") == "symlink"
    return frame.with_columns(
        pl.when(is_dir | is_link)
        .then(pl.lit(0, pl.Int64))
        .otherwise((pl.col("mtime_ns") // 1_000_000_000) * 1_000_000_000)
        .alias("mtime_ns"),
        pl.when(is_dir).then(pl.lit(0, pl.UInt64)).otherwise(pl.col("size")).alias("size"),
        # Linux symlinks are always 0777; a tar header may say otherwise.
        pl.when(is_link).then(pl.lit(stat.S_IFLNK | 0o777, pl.UInt32)).otherwise(pl.col("mode")).alias("mode"),
    )

