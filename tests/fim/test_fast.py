"""The fast path (secmon.fim.fast + the Rust core) against its slow twins.

- payload: Rust encode/decode byte-for-byte equal to secmon.fim.payload on random rows;
- scan: fim_scan equal to the Polars pipeline (same walker) on random trees, with and without
  --root and excludes, xattrs included;
- check: the Rust diff equal to diff_frames_slow after random mutations of random trees;
- settings: the pydantic-free reading of arguments equal to the validated config;
- format 1 baselines still load and check, and --update rewrites them as format 2.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon._core import FimTree, fim_scan
from secmon.cli import main
from secmon.fim import fast, payload, store
from secmon.fim.baseline import Baseline
from secmon.fim.check import create_baseline
from secmon.fim.config import default_config, parse_config
from secmon.fim.diff import diff_frames_slow
from secmon.fim.paths import ScanSpec
from secmon.fim.policy import AttributePolicy
from secmon.fim.scan import FRAME_SCHEMA, scan
from secmon.fim.xattrs import read_xattrs

from .tree import STRICT_RULES, build_tree, mutate_tree

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]

# --- payload -----------------------------------------------------------------------------------

_opt_text = st.none() | st.text(max_size=12)
_row = st.fixed_dictionaries(
    {
        "path_bytes": st.binary(max_size=20),
        "type": st.none() | st.sampled_from(payload.TYPE_CODES),
        "size": st.none() | st.integers(0, 2**64 - 1),
        "mode": st.none() | st.integers(0, 2**32 - 1),
        "uid": st.none() | st.integers(0, 2**32 - 1),
        "gid": st.none() | st.integers(0, 2**32 - 1),
        "inode": st.none() | st.integers(0, 2**64 - 1),
        "dev": st.none() | st.integers(0, 2**64 - 1),
        "nlink": st.none() | st.integers(0, 2**64 - 1),
        "mtime_ns": st.none() | st.integers(-(2**63), 2**63 - 1),
        "ctime_ns": st.none() | st.integers(-(2**63), 2**63 - 1),
        "target": _opt_text,
        "digest": _opt_text,
        "error": _opt_text,
        "xattrs": _opt_text,
        "capabilities": _opt_text,
        "path_override": st.none() | st.text(max_size=8),
    }
)


def _finish(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    override = row.pop("path_override")
    row["path"] = override if override is not None else row["path_bytes"].decode("utf-8", "replace")
    return row


@settings(max_examples=200, deadline=None)
@given(st.lists(_row, max_size=8))
def test_rust_payload_equals_python_twin(raw_rows: list[dict[str, Any]]) -> None:
    rows = [_finish(r) for r in raw_rows]
    columns = payload.rows_to_columns(rows)
    data = FimTree.from_columns(columns).payload()
    assert data == payload.encode_rows(rows)
    assert payload.decode_rows(data) == rows
    assert FimTree.decode(data).columns() == columns


@given(st.lists(_row, min_size=1, max_size=4), st.data())
@settings(max_examples=100, deadline=None)
def test_malformed_payload_is_a_value_error_never_a_crash(raw_rows: list[dict[str, Any]], data: st.DataObject) -> None:
    encoded = FimTree.from_columns(payload.rows_to_columns([_finish(r) for r in raw_rows])).payload()
    cut = data.draw(st.integers(1, len(encoded) - 1))
    try:
        FimTree.decode(encoded[:cut])
    except ValueError as exc:
        assert str(exc).startswith("baseline payload row ")
    try:
        FimTree.decode(encoded[:cut] + data.draw(st.binary(min_size=1, max_size=6)))
    except ValueError as exc:
        assert str(exc).startswith("baseline payload row ")


def test_from_columns_names_bad_input() -> None:
    good = payload.rows_to_columns([_finish({**{k: None for k in payload.COLUMNS}, "path_bytes": b"/a", "path_override": None})])
    with pytest.raises(ValueError, match='type "folder" is not an entry type'):
        FimTree.from_columns({**good, "type": ["folder"]})
    with pytest.raises(ValueError, match='columns has no "digest"'):
        FimTree.from_columns({k: v for k, v in good.items() if k != "digest"})
    with pytest.raises(ValueError, match='column "size" has 2 values'):
        FimTree.from_columns({**good, "size": [1, 2]})


# --- scan --------------------------------------------------------------------------------------

_names = st.sampled_from(["a", "b", "c.swp", "d", "é", "x y", "keep"])
_tree = st.lists(st.tuples(st.lists(_names, min_size=1, max_size=3), st.sampled_from(["file", "dir", "symlink", "fifo", "big", "xattr"])), max_size=14)


def _make(root: Path, spec: list[tuple[list[str], str]], seed: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, (parts, kind) in enumerate(spec):
        path = root.joinpath(*parts)
        if path.exists() or path.is_symlink():
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            continue
        if kind == "dir":
            path.mkdir()
        elif kind == "symlink":
            os.symlink(f"target-{i}", path)
        elif kind == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(os.urandom(300_000 if kind == "big" else (i * 37 + seed) % 200))
            if kind == "xattr":
                try:
                    os.setxattr(path, "user.secmon", f"v{i}\n".encode() if i % 2 else b"text", follow_symlinks=False)
                except OSError:
                    pass  # a filesystem without user xattrs: the row is still compared


def _fast_frame(spec: ScanSpec, previous: FimTree | None = None) -> pl.DataFrame:
    tree, _ = fast.scan(spec, previous)
    return pl.DataFrame(tree.columns(), schema=FRAME_SCHEMA)


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW)
@given(entries=_tree, excludes=st.sampled_from([(), ("*.swp",), ("/**/d",), ("keep/*",)]), with_root=st.booleans())
def test_fast_scan_equals_polars_pipeline(tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[list[str], str]], excludes: tuple[str, ...], with_root: bool) -> None:
    top = tmp_path_factory.mktemp("scan")
    _make(top / "t", entries)
    if with_root:
        spec = ScanSpec(paths=("/t",), excludes=excludes, root_dir=str(top))
    else:
        spec = ScanSpec(paths=(str(top / "t"),), excludes=excludes)
    slow = scan(spec, walker="native").frame
    assert _fast_frame(spec).equals(slow)
    # A re-scan reusing digests and xattrs is still the same.
    previous = FimTree.from_columns(slow.to_dict(as_series=False))
    assert _fast_frame(spec, previous).equals(scan(spec, previous=slow, walker="native").frame)


def test_fast_xattrs_equal_python_reader(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    values = [b"plain", b"nul\0inside", b"\xff\xfe", "é ü\u00a0".encode(), b"hex:abc", b"tab\there", b""]
    try:
        for i, value in enumerate(values):
            os.setxattr(target, f"user.v{i}", value)
    except OSError as exc:
        pytest.skip(f"this filesystem has no user xattrs ({exc})")
    tree = fim_scan([os.fsencode(target)])
    got = dict(zip(tree.columns()["path"], tree.columns()["xattrs"], strict=True))[str(target)]
    assert got == read_xattrs(os.fsencode(target))[0]
    assert json.loads(got)["user.v1"] == "hex:6e756c00696e73696465"


def test_xattrs_read_through_walk_descriptors_equal_python_reader(tmp_path: Path) -> None:
    """The walker reads xattrs through what it holds: the hashed file's descriptor (small files
    hashed during the listing, a big one and a hard-linked pair hashed later), the listed
    directory's descriptor (the root and a subdirectory), and by name relative to the parent
    (symlinks, fifos, files it did not open). Every row equals the path-based Python reader."""
    root = tmp_path / "t"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "small").write_bytes(b"abc")
    (root / "sub" / "big").write_bytes(os.urandom(1_100_000))
    (root / "linked").write_bytes(b"twice")
    os.link(root / "linked", root / "sub" / "linked2")
    os.mkfifo(root / "fifo")
    os.symlink("small", root / "link")
    os.symlink("sub", root / "dirlink")
    (root / "locked").write_bytes(b"no read")
    (root / "locked").chmod(0)
    try:
        for i, path in enumerate([root, root / "sub", root / "sub" / "deeper", root / "small", root / "sub" / "big", root / "linked", root / "locked"]):
            os.setxattr(path, f"user.k{i}", f"value {i}".encode())
    except OSError as exc:
        pytest.skip(f"this filesystem has no user xattrs ({exc})")
    # A capability on a file; trusted.* on a symlink and a fifo (user.* is not allowed there)
    # where we may (root).
    cap = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")  # cap_net_raw=ep
    for path, name, value in [(root / "small", "security.capability", cap), (root / "link", "trusted.secmon", b"on a link"), (root / "fifo", "trusted.secmon", b"\x00")]:
        try:
            os.setxattr(path, name, value, follow_symlinks=False)
        except OSError:
            pass
    for follow in (False, True):
        for algo in ("sha256", "md5", None):
            tree = fim_scan([os.fsencode(root)], algo=algo, xattrs=True, follow_symlinks=follow)
            columns = tree.columns()
            for path_bytes, xattrs, capabilities, error in zip(
                columns["path_bytes"], columns["xattrs"], columns["capabilities"], columns["error"], strict=True
            ):
                want = read_xattrs(path_bytes)
                assert (xattrs, capabilities) == want[:2], (path_bytes, algo, follow)
                assert want[2] is None or error is not None, (path_bytes, error)
            by_path = dict(zip(columns["path_bytes"], columns["xattrs"], strict=True))
            assert json.loads(by_path[os.fsencode(root / "sub" / "big")]) == {"user.k4": "value 4"}


# --- check: mutations --------------------------------------------------------------------------

_mutation = st.sampled_from(["write_same_size", "append", "chmod", "touch", "delete", "create", "rename", "symlink", "dir2file", "hardlink", "xattr", "nothing"])


def _mutate(root: Path, kind: str, n: int) -> None:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    dirs = sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())
    pick = files[n % len(files)] if files else None
    if kind == "create":
        (root / f"new{n}").write_text("new")
    elif pick is None or kind == "nothing":
        return
    elif kind == "write_same_size":
        st_ = pick.stat()
        pick.write_bytes(bytes(b ^ 1 for b in pick.read_bytes()))
        os.utime(pick, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    elif kind == "append":
        with pick.open("ab") as fh:
            fh.write(b"more")
    elif kind == "chmod":
        pick.chmod(0o600 if pick.stat().st_mode & 0o777 != 0o600 else 0o644)
    elif kind == "touch":
        os.utime(pick, ns=(1, 1_234_567_890_123_456_789))
    elif kind == "delete":
        pick.unlink()
    elif kind == "rename":
        pick.rename(pick.with_name(pick.name + ".moved"))
    elif kind == "symlink":
        pick.unlink()
        os.symlink("elsewhere", pick)
    elif kind == "hardlink" and len(files) > 1:
        other = files[(n + 1) % len(files)]
        tmp = pick.with_name(pick.name + ".tmp")
        os.link(other, tmp)
        os.replace(tmp, pick)
    elif kind == "xattr":
        try:
            os.setxattr(pick, "user.mut", str(n).encode())
        except OSError:
            pick.chmod(0o640)
    elif kind == "dir2file" and dirs:
        d = dirs[n % len(dirs)]
        shutil.rmtree(d)
        d.write_text("was a directory")


def _json(changes: list[Any]) -> list[dict[str, Any]]:
    return [c.to_json() for c in changes]


_policies = st.sampled_from(
    [
        {},
        {"rules": STRICT_RULES},
        {"rules": [{"match": "*.moved", "attributes": "permissions"}, {"match": "/**", "types": ["dir"], "attributes": "directories"}]},
        {"rules": [{"match": "/**", "types": ["file"], "attributes": "growing_log"}]},
        {"default_attributes": "binaries"},
    ]
)


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(entries=_tree, mutations=st.lists(st.tuples(_mutation, st.integers(0, 50)), max_size=4), config=_policies)
def test_fast_check_equals_slow_twin_after_random_mutations(
    tmp_path_factory: pytest.TempPathFactory, entries: list[tuple[list[str], str]], mutations: list[tuple[str, int]], config: dict[str, Any]
) -> None:
    top = tmp_path_factory.mktemp("mut")
    root = top / "t"
    _make(root, entries)
    parsed = parse_config({"paths": [str(root)], **config})
    baseline, _ = create_baseline(parsed, walker="python")
    before = FimTree.from_columns(baseline.frame.to_dict(as_series=False))
    time.sleep(0.01)  # later than the scan's timestamps
    for kind, n in mutations:
        _mutate(root, kind, n)
    spec = ScanSpec(paths=(str(root),), algo="sha256")
    after, _ = fast.scan(spec, previous=before)
    policy = parsed.policy()
    fast_changes = fast.diff(before, after, policy, None, "sha256")
    after_frame = scan(spec, walker="python").frame
    from secmon.fim.check import prefix_reader

    slow_changes = diff_frames_slow(baseline.frame, after_frame, policy, prefix_reader(None, "sha256"))
    assert _json(fast_changes) == _json(slow_changes)
    paths = [c.path for c in fast_changes]
    assert len(paths) == len(set(paths))


def test_cli_mutation_acceptance_on_the_fast_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "tree"
    build_tree(root)
    config = tmp_path / "fim.yaml"
    config.write_text(json.dumps({"paths": [str(root)], "rules": STRICT_RULES}))
    db = str(tmp_path / "db")
    assert main(["fim", "baseline", "--config", str(config), "--db", db]) == 0
    capsys.readouterr()
    assert store.verify(db).version == store.FORMAT_VERSION
    expected = mutate_tree(root)
    assert main(["fim", "check", "--db", db, "--format", "json"]) == 0
    fast_report = json.loads(capsys.readouterr().out)
    assert main(["fim", "check", "--db", db, "--format", "json", "--walker", "python"]) == 0
    slow_report = json.loads(capsys.readouterr().out)
    assert fast_report == slow_report
    got = {c["path"].removeprefix(str(root) + "/"): (c["change"], frozenset(c["attributes"])) for c in fast_report}
    assert got == expected


# --- settings ----------------------------------------------------------------------------------


def _args(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"paths": [], "config": None, "hash": None, "exclude": [], "image_tar": None, **kw})


def test_light_settings_equal_the_validated_config() -> None:
    validated = default_config()
    light = fast.light_settings(_args())
    assert light is not None
    assert (light.paths, light.algo, light.excludes, light.policy, light.missing_ok) == (
        validated.paths, validated.hash, validated.exclude, validated.policy(), True,
    )  # fmt: skip
    light = fast.light_settings(_args(paths=["/etc"], hash="none", exclude=["*.bak"]))
    assert light is not None
    assert (light.paths, light.algo, light.excludes, light.policy) == (["/etc"], None, ["*.bak"], AttributePolicy.from_specs([], "full"))
    # Anything the validating path would refuse is left to it (and its error message).
    assert fast.light_settings(_args(paths=["relative"])) is None
    assert fast.light_settings(_args(paths=["/etc"], exclude=["[z-a]"])) is None


def test_relative_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fim", "baseline", "relative/path", "--db", str(tmp_path / "db")]) == 2
    assert "must be absolute" in capsys.readouterr().err


# --- format 1 ----------------------------------------------------------------------------------


def _write_format_1(path: Path, baseline: Baseline) -> None:
    buffer = io.BytesIO()
    baseline.frame.select(list(FRAME_SCHEMA)).write_parquet(buffer, compression="zstd")
    header = {**baseline.header(), "version": 1}
    store.write(path, header, buffer.getvalue(), None, version=1)


def test_format_1_baseline_still_loads_checks_and_updates_to_format_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "tree"
    build_tree(root)
    baseline, _ = create_baseline(parse_config({"paths": [str(root)]}))
    db = tmp_path / "db"
    _write_format_1(db, baseline)
    assert store.verify(db).version == 1
    assert Baseline.load(db).frame.equals(baseline.frame)
    (root / "d_chmod" / "f").chmod(0o600)
    assert main(["fim", "check", "--db", str(db), "--format", "json", "--update"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [c["path"] for c in report] == [f"{root}/d_chmod/f"]
    assert store.verify(db).version == 2
    assert main(["fim", "check", "--db", str(db), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_unknown_format_version_says_re_create(tmp_path: Path) -> None:
    db = tmp_path / "db"
    db.write_bytes(b"SECMON-FIM-BASELINE 9 sha256=00\n{}\n")
    with pytest.raises(Exception, match="re-create the baseline"):
        store.verify(db)


def test_fast_check_does_not_import_polars_or_pydantic(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "tree"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_text("x")
    db = tmp_path / "db"
    code = (
        "import sys; from secmon.cli import main;"
        f"rc = main(['fim', 'baseline', {str(root)!r}, '--db', {str(db)!r}]);"
        f"rc += main(['fim', 'check', '--db', {str(db)!r}, '--format', 'json']);"
        "heavy = [m for m in ('polars', 'pydantic', 'yaml') if m in sys.modules];"
        "print(heavy); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]", out
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
