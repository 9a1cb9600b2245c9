"""secmon: a high-performance security monitoring engine.

The public Python API. Everything users import lives in ``__all__``; the compiled core is the
private module ``secmon._core``.
"""

from __future__ import annotations

from secmon import _core
from secmon._core import IpSet, Matcher
from secmon.errors import InputError, QuerySyntaxError, RuleError, RuleSetError, SecmonError

__version__ = _core.__version__

__all__ = [
    "InputError",
    "IpSet",
    "Matcher",
    "QuerySyntaxError",
    "RuleError",
    "RuleSetError",
    "SecmonError",
    "__version__",
]
