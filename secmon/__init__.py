"""secmon: a high-performance security monitoring engine.

The public Python API. Everything users import lives in ``__all__``; the compiled core is the
private module ``secmon._core``. Heavier parts (the engine, Polars) load on first use, so
``import secmon`` and the CLI start fast.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# The core's allocator (mimalloc, which reads this when the extension loads) returns freed pages to
# the system after a second rather than 10 ms: memory freed and soon needed again is reused
# instead of mapped and zeroed again. Measured: an IpSet of 1M prefixes built in 0.36 s, not 0.98 s
# (glibc's malloc took 0.41 s), a FIM baseline of /usr/share 10-30 ms faster; a scan's peak memory
# is about 50 MB higher than with purging at once.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "1000")

from secmon import _core  # noqa: E402
from secmon._core import IpSet, Matcher, hash_bytes, hash_file, scan_tree  # noqa: E402
from secmon.errors import InputError, QuerySyntaxError, RuleError, RuleSetError, SecmonError  # noqa: E402

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
