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

from secmon.fim.attributes import ATTRIBUTES, IMAGE_ATTRIBUTES, PRESETS
from secmon.fim.baseline import Baseline, read_key_file
from secmon.fim.check import CheckResult, check_baseline, create_baseline
from secmon.fim.config import AttributePolicy, FimConfig, default_config, load_config, parse_config
from secmon.fim.diff import Change, diff_frames, diff_frames_slow
from secmon.fim.errors import BaselineIntegrityError, FimConfigError, FimError, ImageError
from secmon.fim.events import to_events
from secmon.fim.image import scan_image
from secmon.fim.scan import ScanResult, ScanSpec, scan

__all__ = [
    "ATTRIBUTES",
    "IMAGE_ATTRIBUTES",
    "PRESETS",
    "AttributePolicy",
    "Baseline",
    "BaselineIntegrityError",
    "Change",
    "CheckResult",
    "FimConfig",
    "FimConfigError",
    "FimError",
    "ImageError",
    "ScanResult",
    "ScanSpec",
    "check_baseline",
    "create_baseline",
    "default_config",
    "diff_frames",
    "diff_frames_slow",
    "load_config",
    "parse_config",
    "read_key_file",
    "scan",
    "scan_image",
    "to_events",
]
