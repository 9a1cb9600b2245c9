"""Compliance state across runs: one open finding per failing (check, resource), resolved on a fix.

Until ``secmon.signals`` lands, this is the persistence of compliance findings as signals
(``source:compliance``): an SQLite table keyed by (check_id, resource). A failure seen again
updates ``last_seen`` and ``run_count`` of the same open row instead of adding one; a pass (or
not_applicable) of that check on that resource resolves it; a later failure reopens it.
Resources not evaluated in a run are left as they are: absence is not evidence of a fix.

Interface: ``ComplianceStateStore(path).record(report, now=None) -> Transitions``,
``.findings(status=None) -> list[dict]`` (signal-shaped dicts), ``.close()``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from secmon.compliance.scan import ComplianceReport

_SCHEMA = """
CREATE TABLE IF NOT EXISTS compliance_findings (
    check_id    TEXT NOT NULL,
    resource    TEXT NOT NULL,
    benchmark   TEXT NOT NULL,
    title       TEXT NOT NULL,
    severity    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL,
    resolved_at TEXT,
    run_count   INTEGER NOT NULL,
    evidence    TEXT NOT NULL,
    file        TEXT NOT NULL,
    PRIMARY KEY (check_id, resource)
);
"""


@dataclass
class Transitions:
    """What one run changed: keys are (check_id, resource)."""

    opened: list[tuple[str, str]] = field(default_factory=list)
    still_open: list[tuple[str, str]] = field(default_factory=list)
    reopened: list[tuple[str, str]] = field(default_factory=list)
    resolved: list[tuple[str, str]] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def signal_id(check_id: str, resource: str) -> str:
    return hashlib.sha256(f"compliance|{check_id}|{resource}".encode()).hexdigest()[:24]


class ComplianceStateStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = sqlite3.connect(self.path)
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ComplianceStateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, report: ComplianceReport, now: str | None = None) -> Transitions:
        stamp = now or _now()
        out = Transitions()
        rows = report.results.select("check_id", "resource", "title", "severity", "status", "evidence", "file").iter_rows()
        with self.db:
            existing = {
                (c, r): s for c, r, s in self.db.execute("SELECT check_id, resource, status FROM compliance_findings WHERE benchmark = ?", (report.benchmark,))
            }
            for check_id, resource, title, severity, status, evidence, file in rows:
                key = (check_id, resource)
                before = existing.get(key)
                if status == "fail":
                    if before is None:
                        self.db.execute(
                            "INSERT INTO compliance_findings VALUES (?, ?, ?, ?, ?, 'open', ?, ?, NULL, 1, ?, ?)",
                            (check_id, resource, report.benchmark, title, severity, stamp, stamp, evidence, file),
                        )
                        out.opened.append(key)
                    elif before == "open":
                        self.db.execute(
                            "UPDATE compliance_findings SET last_seen = ?, run_count = run_count + 1, evidence = ?, severity = ?, title = ? "
                            "WHERE check_id = ? AND resource = ?",
                            (stamp, evidence, severity, title, check_id, resource),
                        )
                        out.still_open.append(key)
                    else:
                        self.db.execute(
                            "UPDATE compliance_findings SET status = 'open', resolved_at = NULL, last_seen = ?, run_count = run_count + 1, "
                            "evidence = ? WHERE check_id = ? AND resource = ?",
                            (stamp, evidence, check_id, resource),
                        )
                        out.reopened.append(key)
                    existing[key] = "open"
                elif status in ("pass", "not_applicable") and before == "open":
                    self.db.execute(
                        "UPDATE compliance_findings SET status = 'resolved', resolved_at = ?, last_seen = ? WHERE check_id = ? AND resource = ?",
                        (stamp, stamp, check_id, resource),
                    )
                    out.resolved.append(key)
                    existing[key] = "resolved"
        return out

    def findings(self, status: str | None = None) -> list[dict[str, Any]]:
        """Findings as signals (the signal JSON of DESIGN.md, ``source:compliance``)."""
        query = "SELECT check_id, resource, benchmark, title, severity, status, first_seen, last_seen, resolved_at, run_count, evidence, file FROM compliance_findings"
        args: tuple[Any, ...] = ()
        if status is not None:
            query += " WHERE status = ?"
            args = (status,)
        out: list[dict[str, Any]] = []
        for (check_id, resource, benchmark, title, severity, st, first, last, resolved_at, runs, evidence, file) in self.db.execute(query + " ORDER BY first_seen, check_id, resource", args):
            out.append(
                {
                    "id": signal_id(check_id, resource),
                    "rule_id": f"compliance-{benchmark}-{check_id}",
                    "rule_name": title,
                    "severity": severity,
                    "case": severity,
                    "group_by": {"check_id": check_id, "resource": resource},
                    "first_seen": first,
                    "last_seen": last,
                    "event_count": runs,
                    "samples": [{"source": "compliance", "evidence": evidence, "file": file}],
                    "tags": ["source:compliance", f"benchmark:{benchmark}", f"check:{check_id}"],
                    "status": "open" if st == "open" else "archived",
                    "finding_status": st,
                    "resolved_at": resolved_at,
                    "message": f"{title}: {resource} ({evidence})",
                }
            )
        return out

    def to_json(self) -> str:
        return json.dumps(self.findings(), indent=2)
