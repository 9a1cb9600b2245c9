"""Real-time FIM through inotify.

How it stays correct:

- Every directory in scope gets a watch; a new directory (created or moved in) gets its watches
  *first* and is then scanned, so files created in it before its watch existed are still found.
- Events only mark paths dirty; a burst is coalesced (``coalesce`` seconds of quiet, or at most
  ``max_delay`` after the first event) and then each dirty path is re-read once (lstat, digest,
  xattrs) and compared with the last known state: each change is reported once, with what changed.
  A file still open for writing (modified, no ``IN_CLOSE_WRITE`` yet) waits for its close, up to
  ``write_settle`` seconds, so "truncate, write, close" is one change, not two.
- ``IN_Q_OVERFLOW`` means the kernel dropped events: an explicit ``possible_missed_changes`` event
  names the time window, and the roots are re-scanned to find what changed in it. A directory
  whose watch cannot be added (``fs.inotify.max_user_watches`` reached) gets the same event, a
  clear message with the sysctl that raises the limit, and is re-scanned periodically instead.
"""

from __future__ import annotations

import errno
import glob
import os
import signal
import stat
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import polars as pl

from secmon.fim import inotify as ino
from secmon.fim import pywalk
from secmon.fim.baseline import Baseline, read_key_file
from secmon.fim.check import prefix_reader
from secmon.fim.config import AttributePolicy
from secmon.fim.diff import Change, compare_entry, snapshot
from secmon.fim.errors import FimError
from secmon.fim.events import change_to_event, missed_changes_event, utc_now_iso
from secmon.fim.globs import ExcludeMatcher
from secmon.fim.scan import FRAME_SCHEMA, ScanSpec, scan
from secmon.fim.xattrs import read_xattrs

Row = dict[str, Any]

EmitFn = Callable[[dict[str, Any]], None]


def entry_row(path_b: bytes, algo: str | None, old: Row | None, with_xattrs: bool) -> Row | None:
    """The scan row of one path now, or None when it does not exist. Mirrors the walker's columns."""
    try:
        st = os.lstat(path_b)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None  # a parent directory was replaced by a file: the entry is gone
    except OSError as exc:
        return {**_empty_row(path_b), "type": "unknown", "error": f"stat: {exc.strerror} (errno {exc.errno})"}
    row: Row = {
        "path": path_b.decode("utf-8", "replace"),
        "path_bytes": path_b,
        "type": pywalk.file_type(st.st_mode),
        "size": st.st_size,
        "mode": st.st_mode,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "inode": st.st_ino,
        "dev": st.st_dev,
        "nlink": st.st_nlink,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "target": None,
        "digest": None,
        "error": None,
        "xattrs": None,
        "capabilities": None,
    }
    if stat.S_ISLNK(st.st_mode):
        try:
            row["target"] = os.readlink(path_b).decode("utf-8", "replace")
        except OSError:
            pass
    elif stat.S_ISREG(st.st_mode) and algo is not None:
        same = old is not None and old.get("digest") is not None and all(
            old.get(k) == row[k] for k in ("size", "mtime_ns", "ctime_ns", "inode", "mode")
        )
        if same:
            row["digest"] = old["digest"]  # type: ignore[index]
        else:
            try:
                row["digest"] = pywalk.hash_file(path_b, algo)
            except OSError as exc:
                row["error"] = f"{exc.strerror or exc} (errno {exc.errno})"
    if with_xattrs:
        row["xattrs"], row["capabilities"], xerr = read_xattrs(path_b)
        row["error"] = row["error"] or xerr
    return row


def _empty_row(path_b: bytes) -> Row:
    row: Row = dict.fromkeys(FRAME_SCHEMA)
    row["path"] = path_b.decode("utf-8", "replace")
    row["path_bytes"] = path_b
    return row


def _parent(path_b: bytes) -> bytes:
    head = path_b.rsplit(b"/", 1)[0]
    return head or b"/"


