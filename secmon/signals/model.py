"""The security signal: what a rule hit becomes, in JSON and as a Polars row.

Keys follow DESIGN.md's contract: ``id, rule_id, rule_name, severity, case, group_by, first_seen,
last_seen, event_count, samples, tags, status, message``. Ids are derived from the rule, the
group-by values and the first event, so the same events always give the same id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import orjson
import polars as pl

from secmon.severity import SEVERITY_RANK

SignalStatus = Literal["open", "under_review", "archived"]
SIGNAL_STATUSES: tuple[str, ...] = ("open", "under_review", "archived")
MAX_SAMPLES = 10

SIGNAL_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "rule_id": pl.String(),
    "rule_name": pl.String(),
    "severity": pl.String(),
    "case": pl.String(),
    "group_by": pl.String(),  # JSON object keyed by the rule's group-by fields, as written
    "first_seen": pl.Datetime("ms", "UTC"),
    "last_seen": pl.Datetime("ms", "UTC"),
    "event_count": pl.Int64(),
    "samples": pl.List(pl.String()),  # JSON events
    "tags": pl.List(pl.String()),
    "status": pl.String(),
    "message": pl.String(),
}


def iso_ms(epoch_ms: int) -> str:
    """ISO 8601 UTC with milliseconds: ``2015-12-10T10:54:29.000Z``. From ``time.gmtime`` of the
    whole seconds (floored, so times before 1970 keep a positive millisecond part): a third of
    the cost of a datetime, and a scan's output writes two per signal."""
    t = time.gmtime(epoch_ms // 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{epoch_ms % 1000:03d}Z"


def iso_ms_many(epoch_ms: Sequence[int]) -> list[str]:
    """``iso_ms`` of each, formatted all at once by Polars: one ``iso_ms`` call per timestamp was a
    third of the cost of writing a scan's signals. For the 137k timestamps of the 1M-event
    benchmark, in the output's batches of 2,048: 0.04 s (numpy's ``datetime_as_string``: 0.05 s,
    and 0.2 s in one call)."""
    if not epoch_ms:
        return []
    moments = pl.Series(epoch_ms, dtype=pl.Int64).cast(pl.Datetime("ms"))
    return moments.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_list()


def signal_id(rule_id: str, group_by: dict[str, Any], first_seen_ms: int) -> str:
    key = orjson.dumps([rule_id, group_by, first_seen_ms], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(key, digest_size=10).hexdigest()


class SampleJSON(tuple[bytes, ...]):
    """Sample events as JSON texts (bytes), for ``Signal(samples=SampleJSON(texts))``: the signal
    parses them on first read of ``samples``. A scan's signals are mostly counted, filtered or
    stored, not read event by event, and parsing every sample up front was most of the
    per-signal cost of a scan (measured: 0.5 s for 102k samples of 68k signals at 1M events)."""

    __slots__ = ()

    def events(self) -> list[dict[str, Any]]:
        loads = orjson.loads
        return [loads(text) for text in self]


_SLOT = "_samples"  # where a signal keeps its samples, parsed or not


class _Samples:
    """The ``samples`` field of :class:`Signal`: a list of event dicts, kept as JSON until read
    when given as :class:`SampleJSON` (a dataclass field whose default is a descriptor: the
    generated ``__init__`` assigns through ``__set__``)."""

    @overload
    def __get__(self, signal: None, owner: type | None = None) -> tuple[()]: ...
    @overload
    def __get__(self, signal: Signal, owner: type | None = None) -> list[dict[str, Any]]: ...

    def __get__(self, signal: Signal | None, owner: type | None = None) -> list[dict[str, Any]] | tuple[()]:
        if signal is None:
            return ()  # the field's default: no samples
        parsed = signal.__dict__[_SLOT] = sample_events(signal)  # kept parsed from now on
        return parsed

    def __set__(self, signal: Signal, value: Iterable[dict[str, Any]] | SampleJSON) -> None:
        signal.__dict__[_SLOT] = value if type(value) is SampleJSON else list(value)


def sample_events(signal: Signal) -> list[dict[str, Any]]:
    """``signal.samples`` without keeping them parsed in the signal: for output and storage,
    which read each signal once (a big scan's signals holding every parsed sample would take
    hundreds of MB)."""
    value = signal.__dict__[_SLOT]
    return value.events() if type(value) is SampleJSON else value  # type: ignore[no-any-return]


@dataclass
class Signal:
    rule_id: str
    rule_name: str
    severity: str
    case: str
    group_by: dict[str, Any]
    first_seen_ms: int
    last_seen_ms: int
    event_count: int
    samples: _Samples = _Samples()  # list[dict[str, Any]] when read
    tags: list[str] = field(default_factory=list)
    message: str = ""
    status: str = "open"
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            self.id = signal_id(self.rule_id, self.group_by, self.first_seen_ms)

    def to_json(self) -> dict[str, Any]:
        return self._json(iso_ms(self.first_seen_ms), iso_ms(self.last_seen_ms))

    def _json(self, first_seen: str, last_seen: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "severity": self.severity,
            "case": self.case,
            "group_by": self.group_by,
            "first_seen": first_seen,
            "last_seen": last_seen,
            "event_count": self.event_count,
            "samples": sample_events(self),
            "tags": self.tags,
            "status": self.status,
            "message": self.message,
        }

    def key(self) -> tuple[Any, ...]:
        """What makes two signals the same, for comparisons between engines."""
        return (self.rule_id, orjson.dumps(self.group_by, option=orjson.OPT_SORT_KEYS), self.first_seen_ms,
                self.last_seen_ms, self.event_count, self.severity, self.case)


def signals_json(signals: Sequence[Signal]) -> list[dict[str, Any]]:
    """``[s.to_json() for s in signals]``, the timestamps formatted all at once."""
    texts = iso_ms_many([ms for s in signals for ms in (s.first_seen_ms, s.last_seen_ms)])
    return [s._json(texts[2 * i], texts[2 * i + 1]) for i, s in enumerate(signals)]


def signals_to_frame(signals: list[Signal]) -> pl.DataFrame:
    rows = {
        "id": [s.id for s in signals],
        "rule_id": [s.rule_id for s in signals],
        "rule_name": [s.rule_name for s in signals],
        "severity": [s.severity for s in signals],
        "case": [s.case for s in signals],
        "group_by": [orjson.dumps(s.group_by, option=orjson.OPT_SORT_KEYS).decode() for s in signals],
        "first_seen": [s.first_seen_ms for s in signals],
        "last_seen": [s.last_seen_ms for s in signals],
        "event_count": [s.event_count for s in signals],
        "samples": [[orjson.dumps(e, option=orjson.OPT_SORT_KEYS).decode() for e in s.samples] for s in signals],
        "tags": [list(s.tags) for s in signals],
        "status": [s.status for s in signals],
        "message": [s.message for s in signals],
    }
    frame = pl.DataFrame(rows, schema={**SIGNAL_SCHEMA, "first_seen": pl.Int64(), "last_seen": pl.Int64()})
    return frame.with_columns(
        pl.col("first_seen").cast(pl.Datetime("ms", "UTC")),
        pl.col("last_seen").cast(pl.Datetime("ms", "UTC")),
    )


_TEMPLATE_VAR = re.compile(r"\{\{\s*([^{}#/^]+?)\s*\}\}")


def lookup_path(event: dict[str, Any], path: str) -> Any:
    """The value at a dotted attribute path (``@`` optional), or None; values reached through
    arrays come back as a list (``secmon.ingest.paths``)."""
    from secmon.ingest.paths import Values, resolve

    found = resolve(event, path)
    return list(found) if type(found) is Values else found


# Datadog's signal template variables (written without "@"; an attribute is ``{{@name}}``).
SIGNAL_VARIABLES = frozenset({
    "severity", "rule_name", "case_name", "events_matched", "timestamp", "timestamp_epoch", "first_seen",
    "first_seen_epoch", "last_seen", "last_seen_epoch",
})


def signal_variables(rule_name: str, case_name: str, severity: str, first_seen_ms: int, last_seen_ms: int,
                     events: int) -> dict[str, str]:
    """The values of :data:`SIGNAL_VARIABLES` for one signal, as Datadog writes them: severity as
    its number 0-4, times as ``Mon Jan 01 00:00:00 UTC 1970`` and epoch milliseconds. The
    signal's time (``timestamp``) is its first event's: a batch scan has no other."""

    def shown(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%a %b %d %H:%M:%S UTC %Y")

    return {
        "severity": str(SEVERITY_RANK[severity]), "rule_name": rule_name, "case_name": case_name,
        "events_matched": str(events), "timestamp": shown(first_seen_ms), "timestamp_epoch": str(first_seen_ms),
        "first_seen": shown(first_seen_ms), "first_seen_epoch": str(first_seen_ms),
        "last_seen": shown(last_seen_ms), "last_seen_epoch": str(last_seen_ms),
    }


# Datadog's conditional blocks over an attribute: {{#is_match "@a" "x" "y"}}...{{else}}...{{/is_match}}
# (the value holds one of the strings), is_exact_match (equals one), and ^ for "does not". The
# content holds no other block: nested blocks are resolved from the innermost out.
_CONDITIONAL = re.compile(
    r'\{\{([#^])(is_match|is_exact_match)\s+"([^"]*)"((?:\s+"[^"]*")+)\s*\}\}'
    r"((?:(?!\{\{[#^]is_).)*?)\{\{/\2\}\}",
    re.DOTALL,
)
_ELSE = re.compile(r"\{\{\s*else\s*\}\}")
_QUOTED = re.compile(r'"([^"]*)"')


def resolve_conditionals(template: str, value_of: Callable[[str], str | None]) -> str:
    """``template`` with its conditional blocks replaced by the branch that holds; ``value_of``
    gives a variable's rendered value (None when it has none, which matches nothing)."""
    if "{{#is_" not in template and "{{^is_" not in template:
        return template

    def choose(m: re.Match[str]) -> str:
        sign, helper, name, wanted, body = m.groups()
        value = value_of(name)
        options = _QUOTED.findall(wanted)
        if value is None:
            holds = False
        elif helper == "is_match":
            holds = any(option in value for option in options)
        else:
            holds = value in options
        branches = _ELSE.split(body, 1)
        if holds == (sign == "#"):
            return branches[0]
        return branches[1] if len(branches) > 1 else ""

    while True:
        resolved = _CONDITIONAL.sub(choose, template)
        if resolved == template:
            return resolved
        template = resolved


def render_message(template: str, event: dict[str, Any] | None, group_by: dict[str, Any],
                   signal: dict[str, str] | None = None) -> str:
    """Fill ``{{@attr}}`` variables from the group-by values, then the first sample event, and
    the signal's own variables (``{{rule_name}}``, ``{{first_seen}}``, ...) from ``signal``.

    Unknown variables render empty, as Datadog renders them. The conditional blocks
    ``{{#is_match}}``/``{{#is_exact_match}}`` (and ``^``, and ``{{else}}``) keep the branch that
    holds; other block helpers are left as written.
    """

    def value_of(name: str) -> str | None:
        return message_value(name, event, group_by, signal)

    template = resolve_conditionals(template, value_of)
    return _TEMPLATE_VAR.sub(lambda m: value_of(m.group(1).strip()) or "", template)


def message_value(name: str, event: dict[str, Any] | None, group_by: dict[str, Any], signal: dict[str, str] | None) -> str | None:
    """A message variable's text: the signal's own, else a group-by value, else the first
    sample's attribute (objects and lists as JSON); None when there is none."""
    if signal is not None and name in SIGNAL_VARIABLES:
        return signal[name]
    for key in (name, "@" + name.lstrip("@"), name.lstrip("@")):
        if key in group_by and group_by[key] is not None:
            return str(group_by[key])
    value = lookup_path(event, name) if event else None
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return str(value)
