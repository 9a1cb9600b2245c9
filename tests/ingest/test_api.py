"""parse_events dispatch: paths, lines, records; and the public names."""

from __future__ import annotations

from pathlib import Path

import secmon.ingest as ingest
from secmon.ingest import IngestStats, parse_events

LINE = "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for root from 1.2.3.4 port 1 ssh2"


def test_paths_lines_and_records_give_the_same_events(tmp_path: Path) -> None:
    path = tmp_path / "auth.log"
    path.write_text(LINE + "\n")
    from_path = parse_events(path, year=2015)
    assert parse_events(str(path), year=2015) == from_path
    assert parse_events([str(path)], year=2015) == from_path
    assert parse_events([LINE], year=2015) == from_path
    assert parse_events([LINE.encode()], year=2015) == from_path
    assert parse_events(from_path) == from_path  # already events: normalization keeps them


def test_records_that_are_not_objects_or_lack_time_are_counted() -> None:
    stats = IngestStats()
    events = parse_events([{"timestamp": 1}, {"message": "no time"}], stats=stats)
    assert len(events) == 1 and stats.rejected == {"missing_timestamp": 1}


def test_empty_input() -> None:
    assert parse_events([]) == []


def test_public_names_exist() -> None:
    for name in ingest.__all__:
        assert hasattr(ingest, name), name
