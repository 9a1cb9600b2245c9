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
