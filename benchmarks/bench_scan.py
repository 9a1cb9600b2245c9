"""End-to-end detection: ``secmon`` beside plain Python and Polars alone, same rules, same signals.

Input: a seeded NDJSON corpus of ~1M events (sshd, nginx, CloudTrail, Kubernetes audit) already in
Datadog's attribute form, and 2,000 threat-intel IP indicators. Rules: the default pack plus the
intel rule. Contenders, each in its own process:

- ``secmon``: :class:`secmon.Engine` (native prefilter over raw bytes, parse candidates, Polars);
- ``secmon scan --format json (CLI)``: the command, the whole process, its JSON on stdout (the
  signals with their samples): what a user at a shell waits for;
- ``plain Python``: ``json.loads`` per line, the same predicates (``secmon.query.evaluate``, a set
  for the indicators) per event, then the same windowed detection over the matching events;
- ``Polars alone``: ``pl.read_ndjson`` of the whole file, the attribute paths flattened out of its
  structs, the same compiled filter expressions, then the same windowed detection.

All three must produce the same signals (rule, group, first/last seen, event count, severity).
A second table runs secmon alone on a 1 GB and a 5 GB raw corpus to show peak memory stays flat.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.harness import AnswerLater, Table, measure_command, measure_python

SEED = 7
CACHE = Path(os.environ.get("SECMON_BENCH_CACHE", Path(tempfile.gettempdir()) / "secmon-bench"))
N_INDICATORS = 2_000


def _signal_digest(signals: list[Any]) -> tuple[int, str]:
    keys = sorted(repr(s.key()) for s in signals)
    return len(keys), hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def prepare(n_events: int) -> tuple[Path, Path]:
    """Normalized NDJSON corpus with ``n_events`` events and the indicator list (cached)."""
    import orjson

    from benchmarks import corpus
    from secmon.ingest import parse_events

    CACHE.mkdir(parents=True, exist_ok=True)
    events_path = CACHE / f"scan-{SEED}-{n_events}.ndjson"
    intel_path = CACHE / f"intel-{SEED}-{N_INDICATORS}.txt"
    if not intel_path.exists():
        ips = [p.decode() for p in corpus.patterns(N_INDICATORS * 2, seed=SEED) if p.count(b".") == 3 and p[:1].isdigit()]
        rnd = random.Random(SEED)
        while len(ips) < N_INDICATORS:  # top up from a range the generator never emits
            ips.append(f"198.18.{rnd.randrange(256)}.{rnd.randrange(256)}")
        intel_path.write_text("# benchmark indicators\n" + "\n".join(ips[:N_INDICATORS]) + "\n")
    if not events_path.exists():
        raw = corpus.generate(int(n_events * 470 * 1.02), seed=SEED)
        lines = raw.split(b"\n")[:n_events]
        tmp_raw = events_path.with_suffix(".raw")
        tmp_raw.write_bytes(b"\n".join(lines) + b"\n")
        events = parse_events([tmp_raw])
        with open(events_path.with_suffix(".tmp"), "wb") as out:
            for event in events:
                out.write(orjson.dumps(event) + b"\n")
        os.replace(events_path.with_suffix(".tmp"), events_path)
        tmp_raw.unlink()
    return events_path, intel_path


# --- contenders (run in fresh processes by the harness) -------------------------------------


def secmon_scan(path: str, intel: str) -> AnswerLater:
    from secmon import Engine, default_rules

    result = Engine(default_rules(), intel=[intel]).detect([path])
    return AnswerLater(_signal_digest, result.signals)


def plain_python_scan(path: str, intel: str) -> AnswerLater:
    import json

    from secmon import Engine, default_rules
    from secmon.detect.compiled import compile_rules
    from secmon.ingest.json_events import normalize_record
    from secmon.signals.model import lookup_path

    compiled = compile_rules(default_rules())
    indicators = {line.strip() for line in open(intel) if line.strip() and not line.startswith("#")}
    kept: list[dict[str, Any]] = []
    with open(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            event = normalize_record(json.loads(line))
            hit = lookup_path(event, "network.client.ip") in indicators or lookup_path(event, "network.destination.ip") in indicators
            if hit or any(rule.matches_event(event, i) for rule in compiled for i in range(len(rule.queries))):
                kept.append(event)
    result = Engine(default_rules(), intel=[intel]).detect(kept)
    return AnswerLater(_signal_digest, result.signals)


def polars_scan(path: str, intel: str) -> AnswerLater:
    """Polars alone: read the whole file with Polars' NDJSON reader, flatten the attribute paths
    the rules read, then the same compiled filters and windowed detection as secmon."""
    import polars as pl

    from secmon import Engine, default_rules

    engine = Engine(default_rules(), intel=[intel])
    frame = pl.read_ndjson(path, infer_schema_length=None)
    columns = [_flat_column(frame.schema, p).alias(p) for p in engine.attribute_paths if p != "timestamp"]
    table = frame.select(pl.col("timestamp").cast(pl.Int64), *columns)
    return AnswerLater(_signal_digest, engine.detect_table(table))


def _flat_column(schema: Any, path: str) -> Any:
    """``a.b.c`` out of nested struct columns (through lists of structs), as event-table text."""
    import polars as pl

    parts = path.split(".")
    if parts[0] not in schema:
        return pl.lit(None, dtype=pl.String)
    expr, dtype, listed = pl.col(parts[0]), schema[parts[0]], False
    for part in parts[1:]:
        if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct) and not listed:
            fields = {f.name: f.dtype for f in dtype.inner.fields}
            if part not in fields:
                return pl.lit(None, dtype=pl.String)
            expr, dtype, listed = expr.list.eval(pl.element().struct.field(part)), fields[part], True
            continue
        if not isinstance(dtype, pl.Struct):
            return pl.lit(None, dtype=pl.String)
        fields = {f.name: f.dtype for f in dtype.fields}
        if part not in fields:
            return pl.lit(None, dtype=pl.String)
        expr, dtype = expr.struct.field(part), fields[part]
    if listed or isinstance(dtype, pl.List):
        return expr.list.eval(pl.element().cast(pl.String)).list.drop_nulls()
    if isinstance(dtype, pl.Struct):
        return expr.struct.json_encode()
    if dtype == pl.Boolean:
        return pl.when(expr).then(pl.lit("true")).when(~expr).then(pl.lit("false"))
    return expr.cast(pl.String)


def _cli_answer(out: bytes) -> tuple[int, str]:
    """The signal digest of ``secmon scan --format json`` output: ``Signal.key()`` of each
    signal, from its JSON."""
    import orjson

    from secmon.signals.model import Signal

    def epoch_ms(text: str) -> int:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000 + 0.5)

    signals = [Signal(s["rule_id"], s["rule_name"], s["severity"], s["case"], s["group_by"], epoch_ms(s["first_seen"]),
                      epoch_ms(s["last_seen"]), s["event_count"], id=s["id"]) for s in orjson.loads(out)]
    return _signal_digest(signals)


def secmon_scan_raw(nbytes: int) -> tuple[int, str]:
    from benchmarks import corpus
    from secmon import Engine, default_rules

    path = CACHE / f"raw-{SEED}-{nbytes}.ndjson"
    if not path.exists():
        corpus.write_corpus(path, nbytes, seed=SEED)
    # Signals as they come (Engine.signals): as the input grows so does their number, and holding
    # every one (or even every key: 60 MB of strings at 5 GB) is output, not the engine's working
    # memory. The digest is a sum of per-signal hashes, so it needs no list and no order.
    count, total = 0, 0
    for signal in Engine(default_rules()).signals([path]):
        count += 1
        total += int.from_bytes(hashlib.blake2b(repr(signal.key()).encode(), digest_size=8).digest(), "big")
    return count, f"{total % 2**64:016x}"


def _table(n_events: int, with_python: bool) -> Table:
    events_path, intel_path = prepare(n_events)
    size = events_path.stat().st_size
    table = Table(f"scan: default rules + {N_INDICATORS:,} intel IPs over {n_events:,} NDJSON events ({size / 1e6:.0f} MB)",
                  bytes_processed=size, items_processed=n_events, item_unit="events")
    table.add(measure_python("secmon", "benchmarks.bench_scan:secmon_scan", str(events_path), str(intel_path)))
    table.add(measure_command("secmon scan --format json (CLI)", [sys.executable, "-m", "secmon.cli", "scan", "--quiet", "--format", "json",
                              "--intel", str(intel_path), str(events_path)], answer_from=_cli_answer))
    table.add(measure_python("Polars alone", "benchmarks.bench_scan:polars_scan", str(events_path), str(intel_path)))
    if with_python:
        table.add(measure_python("plain Python", "benchmarks.bench_scan:plain_python_scan", str(events_path), str(intel_path)))
    table.assert_agree()
    names = ", ".join(row.name for row in table.rows)
    table.notes.append(f"{names}: the same {table.rows[0].answer[0]} signals (rule, group, first/last seen, count, severity). "
                       f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}.")
    return table


def run(smoke: bool) -> list[Table]:
    if smoke:
        return [_table(3_000, with_python=True)]
    # Plain Python needs ~10 minutes per million events: it runs on the 200k-event table only.
    tables = [_table(200_000, with_python=True), _table(1_000_000, with_python=False)]
    if os.environ.get("SECMON_BENCH_MEMORY", "1") == "1":
        memory = Table("scan: peak memory as the input grows (secmon, default rules, raw corpus)")
        for nbytes in (1_000_000_000, 5_000_000_000):
            memory.add(measure_python(f"secmon {nbytes / 1e9:.0f} GB", "benchmarks.bench_scan:secmon_scan_raw", nbytes))
        memory.reference = memory.rows[0].name
        tables.append(memory)
    return tables
