from __future__ import annotations

from pathlib import Path

import pytest

DATASET = Path(__file__).parents[2] / ".." / "shared" / "datasets" / "compliance"


@pytest.fixture(scope="session")
def dataset() -> Path:
    if not (DATASET / "expected.jsonl").is_file():
        pytest.skip(f"compliance fixtures not found at {DATASET.resolve()} (shared datasets absent)")
    return DATASET
