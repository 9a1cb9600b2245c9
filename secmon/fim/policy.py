"""Per-path attribute policy: which attributes are compared for which path (first matching rule).

Kept free of pydantic and Polars so ``secmon fim check`` can rebuild it from a baseline header
without importing either (the import alone cost more than the check).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from secmon.fim.attributes import ATTRIBUTES, PRESETS, parse_attribute_set
from secmon.fim.globs import glob_to_regex, matches_whole_path


class RuleLike(Protocol):
    """What :meth:`AttributePolicy.from_specs` reads of a rule (a ``RuleSpec`` or a plain record)."""

    @property
    def match(self) -> str: ...
    @property
    def attributes(self) -> str | list[str]: ...
    @property
    def types(self) -> Sequence[str] | None: ...


# NamedTuples rather than frozen dataclasses: the same immutable records, without importing
# dataclasses (and inspect behind it) on the start-up path of `secmon fim check`.
class CompiledRule(NamedTuple):
    pattern: str
    regex: str  # over the whole path (basename patterns become "any directory, then this name")
    types: frozenset[str] | None
    attributes: frozenset[str]
    growing: bool


def _rule_regex(pattern: str) -> str:
    anchored = glob_to_regex(pattern)
    if matches_whole_path(pattern):
        return anchored
    return "^(?:.*/)?" + anchored[1:]


class AttributePolicy(NamedTuple):
    """Which attributes are compared for which path: first matching rule, else the default."""

    rules: tuple[CompiledRule, ...]
    default_attributes: frozenset[str]
    default_growing: bool

    @classmethod
    def from_specs(cls, rules: Sequence[RuleLike], default: str | list[str] = "full") -> AttributePolicy:
        compiled = []
        for rule in rules:
            attrs, growing = parse_attribute_set(rule.attributes)
            types = frozenset(rule.types) if rule.types else None
            compiled.append(CompiledRule(rule.match, _rule_regex(rule.match), types, attrs, growing))
        attrs, growing = parse_attribute_set(default)
        return cls(tuple(compiled), attrs, growing)

    @classmethod
    def everything(cls) -> AttributePolicy:
        return cls((), PRESETS["full"], False)

    def restricted_to(self, allowed: frozenset[str]) -> AttributePolicy:
        """The same selection, comparing only attributes both sides can know (e.g. an image)."""
        rules = tuple(
            CompiledRule(r.pattern, r.regex, r.types, r.attributes & allowed, r.growing) for r in self.rules
        )
        return AttributePolicy(rules, self.default_attributes & allowed, self.default_growing)

    def select(self, path: str, file_type: str | None) -> tuple[frozenset[str], bool]:
        """The attribute set and growing flag for one path (the slow, obvious lookup)."""
        for rule in self.rules:
            if rule.types is not None and file_type not in rule.types:
                continue
            if re.match(rule.regex, path, re.DOTALL):
                return rule.attributes, rule.growing
        return self.default_attributes, self.default_growing

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": [
                {
                    "match": r.pattern,
                    "types": sorted(r.types) if r.types else None,
                    "attributes": [a for a in ATTRIBUTES if a in r.attributes],
                    "growing": r.growing,
                }
                for r in self.rules
            ],
            "default_attributes": [a for a in ATTRIBUTES if a in self.default_attributes],
            "default_growing": self.default_growing,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttributePolicy:
        rules = tuple(
            CompiledRule(
                r["match"],
                _rule_regex(r["match"]),
                frozenset(r["types"]) if r["types"] else None,
                frozenset(r["attributes"]),
                bool(r["growing"]),
            )
            for r in data["rules"]
        )
        return cls(rules, frozenset(data["default_attributes"]), bool(data["default_growing"]))
