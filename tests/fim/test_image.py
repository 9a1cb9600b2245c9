"""Container images and root filesystems: layers, whiteouts, paths as seen inside the container."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from secmon.cli import main
from secmon.fim import ImageError, scan_image

Member = tuple[str, str, bytes | str | None]  # (name, kind, data or link target)


def _layer(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, str(data)
                tar.addfile(info)
            else:
                payload = data if isinstance(data, bytes) else b""
                info.size, info.mode = len(payload), 0o4755 if kind == "suid" else 0o644
                tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def write_image(path: Path, layers: list[list[Member]], gzip_layers: bool = False) -> Path:
    with tarfile.open(path, "w") as out:
        names = []
        for i, members in enumerate(layers):
            data = _layer(members)
            if gzip_layers:
                import gzip

                data = gzip.compress(data)
            name = f"blobs/sha256/{hashlib.sha256(data).hexdigest()}" if gzip_layers else f"layer{i}/layer.tar"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
            names.append(name)
        manifest = json.dumps([{"Config": "config.json", "RepoTags": ["t:1"], "Layers": names}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        out.addfile(info, io.BytesIO(manifest))
    return path


BASE: list[Member] = [
    ("etc", "dir", None),
    ("etc/passwd", "file", b"root:x:0:0::/root:/bin/sh\n"),
    ("bin", "dir", None),
    ("bin/sh", "file", b"ELF-sh"),
    ("bin/ping", "file", b"ELF-ping"),
    ("opt", "dir", None),
    ("opt/app", "dir", None),
    ("opt/app/old1", "file", b"1"),
    ("opt/app/old2", "file", b"2"),
    ("var", "dir", None),
    ("var/cache", "dir", None),
    ("var/cache/x", "file", b"x"),
    ("usr", "dir", None),
    ("usr/bin", "dir", None),
    ("usr/bin/sh", "symlink", "/bin/sh"),
]
UPDATE: list[Member] = [
    ("etc/passwd", "file", b"root:x:0:0::/root:/bin/sh\nevil:x:0:0::/:/bin/sh\n"),
    ("bin/ping", "suid", b"ELF-ping"),
    ("opt/app/.wh..wh..opq", "file", b""),
    ("opt/app/new", "file", b"n"),
    ("var/.wh.cache", "file", b""),
    ("bin/sh2", "hardlink", "bin/sh"),
]


def test_layers_apply_in_order_with_whiteouts(tmp_path: Path) -> None:
    frame = scan_image(str(write_image(tmp_path / "img.tar", [BASE, UPDATE])))
    paths = frame["path"].to_list()
    assert "/opt/app/new" in paths and "/opt/app/old1" not in paths and "/opt/app/old2" not in paths
    assert "/var/cache" not in paths and "/var/cache/x" not in paths and "/var" in paths
    rows = {r["path"]: r for r in frame.iter_rows(named=True)}
    assert rows["/bin/sh2"]["digest"] == rows["/bin/sh"]["digest"] == hashlib.sha256(b"ELF-sh").hexdigest()
    assert rows["/bin/sh2"]["size"] == rows["/bin/sh"]["size"] == 6 and rows["/bin/sh2"]["type"] == "file"
    assert rows["/bin/ping"]["mode"] == 0o104755
    assert rows["/usr/bin/sh"]["target"] == "/bin/sh"


def test_gzip_oci_layers_read_too(tmp_path: Path) -> None:
    plain = scan_image(str(write_image(tmp_path / "a.tar", [BASE, UPDATE])))
    gz = scan_image(str(write_image(tmp_path / "b.tar", [BASE, UPDATE], gzip_layers=True)))
    assert plain.equals(gz)


def test_check_image_against_baseline_of_another_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write_image(tmp_path / "old.tar", [BASE])
    new = write_image(tmp_path / "new.tar", [BASE, UPDATE])
    assert main(["fim", "baseline", "--image-tar", str(old), "--db", str(tmp_path / "db")]) == 0
    assert main(["fim", "check", "--image-tar", str(old), "--db", str(tmp_path / "db"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["fim", "check", "--image-tar", str(new), "--db", str(tmp_path / "db"), "--format", "json", "--fail-on-change"]) == 1
    got = {c["path"]: (c["change"], c["attributes"]) for c in json.loads(capsys.readouterr().out)}
    assert got == {
        "/etc/passwd": ("modified", ["content", "size"]),
        "/bin/ping": ("modified", ["mode"]),
        "/bin/sh2": ("added", []),
        "/opt/app/new": ("added", []),
        "/opt/app/old1": ("removed", []),
        "/opt/app/old2": ("removed", []),
        "/var/cache": ("removed", []),
        "/var/cache/x": ("removed", []),
    }


def test_bad_images_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(ImageError, match="not a tar archive"):
        scan_image(str(tmp_path / "junk.tar"))
    with tarfile.open(tmp_path / "nomanifest.tar", "w"):
        pass
    with pytest.raises(ImageError, match="no manifest.json"):
        scan_image(str(tmp_path / "nomanifest.tar"))
    escape = write_image(tmp_path / "escape.tar", [[("../../etc/evil", "file", b"x")]])
    with pytest.raises(ImageError, match="escapes the root filesystem"):
        scan_image(str(escape))


def _rootfs(top: Path) -> Path:
    root = top / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "tool").write_bytes(b"ELF")
    return root


def test_root_reports_paths_inside_the_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _rootfs(tmp_path)
    db = str(tmp_path / "db")
    assert main(["fim", "baseline", "/etc", "/usr/bin", "--root", str(root), "--db", db]) == 0
    (root / "usr" / "bin" / "tool").write_bytes(b"EVIL")
    assert main(["fim", "check", "--db", db, "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert [(c["path"], c["change"]) for c in changes] == [("/usr/bin/tool", "modified")]
    # Another copy of the same root filesystem: inode numbers differ, which is not a change.
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    assert main(["fim", "check", "--db", db, "--root", str(copy), "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    # (still different from the baseline in content, size and mtime; no inode, ctime or dir noise)
    assert [(c["path"], c["attributes"]) for c in changes] == [("/usr/bin/tool", ["content", "size", "mtime"])]


def test_image_checked_against_a_baseline_of_its_unpacked_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = write_image(tmp_path / "img.tar", [BASE, UPDATE])
    root = tmp_path / "rootfs"
    root.mkdir()
    with tarfile.open(image) as outer:
        manifest = json.loads(outer.extractfile("manifest.json").read())  # type: ignore[union-attr]
        for name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                for member in layer:
                    base = member.name.rsplit("/", 1)[-1]
                    target = root / member.name
                    if base == ".wh..wh..opq":
                        for child in list(target.parent.iterdir()):
                            shutil.rmtree(child) if child.is_dir() else child.unlink()
                    elif base.startswith(".wh."):
                        gone = target.parent / base[4:]
                        shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
                    else:
                        layer.extract(member, root, filter="fully_trusted")
    db = str(tmp_path / "db")
    assert main(["fim", "baseline", "/", "--root", str(root), "--db", db]) == 0
    assert main(["fim", "check", "--image-tar", str(image), "--db", db, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["fim", "check", "--image-tar", str(write_image(tmp_path / "old.tar", [BASE])), "--db", db, "--format", "json"]) == 0
    paths = {c["path"] for c in json.loads(capsys.readouterr().out)}
    assert {"/etc/passwd", "/bin/ping", "/opt/app/new", "/opt/app/old1", "/var/cache/x"} <= paths
