"""NDJSON lines to the event table: native ``extract_fields`` beside orjson + ``to_frame`` and Polars.

Input: the seeded corpus of ``benchmarks/corpus.py`` (sshd, nginx, CloudTrail-like and Kubernetes
audit lines of ~470 bytes; 2 MB for ``--smoke``, 200 MB for the full run). Paths: every attribute
path the default rule pack reads (``Engine()._paths``) but ``timestamp``, which ``to_frame`` turns
into epoch milliseconds (the engine normalizes it; the extractor keeps text). Contenders, each in
a fresh process, each reading the file and building the same table (one text column per path):

- ``secmon extract_fields``: the native extractor, rayon's default threads (the reference);
- ``secmon extract_fields, 1 thread``: the same pinned to one thread;
- ``orjson + to_frame``: what ``secmon.ingest`` does today, ``orjson.loads`` per line then
  ``secmon.ingest.events.to_frame``;
- ``pl.read_ndjson + struct fields``: Polars reads every line into nested structs, then each
  path is selected as a struct field and cast to text.

Every contender answers (rows, non-null count per column, a digest of the rows); the answers must
agree. A note adds the in-process time of ``extract_fields`` alone (file already in memory).

A second table measures the *normalized* event table (what ``secmon scan`` builds: CloudTrail and
Kubernetes audit records mapped onto ``evt.name``, ``usr.name``, ... and ISO timestamps parsed),
``timestamp`` included: ``extract_fields(..., normalize=True)`` against ``orjson.loads`` +
``normalize_record`` + ``to_frame``, the Python path those records took before.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Table, cpu_note, measure_python

SEED = 7
SMOKE_BYTES = 2_000_000
FULL_BYTES = 200_000_000

FALLBACK_PATHS = [
    "eventName", "eventSource", "eventType", "evt.name", "evt.outcome", "host", "http.status_code", "http.url",
    "http.useragent", "message", "network.client.ip", "objectRef.namespace", "objectRef.resource",
    "objectRef.subresource", "requestURI", "responseStatus.code", "source", "userIdentity.arn", "userIdentity.type",
    "usr.name", "verb", "sourceIPAddress", "awsRegion", "errorCode", "readOnly", "user.username", "service", "status",
]


def bench_paths() -> list[str]:
    """The default rule pack's attribute paths (``timestamp`` aside), or a fixed list of common ones."""
    try:
        from secmon.detect.engine import Engine

        paths = list(Engine()._paths)
    except Exception:  # noqa: BLE001 - the engine may be mid-change; the fixed list still measures
        paths = list(FALLBACK_PATHS)
    return [p for p in paths if p != "timestamp"]


def answer_of(frame: Any, paths: list[str]) -> tuple[int, tuple[int, ...], int]:
    """(rows, non-null count per path, digest of the rows) of the path columns as text."""
    import polars as pl

    table = frame.select([pl.col(p).cast(pl.String) for p in paths])
    digest = int(table.hash_rows(seed=1).sum())
    return table.height, tuple(table.height - table[p].null_count() for p in paths), digest


# --- contenders (each runs in a fresh interpreter) ------------------------------------------------


def native(path: str, paths: list[str], threads: int | None) -> tuple[int, tuple[int, ...], int]:
    import polars as pl

    from secmon._core import extract_fields

    frame = pl.DataFrame(extract_fields(Path(path).read_bytes(), paths, threads=threads))
    if frame["__status"].max() != 0:  # the corpus is clean: every line is an object
        raise AssertionError(f"unexpected statuses {frame['__status'].value_counts().rows()}")
    return answer_of(frame, paths)


def native_normalized(path: str, paths: list[str], threads: int | None) -> tuple[int, tuple[int, ...], int]:
    import polars as pl

    from secmon._core import extract_fields

    frame = pl.DataFrame(extract_fields(Path(path).read_bytes(), paths, threads=threads, normalize=True))
    if frame["__status"].max() != 0:  # every corpus record is one the native side normalizes
        raise AssertionError(f"unexpected statuses {frame['__status'].value_counts().rows()}")
    return answer_of(frame.with_columns(pl.col("timestamp").cast(pl.Int64)), paths)


def orjson_normalize_to_frame(path: str, paths: list[str]) -> tuple[int, tuple[int, ...], int]:
    import orjson

    from secmon.ingest.events import to_frame
    from secmon.ingest.json_events import normalize_record

    loads = orjson.loads
    events = [normalize_record(loads(line)) for line in Path(path).read_bytes().splitlines() if line.strip()]
    return answer_of(to_frame(events, paths), paths)


