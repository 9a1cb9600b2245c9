"""Running AIDE (the Debian ``aide`` package) on a tree, for side-by-side tests and benchmarks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

# The same attributes secmon records: type, permissions, inode, link count, owner, group, size,
# mtime, ctime, symlink target, sha256, xattrs.
AIDE_RULE = "ftype+p+i+n+u+g+s+m+c+l+sha256+xattrs"


def aide_binary() -> str | None:
    return shutil.which("aide")


def write_aide_conf(workdir: Path, tree: Path, rule: str = AIDE_RULE) -> Path:
    conf = workdir / "aide.conf"
    # report_format must come before report_url to apply to it.
    conf.write_text(
        f"database_in=file:{workdir}/aide.db\n"
        f"database_out=file:{workdir}/aide.db.new\n"
        "gzip_dbout=no\n"
        "report_format=json\n"
        "report_url=stdout\n"
        "log_level=error\n"
        f"SECMON = {rule}\n"
        f"{tree} SECMON\n"
    )
    return conf


def aide_init(conf: Path) -> None:
    subprocess.run(["aide", "--config", str(conf), "--init"], check=True, capture_output=True)
    workdir = conf.parent
    (workdir / "aide.db.new").replace(workdir / "aide.db")


def aide_check(conf: Path) -> dict[str, set[str]]:
    """{"added": paths, "removed": paths, "changed": paths} from ``aide --check``."""
    proc = subprocess.run(["aide", "--config", str(conf), "--check"], capture_output=True, text=True)
    # Exit status is a bit mask of added(1)/removed(2)/changed(4); above 7 is an error.
    if proc.returncode > 7:
        raise RuntimeError(f"aide --check failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    return {kind: set(report.get(kind, {})) for kind in ("added", "removed", "changed")}
