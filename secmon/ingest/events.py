"""The event table: events (dicts) -> a Polars DataFrame with one column per attribute path.

Contract (shared with ``secmon.query`` and ``secmon.detect``):

- one column per requested path, named by the dotted path without ``@``;
- ``timestamp`` is ``pl.Int64`` epoch milliseconds;
- other columns are ``pl.String``: strings as they are, JSON numbers and booleans as JSON writes
  them (``404`` -> ``"404"``, ``1.5`` -> ``"1.5"``, ``true`` -> ``"true"``), objects as compact JSON
  text; or ``pl.List(pl.String)`` when at least one event holds an array there (scalars are then
  wrapped in a one-item list, and each array item is converted like a scalar);
- a missing attribute (or JSON ``null``) is null.

A path is looked up nested first (``{"network": {"client": {"ip": ...}}}``), then as a literal
dotted key (``{"network.client.ip": ...}``), as Datadog does for attributes sent with dots.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson
import polars as pl

Event = dict[str, Any]

_NONE = type(None)
_STRING_TYPES = frozenset({str, _NONE})


def _scalar_text(value: Any) -> str | None:
    """One value as event-table text (see the module docstring)."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return None
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return json.dumps(value)  # 1.5 -> "1.5", 1e+20 as Python's json writes it
    if kind is dict or kind is list:
        return _compact_json(value)
    return str(value)


def _compact_json(value: Any) -> str:
    try:
        # orjson is ~10x faster; it writes floats differently (1e20 vs 1e+20), so it is used
        # only when the value holds no float.
        if not _has_float(value):
            return orjson.dumps(value).decode()
    except TypeError:
        pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _has_float(value: Any) -> bool:
    if type(value) is float:
        return True
    if type(value) is dict:
        return any(_has_float(v) for v in value.values())
    if type(value) is list:
        return any(_has_float(v) for v in value)
    return False


def _getter(path: str) -> Any:
    """A fast function event -> value for ``path`` (specialized by depth)."""
    parts = path.split(".")
    if len(parts) == 1:
        key = parts[0]
        return lambda e: e.get(key)
    if len(parts) == 2:
        a, b = parts

        def get2(e: Event) -> Any:
            node = e.get(a)
            if type(node) is dict:
                value = node.get(b)
                if value is not None:
                    return value
            return e.get(path)

        return get2

    def get_n(e: Event) -> Any:
        node: Any = e
        for part in parts:
            if type(node) is not dict:
                return e.get(path)
            node = node.get(part)
            if node is None:
                return e.get(path)
        return node

    return get_n


def _column(values: list[Any], path: str) -> pl.Series:
    if path == "timestamp":
        return pl.Series(path, values, dtype=pl.Int64)
    kinds = set(map(type, values))
    if kinds <= _STRING_TYPES:
        return pl.Series(path, values, dtype=pl.String)
    if list in kinds:
        lists = [
            None if v is None else [_scalar_text(x) for x in v] if type(v) is list else [_scalar_text(v)]
            for v in values
        ]
        return pl.Series(path, lists, dtype=pl.List(pl.String))
    return pl.Series(path, [_scalar_text(v) for v in values], dtype=pl.String)


