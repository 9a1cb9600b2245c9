"""``secmon rules list|show|validate|test|export``."""

from __future__ import annotations

import argparse
import json
import sys

import yaml

from secmon.commands.options import add_parser_options, add_rule_options, register_parsers_from_args, rules_from_args
from secmon.errors import RuleError, RuleSetError
from secmon.rules.loader import RuleSet
from secmon.rules.model import Rule

EXIT_FAILED = 1
EXIT_INVALID = 2


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    rules = subparsers.add_parser("rules", help="list, show, validate, test and export detection rules")
    sub = rules.add_subparsers(dest="rules_command", metavar="SUBCOMMAND", required=True)

    listing = sub.add_parser("list", help="list the loaded rules")
    add_rule_options(listing)
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=_list)

    show = sub.add_parser("show", help="print one rule as Datadog JSON")
    add_rule_options(show)
    show.add_argument("rule_id")
    show.set_defaults(func=_show)

    validate = sub.add_parser("validate", help="check rule files; prints every error with file, line and field")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.set_defaults(func=_validate)

    test = sub.add_parser("test", help="run the rules' test events (<rule>.test.yaml) and compare the signals")
    test.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories (default: the bundled pack)")
    test.add_argument("--no-prefilter", action="store_true", help="parse every line (check the prefilter changes nothing)")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    add_parser_options(test)
    test.set_defaults(func=_test)

    export = sub.add_parser("export", help="export rules as Datadog rule JSON (a list) or YAML")
    add_rule_options(export)
    export.add_argument("rule_ids", nargs="*", metavar="ID", help="only these rules")
    export.add_argument("--format", choices=("json", "yaml"), default="json")
    export.set_defaults(func=_export)


def _list(args: argparse.Namespace) -> int:
    rules = rules_from_args(args)
    if args.format == "json":
        print(json.dumps([{"id": r.id, "name": r.name, "enabled": r.is_enabled,
                           "method": _method(r), "severities": list(r.severity_order),
                           "tags": list(r.tags), "file": r.source_file} for r in rules], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rules)} rules", title_justify="left")
    for column in ("id", "name", "method", "severity", "tactic"):
        table.add_column(column)
    for rule in rules:
        tactic = next((t.split(":", 1)[1] for t in rule.tags if t.startswith("tactic:")), "")
        table.add_row(rule.id, rule.name, _method(rule), "/".join(dict.fromkeys(rule.severity_order)), tactic)
    Console().print(table)
    return 0


def _show(args: argparse.Namespace) -> int:
    rule = rules_from_args(args)[args.rule_id]
    print(json.dumps(rule.to_datadog(), indent=2))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from secmon.rules.loader import iter_rule_files, load_rules

    try:  # every file read once: the rules, then what their correlations name
        errors = _correlation_errors(load_rules(args.paths, lint=True))
    except RuleSetError as exc:
        errors = exc.errors
    count = sum(1 for _ in iter_rule_files(args.paths))
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"{len(errors)} error(s) in {count} rule file(s)", file=sys.stderr)
        return EXIT_INVALID
    print(f"{count} rule file(s) valid")
    return 0


def _test(args: argparse.Namespace) -> int:
    from secmon.rules import DEFAULT_RULES_DIR, load_rules
    from secmon.rules.testing import run_rule_tests

    register_parsers_from_args(args)
    paths = args.paths or [str(DEFAULT_RULES_DIR)]
    rules = load_rules(paths)
    results = run_rule_tests(paths, rules, prefilter=not args.no_prefilter)
    failed = [r for r in results if not r.passed]
    for result in results:
        if result.passed and not args.verbose:
            continue
        mark = "ok  " if result.passed else "FAIL"
        print(f"{mark} {result.case.rule_id}: {result.case.name}")
        for failure in result.failures:
            print(f"       {failure}")
    tested = {r.case.rule_id for r in results}
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed ({len(tested)} rules with tests, {len(rules)} rules)")
    return EXIT_FAILED if failed else 0


def _export(args: argparse.Namespace) -> int:
    rules = rules_from_args(args)
    chosen = [rules[rule_id] for rule_id in args.rule_ids] if args.rule_ids else list(rules)
    data = [rule.to_datadog() for rule in chosen]
    if args.format == "yaml":
        print(yaml.safe_dump_all(data, sort_keys=False), end="")
    else:
        print(json.dumps(data, indent=2))
    return 0


def _correlation_errors(given: RuleSet) -> list[RuleError]:
    """What a scan of these rules with the default pack would refuse: a signal correlation naming
    a rule that is neither among them nor in the pack, or is disabled, or is itself a correlation."""
    from secmon.detect.correlation import correlation_rules
    from secmon.rules import default_rules

    ids = {rule.id for rule in given}
    try:
        correlation_rules([*given, *(rule for rule in default_rules() if rule.id not in ids)])
    except RuleSetError as exc:
        return exc.errors
    return []


def _method(rule: Rule) -> str:
    """How a rule detects: its detection method, or that it correlates other rules' signals."""
    return "signal_correlation" if rule.type == "signal_correlation" else rule.options.detection_method
