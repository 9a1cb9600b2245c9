"""Attribute paths: how ``@a.b.c`` finds values in an event, for every part of secmon.

Datadog's search reaches through arrays of objects: ``@requestParameters.items.cidrIp`` matches
an event whose ``items`` is a list of objects when any element's ``cidrIp`` matches. So:

- a path is walked key by key; JSON null is missing;
- an array met before the path ends resolves the rest of the path on each element and collects
  what they give, in order (arrays of arrays flatten); a path ending on an array gives its
  non-null elements;
- when the nested walk finds nothing, the literal dotted key is tried (``{"a.b.c": ...}``), as
  Datadog does for attributes sent with dots.

The event table (``to_frame``), the native extractor, the query twin and the signal templates all
read paths this way; tests hold them to it. Parsers add standard attributes at a path with
:func:`set_default`, which never overwrites.
"""

from __future__ import annotations

from typing import Any


class Values(list):  # type: ignore[type-arg]
    """Values collected through arrays. Unlike a JSON array stored *inside* such a list (one value,
    written as compact JSON), each item is a value of the path."""


_MISSING = object()


def _walk(node: Any, parts: list[str], start: int) -> Any:
    if node is None:
        return _MISSING
    if type(node) is list:
        if start == len(parts):
            return Values(item for item in node if item is not None)
        out = Values()
        for item in node:
            found = _walk(item, parts, start)
            if type(found) is Values:
                out.extend(found)
            elif found is not _MISSING:
                out.append(found)
        return out
    if start == len(parts):
        return node
    if type(node) is dict:
        child = node.get(parts[start])
        if child is not None:
            return _walk(child, parts, start + 1)
    return _MISSING


def walk(node: Any, parts: list[str]) -> Any:
    """The value at ``parts`` below one node (this module's rules), None when nothing is found."""
    found = _walk(node, parts, 0)
    return None if found is _MISSING else found


def resolve(event: dict[str, Any], path: str) -> Any:
    """The value at ``path`` (``@`` optional): None when missing, a :class:`Values` list when the
    path ends on or passes through arrays, else the value itself."""
    if path.startswith("@"):
        path = path[1:]
    found = _walk(event, path.split("."), 0)
    if found is _MISSING:
        literal = event.get(path) if "." in path else None
        found = _walk(literal, [], 0) if literal is not None else _MISSING
    return None if found is _MISSING else found


def resolve_all(event: dict[str, Any], path: str) -> list[Any]:
    """Every value at ``path`` as a list ([] when missing)."""
    found = resolve(event, path)
    if found is None:
        return []
    return list(found) if type(found) is Values else [found]


def set_default(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``path`` unless a value is already there (Datadog remappers keep it)."""
    node = record
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            if child is not None:
                return  # a scalar is in the way: keep the record as it is
            child = node[part] = {}
        node = child
    node.setdefault(path[-1], value)
