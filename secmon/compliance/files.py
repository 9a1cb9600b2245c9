"""File mode and ownership facts for node and host files, read under a root directory.

Modes are integers compared bit by bit (``mode_within``), never the decimal digits of ``stat %a``:
0o640 is within 0o600's allowance only if it grants nothing 0o600 does not. Owner names come
from the root's own ``etc/passwd`` and ``etc/group`` when it has them (a mounted node image),
else from this host.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from secmon.compliance.facts import Resource


def _id_names(file: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    try:
        for line in file.read_text(errors="replace").splitlines():
            parts = line.split(":")
            if len(parts) >= 3 and parts[2].isdigit():
                names.setdefault(int(parts[2]), parts[0])
    except OSError:
        pass
    return names


class OwnerNames:
    """uid/gid -> name, preferring the scanned root's account files."""

    def __init__(self, root: Path | None) -> None:
        self.users = _id_names(root / "etc/passwd") if root else {}
        self.groups = _id_names(root / "etc/group") if root else {}

    def user(self, uid: int) -> str:
        if uid in self.users:
            return self.users[uid]
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    def group(self, gid: int) -> str:
        if gid in self.groups:
            return self.groups[gid]
        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)


def stat_doc(path: Path, shown: str, names: OwnerNames) -> dict[str, Any]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {"path": shown, "exists": False}
    user, group = names.user(st.st_uid), names.group(st.st_gid)
    return {
        "path": shown,
        "exists": True,
        "mode": stat.S_IMODE(st.st_mode),
        "type": "directory" if stat.S_ISDIR(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode) else "file",
        "uid": st.st_uid,
        "gid": st.st_gid,
        "user": user,
        "group": group,
        "owner": f"{user}:{group}",
    }


def _walk(base: Path) -> list[Path]:
    """Every file and directory under ``base``; the native walker when the core has it."""
    try:
        from secmon import _core

        scan_tree = getattr(_core, "scan_tree", None)
    except ImportError:  # pragma: no cover
        scan_tree = None
    if scan_tree is not None:
        try:
            entries = scan_tree(str(base))
            paths = [Path(getattr(e, "path", e if isinstance(e, str) else e[0])) for e in entries]
            return sorted({base, *paths})
        except Exception:  # noqa: BLE001 - an unexpected walker shape must not lose the files
            pass
    found = [base]
    for dirpath, dirnames, filenames in os.walk(base):
        for name in [*dirnames, *filenames]:
            found.append(Path(dirpath) / name)
    return sorted(found)


def file_resources(kind: str, root: Path, rel_paths: Iterable[str], trees: Iterable[str] = ()) -> list[Resource]:
    """One resource per listed path (present or not) and per entry of each listed tree."""
    names = OwnerNames(root)
    out: list[Resource] = []
    seen: set[str] = set()

    def add(rel: str) -> None:
        shown = "/" + rel.lstrip("/")
        if shown in seen:
            return
        seen.add(shown)
        out.append(Resource(kind, shown, str(root / rel.lstrip("/")), stat_doc(root / rel.lstrip("/"), shown, names)))

    for rel in rel_paths:
        add(rel)
    for tree in trees:
        base = root / tree.lstrip("/")
        if base.is_dir():
            for p in _walk(base):
                add(str(p.relative_to(root)))
    return out
