"""The condition language of compliance checks, parsed from YAML into frozen nodes.

A check's condition is the *pass* condition over a resource's normalized facts::

    {fact: spec.hostNetwork, op: ne, value: true}
    {all: [cond, ...]}  {any: [cond, ...]}  {not: cond}
    {for_all: containers, where: cond}   # also for_any / for_none, over a list of elements

Facts are dotted paths into the normalized resource document; a segment holding dots is quoted
(``metadata.annotations."seccomp.security.alpha.kubernetes.io/pod"``). Inside a ``for_*`` scope the
paths are relative to the element; ``item`` is the element itself when it is a scalar.

Every leaf has a value type derived from its operator and value (``bool``, ``num``, ``int``, ``str``,
``strlist``); facts are coerced to that type once, when frames are built, so the Polars evaluator and
the plain Python evaluator see the same typed value. Nothing here calls ``eval``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from secmon.errors import SecmonError

DType = Literal["bool", "num", "int", "str", "strlist"]


class ConditionError(SecmonError):
    """A condition in a check file that cannot be compiled: where it is, the bad value, the reason."""

    def __init__(self, where: str, reason: str, value: object = None) -> None:
        self.where = where
        self.reason = reason
        self.value = value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{where}: {reason}{shown}")


# Operators whose answer on an absent fact is "true": an absent thing is not equal to, does not
# contain, and does not match anything. Every other operator answers "false" on an absent fact.
NEGATIVE_OPS = frozenset({"ne", "not_in", "lacks", "disjoint", "not_matches", "missing", "empty"})

SCALAR_OPS = frozenset({"eq", "ne", "in", "not_in"})
NUMERIC_OPS = frozenset({"lt", "le", "gt", "ge"})
STRING_OPS = frozenset({"matches", "not_matches"})
PRESENCE_OPS = frozenset({"exists", "missing"})
LIST_OPS = frozenset({"has", "lacks", "subset_of", "intersects", "disjoint", "empty", "nonempty"})
MODE_OPS = frozenset({"mode_within"})
ALL_OPS = SCALAR_OPS | NUMERIC_OPS | STRING_OPS | PRESENCE_OPS | LIST_OPS | MODE_OPS
QUANTIFIERS = ("for_all", "for_any", "for_none")

# The element itself, inside a scope over a list of scalars.
ITEM = "item"

Path: TypeAlias = tuple[str, ...]


@dataclass(frozen=True)
class Leaf:
    fact: Path
    op: str
    value: Any
    default: Any
    dtype: DType

    @property
    def fact_text(self) -> str:
        return format_path(self.fact)

    @property
    def column(self) -> str:
        return column_name(self.fact, self.dtype)


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class Quantified:
    quantifier: Literal["for_all", "for_any", "for_none"]
    scope: Path
    where: Condition

    @property
    def scope_text(self) -> str:
        return format_path(self.scope)


Condition: TypeAlias = Leaf | AllOf | AnyOf | Not | Quantified


def column_name(path: Path, dtype: DType) -> str:
    return f"{format_path(path)}|{dtype}"


def format_path(path: Path) -> str:
    return ".".join(f'"{p}"' if "." in p else p for p in path)


_SEGMENT = re.compile(r'"([^"]+)"|([^."]+)')


def parse_path(text: object, where: str) -> Path:
    """``a.b."c.d"`` -> ("a", "b", "c.d"); rejects empty segments and stray quotes."""
    if not isinstance(text, str) or not text:
        raise ConditionError(where, "a fact path must be a non-empty string", text)
    parts: list[str] = []
    pos = 0
    while pos < len(text):
        m = _SEGMENT.match(text, pos)
        if not m:
            raise ConditionError(where, f"bad fact path at character {pos}", text)
        parts.append(m.group(1) or m.group(2))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ".":
                raise ConditionError(where, f"expected '.' at character {pos}", text)
            pos += 1
            if pos == len(text):
                raise ConditionError(where, "fact path ends with '.'", text)
    return tuple(parts)


def _infer_dtype(op: str, value: Any, where: str) -> DType:
    if op in PRESENCE_OPS:
        return "str"
    if op in LIST_OPS:
        return "strlist"
    if op in MODE_OPS:
        return "int"
    if op in NUMERIC_OPS:
        return "num"
    if op in STRING_OPS:
        return "str"
    sample = value[0] if op in ("in", "not_in") and isinstance(value, list) and value else value
    if isinstance(sample, bool):
        return "bool"
    if isinstance(sample, int | float):
        return "num"
    if isinstance(sample, str):
        return "str"
    raise ConditionError(where, f"operator {op!r} needs a bool, number or string value", value)


def _check_value(op: str, value: Any, dtype: DType, where: str) -> Any:
    """Validate the literal against the operator; return it in the canonical form the evaluators use."""
    if op in PRESENCE_OPS or op in ("empty", "nonempty"):
        if value is not None:
            raise ConditionError(where, f"operator {op!r} takes no value", value)
        return None
    if op in ("in", "not_in", "subset_of", "intersects", "disjoint"):
        if not isinstance(value, list) or not value:
            raise ConditionError(where, f"operator {op!r} needs a non-empty list value", value)
        if op in ("in", "not_in"):
            kinds = {_scalar_kind(v) for v in value}
            if len(kinds) != 1 or None in kinds:
                raise ConditionError(where, f"operator {op!r} needs a list of values of one type", value)
            return tuple(float(v) if dtype == "num" else v for v in value)
        if not all(isinstance(v, str) for v in value):
            raise ConditionError(where, f"operator {op!r} needs a list of strings", value)
        return tuple(value)
    if op in ("has", "lacks"):
        if not isinstance(value, str):
            raise ConditionError(where, f"operator {op!r} needs a string value", value)
        return value
    if op in NUMERIC_OPS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConditionError(where, f"operator {op!r} needs a number", value)
        return float(value)
    if op in STRING_OPS:
        if not isinstance(value, str):
            raise ConditionError(where, f"operator {op!r} needs a regular expression string", value)
        try:
            re.compile(value)
        except re.error as exc:
            raise ConditionError(where, f"invalid regular expression: {exc}", value) from None
        return value
    if op in MODE_OPS:
        text = str(value)
        if not re.fullmatch(r"[0-7]{3,4}", text):
            raise ConditionError(where, "mode_within needs an octal mode such as '600'", value)
        return int(text, 8)
    # eq / ne
    if value is None or isinstance(value, list | dict):
        raise ConditionError(where, f"operator {op!r} needs a bool, number or string value", value)
    return float(value) if dtype == "num" else value


def _scalar_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    return None


_LEAF_KEYS = {"fact", "op", "value", "default"}


def parse_condition(raw: object, where: str) -> Condition:
    """Parse one condition node; ``where`` names the file, check and field path for errors."""
    if not isinstance(raw, Mapping):
        raise ConditionError(where, "a condition must be a mapping", raw)
    keys = set(raw)
    if keys & {"all", "any"}:
        if len(keys) != 1:
            raise ConditionError(where, "'all'/'any' must be the only key of its condition", sorted(keys))
        (key,) = keys
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise ConditionError(f"{where}.{key}", "needs a non-empty list of conditions", items)
        parsed = tuple(parse_condition(item, f"{where}.{key}[{i}]") for i, item in enumerate(items))
        return AllOf(parsed) if key == "all" else AnyOf(parsed)
    if "not" in keys:
        if len(keys) != 1:
            raise ConditionError(where, "'not' must be the only key of its condition", sorted(keys))
        return Not(parse_condition(raw["not"], f"{where}.not"))
    quantifiers = keys & set(QUANTIFIERS)
    if quantifiers:
        if len(quantifiers) != 1 or keys != quantifiers | {"where"}:
            raise ConditionError(where, "a quantifier needs exactly one of for_all/for_any/for_none and 'where'", sorted(keys))
        (q,) = quantifiers
        scope = parse_path(raw[q], f"{where}.{q}")
        return Quantified(q, scope, parse_condition(raw["where"], f"{where}.where"))  # type: ignore[arg-type]
    unknown = keys - _LEAF_KEYS
    if unknown or "fact" not in keys or "op" not in keys:
        raise ConditionError(
            where,
            "expected a leaf {fact, op, value?, default?} or one of all/any/not/for_all/for_any/for_none",
            sorted(keys),
        )
    fact = parse_path(raw["fact"], f"{where}.fact")
    op = raw["op"]
    if op not in ALL_OPS:
        raise ConditionError(f"{where}.op", f"unknown operator; valid: {', '.join(sorted(ALL_OPS))}", op)
    value = raw.get("value")
    dtype = _infer_dtype(op, value, f"{where}.value")
    value = _check_value(op, value, dtype, f"{where}.value")
    default = raw.get("default")
    if default is not None:
        default = coerce(default, dtype)
        if default is None:
            raise ConditionError(f"{where}.default", f"default does not fit the fact type {dtype}", raw.get("default"))
    return Leaf(fact, op, value, default, dtype)


# ---------------------------------------------------------------------------------------------
# Coercion of raw facts to a leaf's type, shared by both evaluators.


class FlagValue(tuple[str, ...]):
    """Every occurrence of a command-line flag, in order (``--x=a --x=b`` -> ("a", "b")).

    Scalars take the last occurrence (how pflag and Go's flag package behave); list facts take
    every occurrence, each split on commas (how pflag's StringSlice flags accumulate).
    """


def _scalar_of(raw: Any) -> Any:
    if isinstance(raw, FlagValue):
        return raw[-1] if raw else None
    return raw


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def coerce(raw: Any, dtype: DType) -> Any:
    """The typed value of a raw fact, or None when absent or not representable in ``dtype``."""
    if raw is None:
        return None
    kind = type(raw)
    if (kind is bool and dtype == "bool") or (kind is str and dtype == "str"):
        return raw  # the common, already-typed case
    if dtype == "strlist":
        return _coerce_list(raw)
    value = _scalar_of(raw)
    if value is None:
        return None
    if dtype == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
        return None
    if dtype in ("num", "int"):
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            number: float | int = value
        elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            number = float(value.strip())
        else:
            return None
        if number != number or number in (float("inf"), float("-inf")):
            return None  # NaN and infinities compare differently across engines; treat as unusable
        if dtype == "int":
            return int(number) if float(number).is_integer() and abs(number) < 2**62 else None
        return float(number)
    # str
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, sort_keys=True, default=str)


def _coerce_list(raw: Any) -> list[str] | None:
    if isinstance(raw, FlagValue):
        return [part.strip() for occurrence in raw for part in occurrence.split(",") if part.strip()]
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list | tuple):
        out: list[str] = []
        for item in raw:
            text = coerce(item, "str")
            if text is not None:
                out.append(text)
        return out
    if isinstance(raw, Mapping):
        # A mapping used as a set (sysctls by name, feature gates): its keys are the members.
        return [str(k) for k in raw]
    text = coerce(raw, "str")
    return None if text is None else [text]


def render(value: Any, dtype: DType) -> str:
    """How an observed value is shown as evidence (the Polars path renders identically)."""
    if value is None:
        return "<absent>"
    if dtype == "bool":
        return "true" if value else "false"
    if dtype == "num":
        if float(value).is_integer() and abs(value) < 2**53:
            return str(int(value))
        # Non-integral numbers are shown the way Polars prints them, so both evaluators agree.
        import polars as pl

        return str(pl.Series([float(value)], dtype=pl.Float64).cast(pl.String)[0])
    if dtype == "int":
        return str(value)
    if dtype == "strlist":
        return "[" + ", ".join(value) + "]"
    return str(value)


# ---------------------------------------------------------------------------------------------
# Walking conditions: which facts and scopes a set of conditions needs.


@dataclass
class Schema:
    """The facts (path, type) and nested scopes one resource kind needs, built from its checks."""

    fields: dict[str, tuple[Path, DType]]
    scopes: dict[Path, Schema]

    @classmethod
    def empty(cls) -> Schema:
        return cls({}, {})

    def add(self, cond: Condition) -> None:
        if isinstance(cond, Leaf):
            self.fields[cond.column] = (cond.fact, cond.dtype)
        elif isinstance(cond, AllOf | AnyOf):
            for item in cond.items:
                self.add(item)
        elif isinstance(cond, Not):
            self.add(cond.item)
        else:
            self.scopes.setdefault(cond.scope, Schema.empty()).add(cond.where)


def leaves(cond: Condition) -> list[Leaf]:
    if isinstance(cond, Leaf):
        return [cond]
    if isinstance(cond, AllOf | AnyOf):
        return [leaf for item in cond.items for leaf in leaves(item)]
    if isinstance(cond, Not):
        return leaves(cond.item)
    return leaves(cond.where)
