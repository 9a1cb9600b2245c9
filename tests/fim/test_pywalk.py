"""The native walker against its Python twin, and the scan's robustness on awkward trees."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import sys
from pathlib import Path

import numpy  # noqa: F401  (imported before dropping privileges: the stdlib lives under /root)
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.fim import pywalk
from secmon.fim.scan import ScanSpec, native_scan_tree, scan, walker_exclude_globs
from .tree import build_tree

native = native_scan_tree()
needs_native = pytest.mark.skipif(native is None, reason="secmon._core.scan_tree not built yet")

NAME = st.sampled_from(["a", "b", "c.log", "d.swp", "é", "x y", "sub"])
EXCLUDES = st.lists(st.sampled_from(["*.swp", "sub", "/nowhere/**", "c.*", "*.log"]), max_size=2, unique=True)


@st.composite
def _tree_spec(draw: st.DrawFn) -> list[tuple[str, str]]:
    """(relative path, kind) entries; kinds: file, dir, symlink, fifo, empty."""
    entries: list[tuple[str, str]] = []
    dirs = [""]
    for _ in range(draw(st.integers(1, 14))):
        parent = draw(st.sampled_from(dirs))
        name = draw(NAME)
        rel = f"{parent}/{name}" if parent else name
        if any(rel == e[0] or rel.startswith(e[0] + "/") for e in entries):
            continue
        kind = draw(st.sampled_from(["file", "dir", "symlink", "fifo", "empty", "bigfile"]))
        entries.append((rel, kind))
        if kind == "dir":
            dirs.append(rel)
    return entries


def _materialize(root: Path, entries: list[tuple[str, str]]) -> None:
    root.mkdir()
    for rel, kind in entries:
        path = root / rel
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text(f"content of {rel}")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "bigfile":
            path.write_bytes(os.urandom(300_000))  # past the core's inline-hash size
        elif kind == "symlink":
            os.symlink("../" + rel, path)
        elif kind == "fifo":
            os.mkfifo(path)


@needs_native
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(entries=_tree_spec(), excludes=EXCLUDES, algo=st.sampled_from(["sha256", "md5", "sha1", None]))
def test_native_walker_equals_python_twin(tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[str, str]], excludes: list[str], algo: str | None) -> None:
    root = tmp_path_factory.mktemp("walk") / "t"
    _materialize(root, entries)
    assert native is not None
    globs = walker_exclude_globs(excludes)
    fast = native([str(root)], algo=algo, excludes=globs).sort("path_bytes")
    slow = pywalk.scan_tree([str(root)], algo=algo, excludes=globs).sort("path_bytes")
    assert fast.columns == slow.columns == list(pywalk.SCAN_SCHEMA)
    assert fast.equals(slow), (fast, slow)
    both = [scan(ScanSpec((str(root),), algo=algo, excludes=tuple(excludes)), walker=w).frame for w in ("native", "python")]
    assert both[0].equals(both[1])


@pytest.mark.parametrize("walker", ["python", pytest.param("native", marks=needs_native)])
def test_previous_digests_are_reused_only_when_metadata_matches(tmp_path: Path, walker: str) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "f").write_text("abc")
    first = scan(ScanSpec((str(tmp_path / "t"),)), walker=walker).frame  # type: ignore[arg-type]
    # A forged previous digest is kept while metadata matches: proof the file was not re-read.
    forged = first.with_columns(pl.when(pl.col("type") == "file").then(pl.lit("f" * 64)).otherwise(pl.col("digest")).alias("digest"))
    again = scan(ScanSpec((str(tmp_path / "t"),)), previous=forged, walker=walker).frame  # type: ignore[arg-type]
    assert again.filter(pl.col("type") == "file")["digest"].to_list() == ["f" * 64]
    os.chmod(tmp_path / "t" / "f", 0o600)  # ctime and mode move: read again
    third = scan(ScanSpec((str(tmp_path / "t"),)), previous=forged, walker=walker).frame  # type: ignore[arg-type]
    assert third.filter(pl.col("type") == "file")["digest"].to_list() == [pywalk.hash_file(tmp_path / "t" / "f", "sha256")]


@pytest.mark.parametrize("walker", ["python", pytest.param("native", marks=needs_native)])
def test_awkward_tree_scans_without_reading_special_files(tmp_path: Path, walker: str) -> None:
    build_tree(tmp_path / "tree")
    frame = scan(ScanSpec((str(tmp_path / "tree"),)), walker=walker).frame  # type: ignore[arg-type]
    kinds = dict(zip(frame["path"].to_list(), frame["type"].to_list(), strict=True))
    quiet = str(tmp_path / "tree" / "d_quiet")
    assert kinds[f"{quiet}/fifo"] == "fifo"  # listed, never opened (opening would block)
    assert kinds[f"{quiet}/loop1"] == "symlink"
    assert kinds[f"{quiet}/latin1-\ufffd\ufffd"] == "file"
    raw = frame.filter(pl.col("path_bytes") == os.fsencode(quiet) + b"/latin1-\xe9\xff")
    assert raw.height == 1 and raw["digest"][0] == pywalk.hash_file(os.fsencode(quiet) + b"/latin1-\xe9\xff", "sha256")
    assert frame["error"].null_count() == frame.height


@pytest.mark.parametrize("walker", ["python", pytest.param("native", marks=needs_native)])
def test_symlink_loops_with_follow_symlinks_are_reported_not_followed_forever(tmp_path: Path, walker: str) -> None:
    (tmp_path / "t" / "a").mkdir(parents=True)
    os.symlink("..", tmp_path / "t" / "a" / "up")
    os.symlink("self", tmp_path / "t" / "self")
    spec = ScanSpec((str(tmp_path / "t"),), follow_symlinks=True)
    frame = scan(spec, walker=walker).frame  # type: ignore[arg-type]
    errors = dict(frame.filter(pl.col("error").is_not_null()).select("path", "error").iter_rows())
    assert any("loop" in e for e in errors.values()), errors
    assert f"{tmp_path}/t/self" in errors


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged effective uid")
@pytest.mark.parametrize("walker", ["python", pytest.param("native", marks=needs_native)])
def test_permission_denied_is_reported_and_the_scan_goes_on(walker: str) -> None:
    top = Path(tempfile.mkdtemp(prefix="secmon-fim-perm-"))  # pytest's tmp dirs are 0700 to others
    try:
        os.chmod(top, 0o755)
        tree = top / "t"
        (tree / "closed").mkdir(parents=True)
        (tree / "closed" / "hidden").write_text("x")
        (tree / "secret").write_text("s")
        (tree / "open").write_text("o")
        os.chmod(tree, 0o755)
        os.chmod(tree / "closed", 0o700)
        os.chmod(tree / "secret", 0o600)
        # Effective uid only (glibc applies it to every thread), so root comes back afterwards.
        os.setegid(65534)
        os.seteuid(65534)
        try:
            frame = scan(ScanSpec((str(tree),), xattrs=False), walker=walker).frame  # type: ignore[arg-type]
        finally:
            os.seteuid(0)
            os.setegid(0)
        rows = {p: (e, d) for p, e, d in frame.select("path", "error", "digest").iter_rows()}
        assert rows[f"{tree}/open"][1] is not None
        assert "permission denied" in rows[f"{tree}/secret"][0].lower() and rows[f"{tree}/secret"][1] is None
        assert "permission denied" in rows[f"{tree}/closed"][0].lower()
        assert f"{tree}/closed/hidden" not in rows
    finally:
        shutil.rmtree(top)


def test_huge_file_is_hashed_in_fixed_memory(tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as fh:
        fh.truncate(512 << 20)  # sparse: 512 MiB of zeros without using the disk
    code = (
        "import resource, sys; from secmon.fim.pywalk import hash_file;"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss;"
        f"d = hash_file({str(big)!r}, 'sha256');"
        "print(d, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    digest, growth_kib = out.stdout.split()
    import hashlib

    expected = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(512):
        expected.update(zeros)
    assert digest == expected.hexdigest()
    assert int(growth_kib) < 16 * 1024  # hashing 512 MiB grew the process by less than 16 MiB


def test_xattr_change_is_seen_even_when_previous_values_are_reused(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    f = tmp_path / "t" / "f"
    f.write_text("x")
    try:
        os.setxattr(f, "user.secmon", b"one")
    except OSError as exc:
        pytest.skip(f"no user xattrs on this filesystem: {exc}")
    first = scan(ScanSpec((str(tmp_path / "t"),))).frame
    assert '"user.secmon": "one"' in first.filter(pl.col("type") == "file")["xattrs"][0]
    os.setxattr(f, "user.secmon", b"two")  # bumps ctime, so the entry is read again
    again = scan(ScanSpec((str(tmp_path / "t"),)), previous=first).frame
    assert '"user.secmon": "two"' in again.filter(pl.col("type") == "file")["xattrs"][0]


def test_capability_decoding() -> None:
    from secmon.fim.xattrs import decode_capability

    # cap_net_raw (13) + cap_net_bind_service (10), effective and permitted, revision 2.
    value = (0x02000001).to_bytes(4, "little") + ((1 << 13) | (1 << 10)).to_bytes(4, "little") + bytes(12)
    assert decode_capability(value) == "cap_net_bind_service,cap_net_raw=ep"
    with pytest.raises(ValueError, match="revision 2 is 8 bytes; 20 expected"):
        decode_capability(value[:8])


@pytest.mark.parametrize("walker", ["python", pytest.param("native", marks=needs_native)])
def test_entries_vanishing_and_appearing_mid_scan_never_stop_the_scan(tmp_path: Path, walker: str) -> None:
    import threading

    tree = tmp_path / "t"
    for d in range(20):
        (tree / f"d{d}").mkdir(parents=True)
        for f in range(20):
            (tree / f"d{d}" / f"f{f}").write_text("x" * f)
    stop = threading.Event()

    def churn() -> None:
        i = 0
        while not stop.is_set():
            d = tree / f"d{i % 20}"
            victim = d / f"f{i % 20}"
            try:
                victim.unlink()
                shutil.rmtree(tree / f"new{(i - 1) % 5}", ignore_errors=True)
                (tree / f"new{i % 5}" / "x").mkdir(parents=True, exist_ok=True)
                victim.write_text("back")
            except OSError:
                pass
            i += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(5):
            frame = scan(ScanSpec((str(tree),)), walker=walker).frame  # type: ignore[arg-type]
            # Every row is either a stat-ed entry or says why it is not.
            assert frame.filter(pl.col("mode").is_null() & pl.col("error").is_null()).height == 0
            assert frame.filter(pl.col("path") == str(tree)).height == 1
    finally:
        stop.set()
        thread.join()
