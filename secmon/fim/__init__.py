"""File integrity monitoring: baselines, checks, real-time watch, container roots and images.

Typical use::

    from secmon import fim
    config = fim.parse_config({"paths": ["/etc"], "hash": "sha256"})
    baseline, notes = fim.create_baseline(config)
    baseline.save("/var/lib/secmon/etc.fim", key=None)
    result = fim.check_baseline(fim.Baseline.load("/var/lib/secmon/etc.fim"))
    events = fim.to_events(result.changes)   # source:fim events for the detection engine
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> module defining it; loaded on first use so `secmon fim --help` and every other
# `secmon` command do not pay for Polars and pydantic just because the fim group is registered.
_LAZY: dict[str, str] = {
    "ATTRIBUTES": "secmon.fim.attributes",
    "IMAGE_ATTRIBUTES": "secmon.fim.attributes",
    "PRESETS": "secmon.fim.attributes",
    "AttributePolicy": "secmon.fim.config",
    "Baseline": "secmon.fim.baseline",
    "BaselineIntegrityError": "secmon.fim.errors",
    "Change": "secmon.fim.diff",
    "CheckResult": "secmon.fim.check",
    "FimConfig": "secmon.fim.config",
    "FimConfigError": "secmon.fim.errors",
    "FimError": "secmon.fim.errors",
    "FimWatcher": "secmon.fim.watch",
    "ImageError": "secmon.fim.errors",
    "ScanResult": "secmon.fim.scan",
    "ScanSpec": "secmon.fim.scan",
    "check_baseline": "secmon.fim.check",
    "create_baseline": "secmon.fim.check",
    "default_config": "secmon.fim.config",
    "diff_frames": "secmon.fim.diff",
    "diff_frames_slow": "secmon.fim.diff",
    "load_config": "secmon.fim.config",
    "parse_config": "secmon.fim.config",
    "read_key_file": "secmon.fim.baseline",
    "scan": "secmon.fim.scan",
    "scan_image": "secmon.fim.image",
    "to_events": "secmon.fim.events",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from secmon.fim.attributes import ATTRIBUTES, IMAGE_ATTRIBUTES, PRESETS
    from secmon.fim.baseline import Baseline, read_key_file
    from secmon.fim.check import CheckResult, check_baseline, create_baseline
    from secmon.fim.config import AttributePolicy, FimConfig, default_config, load_config, parse_config
    from secmon.fim.diff import Change, diff_frames, diff_frames_slow
    from secmon.fim.errors import BaselineIntegrityError, FimConfigError, FimError, ImageError
    from secmon.fim.events import to_events
    from secmon.fim.image import scan_image
    from secmon.fim.scan import ScanResult, ScanSpec, scan
    from secmon.fim.watch import FimWatcher


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'secmon.fim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
