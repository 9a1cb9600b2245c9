"""Normalized resources and the typed fact frames built from them.

A :class:`Resource` is one thing a check looks at (a workload, a kubelet, a container, a file)
with its normalized document. :func:`build_scope` turns the documents of one resource kind into
Polars frames holding exactly the typed facts the checks of that kind need: one frame for the
resources, and one child frame per ``for_*`` scope (``containers``, ``volumes``, ...) whose rows
point at their parent row. Both evaluators read facts through :func:`lookup` and
:func:`elements`, so they agree on what a fact is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import polars as pl

from secmon.compliance.conditions import ITEM, DType, Path, Schema, coerce, format_path

POLARS_TYPES: dict[DType, pl.DataType] = {
    "bool": pl.Boolean(),
    "num": pl.Float64(),
    "int": pl.Int64(),
    "str": pl.String(),
    "strlist": pl.List(pl.String()),
}

# The key a normalizer may set on a list element to say where it really lives in the source
# object (``spec.template.spec.initContainers[0]``), because normalization merges lists.
PATH_KEY = "__path"


@dataclass
class Resource:
    """One checked thing: its kind (a name from the check files' ``resource``), display name,
    origin and normalized document."""

    kind: str
    name: str
    file: str
    doc: dict[str, Any]
    location: str = ""
    line: int | None = None
    notes: list[str] = field(default_factory=list)


def lookup(doc: Any, path: Path) -> Any:
    """The raw value at ``path`` inside ``doc``, or None when any step is missing."""
    if path == (ITEM,) and not isinstance(doc, Mapping):
        return doc
    node = doc
    for key in path:
        # Documents are plain dicts almost always; the ABC check is the slow fallback.
        if type(node) is not dict and not isinstance(node, Mapping):
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


def _getter(path: Path) -> Callable[[Any], Any]:
    """``lookup`` specialised for one path: the hot loop of frame building (same answers)."""
    if path == (ITEM,) or len(path) > 3:
        return lambda doc: lookup(doc, path)
    if len(path) == 1:
        (a,) = path

        def get1(doc: Any) -> Any:
            return doc.get(a) if type(doc) is dict else lookup(doc, path)

        return get1
    if len(path) == 2:
        a, b = path

        def get2(doc: Any) -> Any:
            if type(doc) is dict:
                x = doc.get(a)
                if type(x) is dict:
                    return x.get(b)
            return lookup(doc, path)

        return get2
    a, b, c = path

    def get3(doc: Any) -> Any:
        if type(doc) is dict:
            x = doc.get(a)
            if type(x) is dict:
                y = x.get(b)
                if type(y) is dict:
                    return y.get(c)
        return lookup(doc, path)

    return get3


def elements(doc: Any, scope: Path, parent_path: str) -> list[tuple[Any, str]]:
    """The elements of a ``for_*`` scope with the path each one has in the source object.

    A list gives its items; a mapping gives ``{key, value}`` pairs (annotations, ConfigMap data);
    a single scalar is a one-element list; an absent value is empty.
    """
    value = lookup(doc, scope)
    prefix = f"{parent_path}.{format_path(scope)}" if parent_path else format_path(scope)
    if value is None:
        return []
    if isinstance(value, list | tuple):
        out: list[tuple[Any, str]] = []
        for i, item in enumerate(value):
            where = item.get(PATH_KEY) if isinstance(item, Mapping) else None
            out.append((item, where if isinstance(where, str) else f"{prefix}[{i}]"))
        return out
    if isinstance(value, Mapping):
        return [({"key": str(k), "value": v}, f"{prefix}.{k}") for k, v in value.items()]
    return [(value, prefix)]


# dtype -> the Python type whose values coerce() returns unchanged (ints are exact in Float64).
_ALREADY_TYPED: dict[str, type] = {"bool": bool, "str": str, "num": int}


def _list_series(name: str, values: list[list[str] | None]) -> pl.Series:
    """A List(String) column built from flat values and owners in bulk: Polars' constructor
    makes one Series per row for nested lists, which dominates frame building otherwise."""
    lengths = [-1 if v is None else len(v) for v in values]
    return list_series_from_flat(name, list(chain.from_iterable(v for v in values if v)), lengths)


def list_series_from_flat(name: str, flat: list[str], lengths: list[int]) -> pl.Series:
    """A List(String) column from every row's items end to end and each row's length (-1 for a
    null row): the layout the native fact extractor returns."""
    n = len(lengths)
    if n == 0:
        return pl.Series(name, [], dtype=pl.List(pl.String))
    sizes = np.asarray(lengths, dtype=np.int64)
    null = sizes < 0
    owners = np.repeat(np.arange(n, dtype=np.int64), np.where(null, 0, sizes))
    grouped = pl.DataFrame({"i": owners, "v": pl.Series("v", flat, dtype=pl.String)}).group_by("i").agg(pl.col("v"))
    rows = pl.DataFrame({"i": np.arange(n, dtype=np.int64), "null": pl.Series(null, dtype=pl.Boolean)})
    joined = rows.join(grouped, on="i", how="left", maintain_order="left")
    return joined.select(
        pl.when(pl.col("null")).then(None).otherwise(pl.col("v").fill_null(pl.lit([], dtype=pl.List(pl.String)))).alias(name)
    ).to_series()


@dataclass
class ScopeFrame:
    """Typed facts of one level: ``frame`` has one row per document (plus ``__parent`` and
    ``__path`` in child scopes), ``children`` one ScopeFrame per nested scope."""

    frame: pl.DataFrame
    children: dict[Path, ScopeFrame]

    @property
    def height(self) -> int:
        return self.frame.height


def build_scope(
    docs: list[Any], paths: list[str], schema: Schema, parents: list[int] | None = None
) -> ScopeFrame:
    columns: dict[str, pl.Series] = {}
    if parents is not None:
        columns["__parent"] = pl.Series("__parent", parents, dtype=pl.Int64)
        columns["__path"] = pl.Series("__path", paths, dtype=pl.String)
    for name, (path, dtype) in schema.fields.items():
        get = _getter(path)
        # Absent facts and values already of the column's type skip coerce (same result, faster).
        fast = _ALREADY_TYPED.get(dtype)
        if fast is None:
            values = [coerce(v, dtype) for v in map(get, docs)]
        else:
            values = [v if v is None or type(v) is fast else coerce(v, dtype) for v in map(get, docs)]
        columns[name] = _list_series(name, values) if dtype == "strlist" else pl.Series(name, values, dtype=POLARS_TYPES[dtype])
    frame = pl.DataFrame(list(columns.values())) if columns else pl.DataFrame({"__dummy": [None] * len(docs)})
    children: dict[Path, ScopeFrame] = {}
    for scope, child_schema in schema.scopes.items():
        child_docs: list[Any] = []
        child_paths: list[str] = []
        child_parents: list[int] = []
        for row, (doc, doc_path) in enumerate(zip(docs, paths, strict=True)):
            for item, item_path in elements(doc, scope, doc_path):
                child_docs.append(item)
                child_paths.append(item_path)
                child_parents.append(row)
        children[scope] = build_scope(child_docs, child_paths, child_schema, child_parents)
    return ScopeFrame(frame, children)
