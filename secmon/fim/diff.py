"""Compare two scans: every changed path exactly once, with the attributes that changed.

:func:`diff_frames` is the fast path (one Polars join, vectorized per-attribute comparisons and
rule selection); :func:`diff_frames_slow` is its obvious twin (dicts and a loop), and the tests
hold them equal on random and adversarial input.

Entries the scan could not see are not guessed about: a path whose ``lstat`` failed (no ``mode``), or that lies
under a directory that could not be listed, is neither "removed" nor "added"; the scan's error
for it is reported instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import polars as pl

from secmon.fim.attributes import ATTRIBUTES
from secmon.fim.change import SNAPSHOT_COLUMNS, Change, snapshot
from secmon.fim.policy import AttributePolicy

# attribute name -> scan column it compares
ATTRIBUTE_COLUMNS: dict[str, str] = {
    "type": "type",
    "content": "digest",
    "mode": "mode",
    "uid": "uid",
    "gid": "gid",
    "size": "size",
    "mtime": "mtime_ns",
    "ctime": "ctime_ns",
    "inode": "inode",
    "target": "target",
    "nlink": "nlink",
    "xattrs": "xattrs",
}
# Reads the first ``size`` bytes of the file at a reported path and returns their digest, or None
# when the file cannot be read; used for growing-log semantics.
PrefixDigest = Callable[[bytes, int], str | None]


def _unknown_paths(frame: pl.DataFrame) -> tuple[set[bytes], list[bytes]]:
    """(paths whose lstat failed, directories that could not be listed) in one scan."""
    failed = set(frame.filter(pl.col("mode").is_null())["path_bytes"].to_list())
    unlisted = frame.filter((pl.col("type") == "dir") & pl.col("error").is_not_null())["path_bytes"].to_list()
    return failed, [p.rstrip(b"/") + b"/" for p in unlisted]


def _is_unknown(path: bytes, failed: set[bytes], unlisted_prefixes: list[bytes]) -> bool:
    return path in failed or any(path.startswith(prefix) for prefix in unlisted_prefixes)


def _resolve_growing(
    change: Change, growing: bool, prefix_digest: PrefixDigest | None, algo_digest_before: str | None
) -> Change:
    """Growing logs: drop "content" when the bytes the baseline saw are still the file's prefix."""
    if not growing or "content" not in change.attributes or prefix_digest is None:
        return change
    before, after = change.before or {}, change.after or {}
    old_size, new_size = before.get("size"), after.get("size")
    if old_size is None or new_size is None or new_size < old_size or algo_digest_before is None:
        return change
    if prefix_digest(change.path_bytes, old_size) != algo_digest_before:
        return change
    return Change(
        change.path,
        change.path_bytes,
        change.change,
        tuple(a for a in change.attributes if a != "content"),
        change.before,
        change.after,
    )


