"""Baseline and check, the two batch operations, as plain functions the CLI and users call."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import polars as pl

from secmon.fim import pywalk
from secmon.fim.attributes import IMAGE_ATTRIBUTES
from secmon.fim.baseline import Baseline
from secmon.fim.config import FimConfig, default_config
from secmon.fim.diff import Change, PrefixDigest, diff_frames
from secmon.fim.scan import ScanSpec, WalkerChoice, scan


def create_baseline(
    config: FimConfig,
    *,
    root_dir: str | None = None,
    missing_ok: bool = False,
    walker: WalkerChoice = "auto",
) -> tuple[Baseline, list[str]]:
    """Scan what ``config`` names and return the baseline plus notes (skipped paths, unreadable entries)."""
    spec = ScanSpec(
        paths=tuple(config.paths),
        algo=config.hash,
        excludes=tuple(config.exclude),
        root_dir=root_dir,
        xattrs=config.xattrs,
        follow_symlinks=config.follow_symlinks,
        one_file_system=config.one_file_system,
        missing_ok=missing_ok,
    )
    result = scan(spec, walker=walker)
    baseline = Baseline(
        frame=result.frame,
        algo=config.hash,
        paths=list(config.paths),
        excludes=list(config.exclude),
        policy=config.policy(),
        xattrs=config.xattrs,
        root_dir=root_dir,
        follow_symlinks=config.follow_symlinks,
        one_file_system=config.one_file_system,
    )
    return baseline, result.notes


def default_baseline_config() -> FimConfig:
    return default_config()


def prefix_reader(root_dir: str | None, algo: str | None) -> PrefixDigest | None:
    """Digest of the first ``size`` bytes of a reported path (growing-log check)."""
    if algo is None:
        return None
    prefix = os.fsencode(root_dir.rstrip("/")) if root_dir else b""

    def read(path_bytes: bytes, size: int) -> str | None:
        hasher = pywalk.new_hasher(algo)
        host = prefix + path_bytes if prefix else path_bytes
        try:
            with open(host, "rb", buffering=0) as fh:
                remaining = size
                while remaining > 0:
                    chunk = fh.read(min(remaining, pywalk.CHUNK_BYTES))
                    if not chunk:
                        return None
                    hasher.update(chunk)
                    remaining -= len(chunk)
        except OSError:
            return None
        return str(hasher.hexdigest())

    return read


@dataclass
class CheckResult:
    changes: list[Change]
    current: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def check_baseline(
    baseline: Baseline,
    *,
    root_dir: str | None = None,
    full_rehash: bool = False,
    walker: WalkerChoice = "auto",
) -> CheckResult:
    """Scan the same paths again and diff against ``baseline``.

    Unless ``full_rehash``, files whose size, mtime, ctime, inode and mode are unchanged keep their
    recorded digest without being read (ctime cannot be set back from user space, so a content
    change with a restored mtime is still read and caught).
    """
    root = root_dir if root_dir is not None else baseline.root_dir
    spec = ScanSpec(
        paths=tuple(baseline.paths),
        algo=baseline.algo,
        excludes=tuple(baseline.excludes),
        root_dir=root,
        xattrs=baseline.xattrs,
        follow_symlinks=baseline.follow_symlinks,
        one_file_system=baseline.one_file_system,
        missing_ok=True,
    )
    # A recorded path that is now missing shows up as removed entries, not as an error.
    result = scan(spec, previous=None if full_rehash else baseline.frame, walker=walker)
    policy = baseline.policy
    if baseline.source == "image":
        policy = policy.restricted_to(IMAGE_ATTRIBUTES)
    if root_dir is not None and root_dir != baseline.root_dir:
        # Another copy of a root filesystem: inode numbers, link counts and ctimes are its own.
        policy = policy.restricted_to(IMAGE_ATTRIBUTES)
    changes = diff_frames(baseline.frame, result.frame, policy, prefix_reader(root, baseline.algo))
    notes = [n for n in result.notes if not n.endswith("not present, skipped")]
    return CheckResult(changes, result.frame, notes)