def _unique_paths(paths: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for path in paths:
        seen.setdefault(path.removeprefix("@"), None)
    return list(seen)


def _values(events: list[Event], path: str) -> list[Any]:
    """The value at ``path`` of every event, nested lookup first, then a literal dotted key.

    Depths 1-3 are inlined comprehensions (a function call per value would double the cost);
    the dotted-key fallback runs only when some event has that literal key."""
    parts = path.split(".")
    depth = len(parts)
    if depth == 1:
        return [e.get(path) for e in events]
    if depth == 2:
        a, b = parts
        values = [n.get(b) if type(n := e.get(a)) is dict else None for e in events]
    elif depth == 3:
        a, b, c = parts
        values = [
            m.get(c) if type(n := e.get(a)) is dict and type(m := n.get(b)) is dict else None for e in events
        ]
    else:
        get = _getter(path)
        return [get(e) for e in events]
    if None in values and any(path in e for e in events):
        values = [e.get(path) if v is None else v for v, e in zip(values, events)]
    return values


def _walk_arrays(node: Any, parts: list[str], i: int) -> Any:
    """The value at ``parts[i:]`` below ``node``, stepping into every object of an array on the
    way (Datadog's search does: ``@items.instanceId`` matches any item's ``instanceId``). Values
    found in several items come back as one flat list; nothing found is None."""
    while i < len(parts):
        kind = type(node)
        if kind is dict:
            node = node.get(parts[i])
            i += 1
        elif kind is list:
            found: list[Any] = []
            for item in node:
                value = _walk_arrays(item, parts, i)
                if type(value) is list:
                    found.extend(value)
                elif value is not None:
                    found.append(value)
            return found or None
        else:
            return None
    return node


def _values_through_arrays(events: list[Event], path: str) -> list[Any]:
    parts = path.split(".")
    values = [_walk_arrays(e, parts, 0) for e in events]
    if None in values and any(path in e for e in events):
        values = [e.get(path) if v is None else v for v, e in zip(values, events)]
    return values


def to_frame(events: list[Event], paths: Iterable[str], *, traverse_arrays: bool = False) -> pl.DataFrame:
    """The event table of ``events`` with one column per path (``@`` prefixes are dropped,
    duplicates kept once, order kept).

    ``traverse_arrays=True`` also looks through arrays of objects on the way (Datadog's search
    semantics: ``requestParameters.items.userId`` collects every item's ``userId`` into a
    ``List(String)`` value). It is off by default because the event-table contract does not
    include it yet; the engine and query layer opt in together."""
    extract = _values_through_arrays if traverse_arrays else _values
    columns = [_column(extract(events, path), path) for path in _unique_paths(paths)]
    return pl.DataFrame(columns) if columns else pl.DataFrame()


# --- the slow, obvious twin (tests compare to_frame against it) --------------------------------


def _naive_lookup(event: Event, path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if isinstance(node, dict) and part in node and node[part] is not None:
            node = node[part]
        else:
            return event.get(path)
    return node


def _naive_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _naive_lookup_arrays(event: Event, path: str) -> Any:
    def below(node: Any, parts: list[str]) -> list[Any]:
        """Every value at ``parts`` below ``node`` (arrays on the way stepped into; an array
        found at the end contributes its items)."""
        if not parts:
            return [] if node is None else list(node) if isinstance(node, list) else [node]
        if isinstance(node, list):
            return [v for item in node for v in below(item, parts)]
        if isinstance(node, dict):
            return below(node.get(parts[0]), parts[1:])
        return []

    parts = path.split(".")
    node: Any = event
    crossed_array = False
    for part in parts:  # does the path run through an array before its last step?
        if isinstance(node, list):
            crossed_array = True
            break
        node = node.get(part) if isinstance(node, dict) else None
    if not crossed_array:
        return _naive_lookup(event, path)
    found = below(event, parts)
    return found if found else event.get(path)


def to_frame_naive(events: list[Event], paths: Iterable[str], *, traverse_arrays: bool = False) -> pl.DataFrame:
    """Row by row with the standard library: the definition ``to_frame`` must agree with."""
    names = _unique_paths(paths)
    lookup = _naive_lookup_arrays if traverse_arrays else _naive_lookup
    rows = [[lookup(e, p) for p in names] for e in events]
    data: dict[str, pl.Series] = {}
    for j, name in enumerate(names):
        column = [row[j] for row in rows]
        if name == "timestamp":
            data[name] = pl.Series(name, column, dtype=pl.Int64)
        elif any(isinstance(v, list) for v in column):
            data[name] = pl.Series(
                name,
                [None if v is None else [_naive_text(x) for x in (v if isinstance(v, list) else [v])] for v in column],
                dtype=pl.List(pl.String),
            )
        else:
            data[name] = pl.Series(name, [_naive_text(v) for v in column], dtype=pl.String)
    return pl.DataFrame(list(data.values())) if data else pl.DataFrame()
