"""Acceptance: every mutation of a generated tree reported exactly once, with the right attributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmon.fim import Baseline, check_baseline, create_baseline, parse_config
from secmon.fim.scan import native_scan_tree
from .tree import STRICT_RULES, TOUCHED_DIRS, build_tree, mutate_tree

WALKERS = ["python", pytest.param("native", marks=pytest.mark.skipif(native_scan_tree() is None, reason="secmon._core.scan_tree not built yet"))]


def _relative(changes: list, root: Path) -> dict[str, tuple[str, frozenset[str]]]:
    prefix = str(root) + "/"
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for change in changes:
        rel = change.path.removeprefix(prefix)
        assert rel not in out, f"{rel} reported twice"
        out[rel] = (change.change, frozenset(change.attributes))
    return out


@pytest.mark.parametrize("walker", WALKERS)
def test_every_mutation_reported_once_with_its_attributes(tmp_path: Path, walker: str) -> None:
    root = tmp_path / "tree"
    build_tree(root)
    config = parse_config({"paths": [str(root)], "rules": STRICT_RULES})
    baseline, _ = create_baseline(config, walker=walker)  # type: ignore[arg-type]
    baseline.save(tmp_path / "db")
    expected = mutate_tree(root)
    result = check_baseline(Baseline.load(tmp_path / "db"), walker=walker)  # type: ignore[arg-type]
    assert _relative(result.changes, root) == expected


@pytest.mark.parametrize("walker", WALKERS)
def test_full_attributes_also_report_only_the_touched_parent_directories(tmp_path: Path, walker: str) -> None:
    root = tmp_path / "tree"
    build_tree(root)
    baseline, _ = create_baseline(parse_config({"paths": [str(root)]}), walker=walker)  # type: ignore[arg-type]
    expected = mutate_tree(root)
    got = _relative(check_baseline(baseline, walker=walker).changes, root)  # type: ignore[arg-type]
    directories = {rel: got.pop(rel) for rel in list(got) if rel in TOUCHED_DIRS}
    assert got == expected
    assert set(directories) == set(TOUCHED_DIRS)
    for rel, (change, attrs) in directories.items():
        assert change == "modified", rel
        assert {"mtime", "ctime"} <= attrs <= {"mtime", "ctime", "nlink", "size"}, (rel, attrs)


def test_nothing_changed_reports_nothing_and_reuses_digests(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    build_tree(root)
    baseline, _ = create_baseline(parse_config({"paths": [str(root)]}))
    result = check_baseline(baseline)
    assert result.changes == []
    assert result.current.select("path", "digest").equals(baseline.frame.select("path", "digest"))


def test_growing_log_may_grow_but_not_be_rewritten(tmp_path: Path) -> None:
    logs = tmp_path / "log"
    logs.mkdir()
    (logs / "app.log").write_text("line 1\n")
    (logs / "auth.log").write_text("line 1\nline 2\n")
    (logs / "short.log").write_text("0123456789\n")
    config = parse_config({"paths": [str(logs)], "rules": [{"match": "**/*.log", "attributes": "growing_log"}], "default_attributes": "directories"})
    baseline, _ = create_baseline(config)
    with open(logs / "app.log", "a") as fh:
        fh.write("line 2\n")  # appended: fine
    (logs / "auth.log").write_text("LINE 1\nline 2\nline 3\n")  # old line rewritten: tampering
    (logs / "short.log").write_text("01\n")  # truncated
    got = {Path(c.path).name: set(c.attributes) for c in check_baseline(baseline).changes}
    assert got == {"auth.log": {"content"}, "short.log": {"size", "content"}}


def test_permissions_preset_ignores_content(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    target = tmp_path / "d" / "x.log"
    target.write_text("a")
    config = parse_config({"paths": [str(tmp_path / "d")], "default_attributes": "permissions"})
    baseline, _ = create_baseline(config)
    target.write_text("completely different")
    assert check_baseline(baseline).changes == []
    target.chmod(0o666)
    assert [(c.change, c.attributes) for c in check_baseline(baseline).changes] == [("modified", ("mode",))]