class FimWatcher:
    """Watches the baseline's paths and reports changes against the last known state."""

    def __init__(
        self,
        baseline: Baseline,
        emit: EmitFn,
        *,
        coalesce: float = 0.02,
        max_delay: float = 0.05,
        poll_interval: float = 5.0,
        max_watches: int | None = None,
        host: str | None = None,
        write_settle: float = 0.5,
    ) -> None:
        if baseline.source == "image" or baseline.root_dir:
            raise FimError("watch needs a baseline of this host's filesystem (not an image or a --root)")
        self.baseline = baseline
        self.emit_event = emit
        self.coalesce = coalesce
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self.max_watches = max_watches  # a soft cap below the kernel's, for tests and cautious hosts
        self.host = host
        self.algo = baseline.algo
        self.with_xattrs = baseline.xattrs
        self.policy: AttributePolicy = baseline.policy
        self.exclude = ExcludeMatcher(baseline.excludes)
        self.prefix_digest = prefix_reader(None, baseline.algo)
        self.roots: list[bytes] = [os.fsencode(p.rstrip("/") or "/") for p in self._root_paths()]
        self.state: dict[bytes, Row] = {}
        self.children: dict[bytes, set[bytes]] = {}
        self.wd_path: dict[int, bytes] = {}
        self.path_wd: dict[bytes, int] = {}
        self.dirty: dict[bytes, None] = {}  # insertion-ordered: oldest change first
        self.rescan: set[bytes] = set()
        self.unwatched: dict[bytes, float] = {}  # directory -> last poll time (watch limit reached)
        self.writing: dict[bytes, float] = {}  # path -> first write seen while still open
        self.write_settle = write_settle
        self.flush_budget = 0.05
        self._backlog = False  # the last flush ran out of budget: keep flushing without waiting
        self._flushed_at = 0.0
        self._stamp, self._stamp_at = "", -1.0
        self._next_deferred: float | None = None
        self.first_pending = 0.0
        self.last_event = 0.0
        self.reported = 0
        self.inotify: ino.Inotify | None = None
        self.limit_warned = False

    def _root_paths(self) -> list[str]:
        """The baseline's paths that exist now, globs (``/home/*/.ssh``) expanded at start."""
        frame = self.baseline.frame
        present = set(frame["path"].to_list()) if frame.height else set()
        roots: list[str] = []
        for path in self.baseline.paths:
            if any(ch in path for ch in "*?["):
                roots.extend(sorted(glob.glob(path)))
            elif path in present or os.path.lexists(path):
                roots.append(path)
        return roots

    # --- scope -------------------------------------------------------------------------------

    def in_scope(self, path_b: bytes) -> bool:
        for root in self.roots:
            if path_b == root or root == b"/" or path_b.startswith(root + b"/"):
                return not self._excluded(path_b, root)
        return False

    def _excluded(self, path_b: bytes, root: bytes) -> bool:
        if not self.exclude:
            return False
        # An entry under an excluded directory is excluded too.
        current = path_b
        while len(current) > len(root):
            if self.exclude.excluded(current):
                return True
            current = _parent(current)
        return False

    # --- state -------------------------------------------------------------------------------

    def _set(self, row: Row) -> None:
        key = row["path_bytes"]
        self.state[key] = row
        if key not in self.roots:
            self.children.setdefault(_parent(key), set()).add(key)

    def _drop(self, key: bytes) -> list[Row]:
        """Remove an entry and everything under it from the state; return the removed rows."""
        removed: list[Row] = []
        stack = [key]
        while stack:
            current = stack.pop()
            row = self.state.pop(current, None)
            if row is not None:
                removed.append(row)
            stack.extend(self.children.pop(current, ()))
            wd = self.path_wd.pop(current, None)
            # A directory renamed inside the tree keeps its watch (watches follow inodes) and the
            # new path has already claimed it: only drop a watch that still belongs to this path.
            if wd is not None and self.wd_path.get(wd) == current:
                del self.wd_path[wd]
                if self.inotify is not None:
                    self.inotify.rm_watch(wd)
            self.unwatched.pop(current, None)
        siblings = self.children.get(_parent(key))
        if siblings is not None:
            siblings.discard(key)
        return sorted(removed, key=lambda r: r["path_bytes"])

    # --- watches -----------------------------------------------------------------------------

    def _watch_tree(self, top: bytes) -> None:
        """Add watches on ``top`` and every directory under it (in scope, not excluded)."""
        stack = [top]
        while stack:
            directory = stack.pop()
            if directory in self.path_wd or not self.in_scope(directory):
                continue
            if not self._add_watch(directory):
                continue
            try:
                with os.scandir(directory) as entries:
                    for entry in entries:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
            except OSError:
                continue  # gone or unreadable: its own events/scan will say so

    def _add_watch(self, directory: bytes) -> bool:
        assert self.inotify is not None
        if self.max_watches is not None and len(self.path_wd) >= self.max_watches:
            self._watch_limit(directory, errno.ENOSPC)
            return False
        try:
            wd = self.inotify.add_watch(directory)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                self._watch_limit(directory, exc.errno)
                return False
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return False  # vanished before we got to it; its removal is already an event
            raise
        self.wd_path[wd] = directory
        self.path_wd[directory] = wd
        return True

    def _watch_limit(self, directory: bytes, err: int) -> None:
        limit = ino.max_user_watches() if self.max_watches is None else self.max_watches
        suggestion = max(524288, (limit or 0) * 4)
        source = "the watcher's max_watches setting" if self.max_watches is not None else "fs.inotify.max_user_watches"
        reason = (
            f"inotify watch limit reached ({source} = {limit}); {os.fsdecode(directory)} is re-scanned every "
            f"{self.poll_interval:g} s instead of watched. Raise the limit with: "
            f"sysctl -w fs.inotify.max_user_watches={suggestion} (persist it in /etc/sysctl.d/)"
        )
        if not self.limit_warned:
            print(f"secmon fim watch: warning: {reason}", file=sys.stderr, flush=True)
            self.limit_warned = True
        now = utc_now_iso()
        self.emit_event(missed_changes_event(os.fsdecode(directory), window_start=now, window_end=now, reason=reason, host=self.host))
        self.unwatched[directory] = time.monotonic()

    # --- start -------------------------------------------------------------------------------

    def start(self) -> None:
        """Add every watch, then scan once and report what changed since the baseline."""
        self.inotify = ino.Inotify()
        limit = ino.max_user_watches()
        directories = int((self.baseline.frame["type"] == "dir").sum()) if self.baseline.frame.height else 0
        if limit is not None and directories > limit:
            print(
                f"secmon fim watch: warning: {directories} directories to watch but fs.inotify.max_user_watches is "
                f"{limit}; raise it with: sysctl -w fs.inotify.max_user_watches={max(524288, directories * 2)}",
                file=sys.stderr,
                flush=True,
            )
        for row in self.baseline.frame.iter_rows(named=True):
            if row["mode"] is not None:
                self._set(row)
        for root in self.roots:
            if os.path.isdir(root) and not os.path.islink(root):
                self._watch_tree(root)
            else:
                self._add_watch(_parent(root))
        for root in self.roots:
            self._rescan_subtree(root)

    # --- the loop ----------------------------------------------------------------------------

    def poll(self, timeout: float = 0.1) -> int:
        """Read events for up to ``timeout`` seconds, flush a settled burst; return changes reported."""
        assert self.inotify is not None
        now = time.monotonic()
        wait = timeout
        only_deferred = self._only_deferred_pending()
        if only_deferred:
            # Every pending path is a file still open for writing: sleep until one settles.
            wait = max(0.0, min(timeout, self._next_deferred - now))  # type: ignore[operator]
        elif self._backlog:
            wait = 0.0
        elif self.dirty or self.rescan:
            wait = max(0.0, min(timeout, self.first_pending + self.max_delay - now, self.last_event + self.coalesce - now))
        events = self.inotify.read(wait)
        now = time.monotonic()
        if events:
            if not self.dirty and not self.rescan:
                self.first_pending = now
            self.last_event = now
            self._absorb(events)
        before = self.reported
        if self._only_deferred_pending():
            if now >= self._next_deferred:  # type: ignore[operator]
                self.flush()
        elif (self.dirty or self.rescan) and (
            self._backlog or now - self.last_event >= self.coalesce or now - self.first_pending >= self.max_delay
        ):
            self.flush(self.flush_budget)
        for directory, last in list(self.unwatched.items()):
            if now - last >= self.poll_interval:
                self.unwatched[directory] = now
                self._rescan_subtree(directory)
        return self.reported - before

    def _absorb(self, events: Iterable[ino.InotifyEvent]) -> None:
        for event in events:
            if event.mask & ino.IN_Q_OVERFLOW:
                self._overflow()
                continue
            directory = self.wd_path.get(event.wd)
            if directory is None:
                continue
            if event.mask & ino.IN_IGNORED:
                self.wd_path.pop(event.wd, None)
                if self.path_wd.get(directory) == event.wd:
                    del self.path_wd[directory]
                continue
            path = directory if not event.name else (directory.rstrip(b"/") + b"/" + event.name)
            if not self.in_scope(path):
                continue
            if event.mask & (ino.IN_DELETE_SELF | ino.IN_MOVE_SELF):
                self.dirty[path] = None
                continue
            if event.mask & ino.IN_CLOSE_WRITE or event.mask & (ino.IN_DELETE | ino.IN_MOVED_FROM):
                self.writing.pop(path, None)
            elif event.mask & ino.IN_MODIFY or (event.mask & ino.IN_CREATE and not event.mask & ino.IN_ISDIR):
                # Open for writing: wait for the close so a truncate-then-write is one change.
                self.writing.setdefault(path, time.monotonic())
            if event.mask & ino.IN_ISDIR and event.mask & (ino.IN_CREATE | ino.IN_MOVED_TO):
                # Watch first, then scan: whatever was created inside before the watch existed
                # is found by the scan, whatever comes after arrives as events.
                self._watch_tree(path)
                self.rescan.add(path)
            else:
                self.dirty[path] = None
            if event.mask & (ino.IN_CREATE | ino.IN_DELETE | ino.IN_MOVED_FROM | ino.IN_MOVED_TO):
                if self.in_scope(directory):
                    self.dirty[directory] = None  # its mtime/ctime/nlink changed with the entry list

    def _overflow(self) -> None:
        since = getattr(self, "_last_flush_iso", None) or utc_now_iso()
        now = utc_now_iso()
        reason = "the kernel's inotify queue overflowed (fs.inotify.max_queued_events); events were dropped, re-scanning"
        for root in self.roots:
            self.emit_event(missed_changes_event(os.fsdecode(root), window_start=since, window_end=now, reason=reason, host=self.host))
            self.rescan.add(root)
            # Directories created during the gap have no watches yet; the rescan adds them.

    def flush(self, budget: float | None = None) -> None:
        """Re-read what changed, oldest first. With ``budget`` (seconds), stop after about that long
        and leave the rest pending, so a huge burst cannot keep the event queue unread."""
        started = time.monotonic()
        self._backlog = False
        rescan, self.rescan = self.rescan, set()
        dirty, self.dirty = self.dirty, {}
        for top in sorted(rescan):
            if os.path.isdir(top) and not os.path.islink(top):
                self._watch_tree(top)
            self._rescan_subtree(top)
        now = time.monotonic()
        pending = list(dirty)
        for index, path in enumerate(pending):
            if budget is not None and index % 64 == 63 and time.monotonic() - started > budget:
                for rest in pending[index:]:
                    self.dirty[rest] = None
                self._backlog = True
                break
            if rescan and any(path == top or path.startswith(top + b"/") for top in rescan):
                continue
            opened = self.writing.get(path)
            if opened is not None and now - opened < self.write_settle:
                self.dirty[path] = None  # still being written: report it once, after the close
                continue
            self.writing.pop(path, None)
            self._recheck(path)
        self._flushed_at = now
        self._next_deferred = min((self.writing[p] + self.write_settle for p in self.dirty if p in self.writing), default=None)
        if self.dirty:
            self.first_pending = now
        self._last_flush_iso = utc_now_iso()

    def _only_deferred_pending(self) -> bool:
        """True when nothing new arrived since the last flush and it left only open files pending."""
        return bool(self.dirty) and not self.rescan and self._next_deferred is not None and self.last_event <= self._flushed_at

    def _recheck(self, path: bytes) -> None:
        old = self.state.get(path)
        self._apply(path, old, entry_row(path, self.algo, old, self.with_xattrs))

    def _apply(self, path: bytes, old: Row | None, row: Row | None) -> None:
        if row is None:
            if old is not None:
                for gone in self._drop(path):
                    self._report(Change(gone["path"], gone["path_bytes"], "removed", (), snapshot(gone), None))
            return
        if row["mode"] is None:
            return  # lstat failed for another reason than "gone": state unknown, keep the old one
        if old is None:
            self._set(row)
            self._report(Change(row["path"], path, "added", (), None, snapshot(row)))
            if row["type"] == "dir":
                self._watch_tree(path)
                self._rescan_subtree(path)
            return
        if old["type"] == "dir" and row["type"] != "dir":
            # A directory replaced by a file: everything that was under it is gone.
            for child in sorted(self.children.get(path, set())):
                for gone in self._drop(child):
                    self._report(Change(gone["path"], gone["path_bytes"], "removed", (), snapshot(gone), None))
        self._set(row)
        change = compare_entry(path, old, row, self.policy, self.prefix_digest)
        if change is not None:
            self._report(change)
        if row["type"] == "dir" and old["type"] != "dir":
            self._watch_tree(path)
            self._rescan_subtree(path)

    def _rescan_subtree(self, top: bytes) -> None:
        """Scan ``top`` with the walker and reconcile the state under it, reporting differences."""
        if not os.path.lexists(top):
            self._recheck(top)
            return
        result = scan(ScanSpec((os.fsdecode(top),), algo=self.algo, excludes=tuple(self.baseline.excludes), xattrs=self.with_xattrs))
        seen: set[bytes] = set()
        for row in result.frame.iter_rows(named=True):
            key = row["path_bytes"]
            if not self.in_scope(key) or row["mode"] is None:
                continue
            seen.add(key)
            old = self.state.get(key)
            if old is None:
                self._set(row)
                self._report(Change(row["path"], key, "added", (), None, snapshot(row)))
                continue
            self._set(row)
            change = compare_entry(key, old, row, self.policy, self.prefix_digest)
            if change is not None:
                self._report(change)
        stale = [k for k in self._subtree_keys(top) if k not in seen]
        for key in sorted(stale):
            if key in self.state:
                for gone in self._drop(key):
                    self._report(Change(gone["path"], gone["path_bytes"], "removed", (), snapshot(gone), None))

    def _subtree_keys(self, top: bytes) -> list[bytes]:
        keys: list[bytes] = []
        stack = [top]
        while stack:
            current = stack.pop()
            if current in self.state:
                keys.append(current)
            stack.extend(self.children.get(current, ()))
        return keys

    def _report(self, change: Change) -> None:
        self.reported += 1
        now = time.monotonic()
        if now - self._stamp_at > 0.001:  # one ISO timestamp per millisecond, not per event
            self._stamp, self._stamp_at = utc_now_iso(), now
        self.emit_event(change_to_event(change, host=self.host or _hostname(), timestamp=self._stamp))

    def state_frame(self) -> pl.DataFrame:
        rows = sorted(self.state.values(), key=lambda r: r["path_bytes"])
        return pl.DataFrame(rows, schema=FRAME_SCHEMA) if rows else pl.DataFrame(schema=FRAME_SCHEMA)

    def run(self, duration: float | None = None, should_stop: Callable[[], bool] = lambda: False) -> None:
        deadline = None if duration is None else time.monotonic() + duration
        while not should_stop():
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.poll(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))
        if self.dirty or self.rescan:
            self.flush()

    def close(self) -> None:
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None


