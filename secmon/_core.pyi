"""Type stubs for ``secmon._core``, the Rust extension module.

This file is the contract of the native core: every class and function with exact types.
``tests/core/test_stubs.py`` checks it against the compiled module.
"""

from __future__ import annotations

__version__: str

# --- matcher (rust_core/src/matcher.rs, py/matcher.rs) ---

# --- hash (rust_core/src/hash.rs, py/hash.rs) ---

# --- walk (rust_core/src/walk.rs, py/walk.rs) ---

# --- cidr (rust_core/src/cidr.rs, py/ipset.rs) ---
