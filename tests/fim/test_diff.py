"""The Polars diff against its slow twin, on random and adversarial frames and policies."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.fim.attributes import ATTRIBUTES, PRESETS
from secmon.fim.config import AttributePolicy, RuleSpec
from secmon.fim.diff import diff_frames, diff_frames_slow
from secmon.fim.scan import FRAME_SCHEMA

NAMES = [b"a", b"b", b"a.log", b"bin", b"x y", b"\xff\xfe", b"caf\xc3\xa9", b"*", b"[x]"]
TYPES = ["file", "dir", "symlink", "fifo", "unknown"]


def _paths() -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(lambda parts: b"/r/" + b"/".join(parts))


def _entry() -> st.SearchStrategy[dict[str, Any]]:
    small = st.integers(0, 3)
    return st.fixed_dictionaries(
        {
            "type": st.sampled_from(TYPES),
            "size": st.one_of(st.none(), small),
            "mode": st.one_of(st.none(), st.sampled_from([0o100644, 0o104755, 0o40755, 0o120777])),
            "uid": small,
            "gid": small,
            "inode": small,
            "dev": st.just(1),
            "nlink": small,
            "mtime_ns": small,
            "ctime_ns": small,
            "target": st.one_of(st.none(), st.sampled_from(["t", "u"])),
            "digest": st.one_of(st.none(), st.sampled_from(["d1", "d2"])),
            "error": st.one_of(st.none(), st.just("stat: Permission denied (errno 13)")),
            "xattrs": st.one_of(st.none(), st.sampled_from(['{"user.a": "1"}', '{"user.a": "2"}'])),
            "capabilities": st.none(),
        }
    )


def _frame(entries: dict[bytes, dict[str, Any]]) -> pl.DataFrame:
    rows = [{"path": k.decode("utf-8", "replace"), "path_bytes": k, **v} for k, v in sorted(entries.items())]
    return pl.DataFrame(rows, schema=FRAME_SCHEMA) if rows else pl.DataFrame(schema=FRAME_SCHEMA)


_attr_sets = st.one_of(st.sampled_from(sorted(PRESETS)), st.lists(st.sampled_from(ATTRIBUTES), unique=True, max_size=5))
_rules = st.lists(
    st.builds(
        RuleSpec,
        match=st.sampled_from(["/r/**", "*.log", "/r/a/*", "bin", "/r/**/b", "/nomatch", "\\xff*", "[[]x]"]),
        attributes=_attr_sets,
        types=st.one_of(st.none(), st.lists(st.sampled_from(["file", "dir", "symlink"]), min_size=1, unique=True)),
    ),
    max_size=4,
)


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, AttributePolicy]:
    keys = draw(st.lists(_paths(), unique=True, max_size=12))
    before = {k: draw(_entry()) for k in keys if draw(st.booleans())}
    after = {}
    for k in keys:
        if k in before and draw(st.booleans()):
            # Adversarial: mostly identical, one or two fields nudged.
            row = dict(before[k])
            for field in draw(st.lists(st.sampled_from(sorted(row)), max_size=2)):
                row[field] = draw(_entry())[field]
            after[k] = row
        elif draw(st.booleans()):
            after[k] = draw(_entry())
    policy = AttributePolicy.from_specs(draw(_rules), draw(_attr_sets))
    return _frame(before), _frame(after), policy


def _prefix_digest(path: bytes, size: int) -> str | None:
    # Deterministic stand-in for reading a file: half the growing files kept their prefix.
    return "d1" if len(path) % 2 else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_scenario())
def test_fast_diff_equals_slow_twin(scenario: tuple[pl.DataFrame, pl.DataFrame, AttributePolicy]) -> None:
    before, after, policy = scenario
    assert diff_frames(before, after, policy, _prefix_digest) == diff_frames_slow(before, after, policy, _prefix_digest)


def test_unlisted_directory_does_not_turn_its_children_into_removals() -> None:
    base = {"type": "file", "size": 1, "mode": 0o100644, "uid": 0, "gid": 0, "inode": 1, "dev": 1, "nlink": 1, "mtime_ns": 1, "ctime_ns": 1}
    before = _frame({b"/r": {**base, "type": "dir", "mode": 0o40755}, b"/r/x": base})
    after = _frame({b"/r": {**base, "type": "dir", "mode": 0o40755, "error": "reading directory: Permission denied (errno 13)"}})
    policy = AttributePolicy.everything()
    assert diff_frames(before, after, policy) == diff_frames_slow(before, after, policy) == []


def test_unstatable_entry_is_neither_removed_nor_added() -> None:
    base = {"type": "file", "size": 1, "mode": 0o100644, "uid": 0, "gid": 0, "inode": 1, "dev": 1, "nlink": 1, "mtime_ns": 1, "ctime_ns": 1}
    before = _frame({b"/r/x": base})
    after = _frame({b"/r/x": {"type": "unknown", "error": "stat: Permission denied (errno 13)"}})
    assert diff_frames(before, after, AttributePolicy.everything()) == []
    assert diff_frames(after, before, AttributePolicy.everything()) == []
