"""The ``secmon`` command line.

This module owns the top-level parser and the error policy (user errors print one clear message
and exit 2, never a traceback). Each command group lives beside the code it drives and registers
itself through ``add_parser(subparsers)``: ``secmon.rules.cli``, ``secmon.fim.cli``,
``secmon.compliance.cli``, ...
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

# secmon does no linear algebra, but numpy's OpenBLAS starts a thread per core at import that
# spins on a CPU for a while (measured: 0.1 s of CPU in a 1M-event scan on 2 cores). The command
# line is our own process, so it asks for none before anything imports numpy; a library user's
# process is left as it is.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Command groups: name -> (module with ``add_parser(subparsers) -> None``, one-line help). Only the
# module of the command being run is imported, so ``secmon fim check`` does not pay for Polars
# and the rule engine; the parser's ``func`` default receives the namespace and returns the exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("secmon.commands.scan", "run detection rules over logs and print security signals"),
    "demo": ("secmon.commands.demo", "scan the bundled sample logs with the default rules"),
    "rules": ("secmon.rules.cli", "list, show, validate, test and export detection rules"),
    "signals": ("secmon.signals.cli", "search and triage stored security signals"),
    "fim": ("secmon.fim.cli", "file integrity monitoring: baseline, check, watch"),
    "compliance": ("secmon.compliance.cli", "CIS Docker and Kubernetes checks"),
}

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


@functools.cache
def _help_width() -> int:
    """What argparse's help formatter measures (``shutil.get_terminal_size().columns - 2``)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with the terminal's width measured once per process. argparse makes a
    formatter for every argument it adds (to check the argument's format string), and each one
    asked the terminal, importing shutil for it: 11 ms of the 43 ms `secmon fim baseline` of an
    empty directory took."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _help_width() if width is None else width)


class _ArgumentParser(argparse.ArgumentParser):
    """The parser of secmon and of every command group below it (subparsers take the parent's
    class): :class:`_HelpFormatter` unless a parser asks for another."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="secmon",
        description="Security monitoring engine: detection rules over logs, security signals, FIM, CIS compliance.",
    )
    from secmon import __version__

    parser.add_argument("--version", action="version", version=f"secmon {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    if chosen in COMMANDS:
        # The other commands' parsers would only serve the top-level help, which this command
        # line does not ask for: building them was a tenth of `secmon fim baseline`'s start.
        importlib.import_module(COMMANDS[chosen][0]).add_parser(subparsers)
        return parser
    for name, (_, help_text) in COMMANDS.items():
        subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from secmon.errors import SecmonError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or EXIT_OK)
    except SecmonError as exc:
        print(f"secmon: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        # Missing files, permission problems: name the path, no traceback.
        name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"secmon: error: {name}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("secmon: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The ``secmon`` process: :func:`main`, then exit without the interpreter's teardown.

    Teardown frees every object and module one by one, which the OS does at once for the whole
    process: after a baseline of /usr/share (50k rows held in Rust, Polars-free imports) it took
    5 ms of the command's 0.4 s. What of it matters is done first: atexit handlers, flushed
    streams. A command that leaves other Python threads running exits the ordinary way, which
    waits for them.
    """
    code = main()
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)  # let the interpreter report it, as it would have
    os._exit(code)


if __name__ == "__main__":
    run()
