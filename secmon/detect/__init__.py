"""Detection: compiled rules, the Polars detectors, the engine, and the reference twin."""

from secmon.detect.engine import Engine, ScanResult

__all__ = ["Engine", "ScanResult"]
