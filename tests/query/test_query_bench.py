"""Benchmark: eight rule queries over one event table (Polars) beside the per-event reference evaluator.

``pytest -m bench tests/query/test_query_bench.py -s`` prints the table; the smoke variant runs in the
default suite and checks that the contenders agree.
"""

from __future__ import annotations

import pytest
from query_bench_cases import QUERIES

from benchmarks.harness import Table, cpu_note, measure_python


def run(smoke: bool) -> list[Table]:
    count = 3_000 if smoke else 300_000
    table = Table(
        f"{len(QUERIES)} Datadog queries over {count:,} events (event table built in every row)",
        reference="secmon polars",
        items_processed=count * len(QUERIES),
        item_unit="event-queries",
    )
    table.add(measure_python("secmon polars", "query_bench_cases:polars_counts", count))
    table.add(measure_python("reference evaluate", "query_bench_cases:reference_counts", count))
    load = table.add(measure_python("table build only", "query_bench_cases:load_only", count))
    reference = next(r for r in table.rows if r.name == "reference evaluate")
    polars = next(r for r in table.rows if r.name == "secmon polars")
    assert polars.answer == reference.answer, f"polars {polars.answer} != reference {reference.answer}"
    assert all(0 < n < count for n in polars.answer), polars.answer  # every query is selective
    table.notes.append(f"{cpu_note()}; matches per query: {polars.answer}")
    return [table]


def test_query_benchmark_smoke() -> None:
    run(smoke=True)


@pytest.mark.bench
def test_query_benchmark_full() -> None:
    for table in run(smoke=False):
        table.print()
