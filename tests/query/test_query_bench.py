"""Benchmark: eight rule queries over one event table (Polars) beside the per-event reference evaluator.

``pytest -m bench tests/query/test_query_bench.py -s`` prints the table; the smoke variant runs in the
default suite and checks that the contenders agree.
"""

from __future__ import annotations

import pytest
from query_bench_cases import QUERIES

from benchmarks.harness import Measurement, Table, cpu_note, measure_python


def run(smoke: bool) -> list[Table]:
    count = 3_000 if smoke else 300_000
    table = Table(
        f"{len(QUERIES)} Datadog queries over {count:,} events: parse + compile + match (event table built beforehand)",
        reference="secmon polars",
        items_processed=count * len(QUERIES),
        item_unit="event-queries",
    )
    build_seconds = 0.0
    for name, target in [("secmon polars", "query_bench_cases:polars_counts"), ("reference evaluate", "query_bench_cases:reference_counts")]:
        process = measure_python(name, target, count)
        counts, built, matching = process.answer
        build_seconds = max(build_seconds, built)
        # The time is the matching measured inside the fresh process; memory is the whole process's.
        table.add(Measurement(name, matching, process.peak_rss_bytes, counts))
    table.assert_agree()
    counts = table.rows[0].answer
    assert all(0 < n < count for n in counts), counts  # every query is selective, none matches all
    table.notes.append(f"{cpu_note()}; event table build (to_frame) for the polars row: {build_seconds:.2f} s; matches per query: {counts}")
    return [table]


def test_query_benchmark_smoke() -> None:
    run(smoke=True)


@pytest.mark.bench
def test_query_benchmark_full() -> None:
    for table in run(smoke=False):
        table.print()
