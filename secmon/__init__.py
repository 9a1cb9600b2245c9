"""secmon: a high-performance security monitoring engine.

The public Python API. Everything users import lives in ``__all__``; the compiled core is the
private module ``secmon._core``. Heavier parts (the engine, Polars) load on first use, so
``import secmon`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from secmon import _core
from secmon._core import IpSet, Matcher, hash_bytes, hash_file, scan_tree
from secmon.errors import InputError, QuerySyntaxError, RuleError, RuleSetError, SecmonError

__version__ = _core.__version__

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "Engine": "secmon.detect.engine",
    "ScanResult": "secmon.detect.engine",
    "Rule": "secmon.rules.model",
    "RuleSet": "secmon.rules.loader",
    "load_rules": "secmon.rules.loader",
    "validate_rules": "secmon.rules.loader",
    "default_rules": "secmon.rules",
    "Signal": "secmon.signals.model",
    "SignalStore": "secmon.signals.store",
}

if TYPE_CHECKING:
    from secmon.detect.engine import Engine, ScanResult
    from secmon.rules import default_rules
    from secmon.rules.loader import RuleSet, load_rules, validate_rules
    from secmon.rules.model import Rule
    from secmon.signals.model import Signal
    from secmon.signals.store import SignalStore


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'secmon' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Engine",
    "InputError",
    "IpSet",
    "Matcher",
    "QuerySyntaxError",
    "Rule",
    "RuleError",
    "RuleSet",
    "RuleSetError",
    "ScanResult",
    "SecmonError",
    "Signal",
    "SignalStore",
    "__version__",
    "hash_bytes",
    "hash_file",
    "scan_tree",
    "default_rules",
    "load_rules",
    "validate_rules",
]
