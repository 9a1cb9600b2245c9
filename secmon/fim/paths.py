"""What a scan covers: the spec, its paths resolved to (reported, host) pairs, and its excludes.

Free of Polars so the fast command path (``secmon.fim.fast``) and the Polars pipeline
(``secmon.fim.scan``) share one answer to "which paths, which excludes".
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import NamedTuple

from secmon.fim.errors import FimError
from secmon.fim.globs import glob_to_regex, matches_whole_path


class ScanSpec(NamedTuple):
    """What to scan and how. ``paths`` are as reported (inside ``root_dir`` when it is set).

    A NamedTuple, not a dataclass: importing dataclasses (and inspect) was a visible share of a
    `secmon fim check` start-up."""

    paths: tuple[str, ...]
    algo: str | None = "sha256"
    excludes: tuple[str, ...] = ()
    root_dir: str | None = None
    xattrs: bool = True
    follow_symlinks: bool = False
    one_file_system: bool = False
    missing_ok: bool = False  # the built-in default list names paths many hosts do not have


def _host(root_dir: str | None, display: str) -> str:
    if root_dir is None:
        return display
    return os.path.join(root_dir, display.lstrip("/")).rstrip("/") or "/"


def _escape_glob(text: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def resolve_paths(spec: ScanSpec) -> tuple[list[tuple[str, str]], list[str]]:
    """(display path, host path) pairs, globs expanded; and notes about default paths that are absent."""
    pairs: list[tuple[str, str]] = []
    notes: list[str] = []
    for display in spec.paths:
        if not display.startswith("/"):
            raise FimError(f"path {display!r} must be absolute (inside the root filesystem when --root is set)")
        host = _host(spec.root_dir, display)
        if any(ch in display for ch in "*?["):
            root_prefix = _escape_glob(spec.root_dir.rstrip("/")) if spec.root_dir else ""
            found = sorted(glob.glob(root_prefix + display))
            if not found:
                notes.append(f"{display}: no match")
            for match in found:
                shown = match[len(spec.root_dir.rstrip("/")) :] if spec.root_dir else match
                pairs.append((shown or "/", match))
            continue
        if not os.path.lexists(host):
            if spec.missing_ok:
                notes.append(f"{display}: not present, skipped")
                continue
            where = f" (as {host})" if spec.root_dir else ""
            raise FimError(f"path {display}{where} does not exist")
        pairs.append((display.rstrip("/") or "/", host))
    return pairs, notes


def walker_exclude_globs(excludes: Sequence[str], root_dir: str | None = None) -> list[str]:
    """The excludes the walker can apply itself, rewritten to its full-path glob dialect.

    The core matches globs against the whole path with ``*`` crossing ``/``. Only patterns whose
    meaning is the same there are handed down (so excluded trees are never walked); every pattern
    is applied again by :func:`prune_excluded` in secmon's own dialect, which is what counts.
    """
    out: list[str] = []
    prefix = _escape_glob(root_dir.rstrip("/")) if root_dir else ""
    for pattern in excludes:
        wild = any(ch in pattern for ch in "?[]{}\\")
        if matches_whole_path(pattern):
            single_star = pattern.replace("**", "").count("*") > 0
            if not wild and not single_star:
                out.append(prefix + pattern)
        elif not wild and "*" not in pattern:
            out.append("**/" + pattern)
        elif not wild and pattern.startswith("*") and "*" not in pattern[1:]:
            out.append(pattern)  # "*.swp": a path ends in .swp exactly when its last component does
    return out


def exclude_regex(excludes: Sequence[str]) -> str | None:
    """One regex over the reported path that matches excluded entries and everything under an
    excluded directory, in a dialect both Python's ``re`` and Rust's ``regex`` read the same."""
    if not excludes:
        return None
    parts = []
    for pattern in excludes:
        body = glob_to_regex(pattern)[1:-1]
        if matches_whole_path(pattern):
            parts.append(f"^(?:{body})(?:/.*)?$")
        else:
            parts.append(f"(?:^|/)(?:{body})(?:/|$)")
    return "(?s)" + "|".join(f"(?:{p})" for p in parts)


__all__ = ["ScanSpec", "exclude_regex", "resolve_paths", "walker_exclude_globs"]
