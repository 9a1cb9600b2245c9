"""``secmon fim baseline|check|watch``: the command-line face of file integrity monitoring."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from secmon.fim.attributes import HASH_ALGORITHMS, IMAGE_ATTRIBUTES
from secmon.fim.errors import FimError

if TYPE_CHECKING:
    from secmon.fim.config import FimConfig
    from secmon.fim.diff import Change

# Building the parser must stay cheap (every `secmon` invocation builds all command groups), so
# Polars, pydantic and the scan code are imported by the handlers that need them. `baseline` and
# `check` run on the fast path (secmon.fim.fast: the Rust core, no Polars) unless --walker or
# SECMON_FIM_WALKER picks the Polars pipeline, their slow twin.

EXIT_OK = 0
EXIT_CHANGES = 1


def add_parser(subparsers: Any) -> None:
    fim = subparsers.add_parser("fim", help="file integrity monitoring: baseline, check, watch")
    commands = fim.add_subparsers(dest="fim_command", metavar="COMMAND")
    fim.set_defaults(func=lambda args: (fim.print_help(sys.stderr), 2)[1])

    base = commands.add_parser("baseline", help="record every file, directory and link under PATH...")
    base.add_argument("paths", nargs="*", metavar="PATH", help="absolute paths (default: the config's, else the built-in set)")
    base.add_argument("--db", required=True, help="baseline file to write")
    base.add_argument("--hash", choices=[*HASH_ALGORITHMS, "none"], help="content digest (default sha256)")
    base.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths (repeatable)")
    base.add_argument("--config", help="YAML config: paths, excludes, per-path attribute rules")
    base.add_argument("--root", help="scan this container root filesystem; paths are reported as inside it")
    base.add_argument("--image-tar", help="record the merged filesystem of a `docker save` tarball instead")
    base.add_argument("--key-file", help="sign the baseline with HMAC-SHA256 under this key")
    base.add_argument("--walker", choices=["auto", "native", "python"], default="auto", help=argparse.SUPPRESS)
    base.set_defaults(func=run_baseline)

    check = commands.add_parser("check", help="compare the tree now with the baseline")
    check.add_argument("--db", required=True, help="baseline file to compare with")
    check.add_argument("--format", choices=["table", "json", "events"], default="table",
                       help="table, a JSON array of changes, or one FIM event per line (ndjson)")  # fmt: skip
    check.add_argument("--update", action="store_true", help="make the current state the new baseline")
    check.add_argument("--key-file", help="HMAC key the baseline was signed with (and to sign an --update)")
    check.add_argument("--root", help="check this root filesystem (e.g. another container) instead")
    check.add_argument("--image-tar", help="check a `docker save` tarball against the baseline")
    check.add_argument("--fail-on-change", action="store_true", help="exit 1 when anything changed")
    check.add_argument("--full-rehash", action="store_true", help="read every file again, even if its metadata is unchanged")
    check.add_argument("--walker", choices=["auto", "native", "python"], default="auto", help=argparse.SUPPRESS)
    check.set_defaults(func=run_check)

    watch = commands.add_parser("watch", help="report changes in real time (inotify)")
    watch.add_argument("paths", nargs="*", metavar="PATH", help="paths to watch (default: the baseline's)")
    watch.add_argument("--db", required=True, help="baseline to start from (created when missing)")
    watch.add_argument("--config", help="YAML config used when the baseline is created")
    watch.add_argument("--key-file", help="HMAC key of the baseline")
    watch.add_argument("--format", choices=["table", "json"], default="json", help="json: one FIM event per line")
    watch.add_argument("--coalesce-ms", type=float, default=20.0, help="wait this long for a burst to settle (default 20)")
    watch.add_argument("--duration", type=float, help="stop after this many seconds (default: until interrupted)")
    watch.add_argument("--update", action="store_true", help="write the watched state back to --db on exit")
    watch.set_defaults(func=run_watch)


def _config_from_args(args: argparse.Namespace) -> tuple[FimConfig, bool]:
    """The effective config and whether absent paths may be skipped: those of the built-in set and
    of a config file (one config serves hosts that lack some of its paths, and a watched path such
    as ``/etc/ld.so.preload`` often does not exist yet: it is a note, and once created the check
    reports it added); a path typed on the command line must exist (a typo is an error)."""
    from secmon.fim.config import default_config, load_config, parse_config

    if args.config:
        config = load_config(args.config)
        missing_ok = not args.paths
    elif args.paths or getattr(args, "image_tar", None):
        config = parse_config({}, "<command line>")
        missing_ok = False
    else:
        config = default_config()
        missing_ok = True
    updates: dict[str, Any] = {}
    if args.paths:
        updates["paths"] = list(args.paths)
    if getattr(args, "hash", None):
        updates["hash"] = None if args.hash == "none" else args.hash
    if getattr(args, "exclude", None):
        updates["exclude"] = [*config.exclude, *args.exclude]
    if updates:
        config = parse_config({**config.model_dump(), **updates}, args.config or "<command line>")
    if not config.paths and not getattr(args, "image_tar", None):
        raise FimError("no paths to scan: give PATH... or a --config with paths")
    return config, missing_ok


def _key(args: argparse.Namespace) -> bytes | None:
    from secmon.fim.store import read_key_file

    return read_key_file(args.key_file) if args.key_file else None


def _print_notes(notes: list[str], limit: int = 50) -> None:
    for note in notes[:limit]:
        print(f"secmon fim: note: {note}", file=sys.stderr)
    if len(notes) > limit:
        print(f"secmon fim: note: ... and {len(notes) - limit} more", file=sys.stderr)


def run_baseline(args: argparse.Namespace) -> int:
    from secmon.fim import fast

    if fast.enabled(args):
        return fast.run_baseline(args)
    from secmon.fim.baseline import Baseline
    from secmon.fim.check import create_baseline

    started = time.perf_counter()
    key = _key(args)
    config, missing_ok = _config_from_args(args)
    if args.image_tar:
        from secmon.fim.image import scan_image

        frame = scan_image(args.image_tar, algo=config.hash, excludes=tuple(config.exclude))
        baseline = Baseline(frame, config.hash, ["/"], list(config.exclude), config.policy(), source="image")
        notes: list[str] = []
    else:
        baseline, notes = create_baseline(config, root_dir=args.root, missing_ok=missing_ok, walker=args.walker)
    baseline.save(args.db, key)
    _print_notes(notes)
    counts = baseline.frame["type"].value_counts().sort("type").iter_rows()
    summary = ", ".join(f"{n} {t or 'unreadable'}" for t, n in counts)
    print(
        f"baseline {args.db}: {baseline.frame.height} entries ({summary}) in {time.perf_counter() - started:.2f} s"
        + (f"; {len(notes)} note(s) on stderr" if notes else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def _table(changes: list[Change]) -> str:
    if not changes:
        return "no changes"
    width = max(len(c.change) for c in changes)
    lines = [f"{'CHANGE':<{width}}  PATH  ATTRIBUTES"]
    for c in changes:
        lines.append(f"{c.change:<{width}}  {c.path}  {','.join(c.attributes)}")
    counts = {k: sum(1 for c in changes if c.change == k) for k in ("added", "removed", "modified")}
    lines.append(f"{len(changes)} change(s): {counts['added']} added, {counts['removed']} removed, {counts['modified']} modified")
    return "\n".join(lines)


def emit_changes(changes: list[Change], fmt: str) -> None:
    out = sys.stdout
    if not changes and fmt == "json":
        out.write("[]\n")  # what orjson writes for no changes, without importing it
        out.flush()
        return
    import orjson

    from secmon.fim.events import to_events

    if fmt == "json":
        out.write(orjson.dumps([c.to_json() for c in changes], option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "events":
        for event in to_events(changes):
            out.write(orjson.dumps(event).decode() + "\n")
    else:
        out.write(_table(changes) + "\n")
    out.flush()


def run_check(args: argparse.Namespace) -> int:
    from secmon.fim import fast

    if fast.enabled(args):
        handled = fast.run_check(args)
        if handled is not None:
            return handled
    from secmon.fim.baseline import Baseline
    from secmon.fim.check import check_baseline
    from secmon.fim.diff import diff_frames

    key = _key(args)
    baseline = Baseline.load(args.db, key)
    if args.image_tar:
        from secmon.fim.image import comparable_with_image, scan_image

        current = scan_image(args.image_tar, algo=baseline.algo, excludes=tuple(baseline.excludes))
        before = baseline.frame
        if baseline.source != "image":
            # A filesystem baseline (e.g. --root of an unpacked container) against an image.
            before, current = comparable_with_image(before), comparable_with_image(current)
        changes = diff_frames(before, current, baseline.policy.restricted_to(IMAGE_ATTRIBUTES))
        notes: list[str] = []
        updated = Baseline(current, baseline.algo, baseline.paths, baseline.excludes, baseline.policy, source="image")
    else:
        if baseline.source == "image" and not args.root:
            raise FimError(f"baseline {args.db} records a container image; check it with --image-tar or --root")
        result = check_baseline(baseline, root_dir=args.root, full_rehash=args.full_rehash, walker=args.walker)
        changes, notes = result.changes, result.notes
        updated = Baseline(
            result.current, baseline.algo, baseline.paths, baseline.excludes, baseline.policy,
            xattrs=baseline.xattrs, root_dir=args.root or baseline.root_dir,
            follow_symlinks=baseline.follow_symlinks, one_file_system=baseline.one_file_system,
        )  # fmt: skip
    emit_changes(changes, args.format)
    _print_notes(notes)
    if args.update:
        updated.save(args.db, key)
        print(f"baseline {args.db} updated ({updated.frame.height} entries)", file=sys.stderr)
    return EXIT_CHANGES if changes and args.fail_on_change else EXIT_OK


def run_watch(args: argparse.Namespace) -> int:
    from secmon.fim.watch import run_watch_command

    return run_watch_command(args)
