"""Plain text lines: the message only, timestamp from a leading date or rejected.

The leading dates read (each may be bracketed, and is followed by anything but more of a date):

- ISO 8601 (``2016-09-28 04:30:30,123``: Windows CBS, Python's logging, most servers);
- ``2024/05/01 10:00:00`` (Go's ``log`` package, many tools written in Go);
- ``01-May-2024 10:00:00.123`` (Tomcat, BIND);
- ``24/05/01 10:00:00`` (log4j's default pattern: Spark, Hadoop tools) and ``240501 100000``
  (HDFS), two-digit years being 20xx;
- ``20240501-10:00:00:123`` (compact, with the milliseconds after a colon);
- ``May  1 10:00:00`` (a syslog-style date on a line that is no syslog record),
  ``[05.01 10:00:00]`` (Proxifier) and ``05-01 10:00:00.123`` (Android's logcat), whose year
  comes from ``--year`` and the rollover rule of syslog
  (:class:`~secmon.ingest.timestamps.YearTracker`);
- epoch seconds with a fraction (``1714557600.123``: Squid's access log).

An ISO 8601 date may also come second, after one word (a level, a host or a file name:
``nova-api.log 2017-05-16 00:00:00.008 ...``, as OpenStack's logs are collected).

Times without a zone are UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.timestamps import (
    MONTHS,
    TimestampError,
    YearTracker,
    datetime_ms,
    epoch_to_ms,
    fraction_ms,
    is_plausible_ms,
    parse_iso8601,
)

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

_END = r"\]?(?![\w:.+/-])"  # the date ends here: no more of a date follows
_CLOCK = r"(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
_LEADING_ISO = re.compile(r"\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)" + _END)
_LEADING_SLASHED = re.compile(r"\[?(\d{4})/(\d{2})/(\d{2}) " + _CLOCK + _END)
_MONTH = "(" + "|".join(MONTHS) + ")"
_LEADING_DAY_MONTH_YEAR = re.compile(r"\[?(\d{2})-" + _MONTH + r"-(\d{4}) " + _CLOCK + _END)
_LEADING_BSD = re.compile(r"\[?" + _MONTH + r" {1,2}(\d{1,2}) " + _CLOCK + _END)
_LEADING_PROXIFIER = re.compile(r"\[(\d{2})\.(\d{2}) " + _CLOCK + r"\]")
_LEADING_EPOCH = re.compile(r"(\d{10})\.(\d{1,6})(?=\s)")
_LEADING_LOG4J = re.compile(r"(\d{2})/(\d{2})/(\d{2}) " + _CLOCK + _END)
_LEADING_COMPACT = re.compile(r"(\d{2})(\d{2})(\d{2}) (\d{2})(\d{2})(\d{2})(?:[.,](\d+))?" + _END)
_LEADING_DASHED_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})-(\d{2}):(\d{2}):(\d{2})(?::(\d{3}))?" + _END)
_LEADING_MONTH_DAY = re.compile(r"(\d{2})-(\d{2}) " + _CLOCK + _END)
_SECOND_ISO = re.compile(r"[^\s\d][^\s]* " + _LEADING_ISO.pattern)


def _at(year: int, month: int, day: int, clock: tuple[str | None, ...]) -> int:
    """The time of a date and its _CLOCK groups (hour, minute, second, fraction or None)."""
    return datetime_ms(year, month, day, *clock)  # type: ignore[arg-type]


def _iso(m: re.Match[str], source: Source) -> int:
    return parse_iso8601(m.group(1).replace(",", "."))


def _year_month_day(m: re.Match[str], source: Source) -> int:
    return _at(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.groups()[3:])


def _two_digit_year(m: re.Match[str], source: Source) -> int:
    return _at(2000 + int(m.group(1)), int(m.group(2)), int(m.group(3)), m.groups()[3:])


def _day_month_year(m: re.Match[str], source: Source) -> int:
    return _at(int(m.group(3)), MONTHS[m.group(2)], int(m.group(1)), m.groups()[3:])


def _yearless(month: int, day: int, clock: tuple[str | None, ...], source: Source) -> int:
    return _at(YearTracker.of(source).year_for(month, day), month, day, clock)


def _bsd(m: re.Match[str], source: Source) -> int:
    return _yearless(MONTHS[m.group(1)], int(m.group(2)), m.groups()[2:], source)


def _month_day(m: re.Match[str], source: Source) -> int:
    return _yearless(int(m.group(1)), int(m.group(2)), m.groups()[2:], source)


def _epoch(m: re.Match[str], source: Source) -> int:
    ms = epoch_to_ms(int(m.group(1))) + fraction_ms(m.group(2))
    if not is_plausible_ms(ms):
        raise TimestampError(f"{m.group(0)} is not a plausible epoch time")
    return ms


# (pattern, its reader), tried in this order; the first that matches gives the time.
_LEADING_DATES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str], Source], int]], ...] = (
    (_LEADING_ISO, _iso),
    (_LEADING_SLASHED, _year_month_day),
    (_LEADING_DAY_MONTH_YEAR, _day_month_year),
    (_LEADING_BSD, _bsd),
    (_LEADING_PROXIFIER, _month_day),
    (_LEADING_EPOCH, _epoch),
    (_LEADING_LOG4J, _two_digit_year),
    (_LEADING_COMPACT, _two_digit_year),
    (_LEADING_DASHED_COMPACT, _year_month_day),
    (_LEADING_MONTH_DAY, _month_day),
    (_SECOND_ISO, _iso),
)


class TextFormat(LogFormat):
    """Anything else: the line is the message. A line that starts with a date it knows gets it;
    any other line is rejected as ``missing_timestamp`` (there is no honest time to give it)."""

    name = "text"
    description = "plain text lines: message only; timestamp from a leading date (ISO 8601, Go, Tomcat, log4j, syslog-style, logcat, epoch, ...), else rejected"
    verbatim_paths = frozenset({"message"})

    def sniff(self, line: str) -> bool:
        return True

    def parse_text(self, text: str, source: Source) -> Event:
        for pattern, read in _LEADING_DATES:
            m = pattern.match(text)
            if m is None:
                continue
            try:
                ts = read(m, source)
            except TimestampError as exc:
                raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
            return {"timestamp": ts, "message": text}
        raise LineRejected(reasons.MISSING_TIMESTAMP, text)
