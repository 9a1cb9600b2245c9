"""``secmon demo``: the main job on bundled sample logs, no arguments needed.

Scans the sample logs in ``secmon/samples/`` (sshd auth log, gzipped nginx access log,
CloudTrail, Kubernetes audit, Okta) with the default rule pack and prints the signals.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_FILES = ("auth.log", "access.log.gz", "cloudtrail.json", "k8s-audit.jsonl", "okta.jsonl")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="scan the bundled sample logs with the default rules")
    demo.add_argument("--format", choices=("table", "json", "ndjson"), default="table")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from secmon.commands.scan import write_signals
    from secmon.detect.engine import Engine

    paths = [SAMPLES_DIR / name for name in SAMPLE_FILES]
    engine = Engine(year=2026)
    started = time.perf_counter()
    result = engine.detect(paths)
    elapsed = time.perf_counter() - started
    if args.format == "table":
        shown = os.path.relpath(SAMPLES_DIR) if SAMPLES_DIR.is_relative_to(Path.cwd()) else SAMPLES_DIR
        print(f"secmon demo: {len(engine.rules.enabled)} default rules over {len(paths)} sample logs in {shown}\n")
    write_signals(result.signals, args.format, sys.stdout, summary=result.summary())
    if args.format == "table":
        print(f"scanned {result.stats.bytes_read / 1e6:.1f} MB in {elapsed:.2f} s")
    return 0
