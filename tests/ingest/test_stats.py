"""IngestStats: summary line, JSON form, merging per-worker counts."""

from __future__ import annotations

import json
from collections import Counter

from secmon.ingest import IngestStats, parse_lines


def test_summary_json_and_merge() -> None:
    first, second = IngestStats(), IngestStats()
    parse_lines(['{"timestamp": 1}', "", "oops"], format="ndjson", stats=first, name="a.jsonl")
    parse_lines(['{"timestamp": 2}', '{"x": 1}'] + ["bad"] * 7, format="ndjson", stats=second, name="b.jsonl")
    assert first.summary() == "1 events read, 1 rejected: malformed_json=1"
    first.merge(second)
    assert first.summary() == "2 events read, 9 rejected: malformed_json=8, missing_timestamp=1"
    assert first.lines_read == 3 + 9 and first.blank_lines == 1
    assert len(first.examples["malformed_json"]) == 5  # the first few per reason, not all
    document = json.loads(json.dumps(first.to_json()))
    assert document["rejected"] == {"malformed_json": 8, "missing_timestamp": 1}
    assert document["files"]["b.jsonl"] == {"lines": 9, "bytes": second.bytes_read, "events": 1, "rejected": 8}
    assert document["examples"]["missing_timestamp"] == ["b.jsonl:2: no date attribute (none of Datadog's 8, e.g. "
                                                         "timestamp, @timestamp, date; nor of 32 date fields of known "
                                                         "sources, e.g. published, time, created_at)"]
    assert Counter(document["rejected"]) == first.rejected
