"""``secmon signals list|show|triage`` over a signal store."""

from __future__ import annotations

import argparse
import json
import sys

from secmon.signals.model import SIGNAL_STATUSES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    signals = subparsers.add_parser("signals", help="search and triage stored security signals")
    sub = signals.add_subparsers(dest="signals_command", metavar="SUBCOMMAND", required=True)

    listing = sub.add_parser("list", help="list stored signals")
    listing.add_argument("--store", required=True, metavar="DB")
    listing.add_argument("--status", choices=SIGNAL_STATUSES)
    listing.add_argument("--rule", metavar="ID")
    listing.add_argument("--query", metavar="QUERY", help="log-search syntax over signal fields, e.g. '@severity:high @rule_id:ssh*'")
    listing.add_argument("--format", choices=("table", "json", "ndjson"), default="table")
    listing.set_defaults(func=_list)

    show = sub.add_parser("show", help="print one signal as JSON")
    show.add_argument("signal_id")
    show.add_argument("--store", required=True, metavar="DB")
    show.set_defaults(func=_show)

    triage = sub.add_parser("triage", help="set a signal's status")
    triage.add_argument("signal_id")
    triage.add_argument("status", choices=SIGNAL_STATUSES)
    triage.add_argument("--store", required=True, metavar="DB")
    triage.set_defaults(func=_triage)


def _list(args: argparse.Namespace) -> int:
    from secmon.commands.scan import write_signals
    from secmon.signals.store import SignalStore

    with SignalStore(args.store) as store:
        signals = store.signals(status=args.status, rule_id=args.rule)
    if args.query:
        from secmon import query as q

        ast = q.parse(args.query)
        signals = [s for s in signals if q.evaluate(ast, {**s.to_json(), "message": s.message})]
    write_signals(signals, args.format, sys.stdout)
    return 0


def _show(args: argparse.Namespace) -> int:
    from secmon.signals.store import SignalStore

    with SignalStore(args.store) as store:
        print(json.dumps(store.get(args.signal_id).to_json(), indent=2))
    return 0


def _triage(args: argparse.Namespace) -> int:
    from secmon.signals.store import SignalStore

    with SignalStore(args.store) as store:
        signal = store.triage(args.signal_id, args.status)
    print(f"{signal.id}: {signal.status}")
    return 0
