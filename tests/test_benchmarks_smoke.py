"""Every benchmark case runs on tiny inputs and its contenders agree (the harness asserts it).

This is the bounded version of ``make bench`` that ``make test`` (and so CI) runs; it checks
answers, not speed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_harness_smoke_run() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--smoke"], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from benchmarks.run import CASES

    for name in CASES:
        assert f"## {name}" in proc.stdout, f"case {name} did not run"
    assert "| secmon" in proc.stdout
