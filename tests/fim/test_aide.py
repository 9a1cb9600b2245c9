"""The same mutations through AIDE and secmon: the same set of changed paths."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from secmon.fim import check_baseline, create_baseline, parse_config
from .aide import aide_binary, aide_check, aide_init, write_aide_conf
from .tree import build_tree, mutate_tree

pytestmark = pytest.mark.skipif(aide_binary() is None, reason="AIDE is not installed (apt-get install -y aide)")


def test_changed_paths_match_aide(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    build_tree(tree)
    conf = write_aide_conf(tmp_path, tree)
    aide_init(conf)
    baseline, _ = create_baseline(parse_config({"paths": [str(tree)]}))
    time.sleep(1.1)  # AIDE keeps whole seconds: make every mutation land in a later second
    mutate_tree(tree)
    aide = aide_check(conf)
    changes = check_baseline(baseline).changes
    ours = {kind: {c.path for c in changes if c.change == name} for kind, name in (("added", "added"), ("removed", "removed"), ("changed", "modified"))}
    assert ours == aide
    assert sum(len(v) for v in ours.values()) >= 15
