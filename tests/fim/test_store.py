"""The baseline file (secmon.fim.store): a FimTree written straight from Rust (encoded, hashed
and written part by part) against its slow twin, the same payload as bytes hashed and written
by Python, with and without an HMAC key."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon._core import FimTree
from secmon.fim import payload, store

HEADER = store.header_dict(
    created="2026-11-28T16:35:00Z", host="h", source="filesystem", algo="sha256", paths=["/"], excludes=[],
    root_dir=None, xattrs=True, follow_symlinks=False, one_file_system=False, policy={}, entries=0,
)  # fmt: skip


def _tree(n: int, seed: int) -> FimTree:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        name = f"/d{(i * seed) % 7}/f{i}".encode() + (b"\xff" if i % 11 == 0 else b"")
        rows.append({
            "path_bytes": name, "path": name.decode("utf-8", "replace"), "type": "file" if i % 3 else None,
            "size": i * seed, "mode": 0o100644, "uid": 0, "gid": None, "inode": i, "dev": 1, "nlink": 1,
            "mtime_ns": -i, "ctime_ns": i, "target": None, "digest": hashlib.sha256(name).hexdigest(),
            "error": "vanished during scan" if i % 13 == 0 else None, "xattrs": "{}" if i % 5 == 0 else None, "capabilities": None,
        })  # fmt: skip
    return FimTree.from_columns(payload.rows_to_columns(rows))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.sampled_from([0, 1, 2, 1023, 1024, 1025, 5000]),
    seed=st.integers(1, 50),
    key=st.none() | st.binary(min_size=1, max_size=200),
)
def test_tree_written_from_rust_equals_bytes_written_by_python(tmp_path: Path, n: int, seed: int, key: bytes | None) -> None:
    tree = _tree(n, seed)
    fast, slow = tmp_path / f"fast-{n}-{seed}", tmp_path / f"slow-{n}-{seed}"
    store.write(fast, HEADER, tree, key)
    store.write(slow, HEADER, tree.payload(), key)
    assert fast.read_bytes() == slow.read_bytes()
    verified = store.verify(fast, key)
    assert bytes(verified.payload) == tree.payload()
    assert verified.header["payload_bytes"] == tree.payload_length() == len(tree.payload())


def test_recorded_digest_is_sha256_or_hmac_of_header_and_payload(tmp_path: Path) -> None:
    tree = _tree(3000, 7)
    for key in (None, b"k", b"x" * 64, b"y" * 65):
        db = tmp_path / "db"
        store.write(db, HEADER, tree, key)
        first, _, body = db.read_bytes().partition(b"\n")
        want = hashlib.sha256(body).hexdigest() if key is None else hmac.new(key, body, hashlib.sha256).hexdigest()
        assert first.endswith(b"=" + want.encode())


def test_write_payload_to_a_bad_descriptor_is_an_os_error(tmp_path: Path) -> None:
    tree = _tree(10, 1)
    path = tmp_path / "ro"
    path.write_bytes(b"")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError):
            tree.write_payload(fd, b"head\n")
    finally:
        os.close(fd)
    with pytest.raises(ValueError, match="fd = -1"):
        tree.write_payload(-1, b"")


def test_a_failed_streamed_write_keeps_the_old_baseline(tmp_path: Path) -> None:
    class FullDisk:
        def payload_length(self) -> int:
            return 5

        def write_payload(self, fd: int, head: bytes, key: bytes | None = None) -> str:
            raise OSError(28, "No space left on device")

    db = tmp_path / "db"
    store.write(db, HEADER, b"old", None)
    before = db.read_bytes()
    with pytest.raises(OSError):
        store.write(db, HEADER, FullDisk(), None)  # type: ignore[arg-type]
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]
