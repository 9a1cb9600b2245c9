"""The CLI's error policy: user errors are one clear line and exit 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

from secmon import __version__
from secmon.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "secmon.cli", *args], capture_output=True, text=True, timeout=120)


def test_version_is_printed() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert __version__ in proc.stdout


def test_no_command_prints_help_and_exits_2(capsys) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    proc = run_cli("no-such-command")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
