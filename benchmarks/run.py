"""Run the benchmark cases: ``python -m benchmarks.run [--smoke] [--only NAME]... [--markdown FILE]``.

Each case module exposes ``run(smoke: bool) -> list[Table]``; a case asserts its contenders agree
before it reports. ``--smoke`` shrinks every input so the whole run takes seconds (``make test``
runs it); the full run prints the table that goes into the README.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

# name -> module with run(smoke) -> list[Table]
CASES: dict[str, str] = {
    "compliance": "benchmarks.bench_compliance",
    "extract": "benchmarks.bench_extract",
    "fim": "benchmarks.bench_fim",
    "ingest": "benchmarks.ingest",
    "scan": "benchmarks.bench_scan",
    "matcher": "benchmarks.bench_matcher",
    "ipset": "benchmarks.bench_ipset",
    "scan_tree": "benchmarks.bench_scan_tree",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs: check the harness and the answers, not speed")
    parser.add_argument("--only", action="append", default=[], help=f"run only these cases: {', '.join(CASES)}")
    parser.add_argument("--markdown", help="also write the tables as markdown to this file")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only if name not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; valid: {', '.join(CASES)}")
    chosen = args.only or list(CASES)
    out: list[str] = []
    for name in chosen:
        started = time.perf_counter()
        print(f"## {name}", flush=True)
        tables = importlib.import_module(CASES[name]).run(args.smoke)
        for table in tables:
            table.print()
            out.append(table.markdown())
        print(f"({name}: {time.perf_counter() - started:.1f} s)\n", flush=True)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write("\n\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
