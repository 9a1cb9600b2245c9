"""The values a rule's ``groupByFields``, ``distinctFields`` and ``metrics`` read from an event.

A field is written as in Datadog: ``@a.b`` is the attribute at ``a.b``, a reserved attribute
(``host``, ``service``, ``source``, ``status``, ...) is itself, and any other bare name is a tag
key: ``env`` groups by the value of the event's ``env:...`` tag (Datadog's own example rule
groups by ``["service", "env"]``). An event without such a tag falls back to the attribute of
that name, so a bare ``usr.name`` still means what its writer meant.

Each field compiles to the name of a *value column*: the attribute's path, or ``tags:KEY`` for
a tag key. Detection keeps one value column per field beside the rows it keeps; the functions
here derive it from the event table (:func:`text_value`, :func:`number_value`) and from one
event dict (:func:`event_value`, the reference twin's), in the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from secmon.query.ast import RESERVED_ATTRIBUTES
from secmon.signals.model import lookup_path

TAGS = "tags"
_TAG_PREFIX = "tags:"  # value column of tag key K: "tags:K" (no attribute path holds a ':')


def value_column(field: str) -> str:
    """The value column of a rule field: ``@network.client.ip`` -> ``network.client.ip``,
    ``host`` -> ``host``, ``env`` -> ``tags:env``."""
    if field.startswith("@"):
        return field[1:]
    if field in RESERVED_ATTRIBUTES:
        return field
    return _TAG_PREFIX + field


# What a geo_data query reads below its location attribute (Datadog's GeoIP attributes:
# @network.client.geoip.location.latitude, ...): latitude, longitude, city, country.
GEO_PARTS = ("location.latitude", "location.longitude", "city.name", "country.name")


def geo_columns(column: str) -> tuple[str, ...]:
    """The value columns of a location attribute (``network.client.geoip``), in GEO_PARTS order."""
    return tuple(f"{column}.{part}" for part in GEO_PARTS)


def tag_key(column: str) -> str | None:
    """The tag key a value column reads, or None for an attribute's column."""
    return column[len(_TAG_PREFIX) :] if column.startswith(_TAG_PREFIX) else None


def source_columns(column: str) -> tuple[str, ...]:
    """The event-table columns a value column is derived from."""
    key = tag_key(column)
    return (column,) if key is None else (TAGS, key)


def text_value(schema: Mapping[str, pl.DataType], column: str) -> pl.Expr:
    """A value column as text from a table with ``schema``: a list joins with ', ', a column the
    table lacks is all null; a tag key's column is its tags' values, else the attribute's."""
    if column in schema:
        return _as_text(schema, column)
    key = tag_key(column)
    if key is None:
        return pl.lit(None, dtype=pl.String)
    return pl.coalesce(_tag_values(schema, key), _as_text(schema, key))


def number_value(schema: Mapping[str, pl.DataType], column: str) -> pl.Expr:
    """A value column as a number (the first of a list; null where it does not read as one)."""
    if column in schema and isinstance(schema[column], pl.List):
        return pl.col(column).list.first().cast(pl.Float64, strict=False)
    if column in schema:
        return pl.col(column).cast(pl.Float64, strict=False)
    if tag_key(column) is None:
        return pl.lit(None, dtype=pl.Float64)
    return text_value(schema, column).str.split(", ").list.first().cast(pl.Float64, strict=False)


def event_value(event: dict[str, Any], column: str) -> Any:
    """The value of a value column in one event dict, the obvious twin of :func:`text_value`: a
    tag key gives the list of its tags' values."""
    key = tag_key(column)
    if key is None:
        return lookup_path(event, column)
    prefix = key + ":"
    tags = lookup_path(event, TAGS)
    tags = tags if isinstance(tags, list) else [] if tags is None else [tags]
    values = [tag[len(prefix) :] for tag in tags if isinstance(tag, str) and tag.startswith(prefix)]
    return values or lookup_path(event, key)


def env_of(event: dict[str, Any] | None) -> str | None:
    """An event's environment, as ``decreaseCriticalityBasedOnEnv`` reads it: its first ``env:``
    tag, else its ``env`` attribute."""
    value = event_value(event, value_column("env")) if event is not None else None
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def _as_text(schema: Mapping[str, pl.DataType], column: str) -> pl.Expr:
    if column not in schema:
        return pl.lit(None, dtype=pl.String)
    if isinstance(schema[column], pl.List):
        return pl.col(column).list.join(", ")
    return pl.col(column).cast(pl.String)


def _tag_values(schema: Mapping[str, pl.DataType], key: str) -> pl.Expr:
    if TAGS not in schema:
        return pl.lit(None, dtype=pl.String)
    tags = pl.col(TAGS) if isinstance(schema[TAGS], pl.List) else pl.concat_list(pl.col(TAGS).cast(pl.String))
    prefix = key + ":"
    tag = pl.element().cast(pl.String)
    values = tags.list.eval(tag.filter(tag.str.starts_with(prefix)).str.slice(len(prefix)))
    return pl.when(values.list.len() > 0).then(values.list.join(", "))
