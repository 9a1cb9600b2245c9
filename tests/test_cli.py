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


def test_process_exit_skips_teardown_but_keeps_output_codes_and_atexit(tmp_path) -> None:
    # `secmon` leaves through os._exit after main(): piped output must still be flushed, the exit
    # code kept, and atexit handlers run, as an ordinary interpreter exit would.
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_text("x")
    db = str(tmp_path / "db")
    made = run_cli("fim", "baseline", str(tmp_path / "tree"), "--db", db)
    assert (made.returncode, made.stderr.startswith(f"baseline {db}: 2 entries")) == (0, True), made.stderr
    checked = run_cli("fim", "check", "--db", db, "--format", "json")
    assert (checked.returncode, checked.stdout) == (0, "[]\n")
    (tmp_path / "tree" / "f").write_text("changed")
    failed = run_cli("fim", "check", "--db", db, "--fail-on-change")
    assert failed.returncode == 1 and "modified" in failed.stdout
    code = "import atexit, sys; from secmon import cli; atexit.register(print, 'at exit'); sys.argv = ['secmon', 'rules', 'list']; cli.run()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.rstrip().endswith("at exit"), proc.stdout[-200:]
