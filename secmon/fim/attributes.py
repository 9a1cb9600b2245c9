"""What FIM compares: attribute names and the AIDE-style presets of attribute sets.

A path is checked under exactly one attribute set (the first config rule that matches it, else the
default). ``growing_log`` is special: the file may grow, but it may not shrink and the bytes the
baseline saw (its first ``size`` bytes) must be unchanged, which catches an attacker rewriting old
log lines while the log keeps being appended to.
"""

from __future__ import annotations

HASH_ALGORITHMS: tuple[str, ...] = ("sha256", "blake3", "xxh3_128", "sha1", "md5")

# Order is the order attributes are listed in a change.
ATTRIBUTES: tuple[str, ...] = (
    "type",
    "content",
    "mode",
    "uid",
    "gid",
    "size",
    "mtime",
    "ctime",
    "inode",
    "target",
    "nlink",
    "xattrs",
)

# What a tar entry can say about a file: no inode, link count or ctime in an image layer.
IMAGE_ATTRIBUTES: frozenset[str] = frozenset({"type", "content", "mode", "uid", "gid", "size", "mtime", "target", "xattrs"})

PRESETS: dict[str, frozenset[str]] = {
    # Everything (the default, like AIDE's R + sha256 + xattrs).
    "full": frozenset(ATTRIBUTES),
    # System binaries and config: content and ownership/permissions; times are noise after updates.
    "binaries": frozenset({"type", "content", "mode", "uid", "gid", "size", "inode", "target", "xattrs"}),
    # Logs and spool files: who may read/write them, not what they contain.
    "permissions": frozenset({"type", "mode", "uid", "gid", "target", "xattrs"}),
    # Appended-to logs: permissions plus "size may only grow, old bytes unchanged".
    "growing_log": frozenset({"type", "mode", "uid", "gid", "target", "xattrs", "size", "content"}),
    # Directories: their mtime/size/nlink change whenever an entry is added, so watch ownership only.
    "directories": frozenset({"type", "mode", "uid", "gid", "inode", "target", "xattrs"}),
}
GROWING_PRESET = "growing_log"


def parse_attribute_set(value: str | list[str]) -> tuple[frozenset[str], bool]:
    """A preset name or a list of attribute names -> (attributes, growing). Raises ValueError."""
    if isinstance(value, str):
        if value in PRESETS:
            return PRESETS[value], value == GROWING_PRESET
        raise ValueError(f"unknown attribute preset {value!r}; valid presets: {', '.join(PRESETS)}")
    names = list(value)
    unknown = [n for n in names if n not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"unknown attribute(s) {', '.join(map(repr, unknown))}; valid: {', '.join(ATTRIBUTES)}")
    # A type change (a directory replaced by a file) is always worth reporting.
    return frozenset(names) | {"type"}, False
