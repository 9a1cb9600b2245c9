"""Plain text lines: the message only, timestamp from a leading ISO 8601 date or rejected."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from secmon.ingest import stats as reasons
from secmon.ingest.base import Event, LineRejected, LogFormat
from secmon.ingest.timestamps import TimestampError, parse_iso8601

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

# The time may be bracketed (``[2016-09-28 04:30:30]``) and followed by anything but more of a
# time: a space, a comma (Windows CBS, Python's logging: ``2016-09-28 04:30:30, Info ...``), ``]``.
_LEADING_ISO = re.compile(
    r"\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)(?![\w:.+-])"
)


class TextFormat(LogFormat):
    """Anything else: the line is the message. A line that starts with an ISO 8601 time gets it;
    any other line is rejected as ``missing_timestamp`` (there is no honest time to give it)."""

    name = "text"
    description = "plain text lines: message only; timestamp from a leading ISO 8601 date, else rejected"
    verbatim_paths = frozenset({"message"})

    def sniff(self, line: str) -> bool:
        return True

    def parse_text(self, text: str, source: Source) -> Event:
        m = _LEADING_ISO.match(text)
        if m is None:
            raise LineRejected(reasons.MISSING_TIMESTAMP, text)
        try:
            ts = parse_iso8601(m.group(1).replace(",", "."))
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        return {"timestamp": ts, "message": text}
