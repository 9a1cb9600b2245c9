"""Detection rules: Datadog's security-monitoring rule format, validated and frozen."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from secmon.rules.loader import RuleSet, load_rules, validate_rules
from secmon.rules.model import Rule, RuleCase, RuleFilter, RuleOptions, RuleQuery

DEFAULT_RULES_DIR = Path(__file__).parent / "default"


@lru_cache(maxsize=1)
def default_rules() -> RuleSet:
    """The bundled rule pack (``secmon/rules/default/``), one file per rule."""
    return load_rules(DEFAULT_RULES_DIR)


__all__ = [
    "DEFAULT_RULES_DIR",
    "Rule",
    "RuleCase",
    "RuleFilter",
    "RuleOptions",
    "RuleQuery",
    "RuleSet",
    "default_rules",
    "load_rules",
    "validate_rules",
]
