"""Severities: Datadog's five, lowest first, shared by rules, signals and compliance findings."""

from __future__ import annotations

from typing import Literal

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
# A severity's number: its rank, 0 for info to 4 for critical (Datadog's {{severity}}).
SEVERITY_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}
