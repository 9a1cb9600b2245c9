"""Render compliance results: table, JSON, SARIF 2.1.0 and JUnit XML, with section scores."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import polars as pl

from secmon.compliance.checks import Check
from secmon.compliance.engine import section_scores
from secmon.compliance.scan import ComplianceReport

FORMATS = ("table", "json", "sarif", "junit")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def _section_key(section: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-]", section))


def scores(report: ComplianceReport) -> list[dict[str, Any]]:
    """Per section: status counts and score (passed / (passed + failed), percent); a total last."""
    frame = section_scores(report.results)
    rows = sorted(frame.to_dicts(), key=lambda r: _section_key(r["section"]))
    total = {s: int(frame[s].sum()) if frame.height else 0 for s in ("pass", "fail", "not_applicable", "manual")}
    decided = total["pass"] + total["fail"]
    total_row = {"section": "total", **total, "score": round(100.0 * total["pass"] / decided, 1) if decided else None}
    return [*rows, total_row]


def finding_dicts(report: ComplianceReport) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in report.results.iter_rows(named=True):
        out.append(
            {
                "check_id": row["check_id"],
                "title": row["title"],
                "status": row["status"],
                "severity": row["severity"],
                "resource": row["resource"],
                "evidence": row["evidence"],
                "source": {"file": row["file"] or None, "line": row["line"], "location": row["location"] or None},
            }
        )
    return out


def render_json(report: ComplianceReport) -> str:
    return json.dumps(finding_dicts(report), indent=2, ensure_ascii=False)


def render_table(report: ComplianceReport, width: int = 160) -> str:
    lines: list[str] = []
    mark = {"pass": "PASS", "fail": "FAIL", "not_applicable": "N/A ", "manual": "MAN "}
    for row in report.results.iter_rows(named=True):
        evidence = row["evidence"] or ""
        text = f"[{mark[row['status']]}] {row['check_id']:<14} {row['severity']:<8} {row['resource']}: {row['title']}"
        if row["status"] in ("fail", "not_applicable") and evidence:
            text += f"\n       {evidence}"
        lines.append(text if len(text) <= width * 4 else text[: width * 4] + "...")
    lines.append("")
    lines.append(f"{'section':<10} {'pass':>6} {'fail':>6} {'n/a':>6} {'manual':>7} {'score':>7}")
    for s in scores(report):
        score = "-" if s["score"] is None else f"{s['score']:.1f}%"
        lines.append(f"{s['section']:<10} {s['pass']:>6} {s['fail']:>6} {s['not_applicable']:>6} {s['manual']:>7} {score:>7}")
    if report.skipped_kinds:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(report.skipped_kinds.items()))
        lines.append(f"\nobjects of kinds without checks (not evaluated): {kinds}")
    return "\n".join(lines)


def _uri(file: str) -> str:
    if not file:
        return ""
    p = Path(file)
    try:
        return p.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return p.resolve().as_uri()


def render_sarif(report: ComplianceReport) -> str:
    from secmon import __version__

    used = set(report.results["check_id"].to_list())
    checks: list[Check] = [c for c in report.checks if c.id in used]
    rule_index = {c.id: i for i, c in enumerate(checks)}
    rules = [
        {
            "id": c.id,
            "name": re.sub(r"[^A-Za-z0-9]+", "", c.title.title()) or c.id,
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": f"{c.title} (resource: {c.resource}; benchmark {c.benchmark})"},
            "help": {"text": c.remediation},
            "defaultConfiguration": {"level": SARIF_LEVEL[c.severity]},
            "properties": {
                "tags": ["security", "compliance", c.benchmark, *c.aliases],
                "security-severity": SECURITY_SEVERITY[c.severity],
                "section": c.section,
                "level": c.level,
                "scored": c.scored,
            },
        }
        for c in checks
    ]
    results: list[dict[str, Any]] = []
    for row in report.results.filter(pl.col("status") == "fail").iter_rows(named=True):
        location: dict[str, Any] = {
            "logicalLocations": [{"name": row["resource"], "fullyQualifiedName": f"{row['resource']}:{row['location']}".rstrip(":"), "kind": "resource"}]
        }
        # Code-scanning uploads want a physical location on every result; a finding about the
        # environment or the cluster as a whole gets a stable pseudo path naming it.
        uri = _uri(row["file"].split(" + ")[0]) if row["file"] else f"{report.benchmark}/{row['resource']}"
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if row["line"]:
            physical["region"] = {"startLine": int(row["line"])}
        location["physicalLocation"] = physical
        results.append(
            {
                "ruleId": row["check_id"],
                "ruleIndex": rule_index[row["check_id"]],
                "level": SARIF_LEVEL[row["severity"]],
                "message": {"text": f"{row['title']}: {row['resource']} fails ({row['evidence']})"},
                "locations": [location],
                "partialFingerprints": {"secmonCompliance/v1": f"{row['check_id']}|{row['resource']}"},
            }
        )
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "secmon-compliance",
                        "version": __version__,
                        "informationUri": "https://github.com/secmon/secmon",
                        "rules": rules,
                    }
                },
                "results": results,
                "properties": {"benchmark": report.benchmark, "scores": scores(report)},
            }
        ],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False)


def render_junit(report: ComplianceReport) -> str:
    suites = ET.Element("testsuites", name=f"secmon compliance {report.benchmark}")
    frame = report.results
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    by_section: dict[str, list[dict[str, Any]]] = {}
    for row in frame.iter_rows(named=True):
        by_section.setdefault(row["section"], []).append(row)
    score_by_section = {s["section"]: s for s in scores(report)}
    for section in sorted(by_section, key=_section_key):
        rows = by_section[section]
        failures = sum(r["status"] == "fail" for r in rows)
        skipped = sum(r["status"] in ("not_applicable", "manual") for r in rows)
        suite = ET.SubElement(suites, "testsuite", name=f"section {section}", tests=str(len(rows)), failures=str(failures),
                              errors="0", skipped=str(skipped))
        props = ET.SubElement(suite, "properties")
        score = score_by_section[section]["score"]
        ET.SubElement(props, "property", name="score", value="" if score is None else str(score))
        for r in rows:
            case = ET.SubElement(suite, "testcase", classname=r["check_id"], name=f"{r['check_id']} {r['resource']}: {r['title']}")
            if r["file"]:
                case.set("file", r["file"])
            if r["status"] == "fail":
                failure = ET.SubElement(case, "failure", message=r["evidence"] or r["title"], type=r["severity"])
                failure.text = f"{r['title']}\nresource: {r['resource']}\nevidence: {r['evidence']}\nlocation: {r['location']}"
            elif r["status"] in ("not_applicable", "manual"):
                ET.SubElement(case, "skipped", message=r["status"] + (f": {r['evidence']}" if r["evidence"] else ""))
        totals["tests"] += len(rows)
        totals["failures"] += failures
        totals["skipped"] += skipped
    for key, value in totals.items():
        suites.set(key, str(value))
    suites.set("errors", "0")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def render(report: ComplianceReport, fmt: str) -> str:
    if fmt == "table":
        return render_table(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "sarif":
        return render_sarif(report)
    if fmt == "junit":
        return render_junit(report)
    raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
