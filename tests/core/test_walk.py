"""secmon.scan_tree against its slow twin (os.lstat + os.listdir + hashlib) on generated trees."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import blake3
import polars as pl
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import secmon
from secmon import scan_tree

SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String(),
    "path_bytes": pl.Binary(),
    "type": pl.String(),
    "size": pl.UInt64(),
    "mode": pl.UInt32(),
    "uid": pl.UInt32(),
    "gid": pl.UInt32(),
    "inode": pl.UInt64(),
    "dev": pl.UInt64(),
    "nlink": pl.UInt64(),
    "mtime_ns": pl.Int64(),
    "ctime_ns": pl.Int64(),
    "target": pl.String(),
    "digest": pl.String(),
    "error": pl.String(),
}
STAT_FIELDS = ("size", "mode", "uid", "gid", "inode", "dev", "nlink", "mtime_ns", "ctime_ns")
TYPE_BY_FORMAT = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "char_device",
    stat.S_IFBLK: "block_device",
}


# ---------------------------------------------------------------------------------------------
# The slow twin


def digest_of_file(path: bytes, algo: str) -> str:
    with open(path, "rb") as fh:
        data = fh.read()
    if algo == "blake3":
        return blake3.blake3(data).hexdigest()
    if algo == "xxh3_128":
        return xxhash.xxh3_128_hexdigest(data)
    return hashlib.new(algo, data).hexdigest()


def error_kind(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return "vanished during scan"
    if isinstance(err, PermissionError):
        return "permission denied"
    if err.errno == 40:  # ELOOP
        return "symlink loop"
    return "io error"


def twin_scan(
    roots: Sequence[bytes],
    *,
    algo: str | None = None,
    excludes: Sequence[str] = (),
    follow_symlinks: bool = False,
    one_file_system: bool = False,
) -> list[dict[str, Any]]:
    """One dict per entry, the obvious way; errors reduced to their kind (text before ':')."""
    rows: dict[bytes, dict[str, Any]] = {}
    patterns = [p.encode() for p in excludes]

    def excluded(path: bytes) -> bool:
        return any(fnmatch.fnmatchcase(path, p) for p in patterns)

    def visit(path: bytes, chain: tuple[tuple[int, int], ...], root_dev: int | None) -> None:
        row: dict[str, Any] = {name: None for name in SCHEMA}
        row["path"] = path.decode("utf-8", "replace")
        row["path_bytes"] = path
        rows[path] = row
        try:
            st_ = os.lstat(path)
        except OSError as e:
            row["type"], row["error"] = "unknown", error_kind(e)
            return
        row["type"] = TYPE_BY_FORMAT.get(stat.S_IFMT(st_.st_mode), "unknown")
        if row["type"] == "symlink":
            try:
                row["target"] = os.readlink(path).decode("utf-8", "replace")
            except OSError as e:
                row["error"] = error_kind(e)
            if follow_symlinks and row["error"] is None:
                try:
                    st_ = os.stat(path)
                    row["type"] = TYPE_BY_FORMAT.get(stat.S_IFMT(st_.st_mode), "unknown")
                except FileNotFoundError:
                    row["error"] = "broken symlink"
                except OSError as e:
                    row["error"] = error_kind(e)
        for name, attr in zip(STAT_FIELDS, ("st_size", "st_mode", "st_uid", "st_gid", "st_ino", "st_dev", "st_nlink", "st_mtime_ns", "st_ctime_ns")):
            row[name] = getattr(st_, attr)
        if root_dev is None:
            root_dev = st_.st_dev
        if row["type"] == "dir":
            here = (st_.st_dev, st_.st_ino)
            if follow_symlinks and here in chain:
                row["error"] = "symlink loop"
                return
            if one_file_system and st_.st_dev != root_dev:
                return
            try:
                names = os.listdir(path)
            except OSError as e:
                row["error"] = error_kind(e)
                return
            for name in names:
                child = path.rstrip(b"/") + b"/" + name
                if not excluded(child):
                    visit(child, (*chain, here), root_dev)
        elif row["type"] == "file" and algo is not None:
            try:
                row["digest"] = digest_of_file(path, algo)
            except OSError as e:
                row["error"] = error_kind(e)

    for root in roots:
        root = root.rstrip(b"/") or b"/"
        os.lstat(root)  # a missing root is an error of the whole call, as in scan_tree
        if not excluded(root):
            visit(root, (), None)
    return sorted(rows.values(), key=lambda r: (r["path"].encode("utf-8", "surrogatepass"), r["path_bytes"]))


def rows_of(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """scan_tree's rows in the twin's shape: errors cut to their kind."""
    rows = frame.to_dicts()
    for row in rows:
        if row["error"] is not None:
            row["error"] = row["error"].split(":")[0]
    return rows


def assert_same(frame: pl.DataFrame, want: list[dict[str, Any]]) -> None:
    assert dict(frame.schema) == SCHEMA
    got = rows_of(frame)
    got_paths = [r["path_bytes"] for r in got]
    want_paths = [r["path_bytes"] for r in want]
    assert got_paths == want_paths
    for g, w in zip(got, want):
        assert g == w, f"{g['path']!r}: secmon {g} != twin {w}"


# ---------------------------------------------------------------------------------------------
# Generated trees


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A short directory anyone can reach (pytest's tmp_path sits below a 0700 directory, and a
    unix socket path must stay under 108 bytes)."""
    base = Path(tempfile.mkdtemp(prefix="sw", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for dirpath, dirnames, _ in os.walk(base):
            for d in dirnames:
                path = os.path.join(dirpath, d)
                if not os.path.islink(path):
                    os.chmod(path, 0o755)
        shutil.rmtree(base, ignore_errors=True)


NAMES = st.sampled_from([b"a", b"b", b"c", b"d e", "é".encode(), b"x.log", b"y.txt", b"bad\xff", b"\x80z", b".hidden"])
LINK_TARGETS = st.sampled_from([b"..", b".", b"nowhere", b"a", b"b", b"x.log", b"d e", b"../a", b"self"])

LEAVES = st.one_of(
    st.tuples(st.just("file"), st.binary(max_size=300) | st.sampled_from([0, 70_000, 300_000])),
    st.tuples(st.just("symlink"), LINK_TARGETS),
    st.tuples(st.just("hardlink"), st.none()),
    st.tuples(st.just("fifo"), st.none()),
    st.tuples(st.just("socket"), st.none()),
)
NODES = st.recursive(LEAVES, lambda kids: st.tuples(st.just("dir"), st.dictionaries(NAMES, kids, max_size=4)), max_leaves=24)
TREES = st.dictionaries(NAMES, NODES, max_size=6)


def build_tree(root: bytes, tree: dict[bytes, tuple[str, Any]]) -> None:
    os.mkdir(root)
    files: list[bytes] = []

    def make(dir_path: bytes, children: dict[bytes, tuple[str, Any]]) -> None:
        for name, (kind, payload) in children.items():
            path = dir_path + b"/" + name
            if kind == "file":
                with open(path, "wb") as fh:
                    # An int stands for that many zero bytes (keeps hypothesis' reprs short).
                    fh.write(bytes(payload) if isinstance(payload, int) else payload)
                files.append(path)
            elif kind == "dir":
                os.mkdir(path)
                make(path, payload)
            elif kind == "symlink":
                os.symlink(name if payload == b"self" else payload, path)
            elif kind == "hardlink":
                if files:
                    os.link(files[0], path)
                else:
                    open(path, "wb").close()
                    files.append(path)
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "socket":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.bind(path)
                finally:
                    sock.close()

    make(root, tree)


EXCLUDES = st.lists(st.sampled_from(["**/a", "*.log", "**/b/*", "*/d e", "**/.hidden", "*/c"]), max_size=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    tree=TREES,
    algo=st.sampled_from([None, "sha256", "blake3", "xxh3_128", "sha1", "md5"]),
    excludes=EXCLUDES,
    follow_symlinks=st.booleans(),
    threads=st.sampled_from([None, 1, 3]),
)
def test_scan_equals_twin_on_random_trees(
    reachable_tmp: Path, tree: dict[bytes, Any], algo: str | None, excludes: list[str], follow_symlinks: bool, threads: int | None
) -> None:
    # The scanned root sits one level down, so a root-level ".." link points at a directory
    # holding only the root: following it is a loop, never a walk of /tmp.
    root = os.fsencode(tempfile.mkdtemp(dir=reachable_tmp)) + b"/t"
    build_tree(root, tree)
    frame = scan_tree(root, algo=algo, excludes=excludes, follow_symlinks=follow_symlinks, threads=threads)
    assert_same(frame, twin_scan([root], algo=algo, excludes=excludes, follow_symlinks=follow_symlinks))


LANE_SIZES = st.sampled_from([0, 1, 55, 56, 63, 64, 65, 119, 120, 4095, 65_535, 65_536, 65_537, 200_001])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    sizes=st.lists(LANE_SIZES, min_size=1, max_size=14),
    links=st.lists(st.tuples(st.integers(0, 13), st.integers(0, 2)), max_size=6),
    seed=st.integers(0, 2**32 - 1),
    threads=st.sampled_from([None, 1, 2]),
)
def test_sha256_lanes_and_hard_links_equal_hashlib(
    reachable_tmp: Path, sizes: list[int], links: list[tuple[int, int]], seed: int, threads: int | None
) -> None:
    # sha256 goes through four interleaved lanes (padding in one or two blocks, files longer
    # than one read chunk) and each hard-linked inode is read once; hashlib reads every name.
    import random

    rng = random.Random(seed)
    root = os.fsencode(tempfile.mkdtemp(dir=reachable_tmp)) + b"/t"
    for sub in (b"", b"/d0", b"/d1", b"/d2"):
        os.mkdir(root + sub)
    files: list[bytes] = []
    for i, size in enumerate(sizes):
        path = root + b"/f%d" % i
        with open(path, "wb") as fh:
            fh.write(rng.randbytes(size))
        files.append(path)
    for n, (pick, dir_number) in enumerate(links):
        os.link(files[pick % len(files)], root + b"/d%d/l%d" % (dir_number, n))
    frame = scan_tree(root, algo="sha256", threads=threads)
    assert_same(frame, twin_scan([root], algo="sha256"))


def test_every_special_type_is_a_row(reachable_tmp: Path) -> None:
    root = os.fsencode(reachable_tmp) + b"/t"
    build_tree(
        root,
        {
            b"f": ("file", b"abc"),
            b"h": ("hardlink", None),
            b"p": ("fifo", None),
            b"s": ("socket", None),
            b"l": ("symlink", b"f"),
            b"dangling": ("symlink", b"nowhere"),
            b"d": ("dir", {b"\xff\xfe": ("file", b"")}),
        },
    )
    frame = scan_tree(root, algo="sha256")
    by_name = {row["path_bytes"].rsplit(b"/", 1)[1]: row for row in frame.to_dicts()}
    assert by_name[b"p"]["type"] == "fifo" and by_name[b"p"]["digest"] is None
    assert by_name[b"s"]["type"] == "socket"
    assert by_name[b"l"]["type"] == "symlink" and by_name[b"l"]["target"] == "f"
    assert by_name[b"dangling"]["error"] is None and by_name[b"dangling"]["target"] == "nowhere"
    assert by_name[b"f"]["nlink"] == 2 and by_name[b"h"]["inode"] == by_name[b"f"]["inode"]
    assert by_name[b"h"]["digest"] == hashlib.sha256(b"abc").hexdigest()
    odd = by_name[b"\xff\xfe"]
    assert odd["path"].endswith("/\ufffd\ufffd") and odd["type"] == "file"
    assert stat.S_ISREG(odd["mode"])
    assert frame["path"].is_sorted()
    assert_same(frame, twin_scan([root], algo="sha256"))


def test_devices_are_rows_and_never_opened() -> None:
    frame = scan_tree("/dev", algo="md5", excludes=["/dev/shm/**", "/dev/mqueue/**"])
    kinds = dict(zip(frame["path"], frame["type"]))
    assert kinds["/dev/null"] == "char_device"
    assert frame.filter(pl.col("type") != "file")["digest"].null_count() == frame.filter(pl.col("type") != "file").height


def test_one_file_system_stops_at_mount_points() -> None:
    if os.stat("/dev").st_dev == os.stat("/dev/shm").st_dev:
        pytest.skip("/dev/shm is not a separate mount on this machine")
    frame = scan_tree("/dev", one_file_system=True)
    paths = frame["path"].to_list()
    assert "/dev/shm" in paths and not any(p.startswith("/dev/shm/") for p in paths)
    assert_same(frame, twin_scan([b"/dev"], one_file_system=True))


def test_pseudo_files_are_not_read_through() -> None:
    # /proc/PID/pagemap has stat size 0 and reads on for the whole address space: read naively,
    # the walk would not end. It must come back as a row with a "changed during scan" error.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = time.perf_counter()
        frame = scan_tree(f"/proc/{sleeper.pid}", algo="sha256", excludes=["**/task/**"])
        assert time.perf_counter() - started < 30
    finally:
        sleeper.kill()
        sleeper.wait()
    errors = dict(zip(frame["path"], frame["error"]))
    assert errors[f"/proc/{sleeper.pid}/pagemap"].startswith("changed during scan")
    assert frame.filter(pl.col("digest").is_not_null())["size"].to_list() == [0] * frame["digest"].drop_nulls().len()


def test_growing_file_gets_an_error_not_a_wrong_digest(reachable_tmp: Path) -> None:
    # A writer appends while the walk reads: each row's digest must be that of exactly `size`
    # bytes, or the row carries "changed during scan".
    root = reachable_tmp / "t"
    root.mkdir()
    path = root / "log"
    path.write_bytes(b"x" * 1_000_000)
    done = threading.Event()

    def append() -> None:
        with open(path, "ab") as fh:
            for _ in range(2000):  # 8 MB more, in 4 KiB steps
                fh.write(b"y" * 4096)
                fh.flush()
                time.sleep(0.0002)
        done.set()

    writer = threading.Thread(target=append)
    writer.start()
    rows = []
    try:
        while not done.is_set() or not rows:
            rows.append(scan_tree(root, algo="sha1").filter(pl.col("type") == "file").row(0, named=True))
    finally:
        writer.join()
    data = path.read_bytes()
    for row in rows:
        if row["error"] is None:
            assert row["digest"] == hashlib.sha1(data[: row["size"]]).hexdigest()
        else:
            assert row["error"].startswith("changed during scan"), row
            assert row["digest"] is None


def test_follow_symlinks_loops_are_rows(reachable_tmp: Path) -> None:
    root = os.fsencode(reachable_tmp) + b"/t"
    build_tree(root, {b"d": ("dir", {b"up": ("symlink", b".."), b"me": ("symlink", b".")}), b"self": ("symlink", b"self")})
    frame = scan_tree(root, follow_symlinks=True)
    errors = dict(zip(frame["path_bytes"], frame["error"]))
    assert errors[root + b"/d/up"].startswith("symlink loop")
    assert errors[root + b"/d/me"].startswith("symlink loop")
    assert errors[root + b"/self"].startswith("symlink loop")
    assert frame.height == 5


def test_excluded_directory_is_not_descended(reachable_tmp: Path) -> None:
    root = os.fsencode(reachable_tmp) + b"/t"
    build_tree(root, {b"keep": ("dir", {b"skip": ("dir", {b"deep": ("file", b"x")}), b"a.log": ("file", b"")})})
    frame = scan_tree(root, excludes=["**/skip", "*.log"])
    assert [p.removeprefix(root) for p in frame["path_bytes"]] == [b"", b"/keep"]


def test_roots_in_every_form_and_overlap(reachable_tmp: Path) -> None:
    root = reachable_tmp / "t"
    build_tree(os.fsencode(root), {b"f": ("file", b"1"), b"d": ("dir", {b"g": ("file", b"2")})})
    want = scan_tree(str(root))
    assert want.height == 4
    for form in (root, os.fsencode(root), [root], (str(root), str(root / "d")), [str(root) + "//"]):
        assert scan_tree(form).equals(want), form  # type: ignore[arg-type]
    two = scan_tree([root / "f", root / "d"])
    assert two["path"].to_list() == [str(root / "d"), str(root / "d" / "g"), str(root / "f")]


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        scan_tree(tmp_path / "missing")
    assert info.value.filename == str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        scan_tree([tmp_path, tmp_path / "missing"])
    with pytest.raises(ValueError, match="valid names: sha256, blake3, xxh3_128, sha1, md5"):
        scan_tree(tmp_path, algo="sha512")
    with pytest.raises(ValueError, match=r"excludes\[1\].*'?\[oops'?"):
        scan_tree(tmp_path, excludes=["*.log", "[oops"])
    with pytest.raises(ValueError, match="threads = 0"):
        scan_tree(tmp_path, threads=0)
    with pytest.raises(ValueError, match="roots is empty"):
        scan_tree([])
    with pytest.raises(TypeError, match=r"roots\[1\]"):
        scan_tree([tmp_path, 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="polars.DataFrame"):
        scan_tree(tmp_path, algo="md5", previous={"path": []})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='no column "inode"'):
        scan_tree(tmp_path, algo="md5", previous=scan_tree(tmp_path, algo="md5").drop("inode"))


def test_schema_of_an_empty_match(tmp_path: Path) -> None:
    frame = scan_tree(tmp_path, excludes=["**"])
    assert frame.height == 0 and dict(frame.schema) == SCHEMA


# ---------------------------------------------------------------------------------------------
# previous: reuse of digests


def test_previous_keeps_digests_of_unchanged_files_without_reading(reachable_tmp: Path) -> None:
    root = reachable_tmp / "t"
    build_tree(os.fsencode(root), {b"same": ("file", b"1" * 1000), b"edited": ("file", b"2" * 1000), b"d": ("dir", {b"n": ("file", b"")})})
    first = scan_tree(root, algo="sha256")
    assert first.filter(pl.col("type") == "file")["digest"].null_count() == 0
    # A fake digest for every file: only a file that was re-read gets its real digest back.
    fake = "f" * 64
    previous = first.with_columns(pl.when(pl.col("type") == "file").then(pl.lit(fake)).otherwise(pl.col("digest")).alias("digest"))
    time.sleep(0.01)
    (root / "edited").write_bytes(b"3" * 1000)  # same size; mtime and ctime move
    again = scan_tree(root, algo="sha256", previous=previous)
    digests = dict(zip(again["path"], again["digest"]))
    assert digests[str(root / "same")] == fake
    assert digests[str(root / "d" / "n")] == fake
    assert digests[str(root / "edited")] == hashlib.sha256(b"3" * 1000).hexdigest()
    os.chmod(root / "same", 0o600)  # mode (and ctime) change: re-read
    third = scan_tree(root, algo="sha256", previous=previous)
    assert dict(zip(third["path"], third["digest"]))[str(root / "same")] == hashlib.sha256(b"1" * 1000).hexdigest()


MUTATIONS = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["append", "rewrite_same_size", "chmod", "replace", "delete", "none"])), max_size=6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=TREES, mutations=MUTATIONS, algo=st.sampled_from(["sha256", "blake3", "xxh3_128", "md5"]))
def test_rescan_with_previous_after_random_changes(reachable_tmp: Path, tree: dict[bytes, Any], mutations: list[tuple[int, str]], algo: str) -> None:
    root = os.fsencode(tempfile.mkdtemp(dir=reachable_tmp)) + b"/t"
    build_tree(root, tree)
    first = scan_tree(root, algo=algo)
    files = [p for p, t in zip(first["path_bytes"], first["type"]) if t == "file"]
    for pick, change in mutations:
        if not files:
            break
        path = files[pick % len(files)]
        if not os.path.exists(path):
            continue
        if change == "append":
            with open(path, "ab") as fh:
                fh.write(b"+")
        elif change == "rewrite_same_size":
            data = open(path, "rb").read()
            with open(path, "wb") as fh:
                fh.write(bytes(b ^ 1 for b in data))
        elif change == "chmod":
            os.chmod(path, 0o600)
        elif change == "replace":
            os.unlink(path)
            with open(path, "wb") as fh:
                fh.write(b"new")
        elif change == "delete":
            os.unlink(path)
    # Unchanged files keep the (fake) digest of `previous`; every other row equals a fresh scan.
    fake = "0" * len(first.filter(pl.col("digest").is_not_null())["digest"][0]) if first["digest"].null_count() < first.height else None
    previous = first.with_columns(pl.when(pl.col("digest").is_not_null()).then(pl.lit(fake)).alias("digest")) if fake else first
    again = scan_tree(root, algo=algo, previous=previous)
    fresh = scan_tree(root, algo=algo)
    assert_same(fresh, twin_scan([root], algo=algo))
    old = {r["path_bytes"]: r for r in first.to_dicts()}
    for got, want in zip(again.to_dicts(), fresh.to_dicts()):
        before = old.get(got["path_bytes"])
        unchanged = before is not None and want["type"] == "file" and all(before[k] == want[k] for k in ("size", "mtime_ns", "ctime_ns", "inode", "mode"))
        if unchanged and before["digest"] is not None:
            assert got["digest"] == fake, got
            got["digest"] = want["digest"]
        assert got == want