_HOST: list[str] = []


def _hostname() -> str:
    if not _HOST:
        import socket

        _HOST.append(socket.gethostname())
    return _HOST[0]


def run_watch_command(args: Any) -> int:
    from secmon.fim.check import create_baseline
    from secmon.fim.cli import _config_from_args

    key = read_key_file(args.key_file) if args.key_file else None
    if os.path.exists(args.db):
        baseline = Baseline.load(args.db, key)
        if args.paths:
            wanted = {p.rstrip("/") or "/" for p in args.paths}
            if not wanted <= {p.rstrip("/") or "/" for p in baseline.paths}:
                raise FimError(
                    f"baseline {args.db} covers {', '.join(baseline.paths)}; watch those or create a new baseline for {', '.join(sorted(wanted))}"
                )
    else:
        args.hash = None
        args.exclude = []
        config, missing_ok = _config_from_args(args)
        baseline, notes = create_baseline(config, missing_ok=missing_ok)
        baseline.save(args.db, key)
        print(f"secmon fim watch: created baseline {args.db} ({baseline.frame.height} entries)", file=sys.stderr)

    def emit(event: dict[str, Any]) -> None:
        if args.format == "json":
            sys.stdout.write(orjson.dumps(event).decode() + "\n")
        else:
            f = event["file"]
            sys.stdout.write(f"{event['timestamp']}  {f['change']:<8}  {f['path']}  {','.join(f.get('attributes', []))}\n")
        sys.stdout.flush()

    stop = {"now": False}

    def on_term(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_term)
    coalesce = args.coalesce_ms / 1000.0
    # A busy file is reported at most max_delay after its first event even if it never goes quiet.
    watcher = FimWatcher(baseline, emit, coalesce=coalesce, max_delay=max(0.05, 2.5 * coalesce))
    try:
        watcher.start()
        print(f"secmon fim watch: watching {len(watcher.path_wd)} directories", file=sys.stderr, flush=True)
        watcher.run(args.duration, should_stop=lambda: stop["now"])
    except KeyboardInterrupt:
        pass
    finally:
        watcher.close()
    if args.update:
        Baseline(
            watcher.state_frame(), baseline.algo, baseline.paths, baseline.excludes, baseline.policy,
            xattrs=baseline.xattrs, follow_symlinks=baseline.follow_symlinks, one_file_system=baseline.one_file_system,
        ).save(args.db, key)  # fmt: skip
    return 0
