"""Rule tests: each rule file may have a sibling ``<stem>.test.yaml`` with events and the signals
they must (not) produce. ``secmon rules test`` and pytest both run them.

Format::

    rule: ssh-brute-force
    tests:
      - name: ten failures fire once
        lines: |                 # raw log lines, read like a file (format auto-detected)
          Dec 10 06:55:46 host sshd[1]: Failed password for root from 1.2.3.4 port 22 ssh2
        format: syslog           # optional; year: 2015 optional
        events: [{...}]          # events in Datadog attribute form (timestamp ISO 8601 or epoch ms)
        generate:                # `count` copies of `event`, `every` seconds apart from `start`
          - {count: 10, every: 5, start: "2024-05-01T10:00:00Z", event: {...}}
        expect:                  # exactly these signals; [] means none. Keys given must match.
          - {severity: medium, group_by: {"@network.client.ip": "1.2.3.4"}, event_count: 10}
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from secmon.errors import RuleError
from secmon.rules.loader import RULE_SUFFIXES, TEST_SUFFIX, RuleSet, iter_rule_files
from secmon.rules.model import Rule
from secmon.signals.model import Signal

EXPECT_KEYS = {"severity", "group_by", "event_count", "case", "rule_id", "first_seen", "last_seen", "message"}


@dataclass(frozen=True)
class RuleTestCase:
    rule_id: str
    name: str
    file: str
    lines: str | None
    input_format: str | None
    year: int | None
    events: tuple[dict[str, Any], ...]
    expect: tuple[dict[str, Any], ...]


@dataclass
class RuleTestResult:
    case: RuleTestCase
    signals: list[Signal]
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def test_file_for(rule_file: Path) -> Path:
    stem = rule_file.name
    for suffix in RULE_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return rule_file.with_name(stem + TEST_SUFFIX)


def load_test_cases(paths: list[str | Path]) -> Iterator[RuleTestCase]:
    """The test cases of every rule file under ``paths`` that has a test file."""
    for rule_file in iter_rule_files(paths):
        test_file = test_file_for(rule_file)
        if test_file.exists():
            yield from parse_test_file(test_file)


def parse_test_file(path: Path) -> Iterator[RuleTestCase]:
    from secmon.ingest.timestamps import parse_any

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RuleError(str(path), "(file)", f"invalid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tests"), list) or not data.get("rule"):
        raise RuleError(str(path), "(file)", "a rule test file has `rule: <id>` and a `tests:` list")
    for index, test in enumerate(data["tests"]):
        where = f"tests[{index}]"
        if not isinstance(test, dict):
            raise RuleError(str(path), where, "each test is a mapping")
        events: list[dict[str, Any]] = [copy.deepcopy(e) for e in test.get("events") or []]
        for g_index, gen in enumerate(test.get("generate") or []):
            try:
                start = parse_any(gen["start"])
                every_ms = int(float(gen.get("every", 1)) * 1000)
                for n in range(int(gen["count"])):
                    event = copy.deepcopy(gen["event"])
                    event["timestamp"] = start + n * every_ms
                    events.append(event)
            except (KeyError, TypeError, ValueError) as exc:
                raise RuleError(str(path), f"{where}.generate[{g_index}]", f"needs count, start, event (and every): {exc}") from None
        expect = test.get("expect")
        if not isinstance(expect, list):
            raise RuleError(str(path), f"{where}.expect", "a list of expected signals ([] for none)", expect)
        for e_index, exp in enumerate(expect):
            unknown = set(exp) - EXPECT_KEYS if isinstance(exp, dict) else {"(not a mapping)"}
            if unknown:
                raise RuleError(str(path), f"{where}.expect[{e_index}]", f"unknown keys {sorted(unknown)}; valid: {sorted(EXPECT_KEYS)}")
        yield RuleTestCase(
            rule_id=str(data["rule"]),
            name=str(test.get("name") or f"test {index}"),
            file=str(path),
            lines=test.get("lines"),
            input_format=test.get("format"),
            year=test.get("year"),
            events=tuple(events),
            expect=tuple(expect),
        )


def run_test_case(case: RuleTestCase, rules: RuleSet, *, prefilter: bool = True) -> RuleTestResult:
    from secmon.detect.engine import Engine

    try:
        rule: Rule = rules[case.rule_id]
        run = rules_under_test(rule, rules)
    except KeyError as exc:
        return RuleTestResult(case, [], [str(exc)])
    signals: list[Signal] = []
    if case.events:
        signals += Engine(run, prefilter=prefilter).scan_events(case.events)
    if case.lines:
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "input.log"
            log.write_text(case.lines if case.lines.endswith("\n") else case.lines + "\n", encoding="utf-8")
            engine = Engine(run, prefilter=prefilter, input_format=case.input_format, year=case.year)
            signals += engine.detect([log]).signals
    signals = [s for s in signals if s.rule_id == rule.id]
    return RuleTestResult(case, signals, compare_signals(case.expect, signals))


def rules_under_test(rule: Rule, rules: RuleSet) -> list[Rule]:
    """What a test of ``rule`` runs: the rule, and for a signal correlation the rules whose
    signals it reads (only the rule's own signals are compared)."""
    return [rule, *(rules[rule_id] for rule_id in dict.fromkeys(rule.correlated_rule_ids))]


def compare_signals(expect: tuple[dict[str, Any], ...], signals: list[Signal]) -> list[str]:
    failures: list[str] = []
    if len(signals) != len(expect):
        got = "; ".join(f"{s.severity} {s.group_by} x{s.event_count}" for s in signals) or "none"
        failures.append(f"expected {len(expect)} signal(s), got {len(signals)}: {got}")
        return failures
    remaining = list(signals)
    for exp in expect:
        match = next((s for s in remaining if _matches(exp, s)), None)
        if match is None:
            failures.append(f"no signal matches {exp}; got " + "; ".join(str(_view(s, exp)) for s in remaining))
        else:
            remaining.remove(match)
    return failures


def _view(signal: Signal, exp: dict[str, Any]) -> dict[str, Any]:
    data = signal.to_json()
    return {key: data.get(key) for key in exp}


def _matches(exp: dict[str, Any], signal: Signal) -> bool:
    data = signal.to_json()
    for key, want in exp.items():
        got = data.get(key)
        if key == "group_by":
            if {k: str(v) for k, v in want.items()} != {k: str(v) for k, v in (got or {}).items()}:
                return False
        elif got != want:
            return False
    return True


def run_rule_tests(paths: list[str | Path], rules: RuleSet, *, prefilter: bool = True) -> list[RuleTestResult]:
    return [run_test_case(case, rules, prefilter=prefilter) for case in load_test_cases(paths)]
