"""The detection engine: logs in, security signals out.

Pipeline per input chunk (whole lines of one file, 16 MiB by default):

1. the native prefilter (one automaton holding each enabled rule's most selective literals)
   marks the lines that can match some rule, over raw bytes; other lines are never parsed;
2. NDJSON candidates become event-table rows in the native extractor (normalization included);
   lines it cannot reproduce exactly, and every other format, go through the Python parsers;
3. every rule query (with its filters) is evaluated over the chunk's event table: natively, in
   the extractor's pass (:mod:`secmon.query.native`), or as Polars expressions for tables built
   in Python; rows no query matched are dropped, the rest keep only the columns detection reads.

The calling thread reads chunks and finishes them in input order (Python parsing, keeping rows);
the native work of two chunks runs on two worker threads meanwhile.

Kept rows go to disk as they come (:mod:`secmon.detect.kept`); the events they came from stay
where they are (the input file) or go to an event store (:mod:`secmon.detect.event_store`) that
turns them into JSON only for samples and ties. After the last chunk the kept rows are detected
rule by rule (threshold, new value) in event time, each rule reading only its own rows and
columns, a large rule one hash slice of its groups at a time; a worker thread finds the signal
spans of the next rules while this one builds the signals of the last. Neither input order,
chunking, slicing nor the prefilter changes the signals (tests compare all of them). Signal
correlation rules then run over the signals of the rules they name
(:mod:`secmon.detect.correlation`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import orjson
import polars as pl

from secmon._core import FlagProgram, extract_fields, select_lines
from secmon.detect.ahead import computed_ahead
from secmon.detect.compiled import CompiledRule, compile_rules
from secmon.detect.correlation import Correlator, correlation_rules
from secmon.detect.detector import RuleSpans, rule_spans, signals_of, sort_signals
from secmon.detect.event_store import CANONICAL, RAW_NDJSON, EventStore, canonical_json
from secmon.detect.kept import KeptRows
from secmon.detect.native_json import gathered_rows, split_native
from secmon.detect.fields import number_value, source_columns, text_value
from secmon.detect.rule_frame import EID, LEN, REF, TS, GroupSlice
from secmon.errors import InputError
from secmon.ingest import IngestStats, normalize_events, open_sources
from secmon.ingest.events import to_frame
from secmon.query.native import NotNative
from secmon.rules.loader import RuleSet, load_rules
from secmon.rules.model import Rule
from secmon.signals.model import Signal, signals_to_frame

DEFAULT_CHUNK_BYTES = 16 << 20
# A rule's kept rows detected at a time, at most (one slice of its groups). Each slice is a pass
# over the rule's kept files: at 100k, a 5 GB input took 32.1 s and peaked at 482 MB; at 250k,
# 25.4 s and 513 MB (1 GB: 469 -> 487 MB); at 500k, 24.1 s, but 1 GB then peaked at 542 MB.
DEFAULT_SLICE_ROWS = 250_000
CHUNK_WORKERS = 2  # chunks whose native work runs at once (each also uses the core's thread pool)
# The prefilter of a natively extracted chunk is left out when it passes more than
# PREFILTER_MAX_PASS of the lines of the chunk's first PREFILTER_PROBE_BYTES: extracting a line
# costs a few times what scanning it does, so a prefilter that skips few lines costs more than it
# saves (measured: 93% passed on the benchmark corpus, and the scan took 0.3 s more CPU with it).
# The probe costs a sixteenth of a 16 MiB chunk's scan; scanning whole chunks to decide, every
# ninth chunk, was 0.16 s of CPU at 1M events.
PREFILTER_MAX_PASS = 0.8
PREFILTER_PROBE_BYTES = 1 << 20
_ROW = "__row"  # a kept row's position in its chunk's event table
RulesLike = RuleSet | Iterable[Rule] | str | Path | Sequence[str | Path] | None
Source = str | Path | Sequence[str | Path] | pl.DataFrame | Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class _Prefiltered:
    """A chunk after the first stage: candidate lines and, for NDJSON, the native split."""

    chunk: Any
    line_idx: np.ndarray | None  # None: every line
    skipped: int
    native: Any  # secmon.detect.native_json.NativeBatch, or None for the Python parsers


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
    ``native_json=False`` builds event tables in Python only, ``native_flags=False`` evaluates
    rule queries as Polars expressions only: the slow, obvious paths the prefilter, the native
    extractor and the native flag program are tested against. ``temp_dir`` is where a scan spills
    its kept rows and events (the system's temporary directory by default). ``slice_rows``:
    a rule that kept more rows is detected one slice of its groups at a time (bounded memory;
    the signals are the same, tests compare).
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
        native_flags: bool = True,
        temp_dir: str | None = None,
        slice_rows: int = DEFAULT_SLICE_ROWS,
    ) -> None:
        self.rules = _as_rule_set(rules)
        self.compiled: tuple[CompiledRule, ...] = compile_rules(self.rules)
        self._correlations = correlation_rules(self.rules)
        if intel is not None:
            from secmon.intel import IndicatorSet, IntelRule, load_indicators

            indicators = intel if isinstance(intel, IndicatorSet) else load_indicators(intel)
            self.compiled += IntelRule.build_all(indicators, len(self.compiled))
        self.prefilter = prefilter
        self.native_json = native_json
        self.chunk_bytes = chunk_bytes
        self.input_format = input_format
        self.year = year
        self.progress = progress
        # Where a scan spills its kept rows and events (None: the system's temporary directory).
        self.temp_dir = temp_dir
        # A rule with more kept rows than this is detected one slice of its groups at a time.
        self.slice_rows = slice_rows
        self.stats = IngestStats()
        self.skipped_lines = 0
        self._paths = sorted(set().union(*(c.attribute_paths for c in self.compiled)) | {TS})
        self._value_paths = sorted(
            {p for c in self.compiled for cq in c.queries for p in (*cq.group_by, *cq.distinct, *cq.metrics)}
        )
        # The event-table columns those are derived from: what native extraction gathers.
        self._gathered_paths = sorted({c for p in self._value_paths for c in source_columns(p)})
        self._numeric_paths = {p for c in self.compiled for cq in c.queries for p in cq.metrics if cq.aggregation in ("sum", "max")}
        self._matchers: dict[str, Any] = {}
        self._flag_cache: dict[tuple[tuple[str, str], ...], list[pl.Expr]] = {}
        # The rule flags as one native program, for tables the native extractor builds (None: the
        # Polars flag expressions, their twin, for every table).
        self.native_flags = native_flags
        self._flag_program = _flag_program(self.compiled) if native_flags else None
        self._next_eid = 0

    # --- public API -------------------------------------------------------------------------

    def scan(self, source: Source) -> pl.DataFrame:
        """Signals as a Polars DataFrame (columns of the signal contract)."""
        return signals_to_frame(self.detect(source).signals)

    def detect(self, source: Source) -> ScanResult:
        """Signals as :class:`Signal` objects, with the ingestion statistics of this scan."""
        signals = sort_signals(list(self.signals(source)))
        return ScanResult(signals, self.stats, self.skipped_lines)

    def signals(self, source: Source) -> Iterator[Signal]:
        """Signals rule by rule as the scan finds them (the rules that matched the fewest rows
        first; ``detect`` sorts them), for inputs whose signals are too many to
        hold (every signal carries its sample events): memory then holds one rule's signals at a
        time. ``self.stats`` and ``self.skipped_lines`` describe the input once the first signal
        comes (or the iterator ends)."""
        self.stats = IngestStats()
        self.skipped_lines = 0
        with self._scan_state():
            self._ingest(source)
            yield from self._correlated(self._kept_signals())

    def _correlated(self, signals: Iterator[Signal]) -> Iterator[Signal]:
        """``signals``, then the signals of the signal correlation rules over them."""
        if not self._correlations:
            yield from signals
            return
        correlator = Correlator(self._correlations)
        for signal in signals:
            correlator.add(signal)
            yield signal
        yield from correlator.signals(self._detect_signal_events)

    def _detect_signal_events(self, rules: Sequence[Rule], events: list[dict[str, Any]]) -> list[Signal]:
        """Signals of threshold ``rules`` over the signal events of a correlation (normalized
        already: they are not read as logs)."""
        engine = Engine(RuleSet(tuple(rules)), native_json=self.native_json, native_flags=self.native_flags,
                        temp_dir=self.temp_dir, slice_rows=self.slice_rows)
        with engine._scan_state():
            engine._keep_events(events, json_safe=True)
            return sort_signals(list(engine._kept_signals()))

    def detect_table(self, table: pl.DataFrame) -> list[Signal]:
        """Signals over an event table that is already built (one column per attribute path, as
        :func:`secmon.ingest.events.to_frame` makes it, ``timestamp`` in epoch ms). Samples are the
        table's own rows as JSON."""

        def rows_as_json(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            picked = table[idx].select(pl.struct(pl.all()).struct.json_encode()).to_series()
            return self._store.append([text.encode() for text in picked.to_list()], CANONICAL)

        with self._scan_state():
            self._keep(table, rows_as_json)
            return sort_signals(list(self._correlated(self._kept_signals())))

    @contextmanager
    def _scan_state(self) -> Iterator[None]:
        """The event store and the kept rows of one scan, removed when it ends."""
        self._next_eid = 0
        self._store = EventStore(self.temp_dir)
        self._kept = KeptRows(self._kept_schema(), self.compiled, self.temp_dir)
        try:
            yield
        finally:
            self._store.close()
            self._kept.close()

    def _kept_schema(self) -> dict[str, pl.DataType]:
        schema: dict[str, pl.DataType] = {TS: pl.Int64()}
        for path in self._value_paths:
            schema[path] = pl.Float64() if path in self._numeric_paths else pl.String()
        for compiled in self.compiled:
            schema.update({flag: pl.Boolean() for flag in compiled.flag_columns})
        schema.update({EID: pl.Int64(), REF: pl.Int64(), LEN: pl.Int32()})
        return schema

    def _kept_signals(self) -> Iterator[Signal]:
        """Every rule over the kept rows of the scan, in event time, one rule at a time; a rule
        with more than ``slice_rows`` kept rows one slice of its groups at a time.

        Two stages: a worker thread reads the next rule parts and finds their spans (Polars and
        native work, mostly without the GIL) while this thread builds the signals of the parts
        before (Python), as far ahead as ``slice_rows`` rows of found spans (run one after the
        other, detection used one core of two; one part ahead, a rule with many signals left
        the worker idle while they were built)."""

        def rows_of(spans: RuleSpans | None) -> int:
            return 0 if spans is None else spans.frame.height

        # The worker alone advances the parts, which unlinks a slice's files once the next is
        # asked for: by then it has read them.
        found = (rule_spans(compiled, rows, self._store, groups_slice) for compiled, groups_slice, rows in self._rule_parts())
        for spans in computed_ahead(found, rows_of, self.slice_rows, "secmon-rules"):
            if spans is not None:
                yield from signals_of(spans, self._store)

    def _rule_parts(self) -> Iterator[tuple[CompiledRule, GroupSlice | None, pl.LazyFrame]]:
        """Each rule's kept rows, in slices of its groups when it kept more than ``slice_rows``;
        the rules that kept the fewest rows first. Small rules' spans are quick to find, so this
        thread has signals to build almost at once, while the worker goes on to the big ones (in
        rule order, the rule with the most signals came last and was built alone at the end; the
        biggest rules first left this thread waiting on them: detection at 1M events took 1.3 s
        and 1.03 s, 0.94 s this way)."""
        kept_rows = {compiled.index: self._kept.rule_rows(compiled) for compiled in self.compiled}
        for compiled in sorted(self.compiled, key=lambda c: kept_rows[c.index]):
            if kept_rows[compiled.index] == 0:
                continue  # nothing to read (a scan of every kept file to learn that cost 17 ms a rule)
            slices = -(-kept_rows[compiled.index] // self.slice_rows)
            if slices > 1 and compiled.queries[0].group_by:
                for groups_slice, rows in self._kept.rule_slices(compiled, slices):
                    yield compiled, groups_slice, rows
            else:
                yield compiled, None, self._kept.for_rule(compiled)

    def scan_events(self, events: Iterable[Mapping[str, Any]]) -> list[Signal]:
        """Signals over event dicts already in Datadog's attribute form."""
        return self.detect(list(events)).signals

    # --- ingestion to kept rows -------------------------------------------------------------

    def _ingest(self, source: Source) -> None:
        """Every chunk of ``source`` to kept rows (on disk) and stored events."""
        if isinstance(source, pl.DataFrame):
            self._keep_events(_events_from_frame(source))
            return
        if isinstance(source, Sequence) and not isinstance(source, (str, bytes)) and source and isinstance(source[0], Mapping):
            events = cast(Sequence[Mapping[str, Any]], source)
            records = [event if isinstance(event, dict) else dict(event) for event in events]
            self._keep_events(normalize_events(records, self.stats))
            return
        paths: list[str | Path] = [source] if isinstance(source, (str, Path)) else list(source)  # type: ignore[arg-type]
        # A pipeline: this thread reads chunk n+3 while two workers run the native work of
        # chunks n+1 and n+2 (prefilter, extraction, rule flags: Rust and Polars, mostly without
        # the GIL), then finishes chunks in input order (the Python parser's lines, keeping the
        # rows), so event ids and signals do not change. With one worker, its serial parts left
        # a core idle (measured: ingestion 3.2 s wall for 5.4 s of CPU on two cores).
        with ThreadPoolExecutor(max_workers=CHUNK_WORKERS, thread_name_prefix="secmon-chunk") as workers:
            for src in open_sources(paths, format=self.input_format, year=self.year):
                matcher = self._matcher_for(src.format) if self.prefilter and src.format.line_oriented else None
                native = self.native_json and getattr(src.format, "name", None) == "ndjson"
                in_flight: deque[Future[_Prefiltered]] = deque()
                for chunk in src.chunks(self.chunk_bytes):
                    in_flight.append(workers.submit(self._prefilter_chunk, src, chunk, matcher, native))
                    if len(in_flight) > CHUNK_WORKERS:  # one queued: a worker never waits for a read
                        self._finish_chunk(src, in_flight.popleft().result())
                while in_flight:
                    self._finish_chunk(src, in_flight.popleft().result())

    def _prefilter_chunk(self, src: Any, chunk: Any, matcher: Any, native: bool) -> _Prefiltered:
        """The thread-safe first stage: which lines can match, and for NDJSON the native table of
        the lines the extractor reproduces exactly (the rest go to the Python parser)."""
        line_idx = None
        skipped = 0
        if matcher is not None and native and not _worth_prefiltering(matcher, chunk.data):
            matcher = None
        if matcher is not None:
            candidates = matcher.any_lines(chunk.data)
            line_idx = np.flatnonzero(candidates).astype(np.uint32)
            skipped = len(candidates) - len(line_idx)
        batch = None
        if native:
            if line_idx is None:
                line_idx = np.arange(chunk.line_count, dtype=np.uint32)
            batch = split_native(
                chunk.data, line_idx, self._paths, src.max_line_bytes, self._flag_program, self._gathered_paths
            )
        return _Prefiltered(chunk, line_idx, skipped, batch)

    def _finish_chunk(self, src: Any, done: _Prefiltered) -> None:
        """The second stage, in input order: parse in Python what needs it, keep matching rows."""
        chunk = done.chunk
        self.skipped_lines += done.skipped
        if done.native is None:
            events = src.format.parse(chunk, done.line_idx, self.stats)
            self._keep_events(events, json_safe=getattr(src.format, "json_safe_events", False))
        else:
            batch = done.native
            self._keep_events(src.format.parse(chunk, batch.python_lines, self.stats), json_safe=True)
            if batch.events:
                self.stats.count_events(src.name, batch.events)
                self._keep(batch.table.drop("__line"), self._line_places(chunk, batch), events=batch.events, rows=batch.rows)
        if self.progress is not None:
            self.progress(len(chunk.data))

    def _line_places(self, chunk: Any, batch: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Store references of the raw lines of a native batch's rows: in place in the input
        file when the chunk is a plain slice of it, else copies in the event store."""
        file_no = None
        if chunk.file_offset is not None and chunk.source.file is not None:
            file_no = self._store.input_file(chunk.source.file)
        if file_no is not None:
            offsets = batch.starts.astype(np.int64) + chunk.file_offset
            return lambda idx: self._store.refer(file_no, offsets[idx], batch.lengths[idx], RAW_NDJSON)
        lines = batch.table["__line"].to_numpy().astype(np.uint32)
        return lambda idx: self._store.append(select_lines(chunk.data, lines[idx]), RAW_NDJSON)

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

                literals.update(literal.encode() for literal in log_format.directive_literals)
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

    def _keep_events(self, events: list[dict[str, Any]], *, json_safe: bool = False) -> None:
        """Keep the rows of ``events`` some rule query matched. ``json_safe``: the events come from
        a built-in format, so every value survives a JSON round trip (no NaN, no integer past 64
        bits) and the native table builder may be used."""
        if not self.compiled or not events:
            self._next_eid += len(events)
            return
        lines = self._canonical_lines(events) if json_safe and self.native_json else None
        if lines is None:
            table = to_frame(events, self._paths)
            self._keep(table, lambda idx: self._store.append([canonical_json(events[i]).encode() for i in idx.tolist()], CANONICAL))
            return
        # Natively: ``extract_fields`` builds the columns from the events' canonical JSON (its
        # contract is ``to_frame`` of the parsed line, and a JSON round trip gives the same dict),
        # and the same bytes are what the store keeps for the kept rows: one serialization each.
        extracted = extract_fields(b"\n".join(lines), self._paths, flags=self._flag_program)
        if self._flag_program is None:
            table = pl.DataFrame(extracted).drop("__line", "__status").with_columns(pl.col(TS).cast(pl.Int64))
            self._keep(table, lambda idx: self._store.append([lines[i] for i in idx.tolist()], CANONICAL))
            return
        # Every line has status ok, so the matched rows are the rows some flag is set for: orjson
        # writes valid UTF-8 objects nested at most 254 deep, the extractor reads 1,024.
        rows = extracted.matched_rows()
        self._keep(
            gathered_rows(extracted, rows, self._gathered_paths, self._flag_program).drop("__line"),
            lambda idx: self._store.append([lines[i] for i in rows[idx].tolist()], CANONICAL),
            events=len(lines),
            rows=rows,
        )

    @staticmethod
    def _canonical_lines(events: list[dict[str, Any]]) -> list[bytes] | None:
        """Each event as canonical JSON, or None when a value JSON cannot hold (user parsers may
        produce one: ``to_frame``, the twin, copes)."""
        dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
        try:
            return [dumps(event, option=sort_keys) for event in events]
        except TypeError:
            return None

    def _keep(
        self,
        table: pl.DataFrame,
        place: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
        *,
        events: int | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        """Keep the rows of an event table some rule query matched: the timestamp, the values
        detection reads, one flag per query, a scan-wide event id and the event's place in the
        store (``place(positions)`` stores the events at those table positions and gives their
        (ref, length) arrays).

        The table holds ``events`` events (default: its height). With ``rows`` its flag columns
        were evaluated natively and it holds only matching events, gathered natively into
        buffers of their own (``native_json.gathered_rows``), ``rows[i]`` being the index of its
        row i among the ``events``."""
        first_eid = self._next_eid
        self._next_eid += table.height if events is None else events
        if not self.compiled or table.height == 0:
            return
        flag_names = [c for compiled in self.compiled for c in compiled.flag_columns]
        values = [
            (number_value(table.schema, p) if p in self._numeric_paths else text_value(table.schema, p)).alias(p)
            for p in self._value_paths
        ]
        query = table.lazy().with_row_index(_ROW)
        if rows is None:
            # One query: the flags over every row, then only the matching rows are gathered and
            # have their values cast (gathering every column of the table first cost more).
            query = query.with_columns(self.flag_expressions(table.schema)).filter(pl.any_horizontal(flag_names))
        kept = query.select(_ROW, pl.col(TS).cast(pl.Int64), *values, *flag_names).collect()
        if kept.height == 0:
            return
        positions = kept[_ROW].to_numpy().astype(np.int64)
        refs, lengths = place(positions)
        event_idx = positions if rows is None else rows[positions].astype(np.int64)
        self._kept.add(kept.drop(_ROW).with_columns(
            pl.Series(EID, event_idx + first_eid, dtype=pl.Int64),
            pl.Series(REF, refs, dtype=pl.Int64),
            pl.Series(LEN, lengths, dtype=pl.Int32),
        ), own_buffers=rows is not None)


def _worth_prefiltering(matcher: Any, data: bytes) -> bool:
    """Whether the prefilter passes at most PREFILTER_MAX_PASS of the lines of ``data``'s first
    PREFILTER_PROBE_BYTES (whole lines): the chunk is then worth scanning before extraction."""
    end = data.find(b"\n", PREFILTER_PROBE_BYTES)
    if end < 0 or end + 1 >= len(data) // 2:
        return True  # a small chunk: scanning all of it costs little more than the probe
    passed = matcher.any_lines(memoryview(data)[: end + 1], parallel=False)
    return bool(passed.mean() <= PREFILTER_MAX_PASS)


def _flag_program(compiled: Sequence[CompiledRule]) -> FlagProgram | None:
    """Every rule's flags as one native program; None when a query has no exact native form
    (the whole rule set then uses the Polars flags, so a table's flags come from one place)."""
    try:
        flags = [flag for rule in compiled for flag in rule.native_flags()]
    except NotNative:
        return None
    return FlagProgram(flags) if flags else None


def _as_rule_set(rules: RulesLike) -> RuleSet:
    if rules is None:
        from secmon.rules import default_rules

        return default_rules()
    if isinstance(rules, RuleSet):
        return rules
    if isinstance(rules, (str, Path)):
        return load_rules(rules)
    items = list(rules)
    rule_items = [item for item in items if isinstance(item, Rule)]
    if len(rule_items) == len(items):
        return RuleSet(tuple(rule_items))
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