def test_previous_layouts_short_paths_slices_and_chunks(reachable_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative roots give paths of 12 bytes or less, which Arrow string views store inline.
    monkeypatch.chdir(reachable_tmp)
    build_tree(b"t", {b"a": ("file", b"1"), b"b": ("dir", {b"c": ("file", b"22"), b"long-name-of-a-file": ("file", b"333")})})
    first = scan_tree("t", algo="md5")
    assert first["path"].to_list() == ["t", "t/a", "t/b", "t/b/c", "t/b/long-name-of-a-file"]
    fake = first.with_columns(pl.when(pl.col("type") == "file").then(pl.lit("e" * 32)).alias("digest"))
    chunked = pl.concat([fake.slice(0, 2), fake.slice(2)], rechunk=False)
    assert chunked.n_chunks() == 2
    for previous in (fake, fake.slice(1), chunked, fake.select(reversed(fake.columns))):
        again = scan_tree("t", algo="md5", previous=previous)
        reused = again.filter(pl.col("digest") == "e" * 32)["path"].to_list()
        assert reused == [p for p in ["t/a", "t/b/c", "t/b/long-name-of-a-file"] if p in previous["path"].to_list()]


def test_previous_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="a sha256 digest is 64 hex characters"):
        scan_tree(tmp_path, algo="sha256", previous=scan_tree(tmp_path, algo="md5"))


