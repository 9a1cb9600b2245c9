"""CSV files with a header row: the exports of consoles and data lakes (sign-in and audit logs
downloaded as CSV, SIEM and notebook exports, flow datasets).

The first line names the columns; every other line is one record ``{column: value}`` that is then
read as a JSON record is (:func:`~secmon.ingest.json_format.record_event`): dated by Datadog's date
attributes or the fields other sources use (``Timestamp``, ``time``, ``created_at``, ...), CloudTrail,
Okta or Zeek columns mapped as theirs are. Empty cells are left out; a cell that is a plain integer
or decimal becomes a number (``@bytes:>1000`` works), anything else stays text. A line equal to the
header (files concatenated) is a header again. A record spread over lines by a quoted newline is
rejected line by line (``unparsed_line``), as a line-oriented reader must.
"""

from __future__ import annotations

import csv
import re
from typing import TYPE_CHECKING, Any

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat, raw_safe
from secmon.ingest.json_format import JSON_DERIVED, record_event
from secmon.ingest.timestamps import TimestampError, is_plausible_ms, parse_any

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

# Numbers as a CSV writer prints them: no leading zeros (an id like 00123 stays text), no
# exponent, few enough digits that the value reads back as written.
_INTEGER = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_DECIMAL = re.compile(r"-?(?:0|[1-9]\d{0,8})\.\d{1,6}")
# A column name starts with a letter (or _ @ ( as some exports write them); a first line that
# starts with a date or a number is data of another format, not a header.
_HEADER_NAME = re.compile(r"[A-Za-z_@(][^\"{}\[\]]{0,63}")
# Columns named like a date, for records no date attribute dates.
_DATE_COLUMN = re.compile(r"date|time|created|^when$|^ts$", re.IGNORECASE)


def _row(text: str) -> list[str] | None:
    """The cells of one line, or None when the line does not close its quotes."""
    if text.count('"') % 2:
        return None
    try:
        return next(csv.reader([text], strict=True))
    except (csv.Error, StopIteration):
        return None


def typed_cell(cell: str) -> Any:
    """A plain integer or decimal as its number; any other text as it is."""
    if _INTEGER.fullmatch(cell):
        return int(cell)
    if _DECIMAL.fullmatch(cell):
        return float(cell)
    return cell


def _header(line: str) -> list[str] | None:
    """The columns of a header line: at least two, each a name (not a number, not JSON)."""
    cells = _row(line.lstrip("\ufeff"))
    if cells is None or len(cells) < 2 or len(set(cells)) != len(cells):
        return None
    names = [cell.strip() for cell in cells]
    return names if all(_HEADER_NAME.fullmatch(name) for name in names) else None


class CsvFormat(LogFormat):
    """CSV with a header row, bound per file to that file's columns."""

    name = "csv"
    description = "CSV with a header row: each row a record named by the header, read as a JSON record"
    escaped_chars = frozenset('"')

    def __init__(self, columns: list[str] | None = None, header_line: str | None = None) -> None:
        self.columns = columns
        self.header_line = header_line
        # The column a record without a known date attribute is dated by: the first one named
        # like a date (``Date (UTC)``, ``EventTimestamp``, ``created``).
        self.date_column = next((c for c in columns or () if _DATE_COLUMN.search(c)), None)

    def bound(self, head: bytes) -> CsvFormat:
        """This format for the file whose first bytes are ``head`` (its header row)."""
        text = head.decode("utf-8", "replace")
        first = next((line for line in text.splitlines() if line.strip()), "")
        return CsvFormat(_header(first), first.lstrip("\ufeff").rstrip("\r"))

    def sniff_head(self, lines: list[str]) -> bool:
        """A header row, then mostly rows of as many cells (the last line of a head may be cut
        short, and a bad row must not make the whole file text)."""
        columns = _header(lines[0]) if lines else None
        if columns is None or len(lines) < 2:
            return False
        rows = [_row(line) for line in lines[1:-1] or lines[1:]]
        fitting = sum(row is not None and len(row) == len(columns) for row in rows)
        return fitting > 0 and fitting * 2 >= len(rows)

    def verbatim(self, path: str) -> bool:
        # A cell is written as it reads, unless quoted with "" inside (escaped_chars); values
        # normalization copies (eventName -> evt.name) are cells too; what it computes is not.
        return path not in JSON_DERIVED

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path in JSON_DERIVED or not raw_safe(value, self.escaped_chars):
            return None  # a derived source or outcome is read from column names, in the header only
        return super().implied_literals(path, value)

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        if self.columns is None:
            raise LineRejected(reasons.UNPARSED_LINE, f"no header row naming the columns: {text}")
        if text.lstrip("\ufeff") == self.header_line:
            return []
        cells = _row(text)
        if cells is None:
            raise LineRejected(reasons.UNPARSED_LINE, f"unbalanced quotes (a quoted line break?): {text}")
        if len(cells) != len(self.columns):
            raise LineRejected(reasons.UNPARSED_LINE, f"{len(cells)} cells for {len(self.columns)} columns: {text}")
        record = {name: typed_cell(cell) for name, cell in zip(self.columns, cells) if cell != ""}
        try:
            return record_event(record)
        except LineRejected as rejected:
            value = record.get(self.date_column) if self.date_column is not None else None
            if rejected.reason != reasons.MISSING_TIMESTAMP or value is None:
                raise
        # (normalization stops at the missing date before changing the record)
        try:
            ms = parse_any(value)
        except (TimestampError, ValueError, TypeError, OverflowError) as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{self.date_column}: {exc}: {text}") from None
        if not is_plausible_ms(ms):
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{self.date_column}: {value!r} is not a date from 1990 to 2100: {text}")
        record["timestamp"] = ms
        return record_event(record)