def orjson_to_frame(path: str, paths: list[str]) -> tuple[int, tuple[int, ...], int]:
    import orjson

    from secmon.ingest.events import to_frame

    loads = orjson.loads
    events = [loads(line) for line in Path(path).read_bytes().splitlines() if line.strip()]
    return answer_of(to_frame(events, paths), paths)


def polars_ndjson(path: str, paths: list[str]) -> tuple[int, tuple[int, ...], int]:
    import polars as pl

    frame = pl.read_ndjson(path, infer_schema_length=None)
    columns = [_struct_field(frame.schema, p).alias(p) for p in paths]
    return answer_of(frame.select(columns), paths)


def _struct_field(schema: Any, path: str) -> Any:
    """``a.b.c`` out of nested struct columns (a literal dotted column first), as text."""
    import polars as pl

    if path in schema:
        return pl.col(path).cast(pl.String)
    parts = path.split(".")
    if parts[0] not in schema:
        return pl.lit(None, dtype=pl.String)
    expr, dtype = pl.col(parts[0]), schema[parts[0]]
    for part in parts[1:]:
        if not isinstance(dtype, pl.Struct) or part not in {f.name for f in dtype.fields}:
            return pl.lit(None, dtype=pl.String)
        dtype = next(f.dtype for f in dtype.fields if f.name == part)
        expr = expr.struct.field(part)
    return expr.cast(pl.String)


# --- the case -------------------------------------------------------------------------------------


def _in_process_rates(data: bytes, paths: list[str], threads: int | None, repeat: int) -> tuple[float, float]:
    """(MB/s by the wall clock, MB/s by the process's CPU time), best of ``repeat``; on a shared
    machine the CPU-time rate is what one free core would give."""
    import polars as pl

    from secmon._core import extract_fields

    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        pl.DataFrame(extract_fields(data, paths, threads=threads))
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return len(data) / best_wall / 1e6, len(data) / best_cpu / 1e6


def run(smoke: bool) -> list[Table]:
    from benchmarks import corpus

    n_bytes = SMOKE_BYTES if smoke else FULL_BYTES
    path = corpus.cached_corpus(n_bytes, seed=SEED)
    size = path.stat().st_size
    paths = bench_paths()
    table = Table(
        f"NDJSON to event table: {size / 1e6:.0f} MB, {len(paths)} paths (file read included)",
        reference="secmon extract_fields",
        bytes_processed=size,
    )
    module = "benchmarks.bench_extract"
    table.add(measure_python("secmon extract_fields", f"{module}:native", str(path), paths, None))
    table.add(measure_python("secmon extract_fields, 1 thread", f"{module}:native", str(path), paths, 1))
    table.add(measure_python("orjson + to_frame", f"{module}:orjson_to_frame", str(path), paths))
    table.add(measure_python("pl.read_ndjson + struct fields", f"{module}:polars_ndjson", str(path), paths))
    table.assert_agree()
    data = path.read_bytes()
    repeat = 1 if smoke else 3
    wall_default, cpu_default = _in_process_rates(data, paths, None, repeat)
    wall_one, cpu_one = _in_process_rates(data, paths, 1, repeat)
    normalized = Table(
        f"NDJSON to the normalized event table: {size / 1e6:.0f} MB, {len(paths) + 1} paths with timestamp (file read included)",
        reference="secmon extract_fields(normalize=True)",
        bytes_processed=size,
    )
    with_ts = ["timestamp", *paths]
    normalized.add(measure_python("secmon extract_fields(normalize=True)", f"{module}:native_normalized", str(path), with_ts, None))
    normalized.add(measure_python("secmon extract_fields(normalize=True), 1 thread", f"{module}:native_normalized", str(path), with_ts, 1))
    normalized.add(measure_python("orjson + normalize_record + to_frame", f"{module}:orjson_normalize_to_frame", str(path), with_ts))
    normalized.assert_agree()
    rows = table.rows[0].answer[0]
    table.notes.append(
        f"{rows:,} lines. extract_fields + pl.DataFrame alone, buffer in memory (best of {repeat}): "
        f"default threads {wall_default:,.0f} MB/s wall ({cpu_default:,.0f} MB/s of process CPU time), "
        f"one thread {wall_one:,.0f} MB/s wall ({cpu_one:,.0f} MB/s of CPU time); {cpu_note()}, "
        f"load average {os.getloadavg()[0]:.1f} at the end."
    )
    return [table, normalized]
