"""The compliance state store: one finding per failing (check, resource), resolved on a fix."""

from __future__ import annotations

from pathlib import Path

from secmon.compliance import ComplianceStateStore, scan_k8s

BAD = "kind: Pod\nmetadata: {name: p}\nspec: {hostPID: true, containers: [{name: c, image: x:1}]}\n"
FIXED = "kind: Pod\nmetadata: {name: p}\nspec: {hostPID: false, containers: [{name: c, image: x:1}]}\n"


def test_open_persist_resolve_reopen(tmp_path: Path) -> None:
    f = tmp_path / "pod.yaml"
    db = tmp_path / "state.db"
    key = ("5.2.3", "Pod/p")
    f.write_text(BAD)
    with ComplianceStateStore(db) as store:
        t1 = store.record(scan_k8s([str(f)]), now="2026-01-01T00:00:00Z")
        assert key in t1.opened
        t2 = store.record(scan_k8s([str(f)]), now="2026-01-02T00:00:00Z")
        assert key in t2.still_open and not t2.opened
        signals = [s for s in store.findings("open") if s["group_by"] == {"check_id": "5.2.3", "resource": "Pod/p"}]
        assert len(signals) == 1
        s = signals[0]
        assert s["event_count"] == 2 and s["first_seen"] == "2026-01-01T00:00:00Z" and s["last_seen"] == "2026-01-02T00:00:00Z"
        assert "source:compliance" in s["tags"] and s["status"] == "open"
    f.write_text(FIXED)
    with ComplianceStateStore(db) as store:  # reopened from disk
        t3 = store.record(scan_k8s([str(f)]), now="2026-01-03T00:00:00Z")
        assert key in t3.resolved
        assert all(s["group_by"]["check_id"] != "5.2.3" for s in store.findings("open"))
        f.write_text(BAD)
        t4 = store.record(scan_k8s([str(f)]), now="2026-01-04T00:00:00Z")
        assert key in t4.reopened
        (s,) = [s for s in store.findings() if s["group_by"]["check_id"] == "5.2.3"]
        assert s["event_count"] == 3 and s["status"] == "open" and s["resolved_at"] is None


def test_unscanned_resources_stay_open(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(BAD)
    b.write_text(BAD.replace("name: p", "name: q"))
    with ComplianceStateStore(tmp_path / "s.db") as store:
        store.record(scan_k8s([str(a), str(b)]))
        t = store.record(scan_k8s([str(a)]))
        assert ("5.2.3", "Pod/q") not in t.resolved
        assert any(s["group_by"]["resource"] == "Pod/q" for s in store.findings("open"))