@lru_cache(maxsize=256)
def _compared_columns(attrs: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """(attribute, column) pairs of an attribute set, in reporting order."""
    return tuple((name, ATTRIBUTE_COLUMNS[name]) for name in ATTRIBUTES if name in attrs)


def compare_entry(
    key: bytes,
    b: dict[str, Any],
    a: dict[str, Any],
    policy: AttributePolicy,
    prefix_digest: PrefixDigest | None = None,
) -> Change | None:
    """The change between two states of one path (scan rows as dicts), or None if none is monitored."""
    attrs, growing = policy.select(a["path"], a["type"])
    changed: list[str] = []
    for name, column in _compared_columns(attrs):
        old_value, new_value = b.get(column), a.get(column)
        if name == "content":
            differs = old_value is not None and new_value is not None and old_value != new_value
        else:
            differs = old_value != new_value
        if name == "size" and growing:
            differs = new_value is not None and old_value is not None and new_value < old_value
        if differs:
            changed.append(name)
    if not changed:
        return None
    change = Change(a["path"], key, "modified", tuple(changed), snapshot(b), snapshot(a))
    change = _resolve_growing(change, growing, prefix_digest, b.get("digest"))
    return change if change.attributes else None


def diff_frames_slow(
    before: pl.DataFrame,
    after: pl.DataFrame,
    policy: AttributePolicy,
    prefix_digest: PrefixDigest | None = None,
) -> list[Change]:
    """The obvious twin: rows into dicts, one loop over the union of paths."""
    failed_b, unlisted_b = _unknown_paths(before)
    failed_a, unlisted_a = _unknown_paths(after)
    old = {r["path_bytes"]: r for r in before.iter_rows(named=True) if r["mode"] is not None}
    new = {r["path_bytes"]: r for r in after.iter_rows(named=True) if r["mode"] is not None}
    changes: list[Change] = []
    for key in sorted(old.keys() | new.keys()):
        b, a = old.get(key), new.get(key)
        if b is None and a is not None:
            if _is_unknown(key, failed_b, unlisted_b):
                continue
            changes.append(Change(a["path"], key, "added", (), None, snapshot(a)))
            continue
        if a is None and b is not None:
            if _is_unknown(key, failed_a, unlisted_a):
                continue
            changes.append(Change(b["path"], key, "removed", (), snapshot(b), None))
            continue
        assert a is not None and b is not None
        change = compare_entry(key, b, a, policy, prefix_digest)
        if change is not None:
            changes.append(change)
    return changes


def _rule_index(policy: AttributePolicy) -> pl.Expr:
    expr: Any = None
    for index, rule in enumerate(policy.rules):
        cond = pl.col("_path").str.contains("(?s)" + rule.regex)
        if rule.types is not None:
            cond = cond & pl.col("_type").is_in(sorted(rule.types))
        expr = pl.when(cond).then(pl.lit(index)) if expr is None else expr.when(cond).then(pl.lit(index))
    if expr is None:
        return pl.lit(-1, pl.Int32)
    return expr.otherwise(pl.lit(-1)).cast(pl.Int32)


def _rules_with(policy: AttributePolicy, attribute: str) -> list[int]:
    indices = [i for i, r in enumerate(policy.rules) if attribute in r.attributes]
    if attribute in policy.default_attributes:
        indices.append(-1)
    return indices


def _growing_rules(policy: AttributePolicy) -> list[int]:
    indices = [i for i, r in enumerate(policy.rules) if r.growing]
    if policy.default_growing:
        indices.append(-1)
    return indices


def diff_frames(
    before: pl.DataFrame,
    after: pl.DataFrame,
    policy: AttributePolicy,
    prefix_digest: PrefixDigest | None = None,
) -> list[Change]:
    """Changes from ``before`` to ``after`` under ``policy``, sorted by path bytes (fast path)."""
    columns = ["path_bytes", "path", *SNAPSHOT_COLUMNS]
    b = before.filter(pl.col("mode").is_not_null()).select(columns)
    a = after.filter(pl.col("mode").is_not_null()).select(columns)
    b = b.rename({c: f"b_{c}" for c in columns if c != "path_bytes"}).with_columns(pl.lit(True).alias("_in_b"))
    a = a.rename({c: f"a_{c}" for c in columns if c != "path_bytes"}).with_columns(pl.lit(True).alias("_in_a"))
    joined = b.join(a, on="path_bytes", how="full", coalesce=True).with_columns(
        pl.col("_in_b").fill_null(False),
        pl.col("_in_a").fill_null(False),
        pl.col("a_path").alias("_path"),
        pl.col("a_type").alias("_type"),
    )
    joined = joined.with_columns(_rule_index(policy).alias("_rule"))
    growing = pl.col("_rule").is_in(_growing_rules(policy))
    flags = []
    for name in ATTRIBUTES:
        column = ATTRIBUTE_COLUMNS[name]
        old, new = pl.col(f"b_{column}"), pl.col(f"a_{column}")
        if name == "content":
            differs = old.is_not_null() & new.is_not_null() & (old != new)
        elif name == "size":
            differs = old.ne_missing(new) & (~growing | (new < old))
        else:
            differs = old.ne_missing(new)
        monitored = pl.col("_rule").is_in(_rules_with(policy, name))
        flags.append(pl.when(monitored & differs).then(pl.lit(name)))
    both = pl.col("_in_b") & pl.col("_in_a")
    joined = joined.with_columns(
        pl.when(both).then(pl.concat_list(flags).list.drop_nulls()).otherwise(pl.lit([], pl.List(pl.String))).alias("_attrs"),
        pl.when(~pl.col("_in_b")).then(pl.lit("added")).when(~pl.col("_in_a")).then(pl.lit("removed")).otherwise(pl.lit("modified")).alias("_change"),
        growing.alias("_growing"),
    )
    result = joined.filter(~both | (pl.col("_attrs").list.len() > 0)).sort("path_bytes")
    if result.height == 0:
        return []
    failed_b, unlisted_b = _unknown_paths(before)
    failed_a, unlisted_a = _unknown_paths(after)
    changes: list[Change] = []
    for row in result.iter_rows(named=True):
        key = row["path_bytes"]
        kind = row["_change"]
        b_row = {c: row[f"b_{c}"] for c in SNAPSHOT_COLUMNS}
        a_row = {c: row[f"a_{c}"] for c in SNAPSHOT_COLUMNS}
        if kind == "added":
            if _is_unknown(key, failed_b, unlisted_b):
                continue
            changes.append(Change(row["a_path"], key, "added", (), None, snapshot(a_row)))
        elif kind == "removed":
            if _is_unknown(key, failed_a, unlisted_a):
                continue
            changes.append(Change(row["b_path"], key, "removed", (), snapshot(b_row), None))
        else:
            change = Change(row["a_path"], key, "modified", tuple(row["_attrs"]), snapshot(b_row), snapshot(a_row))
            change = _resolve_growing(change, row["_growing"], prefix_digest, row["b_digest"])
            if change.attributes:
                changes.append(change)
    return changes


def changes_to_json(changes: Iterable[Change]) -> list[dict[str, Any]]:
    return [c.to_json() for c in changes]


__all__ = ["ATTRIBUTE_COLUMNS", "SNAPSHOT_COLUMNS", "Change", "PrefixDigest", "changes_to_json", "compare_entry", "diff_frames", "diff_frames_slow", "snapshot"]
