"""Command-line options several commands share, and how they turn into objects."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from secmon.rules.loader import RuleSet


def add_rule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", action="append", default=[], metavar="PATH",
                        help="rule file or directory (Datadog rule JSON/YAML); repeatable")
    parser.add_argument("--no-default-rules", action="store_true", help="do not load the bundled rule pack")


def rules_from_args(args: argparse.Namespace) -> RuleSet:
    from secmon.rules import default_rules
    from secmon.rules.loader import RuleSet, load_rules

    rules = RuleSet() if args.no_default_rules else default_rules()
    if args.rules:
        rules = rules + load_rules(args.rules)
    return rules


def add_parser_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--parsers", action="append", default=[], metavar="FILE",
                        help="YAML file of your own log parsers (regexes with named groups); repeatable. "
                             "Their names work with --input-format and their `detect` patterns in format detection")


def register_parsers_from_args(args: argparse.Namespace) -> list[str]:
    """Add the ``--parsers`` files' formats to the registry; a bad file is a clear error (file,
    parser, field, reason) before any input is read."""
    from secmon.ingest.parsers import register_parsers

    names: list[str] = []
    for path in args.parsers:
        names.extend(register_parsers(path))
    return names
