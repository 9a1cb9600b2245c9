"""Real-time watch: each change once with its attributes, new-directory races, overflow, limits, latency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from secmon.fim import create_baseline, parse_config
from secmon.fim.watch import FimWatcher

Event = dict[str, Any]


def _watcher(root: Path, events: list[Event], **kwargs: Any) -> FimWatcher:
    config = parse_config({"paths": [str(root)], "rules": [{"match": "/**", "types": ["dir"], "attributes": "directories"}], **kwargs.pop("config", {})})
    baseline, _ = create_baseline(config)
    watcher = FimWatcher(baseline, events.append, coalesce=0.01, max_delay=0.03, **kwargs)
    watcher.start()
    return watcher


def _drain(watcher: FimWatcher, seconds: float = 0.3) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        watcher.poll(0.02)
    watcher.flush()


def _by_path(events: list[Event], root: Path) -> dict[str, tuple[str, list[str]]]:
    out: dict[str, tuple[str, list[str]]] = {}
    for event in events:
        rel = event["file"]["path"].removeprefix(str(root) + "/")
        assert rel not in out, f"{rel} reported twice: {out[rel]} then {event['file']}"
        out[rel] = (event["file"]["change"], event["file"]["attributes"])
    return out


def test_each_change_reported_once_with_attributes(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "keep").write_text("k")
    (root / "gone").write_text("g")
    (root / "perm").write_text("p")
    events: list[Event] = []
    watcher = _watcher(root, events)
    try:
        assert events == []  # nothing changed since the baseline
        time.sleep(0.02)
        for i in range(20):  # a burst of writes to one file is one change
            with open(root / "sub" / "keep", "a") as fh:
                fh.write(str(i))
        (root / "gone").unlink()
        os.chmod(root / "perm", 0o600)
        (root / "new").write_text("n")
        _drain(watcher)
        assert _by_path(events, root) == {
            "sub/keep": ("modified", ["content", "size", "mtime", "ctime"]),
            "gone": ("removed", []),
            "perm": ("modified", ["mode", "ctime"]),
            "new": ("added", []),
        }
        assert all(e["source"] == "fim" and e["file"]["after" if e["file"]["change"] != "removed" else "before"] for e in events)
    finally:
        watcher.close()


def test_files_created_in_a_new_directory_before_its_watch_are_found(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    events: list[Event] = []
    watcher = _watcher(root, events)
    try:
        # Everything happens before the watcher reads a single event: the new directory's watch
        # cannot exist yet when these files appear.
        (root / "d" / "e").mkdir(parents=True)
        for i in range(30):
            (root / "d" / f"f{i}").write_text(str(i))
            (root / "d" / "e" / f"g{i}").write_text(str(i))
        _drain(watcher)
        got = _by_path(events, root)
        expected = {"d", "d/e"} | {f"d/f{i}" for i in range(30)} | {f"d/e/g{i}" for i in range(30)}
        assert set(got) == expected
        assert {change for change, _ in got.values()} == {"added"}
        events.clear()
        (root / "d" / "e" / "late").write_text("after the watch exists")  # now watched
        _drain(watcher)
        assert _by_path(events, root) == {"d/e/late": ("added", [])}
    finally:
        watcher.close()


def test_moved_out_directory_reports_its_whole_subtree_removed(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "x").write_text("x")
    events: list[Event] = []
    watcher = _watcher(root, events)
    try:
        os.rename(root / "d", tmp_path / "elsewhere")
        _drain(watcher)
        assert _by_path(events, root) == {"d": ("removed", []), "d/e": ("removed", []), "d/e/x": ("removed", [])}
        events.clear()
        (tmp_path / "elsewhere" / "e" / "x").write_text("outside now")  # no longer our business
        _drain(watcher)
        assert events == []
    finally:
        watcher.close()


def test_queue_overflow_emits_missed_changes_and_rescans(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_text("f")
    (root / "g").write_text("g")
    events: list[Event] = []
    watcher = _watcher(root, events)
    g_stat = (root / "g").stat()
    try:
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        # The kernel merges identical consecutive events, so alternate two files; none is read yet.
        for i in range(limit // 2 + 100):
            os.utime(root / "f", ns=(i, i))
            os.utime(root / "g", ns=(g_stat.st_atime_ns, g_stat.st_mtime_ns))
        (root / "f").write_text("changed")
        _drain(watcher)
        missed = [e for e in events if e["file"]["change"] == "possible_missed_changes"]
        assert len(missed) == 1 and missed[0]["file"]["path"] == str(root)
        assert set(missed[0]["file"]["window"]) == {"start", "end"} and "overflow" in missed[0]["file"]["reason"]
        changes = [e for e in events if e["file"]["change"] != "possible_missed_changes"]
        assert _by_path(changes, root) == {"f": ("modified", ["content", "size", "mtime", "ctime"]), "g": ("modified", ["ctime"])}
    finally:
        watcher.close()


def test_watch_limit_says_how_to_raise_it_and_falls_back_to_rescans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "w"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    events: list[Event] = []
    watcher = _watcher(root, events, max_watches=2, poll_interval=0.1)
    try:
        missed = [e for e in events if e["file"]["change"] == "possible_missed_changes"]
        assert len(missed) == 1
        unwatched = Path(missed[0]["file"]["path"])
        assert "sysctl -w fs.inotify.max_user_watches=" in missed[0]["file"]["reason"]
        assert "sysctl -w fs.inotify.max_user_watches=" in capsys.readouterr().err
        events.clear()
        (unwatched / "x").write_text("seen by the periodic re-scan")
        _drain(watcher, 0.5)
        assert _by_path(events, root) == {f"{unwatched.name}/x": ("added", [])}
    finally:
        watcher.close()


WRITER = r"""
import os, sys, time, json
paths, rate, out = json.load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
stamps = []
start = time.monotonic()
for i, path in enumerate(paths):
    due = start + i / rate
    delay = due - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    stamps.append(time.monotonic())  # before the change starts: latency includes the write itself
    with open(path, "w") as fh:
        fh.write("changed %d" % i)
