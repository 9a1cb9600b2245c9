"""Continuous compliance: CIS Docker and Kubernetes checks as data, evaluated with Polars.

Public API::

    from secmon.compliance import scan_k8s, scan_docker, load_checks, bundled_checks, evaluate
    report = scan_k8s(["manifests/"])          # ComplianceReport: .results (Polars), .issues
    report.results.filter(pl.col("status") == "fail")

``evaluate(checks, resources)`` is the Polars evaluator; ``evaluate_slow`` its plain twin.
``ComplianceStateStore`` keeps findings open/resolved across runs (signals, source:compliance).
"""

from secmon.compliance.checks import Check, bundled_checks, load_checks
from secmon.compliance.engine import evaluate, evaluate_slow
from secmon.compliance.facts import Resource
from secmon.compliance.scan import ComplianceReport, scan_docker, scan_k8s
from secmon.compliance.state import ComplianceStateStore

__all__ = [
    "Check",
    "ComplianceReport",
    "ComplianceStateStore",
    "Resource",
    "bundled_checks",
    "evaluate",
    "evaluate_slow",
    "load_checks",
    "scan_docker",
    "scan_k8s",
]
