"""Counters for one ingestion run: what was read, what was rejected and why.

Bad input never stops a run and is never dropped silently: every line that does not become an
event is counted here under a reason, and the first few examples of each reason are kept with
their ``file:line`` so a user can go and look.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# Rejection reasons (a line or record that produced no event).
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_TIMESTAMP = "missing_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
LINE_TOO_LONG = "line_too_long"
UNPARSED_LINE = "unparsed_line"
CORRUPT_INPUT = "corrupt_input"
UNREADABLE_FILE = "unreadable_file"

# Warnings (the event was kept, but something was repaired on the way).
INVALID_UTF8 = "invalid_utf8"

EXAMPLES_PER_REASON = 5
_EXAMPLE_CHARS = 200


@dataclass
class FileStats:
    """Per-file counts; ``lines`` counts every line read, parsed or not."""

    lines: int = 0
    bytes: int = 0
    events: int = 0
    rejected: int = 0


@dataclass
class IngestStats:
    """What one run read: events, lines, bytes, rejections per reason with examples."""

    events_read: int = 0
    lines_read: int = 0
    bytes_read: int = 0
    blank_lines: int = 0
    #: Lines that hold no event but say how the next lines read (W3C's and Zeek's directives).
    header_lines: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    files: dict[str, FileStats] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def file(self, name: str) -> FileStats:
        per_file = self.files.get(name)
        if per_file is None:
            per_file = self.files[name] = FileStats()
        return per_file

    def count_read(self, source_name: str, lines: int, nbytes: int) -> None:
        """Account for a chunk that was read (whether or not its lines get parsed)."""
        self.lines_read += lines
        self.bytes_read += nbytes
        per_file = self.file(source_name)
        per_file.lines += lines
        per_file.bytes += nbytes

    def count_events(self, source_name: str, n: int) -> None:
        self.events_read += n
        self.file(source_name).events += n

    def reject(self, reason: str, source_name: str, where: int | str, detail: str = "") -> None:
        """Count one rejected line/record; ``where`` is a 1-based line number or a label."""
        self.rejected[reason] += 1
        self.file(source_name).rejected += 1
        self._example(reason, source_name, where, detail)

    def warn(self, reason: str, source_name: str, where: int | str, detail: str = "") -> None:
        """Count one repaired-but-kept line (e.g. invalid UTF-8 replaced)."""
        self.warnings[reason] += 1
        self._example(reason, source_name, where, detail)

    def _example(self, reason: str, source_name: str, where: int | str, detail: str) -> None:
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            text = detail if len(detail) <= _EXAMPLE_CHARS else detail[:_EXAMPLE_CHARS] + "..."
            shown.append(f"{source_name}:{where}: {text}" if text else f"{source_name}:{where}")

    def merge(self, other: IngestStats) -> None:
        """Add another run's counts (e.g. from a worker) into this one."""
        self.events_read += other.events_read
        self.lines_read += other.lines_read
        self.bytes_read += other.bytes_read
        self.blank_lines += other.blank_lines
        self.header_lines += other.header_lines
        self.rejected.update(other.rejected)
        self.warnings.update(other.warnings)
        for name, theirs in other.files.items():
            mine = self.file(name)
            mine.lines += theirs.lines
            mine.bytes += theirs.bytes
            mine.events += theirs.events
            mine.rejected += theirs.rejected
        for reason, shown in other.examples.items():
            mine_examples = self.examples.setdefault(reason, [])
            mine_examples.extend(shown[: max(0, EXAMPLES_PER_REASON - len(mine_examples))])

    def to_json(self) -> dict[str, object]:
        """Everything as plain JSON types (``secmon scan --stats FILE`` writes this)."""
        return {
            "summary": self.summary(),
            "events_read": self.events_read,
            "lines_read": self.lines_read,
            "bytes_read": self.bytes_read,
            "blank_lines": self.blank_lines,
            "header_lines": self.header_lines,
            "rejected": dict(sorted(self.rejected.items())),
            "warnings": dict(sorted(self.warnings.items())),
            "files": {
                name: {"lines": f.lines, "bytes": f.bytes, "events": f.events, "rejected": f.rejected}
                for name, f in self.files.items()
            },
            "examples": {reason: list(shown) for reason, shown in sorted(self.examples.items())},
        }

    def summary(self) -> str:
        """One line: ``N events read, M rejected: reason=count, ...`` (+ warnings when any)."""
        text = f"{self.events_read} events read, {self.rejected_total} rejected"
        if self.rejected:
            text += ": " + ", ".join(f"{reason}={n}" for reason, n in sorted(self.rejected.items()))
        if self.warnings:
            text += "; warnings: " + ", ".join(f"{reason}={n}" for reason, n in sorted(self.warnings.items()))
        return text