json.dump(stamps, open(out, "w"))
"""


def measure_watch_latency(top: Path, files: int, rate: float) -> tuple[list[float], int, int]:
    """Change ``files`` distinct files at ``rate``/s in another process; (latencies s, reported, lost)."""
    root = top / "w"
    paths = []
    for d in range(max(1, files // 1000)):
        (root / f"d{d}").mkdir(parents=True)
    for i in range(files):
        path = root / f"d{i % max(1, files // 1000)}" / f"f{i}"
        path.write_text("original")
        paths.append(str(path))
    seen: dict[str, float] = {}
    duplicates = 0

    def emit(event: Event) -> None:
        nonlocal duplicates
        path = event["file"]["path"]
        if path in seen:
            duplicates += 1
        seen[path] = time.monotonic()

    config = parse_config({"paths": [str(root)], "default_attributes": "binaries", "xattrs": False})
    baseline, _ = create_baseline(config)
    watcher = FimWatcher(baseline, emit, coalesce=0.005, max_delay=0.02)
    watcher.start()
    try:
        (top / "paths.json").write_text(json.dumps(paths))
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(top / "paths.json"), str(rate), str(top / "stamps.json")])
        # Wait for the writer however slow the machine makes it, then at most 10 s for the last events.
        writer_done = None
        while writer_done is None or (len(seen) < files and time.monotonic() - writer_done < 10):
            watcher.poll(0.005)
            if writer_done is None and writer.poll() is not None:
                writer_done = time.monotonic()

        watcher.flush()
    finally:
        watcher.close()
    stamps = json.loads((top / "stamps.json").read_text())
    latencies = [seen[p] - t for p, t in zip(paths, stamps, strict=True) if p in seen]
    lost = sum(1 for p in paths if p not in seen)
    assert duplicates == 0
    return sorted(latencies), len(seen), lost


def _p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def test_watch_latency_small(tmp_path: Path) -> None:
    latencies, reported, lost = measure_watch_latency(tmp_path, files=1000, rate=1000)
    assert lost == 0 and reported == 1000
    assert _p99(latencies) < 0.1, f"p99 latency {_p99(latencies) * 1000:.1f} ms"


@pytest.mark.slow
def test_watch_latency_10k_changes_per_second(tmp_path: Path) -> None:
    latencies, reported, lost = measure_watch_latency(tmp_path, files=30000, rate=10000)
    stamps = json.loads((tmp_path / "stamps.json").read_text())
    print(f"watch: writer reached {len(stamps) / (stamps[-1] - stamps[0]):,.0f}/s; {reported} changes, p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {_p99(latencies) * 1000:.1f} ms, lost {lost}")
    assert lost == 0
    assert _p99(latencies) < 0.1, f"p99 latency {_p99(latencies) * 1000:.1f} ms"


def test_watch_command_streams_events(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    (root / "f").write_text("f")
    db = tmp_path / "db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "secmon.cli", "fim", "watch", str(root), "--db", str(db), "--duration", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None and proc.stdout is not None
        while "watching" not in (line := proc.stderr.readline()):
            assert line, "watch exited before it started"
        (root / "f").write_text("changed")
        event = json.loads(proc.stdout.readline())
        assert event["file"]["path"] == str(root / "f") and event["file"]["change"] == "modified"
        assert "content" in event["file"]["attributes"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_directory_renamed_inside_the_tree_stays_watched(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "old" / "sub").mkdir(parents=True)
    (root / "old" / "sub" / "f").write_text("f")
    events: list[Event] = []
    watcher = _watcher(root, events)
    try:
        os.rename(root / "old", root / "new")
        _drain(watcher)
        got = _by_path(events, root)
        assert {k: v[0] for k, v in got.items()} == {
            "old": "removed", "old/sub": "removed", "old/sub/f": "removed",
            "new": "added", "new/sub": "added", "new/sub/f": "added",
        }  # fmt: skip
        events.clear()
        (root / "new" / "sub" / "f").write_text("changed after the rename")
        (root / "new" / "sub" / "g").write_text("new file after the rename")
        _drain(watcher)
        got = _by_path(events, root)
        assert got["new/sub/f"][0] == "modified" and "content" in got["new/sub/f"][1]
        assert got["new/sub/g"] == ("added", [])
    finally:
        watcher.close()


def test_single_file_roots_are_watched_through_their_directory(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    events: list[Event] = []
    config = {"paths": [str(etc / "passwd")]}
    baseline, _ = create_baseline(parse_config(config))
    watcher = FimWatcher(baseline, events.append, coalesce=0.01, max_delay=0.03)
    watcher.start()
    try:
        (etc / "hosts").write_text("not watched\n")
        (etc / "shadow").write_text("not watched either\n")
        with open(etc / "passwd", "a") as fh:
            fh.write("toor:x:0:0::/root:/bin/sh\n")
        _drain(watcher)
        assert [(e["file"]["path"], e["file"]["change"]) for e in events] == [(str(etc / "passwd"), "modified")]
    finally:
        watcher.close()
