"""The detection engine: logs in, security signals out.

Pipeline per input chunk (whole lines of one file, 16 MiB by default):

1. the native prefilter (one Aho-Corasick automaton holding every literal of every enabled rule)
   marks the lines that can match some rule, over raw bytes; other lines are never parsed;
2. the input format parses only those lines into events;
3. every rule query (with its filters) is evaluated as a Polars expression over the chunk's event
   table; rows no query matched are dropped, the rest keep only the columns detection reads.

After the last chunk the kept rows of all inputs are detected rule by rule (threshold, new value)
in event time. Memory grows with matching events, not with input size, and neither input order,
chunking nor the prefilter changes the signals (tests compare all three).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl

from secmon.detect.compiled import CompiledRule, compile_rules
from secmon.detect.detector import detect_rule, sort_signals
from secmon.detect.rule_frame import EID, EVENT, TS, as_number, as_text
from secmon.errors import InputError
from secmon.ingest import IngestStats, normalize_events, open_sources
from secmon.ingest.events import to_frame
from secmon.rules.loader import RuleSet, load_rules
from secmon.rules.model import Rule
from secmon.signals.model import Signal, signals_to_frame

DEFAULT_CHUNK_BYTES = 16 << 20
# Formats whose events hold only JSON-safe values (user-defined parsers may cast "nan" to a float).
BUILTIN_FORMATS = frozenset({"ndjson", "json", "syslog", "access_log", "nginx", "apache", "apache_error", "text"})
RulesLike = RuleSet | Iterable[Rule] | str | Path | Sequence[str | Path] | None
Source = str | Path | Sequence[str | Path] | pl.DataFrame | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ScanResult:
    signals: list[Signal]
    stats: IngestStats
    # Lines the prefilter proved no rule can match: read, never parsed.
    skipped_lines: int = 0

    def summary(self) -> str:
        text = f"{self.stats.lines_read:,} lines read"
        if self.skipped_lines:
            text += f" ({self.skipped_lines:,} skipped by the prefilter)"
        return f"{text}; {self.stats.summary()}"


class Engine:
    """Detection over logs with a set of rules.

    ``Engine()`` uses the bundled default rules; ``Engine(rules)`` takes a :class:`RuleSet`, rules,
    or rule files/directories. ``intel`` adds threat-intel IP lists (paths or an
    :class:`secmon.intel.IndicatorSet`). ``prefilter=False`` parses every line and
    ``native_json=False`` builds event tables in Python only: the slow, obvious paths the
    prefilter and the native extractor are tested against.
    """

    def __init__(
        self,
        rules: RulesLike = None,
        *,
        prefilter: bool = True,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        input_format: str | None = None,
        year: int | None = None,
        progress: Callable[[int], None] | None = None,
        intel: Any = None,
        native_json: bool = True,
    ) -> None:
        self.rules = _as_rule_set(rules)
        self.compiled: tuple[CompiledRule, ...] = compile_rules(self.rules)
        if intel is not None:
            from secmon.intel import IndicatorSet, IntelRule, load_indicators

            indicators = intel if isinstance(intel, IndicatorSet) else load_indicators(intel)
            self.compiled += (IntelRule.build(indicators, len(self.compiled)),)
        self.prefilter = prefilter
        self.native_json = native_json
        self._extract_paths: list[str] | None = None
        self.chunk_bytes = chunk_bytes
        self.input_format = input_format
        self.year = year
        self.progress = progress
        self.stats = IngestStats()
        self.skipped_lines = 0
        self._paths = sorted(set().union(*(c.attribute_paths for c in self.compiled)) | {TS})
        self._value_paths = sorted(
            {p for c in self.compiled for cq in c.queries for p in (*cq.group_by, *cq.distinct, *cq.metrics)}
        )
        self._numeric_paths = {p for c in self.compiled for cq in c.queries for p in cq.metrics if cq.aggregation in ("sum", "max")}
        self._matchers: dict[str, Any] = {}
        self._flag_cache: dict[tuple[tuple[str, str], ...], list[pl.Expr]] = {}
        self._next_eid = 0

    # --- public API -------------------------------------------------------------------------

    def scan(self, source: Source) -> pl.DataFrame:
        """Signals as a Polars DataFrame (columns of the signal contract)."""
        return signals_to_frame(self.detect(source).signals)

    def detect(self, source: Source) -> ScanResult:
        """Signals as :class:`Signal` objects, with the ingestion statistics of this scan."""
        self.stats = IngestStats()
        self.skipped_lines = 0
        self._next_eid = 0
        tables = [t for t in self._tables(source) if t.height]
        kept = pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame()
        return ScanResult(self._detect_kept(kept), self.stats, self.skipped_lines)

    def detect_table(self, table: pl.DataFrame) -> list[Signal]:
        """Signals over an event table that is already built (one column per attribute path, as
        :func:`secmon.ingest.events.to_frame` makes it, ``timestamp`` in epoch ms). Samples are the
        table's own rows as JSON."""
        self._next_eid = 0

        def rows_as_json(idx: np.ndarray) -> list[str]:
            picked = table[idx]
            return picked.select(pl.struct(pl.all()).struct.json_encode()).to_series().to_list()

        return self._detect_kept(self._keep(table, rows_as_json))

    def _detect_kept(self, kept: pl.DataFrame) -> list[Signal]:
        """Every rule over the kept rows of a whole scan, in event time."""
        signals: list[Signal] = []
        if kept.height:
            for compiled in self.compiled:
                signals.extend(detect_rule(compiled, kept))
        return sort_signals(signals)

    def scan_events(self, events: Iterable[Mapping[str, Any]]) -> list[Signal]:
        """Signals over event dicts already in Datadog's attribute form."""
        return self.detect(list(events)).signals

    # --- ingestion to kept rows -------------------------------------------------------------

    def _tables(self, source: Source) -> Iterator[pl.DataFrame]:
        if isinstance(source, pl.DataFrame):
            yield self._kept_rows(_events_from_frame(source))
            return
        if isinstance(source, Sequence) and not isinstance(source, (str, bytes)) and source and isinstance(source[0], Mapping):
            records = [event if isinstance(event, dict) else dict(event) for event in source]
            yield self._kept_rows(normalize_events(records, self.stats))
            return
        paths = [source] if isinstance(source, (str, Path)) else list(source)  # type: ignore[arg-type]
        for src in open_sources(paths, format=self.input_format, year=self.year):
            log_format = src.format
            matcher = self._matcher_for(log_format) if self.prefilter and log_format.line_oriented else None
            native = self.native_json and getattr(log_format, "name", None) == "ndjson"
            for chunk in src.chunks(self.chunk_bytes):
                line_idx = None
                if matcher is not None:
                    candidates = matcher.any_lines(chunk.data)
                    line_idx = np.flatnonzero(candidates).astype(np.uint32)
                    self.skipped_lines += len(candidates) - len(line_idx)
                if native:
                    yield from self._native_chunk(src, chunk, line_idx)
                else:
                    events = log_format.parse(chunk, line_idx, self.stats)
                    yield self._kept_rows(events, json_safe=getattr(log_format, "name", None) in BUILTIN_FORMATS)
                if self.progress is not None:
                    self.progress(len(chunk.data))

    def _native_chunk(self, src: Any, chunk: Any, line_idx: np.ndarray | None) -> Iterator[pl.DataFrame]:
        """NDJSON: Datadog-form lines go through the native extractor, the rest through Python."""
        from secmon._core import count_lines
        from secmon.detect.native_json import canonical_events, extraction_paths, split_native

        if line_idx is None:
            line_idx = np.arange(count_lines(chunk.data), dtype=np.uint32)
        if self._extract_paths is None:
            self._extract_paths = extraction_paths(self._paths)
        batch = split_native(chunk.data, line_idx, self._paths, self._extract_paths, src.max_line_bytes)
        yield self._kept_rows(src.format.parse(chunk, batch.python_lines, self.stats), json_safe=True)
        if batch.table.height:
            self.stats.count_events(src.name, batch.table.height)
            lines = batch.table["__line"].to_numpy()
            stamps = batch.table["timestamp"].to_numpy()
            yield self._keep(batch.table.drop("__line"),
                             lambda idx: canonical_events(chunk.data, lines[idx], stamps[idx]))

    def _matcher_for(self, log_format: Any) -> Any:
        """The prefilter for one input format, or None when some rule cannot be prefiltered."""
        name = getattr(log_format, "name", repr(log_format))
        if name not in self._matchers:
            literals: set[bytes] = set()
            matcher = None
            for compiled in self.compiled:
                rule_literals = compiled.prefilter_literals(log_format.verbatim, log_format.implied_literals)
                if rule_literals is None:
                    break
                literals.update(rule_literals)
            else:
                from secmon._core import Matcher

                matcher = Matcher(sorted(literals), ascii_case_insensitive=True)
            self._matchers[name] = matcher
        return self._matchers[name]

    @property
    def attribute_paths(self) -> list[str]:
        """The event-table columns the enabled rules read."""
        return list(self._paths)

    def flag_expressions(self, schema: Mapping[str, pl.DataType]) -> list[pl.Expr]:
        key = tuple((name, str(dtype)) for name, dtype in schema.items())
        if key not in self._flag_cache:
            exprs: list[pl.Expr] = []
            for compiled in self.compiled:
                exprs.extend(compiled.flag_expressions(schema))
            self._flag_cache[key] = exprs
        return self._flag_cache[key]

    def _kept_rows(self, events: list[dict[str, Any]], *, json_safe: bool = False) -> pl.DataFrame:
        """The rows of ``events`` some rule query matched, with the columns detection reads.
        ``json_safe``: the events come from a built-in format, so every value survives a JSON
        round trip (no NaN, no integer past 64 bits) and the native table builder may be used."""
        if not self.compiled or not events:
            self._next_eid += len(events)
            return pl.DataFrame()
        table = self._event_table(events) if json_safe else to_frame(events, self._paths)
        return self._keep(
            table, lambda idx: [orjson.dumps(events[i], option=orjson.OPT_SORT_KEYS).decode() for i in idx.tolist()]
        )

    def _event_table(self, events: list[dict[str, Any]]) -> pl.DataFrame:
        """The event table of parsed events. Natively: each event is written back as one JSON line
        and ``extract_fields`` builds the columns (its contract is ``to_frame`` of the parsed line,
        and a JSON round trip gives the same dict); ``native_json=False`` keeps ``to_frame``."""
        if not self.native_json:
            return to_frame(events, self._paths)
        from secmon._core import extract_fields

        dumps = orjson.dumps
        try:
            lines = b"\n".join([dumps(event) for event in events])
        except TypeError:  # a value JSON cannot hold (user parsers may produce one): the twin copes
            return to_frame(events, self._paths)
        batch = pl.DataFrame(extract_fields(lines, self._paths))
        return batch.drop("__line", "__status").with_columns(pl.col(TS).cast(pl.Int64))

    def _keep(self, table: pl.DataFrame, canonical: Callable[[np.ndarray], list[str]]) -> pl.DataFrame:
        """Rows of an event table that some rule query matched: the timestamp, the values detection
        reads, one flag per query, the canonical JSON of the event and a scan-wide event id."""
        first_eid = self._next_eid
        self._next_eid += table.height
        if not self.compiled or table.height == 0:
            return pl.DataFrame()
        flags = self.flag_expressions(table.schema)
        flagged = table.with_columns(flags)
        flag_names = [c for compiled in self.compiled for c in compiled.flag_columns]
        mask = flagged.select(pl.any_horizontal(flag_names)).to_series().to_numpy()
        kept_idx = np.flatnonzero(mask)
        if kept_idx.size == 0:
            return pl.DataFrame()
        kept = flagged[kept_idx]
        values = [
            (as_number(kept, p) if p in self._numeric_paths else as_text(kept, p)).alias(p) for p in self._value_paths
        ]
        rows = kept.select(
            [pl.col(TS).cast(pl.Int64), *values, *[pl.col(f) for f in flag_names]]
        ).with_columns(
            pl.Series(EVENT, canonical(kept_idx), dtype=pl.String),
            pl.Series(EID, kept_idx + first_eid, dtype=pl.Int64),
        )
        return _compact(rows)


