"""Shared fixtures for the ingest tests: the real datasets, read in place; the prefilter promise check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secmon.ingest.base import LogFormat

DATASETS = Path(__file__).parents[2] / ".." / "shared" / "datasets"


@pytest.fixture
def dataset() -> Callable[[str], Path]:
    """``dataset("loghub/OpenSSH/OpenSSH_2k.log")``: the path, or skip when it is absent."""

    def find(relative: str) -> Path:
        path = DATASETS / relative
        if not path.exists():
            pytest.skip(f"dataset {relative} not found at {path} (the shared datasets are not mounted)")
        return path

    return find


def leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every scalar of an event; lists, floats and nulls are left out (their
    text is not what the raw line holds)."""
    if isinstance(node, dict):
        return [leaf for key, value in node.items() for leaf in leaves(value, f"{prefix}{key}.")]
    return [] if isinstance(node, (list, float)) or node is None else [(prefix[:-1], node)]


def promises_checked(fmt: LogFormat, line: str, event: dict[str, Any]) -> int:
    """Assert that for every value of ``event`` (parsed from ``line``) one of the literals ``fmt``
    promises the prefilter occurs in the line, ASCII case-insensitively; how many values had one."""
    checked = 0
    for name, value in leaves(event):
        literals = fmt.implied_literals(name, str(value))
        if literals is not None:
            checked += 1
            assert any(lit.lower() in line.lower() for lit in literals), (fmt.name, name, value, line)
    return checked


def same_signals_with_and_without_prefilter(rules: list[Any], path: Path, **engine_options: Any) -> Any:
    """Detect over ``path`` with the prefilter and without it (small chunks, so several chunks
    and lines split across reads are exercised); assert both give the same signals, and return
    the prefiltered run's result."""
    from secmon import Engine

    engine_options.setdefault("chunk_bytes", 4096)
    fast = Engine(rules, **engine_options).detect([path])
    plain = Engine(rules, prefilter=False, **engine_options).detect([path])
    assert sorted(s.key() for s in fast.signals) == sorted(s.key() for s in plain.signals)
    return fast


def count_rule(rule_id: str, query: str, group_by: str, at_least: int, *, window: int = 60, status: str = "medium") -> Any:
    """A one-query rule: ``at_least`` events matching ``query`` per ``group_by`` value within
    ``window`` seconds (the format tests' rule over their own attributes)."""
    from secmon.rules.loader import rule_from_dict

    return rule_from_dict({
        "id": rule_id, "name": rule_id,
        "queries": [{"query": query, "groupByFields": [group_by]}],
        "cases": [{"status": status, "condition": f"a >= {at_least}"}],
        "options": {"evaluationWindow": window, "keepAlive": 300, "maxSignalDuration": 3600},
    })
