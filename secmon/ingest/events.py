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

from secmon.ingest.paths import Values, resolve, walk

Event = dict[str, Any]

_NONE = type(None)
_STRING_TYPES = frozenset({str, _NONE})


def scalar_text(value: Any) -> str | None:
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


_LEAF = object()  # trie key: the column index of a path ending here
_BELOW = object()  # trie key: (column, remaining parts) of every path below this node


def _trie(names: list[str]) -> dict[Any, Any]:
    root: dict[Any, Any] = {}
    for col, name in enumerate(names):
        parts = name.split(".")
        node = root
        for depth, part in enumerate(parts):
            node.setdefault(_BELOW, []).append((col, parts[depth:]))
            node = node.setdefault(part, {})
        node[_LEAF] = col
    return root


def _fill(node: dict[str, Any], trie: dict[Any, Any], columns: list[list[Any]], row: int) -> None:
    """One walk of an event's nested dicts along the requested paths (the hot loop: per event it
    costs what the event holds of those paths, not the number of paths)."""
    for key, sub in trie.items():
        if type(key) is not str:
            continue
        value = node.get(key)
        if value is None:
            continue
        kind = type(value)
        if kind is list:
            for col, parts in sub[_BELOW] if _BELOW in sub else ():
                columns[col][row] = walk(value, parts)
            leaf = sub.get(_LEAF)
            if leaf is not None:
                columns[leaf][row] = walk(value, [])
            continue
        leaf = sub.get(_LEAF)
        if leaf is not None:
            columns[leaf][row] = value
        if kind is dict and _BELOW in sub:
            _fill(value, sub, columns, row)


def _column(values: list[Any], path: str) -> pl.Series:
    if path == "timestamp":
        return pl.Series(path, values, dtype=pl.Int64)
    kinds = set(map(type, values))
    if kinds <= _STRING_TYPES:
        return pl.Series(path, values, dtype=pl.String)
    if Values in kinds:
        lists = [
            None if v is None else [scalar_text(x) for x in v] if type(v) is Values else [scalar_text(v)]
            for v in values
        ]
        return pl.Series(path, lists, dtype=pl.List(pl.String))
    return pl.Series(path, [scalar_text(v) for v in values], dtype=pl.String)


def _unique_paths(paths: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for path in paths:
        seen.setdefault(path.removeprefix("@"), None)
    return list(seen)


def to_frame(events: list[Event], paths: Iterable[str]) -> pl.DataFrame:
    """The event table of ``events`` with one column per path (``@`` prefixes are dropped,
    duplicates kept once, order kept). Paths read values as ``secmon.ingest.paths`` defines,
    through arrays of objects included (such values make the column ``List(String)``)."""
    names = _unique_paths(paths)
    if not names:
        return pl.DataFrame()
    trie = _trie(names)
    columns: list[list[Any]] = [[None] * len(events) for _ in names]
    dotted = [(col, name) for col, name in enumerate(names) if "." in name]
    for row, event in enumerate(events):
        _fill(event, trie, columns, row)
        if dotted and any("." in key for key in event):
            for col, name in dotted:  # Datadog's attributes sent with dots in the key
                if columns[col][row] is None and event.get(name) is not None:
                    columns[col][row] = walk(event[name], [])
    return pl.DataFrame([_column(values, name) for values, name in zip(columns, names)])


# --- the slow, obvious twin (tests compare to_frame against it) --------------------------------


def _naive_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_frame_naive(events: list[Event], paths: Iterable[str]) -> pl.DataFrame:
    """Row by row with the standard library: the definition ``to_frame`` must agree with."""
    names = _unique_paths(paths)
    rows = [[resolve(e, p) for p in names] for e in events]
    data: dict[str, pl.Series] = {}
    for j, name in enumerate(names):
        column = [row[j] for row in rows]
        if name == "timestamp":
            data[name] = pl.Series(name, column, dtype=pl.Int64)
        elif any(isinstance(v, Values) for v in column):
            data[name] = pl.Series(
                name,
                [None if v is None else [_naive_text(x) for x in (v if isinstance(v, Values) else [v])] for v in column],
                dtype=pl.List(pl.String),
            )
        else:
            data[name] = pl.Series(name, [_naive_text(v) for v in column], dtype=pl.String)
    return pl.DataFrame(list(data.values())) if data else pl.DataFrame()
