"""Turning the date formats found in logs into epoch milliseconds (UTC).

Every parser returns ``int`` milliseconds or raises :class:`TimestampError` (the caller counts the
line as ``bad_timestamp``). Times without a zone are taken as UTC. Hot-path helpers cache the
calendar arithmetic per day, so a line costs a dict lookup plus a few integer operations.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any

MONTHS: dict[str, int] = {
    name: i + 1
    for i, name in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"))
}
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000


class TimestampError(ValueError):
    """A value that should be a timestamp but is not one we can read."""


@lru_cache(maxsize=4096)
def day_ms(year: int, month: int, day: int) -> int:
    """Epoch milliseconds of midnight UTC of that day (raises TimestampError if no such day)."""
    try:
        return (dt.date(year, month, day).toordinal() - _EPOCH_ORDINAL) * _DAY_MS
    except ValueError as exc:
        raise TimestampError(f"no such day {year:04d}-{month:02d}-{day:02d}") from exc


def fraction_ms(digits: str) -> int:
    """Milliseconds of a second's decimal fraction ("5" -> 500, "123456" -> 123): truncated below
    the millisecond, as Datadog does."""
    return int((digits + "00")[:3])


def is_plausible_ms(ms: int) -> bool:
    """Whether epoch milliseconds fall in 1990-2100: what a value that is not surely a date (a
    fallback JSON field, a number leading a text line) must hit to be taken for one."""
    return 631152000000 <= ms < 4102444800000


def clock_ms(hour: int, minute: int, second: int) -> int:
    if hour > 23 or minute > 59 or second > 60:
        raise TimestampError(f"no such time {hour:02d}:{minute:02d}:{second:02d}")
    return ((hour * 60 + minute) * 60 + second) * 1000


def datetime_ms(year: int, month: int, day: int, hour: int | str, minute: int | str, second: int | str,
                fraction: str | None = None) -> int:
    """Epoch milliseconds of a UTC date and time of day, the time's fields as numbers or digits
    and its decimal fraction as digits (raises TimestampError for no such day or time)."""
    ms = day_ms(year, month, day) + clock_ms(int(hour), int(minute), int(second))
    return ms + fraction_ms(fraction) if fraction else ms


class YearTracker:
    """Years for RFC 3164 timestamps, which have none.

    The first line gets ``year`` (default: the current UTC year, or the previous one if the date
    would be more than a day in the future). A jump back of more than six months (Dec -> Jan)
    starts the next year; a line more than six months *ahead* of the last one (a late December
    line after January began) belongs to the year before. State lives on the :class:`Source`,
    so chunks must be parsed in order (any chunk size gives the same years). Behind a prefilter
    only parsed lines are seen: the rollover is still found as long as parsed lines lie on both
    sides of it, and only a gap of more than six months between parsed lines can mislead it."""

    def __init__(self, year: int | None) -> None:
        self.year = year
        self.last_month: int | None = None

    @classmethod
    def of(cls, source: Any) -> YearTracker:
        """The tracker of a :class:`~secmon.ingest.sources.Source` (kept in its ``parse_state``,
        for every format that reads yearless dates), made with its ``year`` on first use."""
        tracker = source.parse_state.get("years")
        if tracker is None:
            tracker = source.parse_state["years"] = cls(source.year)
        return tracker  # type: ignore[no-any-return]

    def year_for(self, month: int, day: int) -> int:
        if not 1 <= month <= 12:
            # Before it counts as the last month seen: a bad line must not move the year.
            raise TimestampError(f"no month {month}")
        if self.year is None:
            now = dt.datetime.now(dt.timezone.utc)
            self.year = now.year
            try:
                future = dt.datetime(now.year, month, day, tzinfo=dt.timezone.utc) - now > dt.timedelta(days=1)
            except ValueError:
                future = False
            if future:
                self.year -= 1
        last = self.last_month
        if last is None:
            self.last_month = month
            return self.year
        if month < last - 6:
            self.year += 1
            self.last_month = month
            return self.year
        if month > last + 6:
            return self.year - 1
        self.last_month = month
        return self.year


# ISO 8601 / RFC 3339: date, optional time with optional fraction, optional zone; the zone may
# be followed or replaced by the name UTC or GMT ("2024-05-30 08:55:35 (UTC)", Go's
# "2024-05-30 08:55:35 +0000 UTC").
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?"
    r"(?:\s*\(?(?:UTC|GMT)\)?)?"
)


def parse_iso8601(text: str) -> int:
    """``2023-07-10T12:00:42Z``, ``2023-07-10 12:00:42.123456789+02:00``, ``2023-07-10`` ..."""
    m = _ISO.fullmatch(text.strip())
    if m is None:
        raise TimestampError(f"not an ISO 8601 date: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    ms = day_ms(int(year), int(month), int(day))
    if hour is not None:
        ms += clock_ms(int(hour), int(minute), int(second or 0))
    if fraction:
        ms += fraction_ms(fraction)
    if zone and zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset_min = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
        ms -= sign * offset_min * 60_000
    return ms


# Magnitude thresholds for epoch numbers: seconds until year 5138, then ms, us, ns.
_SECONDS_BELOW = 1e11
_MILLIS_BELOW = 1e14
_MICROS_BELOW = 1e17


def epoch_to_ms(value: float | int) -> int:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    if value != value or value in (float("inf"), float("-inf")):
        raise TimestampError(f"not a finite epoch number: {value!r}")
    magnitude = abs(value)
    if magnitude < _SECONDS_BELOW:
        return int(round(value * 1000)) if isinstance(value, float) else int(value) * 1000
    if magnitude < _MILLIS_BELOW:
        return int(value)
    if magnitude < _MICROS_BELOW:
        return int(value) // 1000
    return int(value) // 1_000_000


_NUMERIC = re.compile(r"-?\d+(?:\.\d+)?")


# .NET's JSON dates (PowerShell 5's ConvertTo-Json, WCF): "/Date(1700000000000+0100)/", epoch ms
# (the offset only says where the writer was).
_DOTNET_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")
# RFC 2822 / RFC 1123 dates (HTTP, mail, some JSON loggers): "Tue, 28 Nov 2026 10:00:00 +0000".
_RFC2822 = re.compile(r"(?:[A-Z][a-z]{2}, )?\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}(?::\d{2})? (?:[+-]\d{4}|GMT|UTC|UT|Z)")


def parse_any(value: object) -> int:
    """A JSON timestamp value: epoch number, numeric string, ISO 8601 string, or one of the
    other date texts JSON writers use (.NET's ``/Date(ms)/``, RFC 2822)."""
    if isinstance(value, bool):
        raise TimestampError(f"a boolean is not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return epoch_to_ms(value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC.fullmatch(text):
            return epoch_to_ms(float(text) if "." in text else int(text))
        if (m := _DOTNET_DATE.fullmatch(text)) is not None:
            return int(m.group(1))
        if _RFC2822.fullmatch(text):
            return _rfc2822_ms(text)
        return parse_iso8601(text)
    raise TimestampError(f"not a timestamp: {value!r}")


def _rfc2822_ms(text: str) -> int:
    from email.utils import parsedate_tz

    parts = parsedate_tz(text)
    if parts is None:
        raise TimestampError(f"not an RFC 2822 date: {text!r}")
    year, month, day, hour, minute, second = parts[:6]
    return day_ms(year, month, day) + clock_ms(hour, minute, second) - (parts[9] or 0) * 1000


def parse_access_log_time(text: str) -> int:
    """``10/Oct/2000:13:55:36 -0700`` (Apache/nginx ``%t``)."""
    try:
        day = int(text[0:2])
        month = MONTHS[text[3:6]]
        year = int(text[7:11])
        hour, minute, second = int(text[12:14]), int(text[15:17]), int(text[18:20])
        ms = day_ms(year, month, day) + clock_ms(hour, minute, second)
        zone = text[21:].strip()
        if zone:
            sign = -1 if zone[0] == "-" else 1
            ms -= sign * (int(zone[1:3]) * 60 + int(zone[3:5])) * 60_000
        return ms
    except (KeyError, ValueError, IndexError) as exc:
        raise TimestampError(f"not an access-log time: {text!r}") from exc


def format_ms(ms: int) -> str:
    """ISO 8601 UTC with milliseconds, for messages and tests."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).isoformat(timespec="milliseconds")
