"""A generated tree and a scripted set of mutations, shared by the mutation and AIDE tests."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

# relative path -> (change, attributes) that the strict policy (directories watched for ownership
# only) must report, and nothing else.
Expected = dict[str, tuple[str, frozenset[str]]]

# Directories whose entry list the mutations change (their mtime/ctime/nlink/size move with it).
TOUCHED_DIRS = ("d_create", "d_delete", "d_link", "d_hard", "d_rename", "d_dir2file")

STRICT_RULES = [{"match": "/**", "types": ["dir"], "attributes": "directories"}]


def build_tree(root: Path) -> None:
    root.mkdir()
    for name in ("d_create", "d_delete", "d_modify", "d_chmod", "d_chown", "d_touch", "d_link", "d_hard", "d_rename", "d_dir2file", "d_quiet"):
        (root / name).mkdir()
    (root / "d_delete" / "victim.txt").write_text("delete me")
    (root / "d_modify" / "same.txt").write_text("aaaa")
    (root / "d_chmod" / "f").write_text("chmod")
    (root / "d_chown" / "f").write_text("chown")
    (root / "d_touch" / "f").write_text("touch")
    os.symlink("a", root / "d_link" / "sym")
    (root / "d_hard" / "f1").write_text("one")
    (root / "d_hard" / "f2").write_text("two")
    # f2 gets its own mtime so "f1 became a link to f2" changes f1's mtime for sure.
    os.utime(root / "d_hard" / "f2", ns=(1_600_000_000_000_000_000, 1_600_000_000_123_456_789))
    (root / "d_rename" / "old").write_text("rename")
    (root / "d_dir2file" / "sub").mkdir()
    (root / "d_dir2file" / "sub" / "child.txt").write_text("child")
    quiet = root / "d_quiet"
    (quiet / "plain").write_text("nothing happens here")
    os.mkfifo(quiet / "fifo")
    os.symlink("plain", quiet / "link")
    os.symlink("loop2", quiet / "loop1")
    os.symlink("loop1", quiet / "loop2")
    with open(os.fsencode(quiet) + b"/latin1-\xe9\xff", "wb") as fh:
        fh.write(b"non-utf8 name")
    (quiet / "nested" / "deeper").mkdir(parents=True)
    (quiet / "nested" / "deeper" / "leaf").write_text("leaf")


def mutate_tree(root: Path) -> Expected:
    """Apply every mutation; return what must be reported under :data:`STRICT_RULES`."""
    # Kernel timestamps are coarse (one tick); make sure mutations land in a later tick than the scan.
    time.sleep(0.05)
    expected: Expected = {}
    (root / "d_create" / "new.txt").write_text("new")
    expected["d_create/new.txt"] = ("added", frozenset())

    (root / "d_delete" / "victim.txt").unlink()
    expected["d_delete/victim.txt"] = ("removed", frozenset())

    same = root / "d_modify" / "same.txt"
    st = same.stat()
    same.write_text("bbbb")  # same size
    os.utime(same, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored; ctime cannot be
    expected["d_modify/same.txt"] = ("modified", frozenset({"content", "ctime"}))

    os.chmod(root / "d_chmod" / "f", 0o600)
    expected["d_chmod/f"] = ("modified", frozenset({"mode", "ctime"}))

    if os.geteuid() == 0:
        os.chown(root / "d_chown" / "f", 4242, 4343)
        expected["d_chown/f"] = ("modified", frozenset({"uid", "gid", "ctime"}))

    os.utime(root / "d_touch" / "f")
    expected["d_touch/f"] = ("modified", frozenset({"mtime", "ctime"}))

    # A new symlink created beside the old one then renamed over it: a new inode for sure.
    os.symlink("bb", root / "d_link" / "sym.tmp")
    os.replace(root / "d_link" / "sym.tmp", root / "d_link" / "sym")
    expected["d_link/sym"] = ("modified", frozenset({"target", "size", "inode", "mtime", "ctime"}))

    os.link(root / "d_hard" / "f2", root / "d_hard" / "f1.tmp")
    os.replace(root / "d_hard" / "f1.tmp", root / "d_hard" / "f1")
    expected["d_hard/f1"] = ("modified", frozenset({"content", "inode", "nlink", "mtime", "ctime"}))
    expected["d_hard/f2"] = ("modified", frozenset({"nlink", "ctime"}))

    os.rename(root / "d_rename" / "old", root / "d_rename" / "new")
    expected["d_rename/old"] = ("removed", frozenset())
    expected["d_rename/new"] = ("added", frozenset())

    # The file exists before the directory goes, so it cannot reuse the directory's inode.
    (root / "d_dir2file" / "sub.tmp").write_text("now a file")
    shutil.rmtree(root / "d_dir2file" / "sub")
    os.replace(root / "d_dir2file" / "sub.tmp", root / "d_dir2file" / "sub")
    expected["d_dir2file/sub"] = ("modified", frozenset({"type", "mode", "size", "inode", "nlink", "mtime", "ctime"}))
    expected["d_dir2file/sub/child.txt"] = ("removed", frozenset())
    return expected
