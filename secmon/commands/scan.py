"""``secmon scan``: run detection rules over log files and print the signals."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secmon.commands.options import add_parser_options, add_rule_options, register_parsers_from_args, rules_from_args

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
    add_parser_options(scan)
    scan.add_argument("--year", type=int, help="year for syslog timestamps that carry none (default: the current year)")
    scan.add_argument("--no-prefilter", action="store_true", help="parse every line (slower; same signals)")
    scan.add_argument("--fail-on", choices=tuple(SEVERITY_RANK), metavar="SEVERITY",
                      help="exit 1 when a signal of this severity or higher is found")
    scan.add_argument("--stats", metavar="FILE", help="write ingestion statistics (JSON) to this file")
    scan.add_argument("--quiet", action="store_true", help="no progress bar or summary on stderr")
    scan.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from secmon.detect.engine import Engine

    register_parsers_from_args(args)
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


WRITE_BATCH = 1024  # signals serialized at a time: all of them at once doubled a big scan's memory


def write_signals(signals: list[Signal], fmt: str, out: Any, *, summary: str = "") -> None:
    """``json``: one array, indented by two spaces; ``ndjson``: a signal per line; else a table.

    orjson writes them, a batch at a time: the json module took 10 s for the 68,617 signals of
    the 1M-event benchmark corpus, longer than finding them."""
    from secmon.ingest.base import gc_paused

    with gc_paused():  # the samples parsed for output are acyclic: collections walked them for nothing
        _write_signals(signals, fmt, out, summary)


def _write_signals(signals: list[Signal], fmt: str, out: Any, summary: str) -> None:
    import orjson

    from secmon.signals.model import signals_json

    batches = (signals_json(signals[start:start + WRITE_BATCH]) for start in range(0, len(signals), WRITE_BATCH))
    if fmt == "json":
        if not signals:
            out.write("[]\n")
            return
        # Each batch dumped as an indented array holds its elements as the whole array would:
        # without its brackets, batches join with commas into the text of the whole array.
        out.write("[\n")
        for n, batch in enumerate(batches):
            out.write((",\n" if n else "") + orjson.dumps(batch, option=orjson.OPT_INDENT_2).decode()[2:-2])
        out.write("\n]\n")
    elif fmt == "ndjson":
        for batch in batches:
            out.write("".join(orjson.dumps(data).decode() + "\n" for data in batch))
    else:
        print_table(signals, out, summary)


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


TABLE_COLUMNS = ("severity", "rule", "group by", "events", "first seen", "last seen")
RICH_TABLE_MAX_ROWS = 2000  # above this, rich's layout is too slow (97 s for 68k rows): plain text
PLAIN_MAX_WIDTH = 60  # a plain table's column is padded to its longest value up to this width


def _table_rows(signals: list[Signal]) -> list[tuple[str, ...]]:
    from secmon.signals.model import iso_ms_many

    seen = [text[:19].replace("T", " ") for text in iso_ms_many([ms for s in signals for ms in (s.first_seen_ms, s.last_seen_ms)])]
    return [
        (s.severity, s.rule_name, ", ".join(f"{k}={v}" for k, v in s.group_by.items()) or "-", str(s.event_count),
         seen[2 * i], seen[2 * i + 1])
        for i, s in enumerate(signals)
    ]


def print_table(signals: list[Signal], out: Any, summary: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, width=max(170, Console(file=out).width))
    rows = _table_rows(signals)
    if len(rows) > RICH_TABLE_MAX_ROWS:
        _print_plain_table(rows, out)
    elif rows:
        table = Table(show_lines=False, title_justify="left")
        for name in TABLE_COLUMNS:
            table.add_column(name, overflow="fold", justify="right" if name == "events" else "left")
        for severity, *rest in rows:
            table.add_row(f"[{SEVERITY_STYLE.get(severity, '')}]{severity}[/]", *rest)
        console.print(table)
    counts = {sev: sum(1 for s in signals if s.severity == sev) for sev in reversed(SEVERITY_RANK)}
    by_severity = ", ".join(f"{n} {sev}" for sev, n in counts.items() if n)
    console.print(f"{len(signals)} signal(s){': ' + by_severity if by_severity else ''}. {summary}")


def _print_plain_table(rows: list[tuple[str, ...]], out: Any) -> None:
    """The table's columns padded with spaces, one line per signal, no markup."""
    widths = [min(max(len(row[i]) for row in (TABLE_COLUMNS, *rows)), PLAIN_MAX_WIDTH) for i in range(len(TABLE_COLUMNS))]
    events = TABLE_COLUMNS.index("events")

    def line(row: tuple[str, ...]) -> str:
        cells = [cell.rjust(width) if i == events else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        return "  ".join(cells).rstrip() + "\n"

    out.write(line(TABLE_COLUMNS))
    out.write("  ".join("-" * width for width in widths) + "\n")
    for start in range(0, len(rows), WRITE_BATCH):
        out.write("".join(line(row) for row in rows[start:start + WRITE_BATCH]))


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
