"""``secmon/_core.pyi`` and the compiled ``secmon._core`` stay in step.

``mypy.stubtest`` imports the built module and compares every name, signature, default and
``@final`` marker with the stub; a second test makes sure every public class, method and
function of the stub carries a docstring, since the stub is the documented contract.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

STUB = Path(__file__).parents[2] / "secmon" / "_core.pyi"
# pyo3 adds a runtime ``__all__`` that the stub does not repeat.
ALLOWLIST = ["secmon._core.__all__"]


def test_stubtest_finds_no_difference(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    allowlist = tmp_path / "allowlist.txt"
    allowlist.write_text("\n".join(ALLOWLIST) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "secmon._core", "--allowlist", str(allowlist),
         "--mypy-config-file", str(STUB.parents[1] / "pyproject.toml")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=STUB.parents[1],  # reuse .mypy_cache (gitignored) between runs
    )
    assert proc.returncode == 0, f"stubtest found differences:\n{proc.stdout}\n{proc.stderr}"


def _public_defs(tree: ast.Module) -> list[tuple[str, ast.AST]]:
    found: list[tuple[str, ast.AST]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found.append((node.name, node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found.append((node.name, node))
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    found.append((f"{node.name}.{item.name}", item))
    return found


def test_every_public_stub_item_has_a_docstring() -> None:
    tree = ast.parse(STUB.read_text())
    missing = [name for name, node in _public_defs(tree) if ast.get_docstring(node) is None]  # type: ignore[arg-type]
    assert not missing, f"stub items without a docstring: {missing}"
