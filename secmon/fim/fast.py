"""The fast path of ``secmon fim baseline`` and ``secmon fim check``: the whole job in the Rust core.

Why: measured on /usr/share (47k files, 0.6 GB), most of a command's time was not the walk but
the process around it: importing Polars (~0.2 s) and pydantic, xattrs read one file at a time in
Python, Parquet written and read back through Polars, and the diff joined in Polars. Here Python
only parses arguments, resolves the paths, verifies/writes the baseline file and prints; one call
into ``secmon._core`` walks, hashes, reads xattrs (all cores), and another diffs the trees. The
baseline's rows cross the boundary once, as the format 2 payload bytes.

The Polars pipeline (``secmon.fim.check``, ``scan``, ``diff``) stays as the slow twin: the CLI uses
it for ``--walker python|native``, ``SECMON_FIM_WALKER``, docker images and format 1 baselines, and
the tests hold both paths equal on random trees and mutations.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from secmon.fim import store
from secmon.fim.attributes import IMAGE_ATTRIBUTES
from secmon.fim.errors import BaselineIntegrityError, FimError
from secmon.fim.globs import glob_to_regex
from secmon.fim.paths import ScanSpec, exclude_regex, resolve_paths, walker_exclude_globs
from secmon.fim.policy import AttributePolicy

if TYPE_CHECKING:
    from secmon._core import FimTree
    from secmon.fim.change import Change
    from secmon.fim.config import FimConfig


def enabled(args: argparse.Namespace) -> bool:
    """Whether this command runs on the fast path (the default) rather than the Polars pipeline."""
    chosen = os.environ.get("SECMON_FIM_WALKER", getattr(args, "walker", "auto"))
    return chosen == "auto" and not getattr(args, "image_tar", None)


class Settings(NamedTuple):
    """The effective settings of a ``fim baseline`` run (a validated config plus the arguments)."""

    paths: list[str]
    algo: str | None
    excludes: list[str]
    policy: AttributePolicy
    xattrs: bool = True
    follow_symlinks: bool = False
    one_file_system: bool = False
    missing_ok: bool = False

    @classmethod
    def of_config(cls, config: FimConfig, missing_ok: bool) -> Settings:
        return cls(list(config.paths), config.hash, list(config.exclude), config.policy(), config.xattrs,
                   config.follow_symlinks, config.one_file_system, missing_ok)  # fmt: skip


class _Rule(NamedTuple):
    match: str
    attributes: str | list[str]
    types: list[str] | None


def light_settings(args: argparse.Namespace) -> Settings | None:
    """The settings without pydantic, when there is no --config and every value is plainly valid.

    None means "let the validating path decide" (it also produces the error messages), so this
    never accepts what ``secmon.fim.config`` would refuse. A test holds the two equal.
    """
    from secmon.fim.defaults import DEFAULT_CONFIG

    if args.config:
        return None
    base: dict[str, Any] = {} if args.paths else DEFAULT_CONFIG
    paths = list(args.paths) if args.paths else list(base["paths"])
    if args.hash:
        algo = None if args.hash == "none" else args.hash
    else:
        algo = base.get("hash", "sha256")
    excludes = [*base.get("exclude", []), *args.exclude]
    if not paths or any(not p.startswith("/") for p in paths):
        return None
    try:
        for pattern in excludes:
            glob_to_regex(pattern)
    except ValueError:
        return None
    rules = [_Rule(r["match"], r["attributes"], r.get("types")) for r in base.get("rules", [])]
    policy = AttributePolicy.from_specs(rules, base.get("default_attributes", "full"))
    return Settings(paths, algo, excludes, policy, missing_ok=not args.paths)


def settings_from_args(args: argparse.Namespace) -> Settings:
    light = light_settings(args)
    if light is not None:
        return light
    from secmon.fim.cli import _config_from_args

    config, missing_ok = _config_from_args(args)
    return Settings.of_config(config, missing_ok)


def scan(spec: ScanSpec, previous: FimTree | None = None, reuse: bool = True) -> tuple[FimTree, list[str]]:
    """Scan ``spec`` in the Rust core; the tree and the notes (absent paths, per-entry errors)."""
    from secmon._core import fim_scan

    pairs, notes = resolve_paths(spec)
    root_prefix = os.fsencode(spec.root_dir.rstrip("/")) if spec.root_dir else None
    try:
        tree = fim_scan(
            [os.fsencode(host) for _, host in pairs],
            root_prefix=root_prefix,
            algo=spec.algo,
            walker_excludes=walker_exclude_globs(spec.excludes, spec.root_dir),
            exclude_regex=exclude_regex(spec.excludes),
            xattrs=spec.xattrs,
            follow_symlinks=spec.follow_symlinks,
            one_file_system=spec.one_file_system,
            previous=previous,
            reuse_digests=reuse,
            reuse_xattrs=reuse,
        )
    except ValueError as exc:
        raise FimError(f"cannot scan {', '.join(display for display, _ in pairs)}: {exc}") from None
    notes.extend(f"{path}: {error}" for path, error in tree.errors())
    return tree, notes


def diff(before: FimTree, after: FimTree, policy: AttributePolicy, root_dir: str | None, algo: str | None) -> list[Change]:
    """Changes from ``before`` to ``after`` (the Rust diff), as the :class:`Change` objects users see."""
    raw = before.diff(
        after,
        rules=[(r.regex, sorted(r.types) if r.types else None, sorted(r.attributes), r.growing) for r in policy.rules],
        default_attributes=sorted(policy.default_attributes),
        default_growing=policy.default_growing,
        root_prefix=os.fsencode(root_dir.rstrip("/")) if root_dir else None,
        algo=algo,
    )
    if not raw:
        return []
    # Only a check that found changes pays for importing the report code (dataclasses, datetime).
    from secmon.fim.change import SNAPSHOT_COLUMNS, Change, snapshot

    return [
        Change(
            path, path_bytes, kind, tuple(attributes),
            snapshot(dict(zip(SNAPSHOT_COLUMNS, b, strict=True))) if b is not None else None,
            snapshot(dict(zip(SNAPSHOT_COLUMNS, a, strict=True))) if a is not None else None,
        )  # fmt: skip
        for kind, path, path_bytes, attributes, b, a in raw
    ]


def _print_notes(notes: list[str]) -> None:
    from secmon.fim.cli import _print_notes as print_notes

    print_notes(notes)


def run_baseline(args: argparse.Namespace) -> int:
    from secmon.fim.cli import EXIT_OK

    started = time.perf_counter()
    key = store.read_key_file(args.key_file) if args.key_file else None
    settings = settings_from_args(args)
    spec = ScanSpec(
        paths=tuple(settings.paths),
        algo=settings.algo,
        excludes=tuple(settings.excludes),
        root_dir=args.root,
        xattrs=settings.xattrs,
        follow_symlinks=settings.follow_symlinks,
        one_file_system=settings.one_file_system,
        missing_ok=settings.missing_ok,
    )
    tree, notes = scan(spec)
    header = store.header_dict(
        created=store.utc_created(), host=store.hostname(), source="filesystem", algo=settings.algo,
        paths=settings.paths, excludes=settings.excludes, root_dir=args.root, xattrs=settings.xattrs,
        follow_symlinks=settings.follow_symlinks, one_file_system=settings.one_file_system,
        policy=settings.policy.to_json(), entries=len(tree),
    )  # fmt: skip
    store.write(args.db, header, tree, key)
    _print_notes(notes)
    summary = ", ".join(f"{n} {t or 'unreadable'}" for t, n in tree.type_counts())
    print(
        f"baseline {args.db}: {len(tree)} entries ({summary}) in {time.perf_counter() - started:.2f} s"
        + (f"; {len(notes)} note(s) on stderr" if notes else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int | None:
    """Check on the fast path; None when this baseline needs the Polars pipeline (format 1, images)."""
    from secmon._core import FimTree
    from secmon.fim.cli import EXIT_CHANGES, EXIT_OK, emit_changes

    key = store.read_key_file(args.key_file) if args.key_file else None
    verified = store.verify(args.db, key)
    header = verified.header
    if verified.version != 2 or header.get("source", "filesystem") != "filesystem":
        return None
    try:
        before = FimTree.decode(bytes(verified.payload))
    except ValueError as exc:
        raise BaselineIntegrityError(args.db, f"payload does not parse: {exc}") from None
    recorded_policy = AttributePolicy.from_json(header["policy"])
    policy = recorded_policy
    recorded_root = header.get("root_dir")
    root = args.root if args.root is not None else recorded_root
    if args.root is not None and args.root != recorded_root:
        # Another copy of a root filesystem: inode numbers, link counts and ctimes are its own.
        policy = policy.restricted_to(IMAGE_ATTRIBUTES)
    spec = ScanSpec(
        paths=tuple(header["paths"]),
        algo=header["algo"],
        excludes=tuple(header["excludes"]),
        root_dir=root,
        xattrs=bool(header["xattrs"]),
        follow_symlinks=bool(header.get("follow_symlinks", False)),
        one_file_system=bool(header.get("one_file_system", False)),
        missing_ok=True,  # a recorded path that is now missing shows up as removed entries
    )
    after, notes = scan(spec, previous=before, reuse=not args.full_rehash)
    changes = diff(before, after, policy, root, header["algo"])
    emit_changes(changes, args.format)
    _print_notes([n for n in notes if not n.endswith("not present, skipped")])
    if args.update:
        updated = store.header_dict(
            created=store.utc_created(), host=store.hostname(), source="filesystem", algo=header["algo"],
            paths=list(header["paths"]), excludes=list(header["excludes"]), root_dir=args.root or recorded_root,
            xattrs=spec.xattrs, follow_symlinks=spec.follow_symlinks, one_file_system=spec.one_file_system,
            policy=recorded_policy.to_json(), entries=len(after),
        )  # fmt: skip
        store.write(args.db, updated, after, key)
        print(f"baseline {args.db} updated ({len(after)} entries)", file=sys.stderr)
    return EXIT_CHANGES if changes and args.fail_on_change else EXIT_OK
