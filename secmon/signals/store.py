"""The embedded signal store (SQLite).

Signal ids are deterministic, so storing the same scan twice updates rows instead of duplicating
them; a signal's triage status survives re-scans. A PostgreSQL store for several servers will
implement the same methods.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from secmon.errors import SecmonError, UnknownNameError
from secmon.signals.model import SIGNAL_STATUSES, Signal, sample_events

SCHEMA = """
CREATE TABLE IF NOT EXISTS signals (
    id TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    rule_name TEXT NOT NULL,
    severity TEXT NOT NULL,
    case_name TEXT NOT NULL,
    group_by TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    samples TEXT NOT NULL,
    tags TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    message TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS signals_by_time ON signals(first_seen);
CREATE INDEX IF NOT EXISTS signals_by_rule ON signals(rule_id);
"""


class SignalStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._db = sqlite3.connect(self.path)
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise SecmonError(f"{self.path}: not a secmon signal store ({exc})") from None

    def __enter__(self) -> SignalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def upsert(self, signals: Iterable[Signal]) -> int:
        """Insert new signals, refresh known ones (keeping their triage status); returns the count."""
        now = int(time.time() * 1000)
        rows = [
            (s.id, s.rule_id, s.rule_name, s.severity, s.case, json.dumps(s.group_by, sort_keys=True), s.first_seen_ms,
             s.last_seen_ms, s.event_count, orjson.dumps(sample_events(s)).decode(), json.dumps(s.tags), s.status, s.message, now)
            for s in signals
        ]
        with self._db:
            self._db.executemany(
                """INSERT INTO signals VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(id) DO UPDATE SET severity=excluded.severity, case_name=excluded.case_name,
                   last_seen=excluded.last_seen, event_count=excluded.event_count, samples=excluded.samples,
                   message=excluded.message, updated_at=excluded.updated_at""",
                rows,
            )
        return len(rows)

    def signals(self, *, status: str | None = None, rule_id: str | None = None, limit: int | None = None) -> list[Signal]:
        sql = "SELECT * FROM signals"
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if rule_id:
            clauses.append("rule_id = ?")
            params.append(rule_id)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY first_seen, rule_id, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_row_to_signal(row) for row in self._db.execute(sql, params)]

    def get(self, signal_id: str) -> Signal:
        row = self._db.execute("SELECT * FROM signals WHERE id = ?", (signal_id,)).fetchone()
        if row is None:
            raise UnknownNameError(f"no signal with id {signal_id!r} in {self.path}")
        return _row_to_signal(row)

    def triage(self, signal_id: str, status: str) -> Signal:
        if status not in SIGNAL_STATUSES:
            raise SecmonError(f"unknown status {status!r}; valid: {', '.join(SIGNAL_STATUSES)}")
        self.get(signal_id)
        with self._db:
            self._db.execute("UPDATE signals SET status = ?, updated_at = ? WHERE id = ?",
                             (status, int(time.time() * 1000), signal_id))
        return self.get(signal_id)


def _row_to_signal(row: Any) -> Signal:
    (sid, rule_id, rule_name, severity, case, group_by, first, last, count, samples, tags, status, message, _) = row
    return Signal(rule_id, rule_name, severity, case, json.loads(group_by), first, last, count, json.loads(samples),
                  json.loads(tags), message, status, sid)