def test_rescan_with_previous_equals_fresh_scan(reachable_tmp: Path) -> None:
    root = os.fsencode(reachable_tmp) + b"/t"
    build_tree(root, {bytes([97 + i % 26]) * (1 + i // 26): ("file", os.urandom(i * 37)) for i in range(120)})
    first = scan_tree(root, algo="blake3")
    assert scan_tree(root, algo="blake3", previous=first).equals(first)


# ---------------------------------------------------------------------------------------------
# Errors met on the way: permission denied (as nobody), files vanishing mid-walk


CHILD_AS_NOBODY = r"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("walk_twin", sys.argv[1])
twin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(twin)
from secmon import scan_tree
root = os.fsencode(sys.argv[2])
# Imports first (a warm-up scan loads numpy's API too): the interpreter's own files may be
# readable by root only.
scan_tree(sys.argv[1], algo="sha256")
os.setgid(65534)
os.setuid(65534)
got = twin.rows_of(scan_tree(root, algo="sha256"))
want = twin.twin_scan([root], algo="sha256")
strip = lambda rows: [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items()} for r in rows]
print(json.dumps({"got": strip(got), "want": strip(want)}))
"""


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to drop to uid 65534 (root itself bypasses file modes)")
def test_permission_denied_is_a_row_not_an_exception(reachable_tmp: Path) -> None:
    root = os.fsencode(reachable_tmp) + b"/t"
    build_tree(
        root,
        {
            b"locked": ("dir", {b"inside": ("file", b"x")}),
            b"secret": ("file", b"y"),
            b"open": ("dir", {b"f": ("file", b"z")}),
            b"noexec": ("dir", {b"g": ("file", b"w")}),
        },
    )
    os.chmod(root + b"/locked", 0o000)
    os.chmod(root + b"/secret", 0o000)
    os.chmod(root + b"/noexec", 0o644)  # listable names, but no stat of what is inside
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_AS_NOBODY, __file__, reachable_tmp / "t"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["got"] == result["want"]
    errors = {bytes.fromhex(r["path_bytes"]): r["error"] for r in result["got"]}
    assert errors[root + b"/locked"] == "permission denied"
    assert errors[root + b"/secret"] == "permission denied"
    assert errors[root + b"/noexec/g"] == "permission denied"
    assert errors[root + b"/open/f"] is None


def test_files_vanishing_mid_walk(reachable_tmp: Path) -> None:
    root = reachable_tmp / "t"
    contents = {f"d{i % 20}/f{i}": (b"%d" % i) * (i % 700) for i in range(3000)}
    for rel, data in contents.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    doomed = sorted(contents)[::2]
    started = threading.Event()

    def delete() -> None:
        started.set()
        for rel in doomed:
            os.unlink(root / rel)

    deleter = threading.Thread(target=delete)
    deleter.start()
    started.wait()
    frame = scan_tree(root, algo="md5", threads=2)
    deleter.join()
    seen_vanished = 0
    for row in frame.filter(pl.col("type") != "dir").to_dicts():
        rel = row["path"][len(str(root)) + 1 :]
        if row["error"] is None:
            assert row["digest"] == hashlib.md5(contents[rel]).hexdigest(), rel
        else:
            assert row["error"] == "vanished during scan", row
            assert rel in doomed and row["digest"] is None
            seen_vanished += 1
    kept = set(contents) - set(doomed)
    listed = {p[len(str(root)) + 1 :] for p in frame["path"]}
    assert kept <= listed  # nothing that stayed was dropped


def test_entries_swapped_between_listing_and_open_are_consistent_rows(reachable_tmp: Path) -> None:
    """Small files are opened relative to their directory right after readdir named them: a name
    replaced in between (by a file of other content, a fifo, a symlink, a directory) or a
    directory renamed away mid-listing must give a row that is true of one of the things that
    stood there (never a digest of content the name never had, never a hang on a fifo), and the
    rest of the walk goes on."""
    root = reachable_tmp / "t"
    contents = {f"d{i % 10}/f{i}": b"v1-%d-" % i * (1 + i % 50) for i in range(600)}
    for rel, data in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    versions = {rel: {hashlib.sha256(data).hexdigest(), hashlib.sha256(b"v2" + data).hexdigest()} for rel, data in contents.items()}
    stop = threading.Event()

    def churn() -> None:
        names = sorted(contents)
        i = 0
        while not stop.is_set():
            rel = names[i % len(names)]
            path = root / rel
            spare = root / f"{rel}.new"
            kind = i % 5
            try:
                if kind == 0:
                    spare.write_bytes(b"v2" + contents[rel])
                    os.replace(spare, path)
                elif kind == 1:
                    os.unlink(path)
                    os.mkfifo(path)
                elif kind == 2:
                    os.unlink(path)
                    os.symlink("elsewhere", path)
                elif kind == 3:
                    os.unlink(path)
                    path.mkdir()
                else:
                    d = root / f"d{i % 10}"
                    os.rename(d, root / f"gone{i % 10}")
                    os.rename(root / f"gone{i % 10}", d)
            except OSError:
                pass
            i += 1

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        frames = [scan_tree(root, algo="sha256", threads=2) for _ in range(5)]
    finally:
        stop.set()
        churner.join()
    for frame in frames:
        assert frame["path_bytes"].is_unique().all()
        for row in frame.filter(pl.col("digest").is_not_null()).to_dicts():
            rel = row["path"][len(str(root)) + 1 :]
            if rel.startswith("gone"):
                rel = "d" + rel[len("gone") :]  # listed while renamed away: the same files
            assert row["type"] == "file" and row["error"] is None, row
            if rel.endswith(".new"):
                continue  # the spare file of a replacement, caught before its rename
            assert row["digest"] in versions[rel], row
        for row in frame.filter(pl.col("type") != "file").to_dicts():
            assert row["digest"] is None, row


def test_gil_is_released_during_the_walk(reachable_tmp: Path) -> None:
    root = reachable_tmp / "t"
    for i in range(40):
        (root / f"d{i}").mkdir(parents=True)
        (root / f"d{i}" / "big").write_bytes(os.urandom(2 * 1024 * 1024))
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=count)
    thread.start()
    try:
        started = time.perf_counter()
        scans = 0
        while time.perf_counter() - started < 0.5 or scans == 0:
            scan_tree(root, algo="sha1", threads=1)
            scans += 1
    finally:
        stop.set()
        thread.join()
    assert ticks > 25


def stub_signature(name: str) -> list[tuple[str, str, object]]:
    """(name, kind, default) of each parameter of ``name`` in secmon/_core.pyi."""
    import ast
    import inspect

    tree = ast.parse(Path(secmon.__file__).with_name("_core.pyi").read_text())
    func = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name)
    args = func.args
    out: list[tuple[str, str, object]] = []
    positional = args.posonlyargs + args.args
    defaults = [inspect.Parameter.empty] * (len(positional) - len(args.defaults)) + [ast.literal_eval(d) for d in args.defaults]
    for arg, default in zip(positional, defaults):
        out.append((arg.arg, "POSITIONAL_OR_KEYWORD", default))
    for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
        out.append((arg.arg, "KEYWORD_ONLY", inspect.Parameter.empty if kw_default is None else ast.literal_eval(kw_default)))
    return out


@pytest.mark.parametrize("name", ["scan_tree", "hash_bytes", "hash_file"])
def test_stub_matches_the_binary(name: str) -> None:
    import inspect

    runtime = [(p.name, p.kind.name, p.default) for p in inspect.signature(getattr(secmon._core, name)).parameters.values()]
    assert runtime == stub_signature(name)
    assert getattr(secmon._core, name).__doc__, f"{name} has no docstring"


def test_reexported_from_package() -> None:
    assert "scan_tree" in secmon.__all__ and secmon.scan_tree is secmon._core.scan_tree


@pytest.mark.slow
def test_rescan_with_nothing_changed_is_ten_times_faster(reachable_tmp: Path) -> None:
    # 256 MB in 64 files plus 2,000 small ones: the first scan reads everything, the re-scan
    # only stats. (On /usr, where most files are small, benchmarks/bench_scan_tree.py measures.)
    root = reachable_tmp / "t"
    for i in range(64):
        (root / f"big{i % 8}").mkdir(parents=True, exist_ok=True)
        (root / f"big{i % 8}" / f"f{i}").write_bytes(os.urandom(4 * 1024 * 1024))
    for i in range(2000):
        (root / f"small{i % 40}").mkdir(exist_ok=True)
        (root / f"small{i % 40}" / f"f{i}").write_bytes(b"%d" % i)
    scan_tree(root)  # warm the dentry cache for both timings alike
    first_started = time.perf_counter()
    first = scan_tree(root, algo="sha256")
    first_seconds = time.perf_counter() - first_started
    again_started = time.perf_counter()
    again = scan_tree(root, algo="sha256", previous=first)
    again_seconds = time.perf_counter() - again_started
    assert again.equals(first)
    assert first_seconds / again_seconds >= 10, (first_seconds, again_seconds)
