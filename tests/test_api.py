"""The public Python API: what `import secmon` offers a batch-analysis user."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

import secmon
from secmon.signals.model import SIGNAL_SCHEMA

RULE = {
    "id": "many-failures", "name": "Many failures",
    "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@usr.name"], "aggregation": "count"}],
    "cases": [{"status": "high", "condition": "a >= 3"}],
    "options": {"evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600},
}


def rules(tmp_path: Path) -> secmon.RuleSet:
    import json

    path = tmp_path / "rule.json"
    path.write_text(json.dumps(RULE))
    return secmon.load_rules(path)


def test_public_names_are_listed_and_importable() -> None:
    for name in secmon.__all__:
        assert getattr(secmon, name) is not None, name
    assert len(secmon.default_rules()) >= 30


def test_scan_a_polars_dataframe(tmp_path: Path) -> None:
    start = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
    frame = pl.DataFrame({
        "timestamp": [start + timedelta(seconds=i) for i in range(5)],
        "usr.name": ["alice", "alice", "alice", "bob", "alice"],
        "@evt.outcome": ["failure", "failure", "failure", "failure", "success"],
    })
    signals = secmon.Engine(rules(tmp_path)).scan(frame)
    assert signals.columns == list(SIGNAL_SCHEMA)
    assert signals.schema["first_seen"] == pl.Datetime("ms", "UTC")
    assert signals.height == 1
    row = signals.row(0, named=True)
    assert row["group_by"] == '{"@usr.name":"alice"}'
    assert row["event_count"] == 3 and row["severity"] == "high"
    assert row["first_seen"] == start


def test_scan_files_and_events_agree(tmp_path: Path) -> None:
    import json

    events = [{"timestamp": 1_714_557_600_000 + i * 1000, "evt": {"outcome": "failure"}, "usr": {"name": "carol"}} for i in range(4)]
    log = tmp_path / "events.ndjson"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    engine = secmon.Engine(rules(tmp_path))
    from_file = engine.detect([log])
    from_events = engine.scan_events(events)
    assert [s.key() for s in from_file.signals] == [s.key() for s in from_events]
    assert from_file.stats.events_read == 4
    assert "4 lines read" in from_file.summary()


def test_dataframe_without_timestamp_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(secmon.InputError, match="no 'timestamp' column"):
        secmon.Engine(rules(tmp_path)).scan(pl.DataFrame({"usr.name": ["x"]}))
