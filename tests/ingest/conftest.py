"""Shared fixtures for the ingest tests: the real datasets, read in place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

DATASETS = Path(__file__).parents[2] / ".." / "shared" / "datasets"


@pytest.fixture
def dataset() -> Callable[[str], Path]:
    """``dataset("loghub/OpenSSH/OpenSSH_2k.log")``: the path, or skip when it is absent."""

    def find(relative: str) -> Path:
        path = DATASETS / relative
        if not path.exists():
            pytest.skip(f"dataset {relative} not found at {path} (the shared datasets are not mounted)")
        return path

    return find
