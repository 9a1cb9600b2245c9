"""``secmon scan``: run detection rules over log files and print the signals."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmon.commands.options import add_rule_options, rules_from_args

if TYPE_CHECKING:
    from secmon.signals.model import Signal

# Severities from least to most severe (the rule model's order; repeated here to keep the CLI light).
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

EXIT_SIGNALS = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    scan = subparsers.add_parser("scan", help="run detection rules over logs and print security signals")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files, directories, globs, .gz, or - for stdin")
    add_rule_options(scan)
    scan.add_argument("--intel", action="append", default=[], metavar="FILE",
                      help="threat-intel IP list (one address or CIDR per line, FireHOL netset); repeatable")
    scan.add_argument("--format", choices=("table", "json", "ndjson"), default="table", help="output format")
    scan.add_argument("-o", "--output", metavar="FILE", help="write signals here instead of stdout")
    scan.add_argument("--store", metavar="DB", help="also save the signals in this SQLite signal store")
    scan.add_argument("--input-format", metavar="NAME", help="parse every input as this format (default: detect per file)")
    scan.add_argument("--year", type=int, help="year for syslog timestamps that carry none (default: the current year)")
    scan.add_argument("--no-prefilter", action="store_true", help="parse every line (slower; same signals)")
    scan.add_argument("--fail-on", choices=tuple(SEVERITY_RANK), metavar="SEVERITY",
                      help="exit 1 when a signal of this severity or higher is found")
    scan.add_argument("--stats", metavar="FILE", help="write ingestion statistics (JSON) to this file")
    scan.add_argument("--quiet", action="store_true", help="no progress bar or summary on stderr")
    scan.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from secmon.detect.engine import Engine

    rules = rules_from_args(args)
    with ExitStack() as stack:
        progress = None if args.quiet else stack.enter_context(_progress(args.paths))
        engine = Engine(rules, prefilter=not args.no_prefilter, input_format=args.input_format, year=args.year,
                        progress=progress, intel=args.intel or None)
        result = engine.detect(args.paths)
    signals, stats = result.signals, result.stats
    if args.store:
        from secmon.signals.store import SignalStore

        with SignalStore(args.store) as store:
            store.upsert(signals)
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        write_signals(signals, args.format, out, summary=result.summary())
    finally:
        if args.output:
            out.close()
    if args.stats:
        Path(args.stats).write_text(json.dumps(stats.to_json(), indent=2), encoding="utf-8")
    if not args.quiet and (args.format != "table" or args.output):
        print(f"{result.summary()}; {len(signals)} signal(s) from {len(rules.enabled)} rules", file=sys.stderr)
    if args.fail_on and any(SEVERITY_RANK[s.severity] >= SEVERITY_RANK[args.fail_on] for s in signals):
        return EXIT_SIGNALS
    return 0


def write_signals(signals: list[Signal], fmt: str, out: Any, *, summary: str = "") -> None:
    if fmt == "json":
        json.dump([s.to_json() for s in signals], out, indent=2)
        out.write("\n")
    elif fmt == "ndjson":
        for signal in signals:
            out.write(json.dumps(signal.to_json()) + "\n")
    else:
        print_table(signals, out, summary)


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def print_table(signals: list[Signal], out: Any, summary: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=max(170, Console(file=out).width))
    table = Table(show_lines=False, title_justify="left")
    table.add_column("severity")
    table.add_column("rule", overflow="fold")
    table.add_column("group by", overflow="fold")
    table.add_column("events", justify="right")
    table.add_column("first seen")
    table.add_column("last seen")
    for s in signals:
        data = s.to_json()
        group = ", ".join(f"{k}={v}" for k, v in s.group_by.items()) or "-"
        table.add_row(f"[{SEVERITY_STYLE.get(s.severity, '')}]{s.severity}[/]", s.rule_name, group, str(s.event_count),
                      data["first_seen"][:19].replace("T", " "), data["last_seen"][:19].replace("T", " "))
    if signals:
        console.print(table)
    counts = {sev: sum(1 for s in signals if s.severity == sev) for sev in reversed(SEVERITY_RANK)}
    by_severity = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
    console.print(f"{len(signals)} signal(s){': ' + by_severity if by_severity else ''}. {summary}")


class _progress:
    """A progress bar on stderr, shown only when stderr is a terminal and the scan has already
    taken more than a second and a half (short scans print nothing extra)."""

    DELAY_SECONDS = 1.5

    def __init__(self, paths: list[str]) -> None:
        self.total = sum(p.stat().st_size for p in map(Path, paths) if p.is_file())
        self.bar: Any = None
        self.task: Any = None
        self.done = 0
        self.started = 0.0

    def __enter__(self) -> Any:
        if not sys.stderr.isatty():
            return None
        import time

        self.started = time.monotonic()
        return self.advance

    def advance(self, nbytes: int) -> None:
        import time

        self.done += nbytes
        if self.bar is None:
            if time.monotonic() - self.started < self.DELAY_SECONDS:
                return
            from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

            self.bar = Progress("scanning", BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("scan", total=self.total or None, completed=self.done)
            return
        self.bar.update(self.task, completed=self.done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