def _compact(frame: pl.DataFrame) -> pl.DataFrame:
    """A copy that owns only its own bytes. Polars string columns are views into shared buffers,
    so the kept rows of a chunk would otherwise keep every string of the whole chunk alive until
    the end of the scan (measured: peak memory 4.1 GB -> 2.3 GB on a 1 GB input). An in-memory IPC
    round trip in the oldest layout rewrites the strings into fresh buffers."""
    import io

    buffer = io.BytesIO()
    frame.write_ipc(buffer, compat_level=pl.CompatLevel.oldest())
    buffer.seek(0)
    return pl.read_ipc(buffer)


def _as_rule_set(rules: RulesLike) -> RuleSet:
    if rules is None:
        from secmon.rules import default_rules

        return default_rules()
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, (str, Path)):
        return load_rules(rules)
    items = list(rules)
    if all(isinstance(item, Rule) for item in items):
        return RuleSet(tuple(items))
    return load_rules(items)  # type: ignore[arg-type]


def _events_from_frame(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of a user's DataFrame as events: dotted column names become nested attributes."""
    if "timestamp" not in frame.columns:
        raise InputError(f"the DataFrame has no 'timestamp' column; columns: {', '.join(frame.columns)}")
    ts = frame["timestamp"]
    if ts.dtype == pl.Datetime or isinstance(ts.dtype, pl.Datetime):
        frame = frame.with_columns(pl.col("timestamp").dt.epoch("ms"))
    events: list[dict[str, Any]] = []
    for row in frame.to_dicts():
        event: dict[str, Any] = {}
        for name, value in row.items():
            if value is None:
                continue
            parts = name.lstrip("@").split(".") if name not in ("timestamp",) else [name]
            node = event
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
        events.append(event)
    return normalize_events(events)
