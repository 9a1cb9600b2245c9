"""The trivy-checks good/bad examples as a suite: every mapped check gives the expected verdict."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from secmon.compliance import bundled_checks, scan_docker, scan_k8s

from .conftest import DATASET


def _rows() -> list[dict]:
    path = DATASET / "expected.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _alias_map() -> dict[str, str]:
    out: dict[str, str] = {}
    for bench in ("k8s", "docker"):
        for check in bundled_checks(bench):
            for alias in check.aliases:
                out.setdefault(alias, check.id)
    return out


ROWS = _rows()


@pytest.mark.parametrize("row", ROWS, ids=[Path(r["file"]).name for r in ROWS])
def test_fixture_verdict(row: dict, dataset: Path) -> None:
    check_id = _alias_map().get(row["check_id"])
    assert check_id is not None, f"{row['check_id']} is not mapped to any bundled check (aliases)"
    file = dataset / row["file"]
    report = scan_k8s([str(file)]) if row["file"].startswith("k8s/") else scan_docker(dockerfiles=[str(file)])
    assert report.issues == [], report.issues
    rows = report.results.filter(pl.col("check_id") == check_id)
    assert rows.height > 0, f"{check_id} produced no result for {file.name}"
    statuses = set(rows["status"].to_list())
    verdict = "fail" if "fail" in statuses else "pass"
    assert "manual" not in statuses
    assert verdict == row["expected"], f"{file.name}: {check_id} gave {statuses}: {rows['evidence'].to_list()}"


def test_every_fixture_check_is_mapped(dataset: Path) -> None:
    aliases = _alias_map()
    ids = {r["check_id"] for r in ROWS}
    assert ids and all(i in aliases for i in ids), sorted(i for i in ids if i not in aliases)
